"""A scratch clone of this repository's HEAD for benchmarks that run whole commands (dvc,
make): nothing in the checkout is touched, and the commands find this checkout's tools."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def scratch_clone(keep: bool = False) -> Iterator[Path]:
    """A fresh ``git clone`` of HEAD in a temporary folder (kept with ``keep``)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-clone-"))
    clone = folder / "project"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    try:
        yield clone
    finally:
        if not keep:
            subprocess.run(["rm", "-rf", str(folder)], check=False)


def command_environment(mnist_dir: Path) -> dict[str, str]:
    """This interpreter's folder first on PATH (so ``dvc``, ``make``'s commands and
    ``python -m stages...`` are this checkout's) and the MNIST files as the mirror."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MNIST_MIRROR"] = str(mnist_dir)
    return env


def make_command(target: str, venv: Path, *variables: str) -> list[str]:
    """``make target`` in a clone, with this checkout's ``venv`` taken as set up: without
    ``--assume-old``, the clone's newer pyproject.toml would make ``make`` reinstall the
    project into that venv from the clone, which is deleted afterwards."""
    return ["make", target, f"VENV={venv}", f"--assume-old={venv}/.installed", *variables]


def timed(cwd: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run ``args`` in ``cwd``; its wall seconds and its output (stdout and stderr). A
    failure stops the benchmark with the command's output."""
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(args)} exited {result.returncode}\n{result.stderr[-3000:]}")
    return seconds, result.stdout + result.stderr


def stdout_of(cwd: Path, env: dict[str, str], *args: str) -> str:
    """What ``args`` prints on stdout (its log on stderr left out)."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(args)} exited {result.returncode}\n{result.stderr[-3000:]}")
    return result.stdout
