"""The per-epoch training history, written through DVCLive as each epoch ends.

``<live dir>/metrics.json`` holds the latest epoch (``step`` is its number): what
``dvc exp show``, ``dvc metrics show`` and VS Code's DVC extension read, also while training
runs. ``<live dir>/plots/metrics/<name>.tsv`` holds one row per epoch of each figure in
``METRICS`` (``step`` and the value), drawn by ``dvc plots``. No timings are logged, so
reruns give identical files. ``learning_rate`` is logged last in each epoch: its rows count
the epochs that are complete in every file.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from stages.outputs.errors import OutputError

if TYPE_CHECKING:
    from nnlib.training import EpochRecord

#: the train stage's DVCLive folder (dvc.yaml)
LIVE_DIR = Path("dvclive")
#: the EpochRecord figures logged as DVCLive metrics of the same names, in this order (named
#: as ``train.monitor`` names them, apart from evaluate's ``train.*`` and ``test.*`` scores)
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def metric_file(metric: str) -> str:
    """The path of ``metric``'s per-epoch file inside the live folder."""
    return f"plots/metrics/{metric}.tsv"


@contextlib.contextmanager
def live_history(directory: Path) -> Iterator[Callable[[EpochRecord], None]]:
    """``log(record)``: one epoch into ``directory`` (emptied of an earlier run's history
    first). dvc.yaml names the files as the stage's metrics and plots, so DVCLive writes no
    dvc.yaml and saves no experiment of its own."""
    from dvclive import Live  # imports part of DVC: only when training

    class StageLive(Live):
        def _init_dvc(self) -> None:
            """Nothing: with dvc.yaml hand-written and no experiment to save, DVCLive needs
            no DVC repository, and opening one costs half a second and writes DVC's state
            database (which fails on a full disk before training starts)."""

    try:
        with StageLive(str(directory), dvcyaml=False, save_dvc_exp=False) as live:

            def log(record: EpochRecord) -> None:
                live.step = record.epoch
                for metric in METRICS:
                    value = getattr(record, metric)
                    if value is not None:
                        live.log_metric(metric, float(value))
                live.next_step()

            yield log
    except OSError as exc:  # DVCLive's writes name no file: say where they went
        raise OutputError(f"{directory}: cannot write the history ({exc.strerror})") from exc


def _rows(text: str | None) -> list[dict[str, str]]:
    """The complete rows of a DVCLive TSV file (a line still being written is left out)."""
    if not text:
        return []
    complete = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(complete), delimiter="\t"))


def read_history(read: Callable[[str], str | None]) -> list[dict[str, float | None]]:
    """One row per complete epoch, ``{"epoch": 1, "loss": ..., "val_accuracy": ...}``
    (None for a figure not logged), from a live folder whose files ``read(relative path)``
    returns as text (None for a missing file): on disk, or in a git commit."""
    steps = [row["step"] for row in _rows(read(metric_file("learning_rate")))]
    rows: list[dict[str, float | None]] = [{"epoch": int(step)} for step in steps]
    for metric in METRICS:
        logged = {row["step"]: float(row[metric]) for row in _rows(read(metric_file(metric)))}
        for step, row in zip(steps, rows, strict=True):
            row[metric] = logged.get(step)
    return rows


def read_live_folder(directory: Path) -> list[dict[str, float | None]]:
    """``read_history`` of a live folder on disk."""

    def read(relative: str) -> str | None:
        try:
            return (directory / relative).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    return read_history(read)


def read_recorded_history(repository: Path, revision: str) -> list[dict[str, float | None]]:
    """``read_history`` of the live folder a git ``revision`` of ``repository`` records (its
    files come out of DVC's cache, which must hold them: ``dvc pull`` or ``dvc exp pull``)."""
    from dvc.repo import Repo

    with Repo.open(str(repository), rev=revision) as repo:
        fs = repo.dvcfs

        def read(relative: str) -> str | None:
            path = f"{LIVE_DIR.as_posix()}/{relative}"
            return fs.read_text(path, encoding="utf-8") if fs.exists(path) else None

        return read_history(read)
