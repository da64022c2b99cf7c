"""Replacing a stage's outputs as a set: every file new and complete, or every file as it was.

Each output is claimed for the writer (``stages.outputs.claims``: a second writer is refused
at once) and written to a temporary file beside it (``.<name>.<random>.tmp``) that its
writer holds an exclusive ``flock`` on. When every file of the set is written, each one is
fsynced, the commit guards are asked (e.g. whether the dvc process that started the stage is
still alive), a journal is written (``stages.outputs.journal``), and each file is moved over
its target with ``os.replace``; if a move fails, the targets already replaced get their
previous content back. A failure or interruption before that point leaves every target
untouched; a writer killed during the moves is rolled back by the next run from its journal.
A temporary file whose lock nobody holds was left by a killed writer (the kernel drops the
lock of a dead process), so it is provably abandoned and removed; a live writer's file is
never touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from stages.outputs.claims import OutputError, claimed, signals_deferred
from stages.outputs.journal import Move, fsync_directory, remove_journals, write_journals

__all__ = ["COMMIT_GUARDS", "OutputError", "OutputSet", "atomic_write", "remove_abandoned"]

#: Called before a set is moved into place; one that raises stops the commit, leaving every
#: target as it was. The stage commands add the check that their dvc process is alive.
COMMIT_GUARDS: list[Callable[[], None]] = []


def _temporaries(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


def remove_abandoned(target: Path) -> list[Path]:
    """Delete the temporary files of ``target`` that no live process holds; return them."""
    removed = []
    for temporary in _temporaries(target):
        try:
            fd = os.open(temporary, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
        finally:
            os.close(fd)
    return removed


class _Temporary:
    """A locked temporary file beside ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = target
        while True:
            path = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
            try:
                self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            break
        self.path = path
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Remove the file if it is still there (not moved into place) and drop the lock."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)


class OutputSet:
    """``with OutputSet() as outputs:`` ... ``outputs.open(path)`` ... : replaced together.

    Errors while writing name the target file (OutputError); nothing is replaced unless the
    ``with`` block completes.
    """

    def __init__(self) -> None:
        self._files: dict[Path, _Temporary] = {}
        self._claims = ExitStack()

    def __enter__(self) -> OutputSet:
        return self

    @contextlib.contextmanager
    def open(self, target: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
        """A handle on the new content of ``target``, text (``"w"``) or binary (``"wb"``)."""
        if mode not in ("wb", "w"):
            raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
        target = Path(target)
        if target in self._files:
            raise ValueError(f"{target} is already part of this output set")
        # A target the command claimed at its start is held already; this one claim more
        # (or the first, for a set written without one) lasts until the set is done.
        self._claims.enter_context(claimed(target))
        try:
            # Interrupted between the two, a temporary file would be made but unrecorded,
            # and left behind.
            with signals_deferred():
                temporary = _Temporary(target)
                self._files[target] = temporary
            encoding = None if "b" in mode else "utf-8"
            with open(os.dup(temporary.fd), mode, encoding=encoding) as handle:
                yield handle
        except OSError as exc:
            raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._commit()
        finally:
            for temporary in self._files.values():
                temporary.release()
            self._claims.close()

    def _commit(self) -> None:
        for target, temporary in self._files.items():
            try:
                os.fsync(temporary.fd)
            except OSError as exc:
                raise OutputError(f"{target}: cannot write ({exc.strerror})") from exc
        for guard in COMMIT_GUARDS:
            guard()
        backups: dict[Path, Path | None] = {}
        journaled = False
        try:
            for target in self._files:
                backups[target] = _backup(target)
            write_journals([Move(t, self._files[t].path, b) for t, b in backups.items()])
            journaled = True
            for target, temporary in self._files.items():
                os.replace(temporary.path, target)
            for directory in {target.parent for target in self._files}:
                fsync_directory(directory)
        except BaseException as exc:
            _restore({t: b for t, b in backups.items() if not self._files[t].path.exists()})
            if isinstance(exc, OSError):
                raise OutputError(f"{target}: cannot replace ({exc.strerror})") from exc
            raise
        finally:
            if journaled:  # the commit is over (done or undone): the journal goes first
                remove_journals(self._files)
            for backup in backups.values():
                if backup is not None:
                    backup.unlink(missing_ok=True)


def _backup(target: Path) -> Path | None:
    """A hard link to ``target``'s current content (None if it has none yet)."""
    if not target.exists():
        return None
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    backup = target.parent / f".{target.name}.{secrets.token_hex(4)}.bak"
    os.link(target, backup)
    return backup


def _restore(backups: dict[Path, Path | None]) -> None:
    """Put back the content each replaced target had before the commit started."""
    for target, backup in backups.items():
        if backup is None:
            target.unlink(missing_ok=True)
        else:
            os.replace(backup, target)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """One file written atomically: an output set of one."""
    with OutputSet() as outputs, outputs.open(path, mode) as handle:
        yield handle
