"""A queued grid of experiments, as the README runs it: ``dvc exp run --queue`` with two ``-S``
sweeps, ``dvc queue start -j 2``, the narrowed ``dvc exp show``. The train stage runs under an
audit that records the BLAS thread pools it ended with: queue workers must get one thread each
from stages/__init__.py's default, with nothing set in their environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.dvc_project import Project
from support.tiny_pipeline import tiny_project

pytestmark = [pytest.mark.pipeline, pytest.mark.queue]
pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with the dev extra")

GRID = ("-S", "train.learning_rate=1e-3,3e-3", "-S", "model.hidden_sizes=[64,32],[128,64]")
NARROW = (
    "--only-changed",
    "--drop",
    "Created|State|Executor|.*_macro|train\\.loss|models/|dvclive/|val_|loss|accuracy|step"
    "|learning_rate",
)
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Runs a stage module, then writes the BLAS pools its process holds to $BLAS_AUDIT_DIR/<pid>.
AUDIT = """
import atexit, json, os, runpy, sys
def dump():
    from threadpoolctl import threadpool_info
    pools = [{"api": p["internal_api"], "threads": p["num_threads"]} for p in threadpool_info()]
    path = os.path.join(os.environ["BLAS_AUDIT_DIR"], str(os.getpid()))
    with open(path, "w") as handle:
        json.dump(pools, handle)
atexit.register(dump)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def wait_for_queue(project: Project, timeout: float = 240) -> str:
    """``dvc queue status`` once nothing is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        status = project.dvc("queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(1)


def start_queue(project: Project, jobs: int, log: Path) -> None:
    """``dvc queue start``; its workers are daemons that keep its output open, so it writes
    to a file rather than to pipes we would wait on until the workers end."""
    with log.open("wb") as handle:
        subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)],
            cwd=project.root,
            env=project.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )


def is_worker_of(pid: int, project: Project) -> bool:
    """Whether ``pid`` is still a queue worker running in ``project``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"queue-worker" in cmdline and cwd == project.root.resolve()


def stop_workers(project: Project) -> None:
    """End the queue workers of this project that have not ended by themselves (idle ones
    wait a while before they do): by the pids DVC recorded, checked to be those workers."""
    records = (project.root / ".dvc" / "tmp" / "exps" / "celery").glob("dvc-exp-worker-*.json")
    pids = [json.loads(record.read_text())["pid"] for record in records]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in pids if is_worker_of(pid, project)]
        for pid in alive:
            os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if is_worker_of(pid, project)]
        if not alive:
            return


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    """The README's 2 x 2 grid, queued and run by two workers with no BLAS variable set."""
    base = tmp_path_factory.mktemp("sweep")
    project = tiny_project(base)
    audit = base / "blas"
    audit.mkdir()
    pipeline = yaml.safe_load((project.root / "dvc.yaml").read_text())
    (project.root / "blas_audit.py").write_text(AUDIT)
    pipeline["stages"]["train"]["cmd"] = "python blas_audit.py stages.train"
    (project.root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    for name in BLAS_VARIABLES:
        project.env.pop(name, None)
    project.env["BLAS_AUDIT_DIR"] = str(audit)
    project.dvc("repro")
    project.commit("baseline")
    for record in audit.iterdir():  # the baseline's own train run
        record.unlink()

    project.dvc("exp", "run", "--queue", *GRID)
    try:
        start_queue(project, 2, base / "queue-start.log")
        status = wait_for_queue(project)
        assert status.count("Success") == 4, status
        yield project, audit
    finally:
        stop_workers(project)


def test_the_grid_queues_every_combination(swept: tuple[Project, Path]) -> None:
    project, _ = swept
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    combos = set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            params = exp["revs"][0]["data"]["params"]["params.yaml"]["data"]
            combos.add((params["train"]["learning_rate"], tuple(params["model"]["hidden_sizes"])))
    assert combos == {(lr, sizes) for lr in (0.001, 0.003) for sizes in ((64, 32), (128, 64))}


def test_queue_workers_train_with_one_blas_thread(swept: tuple[Project, Path]) -> None:
    _, audit = swept
    records = [json.loads(path.read_text()) for path in audit.iterdir()]
    # One train run per experiment: none has the baseline's params (learning rate 2e-3).
    assert len(records) == 4
    for pools in records:
        blas = [pool for pool in pools if pool["api"] in ("openblas", "mkl", "blis")]
        assert blas, pools
        assert all(pool["threads"] == 1 for pool in blas), pools


def test_narrowed_exp_show_fits_120_columns(swept: tuple[Project, Path]) -> None:
    project, _ = swept
    table = project.dvc("exp", "show", *NARROW).stdout
    header = table.splitlines()[1].split()
    assert header == [
        "Experiment",
        "test.accuracy",
        "test.loss",
        "train.accuracy",
        "model.hidden_sizes",
        "train.learning_rate",
    ]
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 120
    assert len(table.splitlines()) == 4 + 2 + 4  # 3 rules and the header, workspace, HEAD, 4 runs
