"""Running stage commands in a subprocess, as a user (or DVC) would, from a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from support import REPO


def stage_command(stage: str, *args: str) -> list[str]:
    """``python -m stages.<stage> *args`` with this interpreter."""
    return [sys.executable, "-m", f"stages.{stage}", *args]


def stage_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without MNIST_MIRROR, the checkout importable, then ``env``."""
    environ = {k: v for k, v in os.environ.items() if k != "MNIST_MIRROR"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    return environ


def run_stage(
    stage: str, cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stages.<stage> *args`` in ``cwd``; MNIST_MIRROR only if ``env`` sets it."""
    return subprocess.run(
        stage_command(stage, *args),
        cwd=cwd,
        env=stage_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``error:`` lines a failed stage printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]
