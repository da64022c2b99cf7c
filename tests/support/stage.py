"""Running stage commands in a subprocess, as a user (or DVC) would, from a scratch directory."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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


def file_size_limit(n_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child's writes beyond ``n_bytes`` in any one file fail
    with EFBIG ("File too large"), as a full disk would fail them."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))

    return limit


def run_stage(
    stage: str,
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    max_file_size: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stages.<stage> *args`` in ``cwd``; MNIST_MIRROR only if ``env`` sets it.

    ``max_file_size``: no file the command writes may grow beyond this many bytes.
    """
    return subprocess.run(
        stage_command(stage, *args),
        cwd=cwd,
        env=stage_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=None if max_file_size is None else file_size_limit(max_file_size),
    )


@dataclass(frozen=True)
class Measured:
    """A finished command: its exit code, its stderr and its own peak memory in bytes."""

    returncode: int
    stderr: str
    peak_bytes: int


def run_measured(stage: str, cwd: Path, *args: str, timeout: float = 120) -> Measured:
    """Run ``python -m stages.<stage> *args`` and measure the peak resident memory of that
    process alone (``wait4``'s ``ru_maxrss``, unlike RUSAGE_CHILDREN's maximum over every
    child this test process ever had). The command is killed after ``timeout`` seconds."""
    process = subprocess.Popen(
        stage_command(stage, *args),
        cwd=cwd,
        env=stage_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        with process.stderr:
            stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        watchdog.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Measured(process.returncode, stderr, usage.ru_maxrss * 1024)  # kB on Linux


def error_lines(result: subprocess.CompletedProcess[str] | Measured) -> list[str]:
    """The ``error:`` lines a failed stage printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def digests(root: Path, names: Iterable[str]) -> dict[str, str | None]:
    """The SHA-1 of each file ``root/name`` (None where there is no file)."""
    return {
        name: hashlib.sha1((root / name).read_bytes()).hexdigest()
        if (root / name).is_file()
        else None
        for name in names
    }


def temporaries(root: Path) -> list[str]:
    """Temporary files and folders (``.<name>.<random>.tmp``/``.bak``) under ``root``,
    outside git's and DVC's own folders."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob(".*")
        if path.suffix in (".tmp", ".bak")
        and not {".git", ".dvc"} & set(path.relative_to(root).parts)
    )
