"""The per-epoch training history: ``reports/train_history.csv``, one row per epoch; and,
while training runs, one JSON line per epoch for a program that watches it."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from nnlib.training import EpochRecord, History

# Names a file that train appends each epoch's figures to as the epoch ends.
EPOCH_LOG_VARIABLE = "TRAIN_EPOCH_LOG"

HISTORY_FIELDS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
)


def write_history(handle: TextIO, history: History) -> None:
    """One CSV row per epoch into ``handle`` (no timings, so that reruns give identical files)."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(HISTORY_FIELDS)
    for r in history.epochs:
        row = (r.epoch, r.loss, r.accuracy, r.val_loss, r.val_accuracy, r.learning_rate)
        writer.writerow(["" if v is None else f"{v:.6g}" for v in row])


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@contextlib.contextmanager
def epoch_log() -> Iterator[Callable[[EpochRecord, int], None]]:
    """``log(record, epochs)``: append one line to the file ``$TRAIN_EPOCH_LOG`` names, if set.

    Each line is a JSON object flushed as its epoch ends, for a program that watches training
    (the search stops hopeless trials from it): ``{"epoch": 3, "epochs": 20, "loss": ...,
    "accuracy": ..., "val_loss": ..., "val_accuracy": ..., "learning_rate": ...}``, with
    null for a figure that is missing or not finite.
    """
    path = os.environ.get(EPOCH_LOG_VARIABLE)
    if not path:
        yield lambda record, epochs: None
        return
    with open(path, "a", encoding="utf-8") as handle:

        def log(record: EpochRecord, epochs: int) -> None:
            line = {"epoch": record.epoch, "epochs": epochs}
            for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
                line[name] = _finite_or_none(getattr(record, name))
            handle.write(json.dumps(line, allow_nan=False) + "\n")
            handle.flush()

        yield log
