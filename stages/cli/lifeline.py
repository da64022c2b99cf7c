"""Whether the dvc process that started this stage is still alive.

DVC runs a stage's command as its child, through a shell (``$SHELL -c cmd``, which may exec
the command in its place), and records the outputs in ``dvc.lock`` when the command ends.
If dvc itself is killed (``kill -9`` of dvc alone), the stage runs on as an orphan: nobody
will record what it writes, and a newer ``dvc repro`` may meanwhile have recorded other
outputs. Such a stage must not replace its outputs.

How it is detected: DVC sets ``DVC_STAGE`` in the environment of the commands it runs, so
the dvc process is the nearest ancestor whose own environment lacks it. At the start the
stage records its ancestors up to that one, each as (pid, start time), so that a reused pid
does not pass for the same process. When any of them dies, its children are re-parented at
once (to init or a subreaper), so walking up from this process no longer gives the recorded
chain: that comparison is the check. ``PR_SET_PDEATHSIG`` would not do: it watches only
the direct parent, which is the shell that outlives dvc. Linux only (``/proc``); elsewhere,
and when not started by dvc, there is nothing to watch.

A thread polls the chain twice a second and, when it breaks, sends SIGTERM to this process,
so the stage stops at once the way ``kill`` stops it (outputs as they were); the commit of an
output set checks once more just before it moves any file.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

DVC_STAGE_ENV = "DVC_STAGE"
POLL_SECONDS = 0.5
_PROC = Path("/proc")


class ParentGone(Exception):
    """The dvc process that started this stage has ended."""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name: state, ppid, ..."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _identity(pid: int) -> tuple[int, int, int] | None:
    """(pid, start time in clock ticks, parent pid) of a live process, or None."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):  # zombie or dead: it has ended
        return None
    return pid, int(fields[19]), int(fields[1])


def _sets_stage_env(pid: int) -> bool | None:
    """Whether ``pid``'s environment has DVC_STAGE; None if it cannot be read."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    return any(entry.startswith(f"{DVC_STAGE_ENV}=".encode()) for entry in environ.split(b"\0"))


def ancestry(start: int, length: int | None = None) -> list[tuple[int, int]]:
    """(pid, start time) of ``start`` and its ancestors: ``length`` of them, or, when
    ``length`` is None, up to the first one without DVC_STAGE in its environment (dvc)."""
    chain: list[tuple[int, int]] = []
    pid = start
    while pid > 1 and (length is None or len(chain) < length):
        identity = _identity(pid)
        if identity is None:
            break
        chain.append(identity[:2])
        if length is None and _sets_stage_env(pid) is not True:
            break
        pid = identity[2]
    return chain


class Lifeline:
    """The chain from this process's parent up to dvc, recorded at the start of a stage."""

    def __init__(self) -> None:
        watched = DVC_STAGE_ENV in os.environ and _PROC.joinpath("self", "stat").exists()
        self.chain = ancestry(os.getppid()) if watched else []
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dvc_pid(self) -> int | None:
        return self.chain[-1][0] if self.chain else None

    def intact(self) -> bool:
        """Whether every process of the recorded chain is alive and still our ancestor."""
        if not self.chain:
            return True
        return ancestry(os.getppid(), len(self.chain)) == self.chain

    def message(self) -> str:
        return (
            f"the dvc process that started this stage (pid {self.dvc_pid}) has ended; "
            "stopped without replacing the outputs, which dvc would not record"
        )

    def check(self) -> None:
        """ParentGone if the dvc process has ended (a commit guard)."""
        if not self.intact():
            self.lost = True
            raise ParentGone(self.message())

    def watch(self) -> None:
        """Poll in a thread; SIGTERM this process when the chain breaks."""
        if not self.chain or self._thread is not None:
            return

        def poll() -> None:
            # Ctrl-C and SIGTERM go to the main thread, which may hold them back a moment.
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
            self._thread.join(timeout=2 * POLL_SECONDS)
            self._thread = None
