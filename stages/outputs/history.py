"""The per-epoch training history: ``reports/train_history.csv``, one row per epoch."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from nnlib.training import History

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
