"""One writer per output folder: a stage run by hand locks the folders its outputs go into
for as long as it runs, so two runs never interleave their files.

The lock is an exclusive ``flock`` on the folder itself: no lock file is made, and the
kernel lets go of it when its holder ends, however it ends. A second run is refused at once
naming the holder (its pid, from ``/proc/locks`` where Linux has it). Under ``dvc repro``
DVC's own repository lock already keeps runs apart; the folder lock costs nothing there.
The holder removes the temporary files a killed run left in the folder
(``stages.outputs.atomic``), since no other writer can be using them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from stages.outputs.atomic import TEMPORARY_GLOB, prepare_target
from stages.outputs.errors import OutputConflict, OutputError, OutputsBusy

logger = logging.getLogger(__name__)

_PROC_LOCKS = Path("/proc/locks")


def check_distinct(outputs: Iterable[Path]) -> None:
    """OutputConflict if two of ``outputs`` are the same file."""
    seen: dict[Path, Path] = {}
    for output in outputs:
        key = output.resolve()
        if key in seen:
            raise OutputConflict(
                f"{seen[key]} and {output} are the same file; give each output its own path"
            )
        seen[key] = output


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_not_inputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """OutputConflict if one of ``outputs`` (files) is one of ``inputs`` (files or folders)
    or lies inside one: the command would write over what it reads."""
    read = [(path, path.resolve()) for path in inputs]
    for output in outputs:
        key = output.resolve()
        for given, resolved in read:
            if _within(key, resolved):
                where = "that file" if key == resolved else f"the folder {given}, which holds it"
                raise OutputConflict(
                    f"{output}: this command reads {where}; write its outputs elsewhere"
                )


def _holder(folder_fd: int) -> str:
    """``pid N`` of the process holding a flock on the folder open as ``folder_fd``."""
    inode = os.fstat(folder_fd).st_ino
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in _PROC_LOCKS.read_text(encoding="ascii", errors="replace").splitlines():
            fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF"
            if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
                return f"pid {fields[4]}"
    return "another process"


def _lock(output: Path) -> int:
    """An fd of ``output``'s folder holding its exclusive lock; OutputsBusy if a live run
    has it."""
    fd = os.open(output.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise OutputsBusy(
            f"{output}: another run ({holder}) is writing outputs into the same folder; wait "
            "for that run to end or stop it, then run again"
        ) from None
    return fd


def remove_abandoned(folder: Path) -> None:
    """Delete the temporary files of killed runs in ``folder`` (its lock holder only)."""
    for stale in folder.glob(TEMPORARY_GLOB):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            logger.info("removed %s, left over by an interrupted run", stale)


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def locked_folders(*outputs: Path, reads: Iterable[Path] = ()) -> Iterator[None]:
    """Hold the folder of each of ``outputs`` (files) for the block; OutputsBusy naming the
    holder, OutputConflict for a file named twice or one that is (or is in) what the command
    ``reads``. Creates the folders, and removes again the ones it created that are still
    empty at the end."""
    check_distinct(outputs)
    check_not_inputs(outputs, reads)
    parents = {p.absolute() for output in outputs for p in (output.parent, *output.parent.parents)}
    with contextlib.ExitStack() as held:
        held.callback(_remove_if_empty, [p for p in parents if not p.exists()])
        for output in outputs:
            prepare_target(output)
        # One output per folder, in a fixed order.
        by_folder = {output.parent.resolve(): output for output in reversed(outputs)}
        for folder in sorted(by_folder):
            if not os.access(folder, os.W_OK | os.X_OK):  # found before any work, not after
                raise OutputError(f"{by_folder[folder]}: cannot write there (Permission denied)")
            held.callback(os.close, _lock(by_folder[folder]))
            remove_abandoned(folder)
        yield
