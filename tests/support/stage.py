"""Running stage commands in a subprocess, as a user (or DVC) would, from a scratch directory."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def without_root_overrides() -> list[str]:
    """A command prefix that makes file permissions apply to root too (it drops the
    capabilities that let root read or write anything); nothing for other users."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to make permissions apply to root")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


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
    """A finished command: its exit code, its output, its own peak memory in bytes and the
    CPU seconds it used (user and system)."""

    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int
    cpu_seconds: float = 0.0


_PEAK = "peak-kB: "
_CPU = "cpu-seconds: "
# Runs argv[1:] and prints its peak resident memory (wait4's ru_maxrss, in kB) as the last
# line of stderr. On Linux a process's ru_maxrss starts from the memory of the process it
# was forked from (kept across exec), so a command forked from pytest (hundreds of MB by
# the end of the suite) would report pytest's size; forked from this small program, it
# reports its own.
_MEASURE = f"""
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print("{_CPU}" + str(usage.ru_utime + usage.ru_stime), file=sys.stderr)
print("{_PEAK}" + str(usage.ru_maxrss), file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def measure_peak(command: Sequence[str], cwd: Path | None = None, timeout: float = 120) -> Measured:
    """Run ``command`` (the checkout importable) and measure its own peak resident memory."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        cwd=cwd,
        env=stage_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    stderr, _, peak = result.stderr.rpartition(_PEAK)
    assert peak.strip().isdigit(), result.stderr
    stderr, _, cpu = stderr.rpartition(_CPU)
    return Measured(result.returncode, result.stdout, stderr, int(peak) * 1024, float(cpu))


def run_measured(stage: str, cwd: Path, *args: str, timeout: float = 120) -> Measured:
    """Run ``python -m stages.<stage> *args`` in ``cwd``, measuring its own peak memory."""
    return measure_peak(stage_command(stage, *args), cwd, timeout)


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
    """Hidden temporary files (``.<name>.<random>.tmp``, what an output set writes before
    its renames) under ``root``, outside git's and DVC's own folders."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob(".*")
        if path.suffix == ".tmp" and not {".git", ".dvc"} & set(path.relative_to(root).parts)
    )
