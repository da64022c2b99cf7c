"""Running stage commands in a subprocess, as a user (or DVC) would, from a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def write_params(directory: Path, **data: Any) -> Path:
    """Write ``directory/params.yaml``: the project's params with ``data`` keys replaced."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(data)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def run_stage(
    stage: str, cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m stages.<stage> *args`` in ``cwd``; MNIST_MIRROR only if ``env`` sets it."""
    environ = {k: v for k, v in os.environ.items() if k != "MNIST_MIRROR"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``error:`` lines a failed stage printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]
