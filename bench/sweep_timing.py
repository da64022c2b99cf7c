"""Wall time of the README's 4-experiment grid through DVC's queue, with 1 and with 2 workers.

In a scratch clone of this repository's HEAD (nothing here is touched): fetch and preprocess
the data once, untimed; then, for each worker count, queue the grid
(``train.learning_rate`` 1e-3, 3e-3 x ``model.hidden_sizes`` [64,32], [128,64], with
``train.seed=1`` so that each of the 4 trains), time
``dvc queue start -j N`` until every experiment has ended, and read each one's own training
time from its log. The run-cache is emptied between rounds so that no round reuses another's
results. Run it on an otherwise idle machine (``make sweep-timing``, several minutes):

    python bench/sweep_timing.py [--jobs 1 2] [--epochs N] [--keep]

``--epochs 1`` checks the script quickly; the README's numbers are default-length runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRID = ["-S", "train.learning_rate=1e-3,3e-3", "-S", "model.hidden_sizes=[64,32],[128,64]"]
# Not the committed seed, so that no experiment coincides with the committed run and each of
# the 4 trains.
SEED = ["-S", "train.seed=1"]
TRAINED = re.compile(r"Trained (\d+) epochs in ([\d.]+) s")
POLL_SECONDS = 1.0


def run(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Run a command, failing loudly with its output; its stdout."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(args)} exited {result.returncode}\n{result.stderr}")
    return result.stdout


def dvc(cwd: Path, env: dict[str, str], *args: str) -> str:
    return run(cwd, env, sys.executable, "-m", "dvc", *args)


def queue_names(status: str, state: str) -> list[str]:
    """Names of the tasks in ``dvc queue status`` output that are in ``state``."""
    return [line.split()[1] for line in status.splitlines() if line.rstrip().endswith(state)]


def wait_for_no_workers(scratch: Path, env: dict[str, str], timeout: float = 120) -> None:
    """Workers stay a few seconds after their queue empties: let the last round's end."""
    deadline = time.monotonic() + timeout
    while True:
        status = dvc(scratch, env, "queue", "status")
        if "Worker status: 0 active, 0 idle" in status:
            return
        if time.monotonic() > deadline:
            dvc(scratch, env, "queue", "stop")
            return
        time.sleep(POLL_SECONDS)


def one_round(scratch: Path, env: dict[str, str], jobs: int, overrides: list[str]) -> None:
    """Queue the grid, run it with ``jobs`` workers, print the wall time and training times."""
    wait_for_no_workers(scratch, env)
    shutil.rmtree(scratch / ".dvc" / "cache" / "runs", ignore_errors=True)
    dvc(scratch, env, "exp", "run", "--queue", *GRID, *SEED, *overrides)
    queued = queue_names(dvc(scratch, env, "queue", "status"), "Queued")
    log = scratch.parent / f"queue-start-j{jobs}.log"
    started = time.perf_counter()
    # Its workers are daemons holding its output open: send that to a file, not to a pipe.
    with log.open("wb") as handle:
        subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)],
            cwd=scratch,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
        )
    while True:
        status = dvc(scratch, env, "queue", "status")
        pending = queue_names(status, "Queued") + queue_names(status, "Running")
        if not set(queued) & set(pending):
            break
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - started
    done = queue_names(status, "Success")
    failed = [name for name in queued if name not in done]
    if failed:
        sys.exit(f"error: experiments {failed} did not succeed:\n{status}")

    per_experiment = []
    for name in queued:
        trained = TRAINED.search(dvc(scratch, env, "queue", "logs", name))
        per_experiment.append(f"{name} {trained[2]} s" if trained else f"{name} (not trained)")
    print(
        f"-j {jobs}: {len(queued)} experiments in {wall:.1f} s wall time "
        f"(+-{POLL_SECONDS:.0f} s polling); training: {', '.join(per_experiment)}",
        flush=True,
    )
    dvc(scratch, env, "exp", "remove", "--all-commits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--epochs", type=int, help="override train.epochs (default: params)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch clone")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    # The stages' `python` must be this interpreter; BLAS threads come from stages/__init__.py.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH"):
        env.pop(name, None)
    overrides = ["-S", f"train.epochs={args.epochs}"] if args.epochs else []

    base = Path(tempfile.mkdtemp(prefix="sweep-timing-"))
    scratch = base / "clone"
    try:
        run(base, env, "git", "clone", "-q", str(REPO), str(scratch))
        head = run(scratch, env, "git", "rev-parse", "--short", "HEAD").strip()
        mirror = env.get("MNIST_MIRROR") or "(public mirrors)"
        print(f"scratch clone {scratch} at {head}; MNIST_MIRROR={mirror}", flush=True)
        dvc(scratch, env, "repro", "preprocess")  # the data, once and untimed
        for jobs in args.jobs:
            one_round(scratch, env, jobs, overrides)
        wait_for_no_workers(scratch, env)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
