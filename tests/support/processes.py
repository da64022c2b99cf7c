"""Finding and waiting for the stage processes running in a folder (Linux ``/proc``), for the
tests that kill dvc or run two stages at once, and whether a process has ended."""

from __future__ import annotations

import os
import time
from pathlib import Path

_PROC = Path("/proc")


def stage_pids(root: Path, stage: str) -> list[int]:
    """Pids of live ``python -m stages.<stage>`` processes whose working folder is ``root``."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and f"stages.{stage}".encode() in argv and cwd == root.resolve():
            found.append(int(entry.name))
    return sorted(found)


def wait_for(condition: object, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms until it is true; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def exited(pid: int, timeout: float = 10.0) -> bool:
    """True once process ``pid`` has ended (gone, or a zombie nobody has reaped yet),
    polling for up to ``timeout`` seconds; False if it is still running then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return True
        except OSError:
            state = "?"
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
