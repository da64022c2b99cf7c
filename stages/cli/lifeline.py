"""A stage started by dvc stops when that dvc process dies.

DVC runs a stage's command as its child through ``$SHELL -c cmd`` (which may exec the command
in its place) and records the outputs when the command ends. A dvc killed outright
(``kill -9``) leaves its stage running as an orphan whose outputs nobody will record, so the
stage stops itself. DVC sets ``DVC_STAGE`` in the environment of the commands it runs: dvc is
the nearest ancestor without it. When a process of the chain up to dvc dies, the one below it
is re-parented at once, so the chain read again from this process no longer matches: a thread
compares twice a second and sends this process SIGTERM, which stops it as ``kill`` would.
Linux only (``/proc``); elsewhere, and outside dvc, there is nothing to watch.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from pathlib import Path

DVC_STAGE_ENV = "DVC_STAGE"
POLL_SECONDS = 0.5
_PROC = Path("/proc")


def _parent(pid: int) -> int | None:
    """The parent pid of a live process (None if it has ended)."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text(errors="replace").rpartition(")")[2]
    except OSError:
        return None
    state, ppid = fields.split()[:2]
    return None if state in ("Z", "X") else int(ppid)


def _runs_in_stage(pid: int) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"\0{DVC_STAGE_ENV}=".encode() in b"\0" + environ


def chain_to_dvc() -> list[int]:
    """This process's ancestors up to dvc: the parent first, dvc last; [] outside dvc."""
    if DVC_STAGE_ENV not in os.environ or not _PROC.joinpath("self", "stat").exists():
        return []
    chain = [os.getppid()]
    while _runs_in_stage(chain[-1]) and (parent := _parent(chain[-1])) not in (None, 0, 1):
        chain.append(parent)
    return chain


class Lifeline:
    """The chain up to dvc, recorded when the stage starts, and the thread that watches it."""

    def __init__(self) -> None:
        self.chain = chain_to_dvc()
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def intact(self) -> bool:
        """Whether every process of the recorded chain is alive and still our ancestor."""
        links = itertools.pairwise(self.chain)
        return not self.chain or (
            os.getppid() == self.chain[0] and all(_parent(c) == p for c, p in links)
        )

    def message(self) -> str:
        return (
            f"the dvc process that started this stage (pid {self.chain[-1]}) has ended; "
            "stopped, since dvc would not record the outputs"
        )

    def watch(self) -> None:
        """Poll in a thread; SIGTERM this process when the chain breaks."""
        if not self.chain:
            return

        def poll() -> None:
            # Ctrl-C and SIGTERM must reach the main thread.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            while not self._stop.wait(POLL_SECONDS):
                if not self.intact():
                    self.lost = True
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

        self._thread = threading.Thread(target=poll, name="dvc-lifeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
