"""One trial as one DVC experiment: ``dvc exp run --temp --name NAME -S key=value ...`` in a
worker's clone, watched epoch by epoch and stopped when the pruner says so.

The experiment runs in a temporary copy that DVC makes under ``.dvc/tmp/exps`` and removes
when the run ends, so the clone's workspace is never touched. The train stage appends each
epoch's figures to the file ``$TRAIN_EPOCH_LOG`` names (stages/outputs/history.py); the
watcher reads it as it grows. Stopping a run is Ctrl-C to its process group: train discards
its half-written outputs and DVC removes the temporary copy, as after any failed run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HISTORY = "reports/train_history.csv"  # the train stage's per-epoch history (dvc.yaml)
PARAMS = "params.yaml"
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 60


class TrialFailed(Exception):
    """The experiment did not run to its end; the message says why, in one line."""


@dataclass(frozen=True)
class Finished:
    """How a run ended: ``returncode`` 0 for a committed experiment; ``stopped_after`` the
    epoch after which the watcher stopped it, if it did."""

    returncode: int
    stopped_after: int | None
    last_error: str


def git(clone: Path, *args: str) -> str:
    """``git *args`` in ``clone``; its stdout, stripped. TrialFailed if it fails."""
    result = subprocess.run(["git", *args], cwd=clone, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TrialFailed(f"git {' '.join(args)} failed in {clone}: {result.stderr.strip()}")
    return result.stdout.strip()


def dvc_command(*args: str) -> list[str]:
    """``dvc *args`` with this interpreter, whose environment has DVC and the stages' needs."""
    return [sys.executable, "-m", "dvc", *args]


def stage_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment with this interpreter's folder first on PATH: DVC runs each stage's
    ``python`` from PATH, and it must be the one with the project's dependencies."""
    environ = dict(os.environ)
    environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ["PATH"]])
    environ.update(extra or {})
    return environ


