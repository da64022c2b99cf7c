"""One writer per output: a run claims its output files before it starts work, and holds
them until it ends.

A claim is an exclusive ``flock`` on a lock file beside the output (``.<name>.lock``) that
holds the claiming process's pid. A second run that wants any of the same outputs is refused
at once, with the holder's pid. The kernel drops the lock when its holder dies, so a claim
is never stale; the lock file itself is removed when the claim is released.

Claiming an output also clears what an earlier run left beside it: an interrupted commit is
rolled back from its journal (``stages.outputs.journal``), then temporary files nobody holds
and backups no journal needs are removed. Only a claim holder does this, so no live writer's
files are ever touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class OutputError(Exception):
    """An output file cannot be written; the message names it."""


class OutputsBusy(OutputError):
    """Another live run holds one of the outputs."""


class OutputConflict(OutputError):
    """One file named as two outputs of a command: the command line is at fault."""

    exit_code = 2


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _read_pid(fd: int) -> str:
    """The pid a holder wrote into its lock file (it writes it just after locking)."""
    for _ in range(50):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text:
            return text
        time.sleep(0.01)
    return "unknown"


@dataclass
class _Held:
    fd: int
    lock: Path
    count: int = 1
    created: list[Path] = field(default_factory=list)


# What this process holds, by resolved target path: nested claims of one target count up.
_HELD: dict[Path, _Held] = {}


def _make_parents(directory: Path, target: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; return the ones created, deepest first."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for parent in (directory, *directory.parents):
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{target}: cannot write there, {parent} is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot create {directory} ({exc.strerror})") from None
    return missing


def _lock(target: Path) -> _Held:
    """Take ``target``'s lock file without waiting; OutputsBusy if a live run holds it."""
    created = _make_parents(target.parent, target)
    if target.is_dir():
        raise OutputError(f"{target}: is a directory, expected a file path")
    path = lock_path(target)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{target}: cannot write there ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise OutputsBusy(
                f"{target}: another run (pid {pid}) is writing it; wait for that run to end "
                "or stop it, then run again"
            ) from None
        # A releasing holder unlinks the file after its lock is taken: ours must still be
        # the file at that path, or another run could lock a new one beside ours.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return _Held(fd, path, created=created)


def _unlock(held: _Held) -> None:
    with contextlib.suppress(FileNotFoundError):
        held.lock.unlink()
    os.close(held.fd)
    for directory in held.created:  # deepest first; only the ones still empty
        with contextlib.suppress(OSError):
            directory.rmdir()


def holds(target: Path) -> bool:
    """Whether this process has claimed ``target``."""
    return target.resolve() in _HELD


def _acquire(target: Path) -> Path:
    key = target.resolve()
    if key in _HELD:
        _HELD[key].count += 1
        return key
    held = _lock(target)
    _HELD[key] = held
    try:
        from stages.outputs.journal import clear_leftovers

        clear_leftovers(target)
    except BaseException:
        del _HELD[key]
        _unlock(held)
        raise
    return key


def _release(key: Path) -> None:
    held = _HELD[key]
    held.count -= 1
    if held.count == 0:
        del _HELD[key]
        _unlock(held)


def acquire_raw(target: Path) -> Path | None:
    """Lock ``target`` for a recovery (no leftovers cleared); None if this process already
    holds it. OutputsBusy if a live run does."""
    key = target.resolve()
    if key in _HELD:
        return None
    _HELD[key] = _lock(target)
    return key


def release_raw(key: Path | None) -> None:
    if key is not None:
        _release(key)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while a claim is taken or let go, so that the unwinding
    they cause never finds a lock file made but not yet recorded (main thread only; the
    stages' other threads block both)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _check_distinct(targets: tuple[Path, ...]) -> None:
    seen: dict[Path, Path] = {}
    for target in targets:
        key = target.resolve()
        if key in seen:
            raise OutputConflict(
                f"{seen[key]} and {target} are the same file; give each output its own path"
            )
        seen[key] = target


@contextlib.contextmanager
def claimed(*targets: str | os.PathLike[str]) -> Iterator[None]:
    """Hold every one of ``targets`` for the block (in a fixed order, so two runs never wait
    on each other); OutputsBusy naming the holder's pid, OutputConflict for a file named twice."""
    paths = tuple(Path(t) for t in targets)
    _check_distinct(paths)
    keys: list[Path] = []
    try:
        for path in sorted(paths, key=lambda p: str(p.resolve())):
            with signals_deferred():
                keys.append(_acquire(path))
        yield
    finally:
        with signals_deferred():
            for key in reversed(keys):
                _release(key)
