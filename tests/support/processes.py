"""Whether a process has ended, for the tests that stop background workers."""

from __future__ import annotations

import os
import time
from pathlib import Path


def exited(pid: int, timeout: float = 10.0) -> bool:
    """True once process ``pid`` has ended (gone, or a zombie nobody has reaped yet),
    polling for up to ``timeout`` seconds; False if it is still running then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        else:
            if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