class EpochReader:
    """The complete JSON lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_epochs(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the run's process group, as a user would press it; after
    ``STOP_GRACE_SECONDS`` without an end, SIGKILL."""
    for sig, grace in ((signal.SIGINT, STOP_GRACE_SECONDS), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
            return


def _last_error(log: Path) -> str:
    """The most telling line of a failed run's output: the stage's own ``error:`` line if
    there is one, else DVC's ``ERROR:`` line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for prefix in ("error: ", "ERROR: "):
        found = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
        if found:
            return found[-1]
    return lines[-1] if lines else ""


@contextlib.contextmanager
def _epoch_file() -> Iterator[Path]:
    """A fresh file outside the clone for train's per-epoch lines."""
    descriptor, name = tempfile.mkstemp(prefix="epochs-", suffix=".jsonl")
    os.close(descriptor)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def run_experiment(
    clone: Path,
    name: str,
    overrides: list[str],
    log: Path,
    on_epoch: Callable[[dict[str, Any]], bool],
    on_start: Callable[[int], None] = lambda pgid: None,
) -> Finished:
    """Run experiment ``name`` in ``clone`` with the ``-S`` ``overrides``, its output to
    ``log``. ``on_epoch(figures)`` sees every epoch in order and returns True to stop the
    run; ``on_start(pgid)`` learns the run's process group as soon as it exists.

    The run is stopped (and waited for) if this function ends early for any reason.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    command = dvc_command("exp", "run", "--temp", "--name", name, *overrides)
    with _epoch_file() as epochs, log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=clone,
            env=stage_environment({"TRAIN_EPOCH_LOG": str(epochs)}),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            on_start(process.pid)
            reader = EpochReader(epochs)
            stopped_after = None
            while True:
                running = process.poll() is None
                for figures in reader.new_epochs():
                    if stopped_after is None and on_epoch(figures) and running:
                        stopped_after = figures["epoch"]
                        stop_group(process)
                if not running or stopped_after is not None:
                    break
                time.sleep(POLL_SECONDS)
            returncode = process.wait()
        finally:
            if process.poll() is None:
                stop_group(process)
    return Finished(returncode, stopped_after, _last_error(log))


# --- the experiment's result ----------------------------------------------------------------


def experiment_commit(clone: Path, name: str) -> str | None:
    """The commit of experiment ``name`` on the clone's HEAD, if it exists."""
    from dvc.repo.experiments.refs import ExpRefInfo

    ref = str(ExpRefInfo(git(clone, "rev-parse", "HEAD"), name))
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", ref],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None


def kept_epoch(rows: list[dict[str, str]], restore_best: bool, monitor: str) -> dict[str, str]:
    """The history row whose weights the model file holds: the last epoch's, or with
    ``train.restore_best`` the first best one by ``monitor`` (as nnlib's training loop
    keeps it: lowest loss, highest accuracy)."""
    if not restore_best:
        return rows[-1]
    column = {"loss": "train_loss", "accuracy": "train_accuracy"}.get(monitor, monitor)
    sign = 1.0 if monitor.endswith("loss") else -1.0
    return min(rows, key=lambda row: sign * float(row[column]))


def validation_accuracy(clone: Path, commit: str) -> tuple[float, int]:
    """The validation accuracy of the model experiment ``commit`` trained, and its epoch."""
    history = git(clone, "show", f"{commit}:{HISTORY}")
    params = yaml.safe_load(git(clone, "show", f"{commit}:{PARAMS}"))
    rows = list(csv.DictReader(io.StringIO(history)))
    if not rows or not rows[-1].get("val_accuracy"):
        raise TrialFailed(f"experiment {commit[:7]}: {HISTORY} has no validation accuracy")
    train = params["train"]
    row = kept_epoch(rows, bool(train.get("restore_best")), str(train.get("monitor")))
    return float(row["val_accuracy"]), int(row["epoch"])


# --- what a killed run leaves behind --------------------------------------------------------


def remove_stale_run(clone: Path, name: str, remove_experiment: bool) -> list[str]:
    """Undo what a killed ``dvc exp run --temp --name NAME`` left in ``clone``: its
    temporary copy (marked failed, as DVC marks a run that fails), its stash entry and, with
    ``remove_experiment``, an experiment it may have committed. Returns what it removed.
    Only call it when no such run is alive."""
    from dvc.repo import Repo
    from dvc.repo.experiments.executor.base import ExecutorInfo, TaskStatus

    removed = []
    with Repo(str(clone)) as repo:
        queue = repo.experiments.tempdir_queue
        for entry in list(queue.iter_active()):
            if entry.name != name:
                continue
            infofile = queue.get_infofile_path(entry.stash_rev)
            info = ExecutorInfo.load_json(infofile)
            shutil.rmtree(info.root_dir, ignore_errors=True)
            info.status = TaskStatus.FAILED
            info.dump_json(infofile)
            removed.append(info.root_dir)
        stale = [entry for entry in queue.stash.stash_revs.values() if entry.name == name]
        if stale:
            queue.stash.remove_revs(stale)
            removed.append(f"stash entry of {name}")
    if remove_experiment and experiment_commit(clone, name):
        subprocess.run(
            dvc_command("exp", "remove", name),
            cwd=clone,
            env=stage_environment(),
            capture_output=True,
            check=True,
        )
        removed.append(f"experiment {name}")
    return removed


def push_experiment(clone: Path, git_remote: str, name: str, cache: bool) -> str | None:
    """``dvc exp push``: the experiment's commit to ``git_remote`` and, with ``cache``, its
    outputs to the default DVC remote. None if it worked, else the reason in one line."""
    command = dvc_command("exp", "push", *([] if cache else ["--no-cache"]), git_remote, name)
    result = subprocess.run(
        command, cwd=clone, env=stage_environment(), capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("ERROR: ") if lines else f"exited {result.returncode}"
