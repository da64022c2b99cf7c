"""Replacing a stage's output files as a set, for a stage run by hand.

Under ``dvc repro`` DVC removes a stage's outputs before running it, records them in
``dvc.lock`` only when the stage succeeds, and keeps every recorded version in its cache
(``dvc checkout`` brings it back). Run by hand, a stage has only this: each file is written
to a temporary name beside its target (``.<name>.<random>.tmp``), flushed and closed; when
every file of the set is complete they are renamed over their targets, one after another.
No reader ever sees a torn file, and a failure or interruption before the renames leaves
every target as it was. A run killed outright (SIGKILL, power loss) leaves its temporary
files, which the next run that locks the folder removes (``stages.outputs.folders``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from stages.outputs.errors import OutputError

__all__ = ["OutputError", "OutputSet", "atomic_write", "temporary_name"]

#: what a temporary file's name looks like: ``.<target name>.<8 hex digits>.tmp``
TEMPORARY_GLOB = ".*.????????.tmp"
#: the longest file name, in bytes, of Linux's file systems (ext4, XFS, Btrfs, tmpfs) and APFS
NAME_MAX = 255


def cut_name(name: str, n_bytes: int) -> str:
    """``name`` without as many characters at its end as it takes to fit in ``n_bytes``
    bytes as a file name (``os.fsencode``)."""
    while len(os.fsencode(name)) > n_bytes:
        name = name[:-1]
    return name


def temporary_name(target: Path) -> Path:
    """A fresh temporary path beside ``target``: ``.<name>.<8 hex digits>.tmp``, the name cut
    so that the whole fits in ``NAME_MAX`` bytes (the random digits keep it apart)."""
    suffix = f".{secrets.token_hex(4)}.tmp"
    return target.parent / f".{cut_name(target.name, NAME_MAX - 1 - len(suffix))}{suffix}"


def prepare_target(target: Path) -> None:
    """Create ``target``'s folder; OutputError if a file stands where a folder must be, or a
    folder where the file goes."""
    for folder in (target.parent, *target.parent.parents):
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{target}: cannot write there, {folder} is not a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot create {target.parent} ({exc.strerror})") from None
    if target.is_dir():
        raise OutputError(f"{target}: is a directory, expected a file path")


class OutputSet:
    """``with OutputSet() as outputs:`` ... ``outputs.open(path)`` ...: replaced together.

    Errors while writing name the target file (OutputError); nothing is replaced unless the
    ``with`` block completes. No file stays open between ``open`` blocks, so a set may hold
    any number of files.
    """

    def __init__(self) -> None:
        self._written: dict[Path, Path] = {}  # target -> its complete temporary file

    def __enter__(self) -> OutputSet:
        return self

    @contextlib.contextmanager
    def open(self, target: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
        """A handle on the new content of ``target``, text (``"w"``) or binary (``"wb"``)."""
        if mode not in ("wb", "w"):
            raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
        target = Path(target)
        if target in self._written:
            raise ValueError(f"{target} is already part of this output set")
        prepare_target(target)
        temporary = temporary_name(target)
        self._written[target] = temporary  # recorded first: an interrupt still removes it
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            encoding = None if "b" in mode else "utf-8"
            with open(fd, mode, encoding=encoding) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                for target, temporary in self._written.items():
                    try:
                        os.replace(temporary, target)
                    except OSError as exc:
                        raise OutputError(f"{target}: cannot replace ({exc.strerror})") from exc
        finally:
            for temporary in self._written.values():
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """One file written atomically: an output set of one."""
    with OutputSet() as outputs, outputs.open(path, mode) as handle:
        yield handle
