"""Progress display: a rich progress bar on a terminal, nothing extra otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Advance(Protocol):
    def __call__(self, amount: float = 1) -> None: ...


def _no_op(amount: float = 1) -> None:
    return None


def on_terminal() -> bool:
    """True when stderr is an interactive terminal (not a log file, pipe or DVC capture)."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(
    description: str, total: float | None, *, in_bytes: bool = False
) -> Iterator[Advance]:
    """Yield an ``advance(amount)`` callable that moves a bar on a terminal.

    Off a terminal it does nothing: the stages log plain lines instead, so logs
    stay readable when captured by DVC or CI.
    """
    if not on_terminal():
        yield _no_op
        return
    counter = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        *counter,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(amount: float = 1) -> None:
            progress.advance(task, amount)

        yield advance
