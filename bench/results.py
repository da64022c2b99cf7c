"""What every benchmark records beside its numbers: the command, the commit of the code it
ran (and whether the checkout held changes), the machine and how busy it was.

Importing it also puts tests/ on the path, so that a benchmark imported after it can use the
tests' builders (``support.user_looks``, ``support.optdigits``): the users' looks are the
same pictures in both.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests") not in sys.path:
    sys.path.append(str(REPO / "tests"))


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=30
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def run_description(command: str) -> dict[str, Any]:
    """``command`` and the circumstances of this run, for a ``bench/*.json`` file."""
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", "nnlib", "stages")
    return {
        "command": command,
        "commit": _git("rev-parse", "HEAD"),
        "code_changed_since_commit": bool(changed),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_when_written": os.getloadavg()[0],
        },
    }
