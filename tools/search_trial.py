"""One trial as one DVC experiment: ``dvc exp run --name NAME -S key=value ...``, watched
epoch by epoch and stopped when the pruner says so.

The experiment runs in a scratch clone of the worker's clone (``.search/runs/NAME``) that
shares its DVC cache and is deleted when the trial ends, however it ends: DVC never writes in
the worker's clone, so a run stopped or killed at any moment (even while DVC stashes or
edits params.yaml) leaves nothing half-done there. A completed experiment's commit is fetched
into the worker's clone, which pushes it. The train stage logs each epoch through DVCLive
into the scratch clone's ``dvclive/`` as it ends (stages/outputs/history.py); the watcher
reads it as it grows. Stopping a run is Ctrl-C to its process group, then deleting the
scratch clone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.outputs.history import LIVE_DIR, read_live_folder, read_recorded_history

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
    """The epochs a live folder has completed since the last read."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen = 0

    def new_epochs(self) -> list[dict[str, Any]]:
        rows = read_live_folder(self.directory)
        new, self.seen = rows[self.seen :], max(self.seen, len(rows))
        return new


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


def _prepare_scratch(clone: Path, scratch: Path) -> None:
    """``scratch``: a clone of ``clone`` at its HEAD, with ``clone``'s local DVC config and
    DVC cache, and the outputs of HEAD checked out of that cache."""
    import configobj

    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    git(clone, "clone", "-q", "--shared", "--no-checkout", str(clone), str(scratch))
    git(scratch, "checkout", "-q", "--detach", git(clone, "rev-parse", "HEAD"))
    local = configobj.ConfigObj(str(clone / ".dvc" / "config.local"))
    cache = local.setdefault("cache", {})
    cache["dir"] = str(cache_dir(clone))
    local.filename = str(scratch / ".dvc" / "config.local")
    local.write()


def cache_dir(clone: Path) -> Path:
    """The DVC cache of ``clone`` (``.dvc/cache`` unless its config names another)."""
    from dvc.repo import Repo

    with Repo(str(clone)) as repo:
        return Path(repo.cache.local_cache_dir)


def _run_in_group(
    command: list[str],
    scratch: Path,
    env: dict[str, str],
    output: Any,
    on_start: Callable[[int], None],
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command,
        cwd=scratch,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to stop as a whole
    )
    on_start(process.pid)
    return process


def run_experiment(
    clone: Path,
    scratch: Path,
    name: str,
    overrides: list[str],
    log: Path,
    on_epoch: Callable[[dict[str, Any]], bool],
    on_start: Callable[[int], None] = lambda pgid: None,
) -> Finished:
    """Run experiment ``name`` with the ``-S`` ``overrides`` in ``scratch``, a fresh clone
    of ``clone``, its output to ``log``; fetch the experiment's commit into ``clone`` if it
    completes. ``on_epoch(figures)`` sees every epoch in order and returns True to stop the
    run; ``on_start(pgid)`` learns the process group of each command as it starts.

    Whatever happens, the run is stopped and ``scratch`` deleted before this returns.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = stage_environment()
    process = None
    try:
        _prepare_scratch(clone, scratch)
        with log.open("wb") as output:
            # HEAD's data, out of the shared cache: the data stages then have nothing to do.
            checkout = _run_in_group(
                dvc_command("checkout", "--allow-missing"), scratch, env, output, on_start
            )
            if checkout.wait() != 0:
                return Finished(checkout.returncode, None, _last_error(log))
            command = dvc_command("exp", "run", "--name", name, *overrides)
            process = _run_in_group(command, scratch, env, output, on_start)
            reader = EpochReader(scratch / LIVE_DIR)
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
        if returncode == 0:
            ref = experiment_ref(scratch, name)
            git(clone, "fetch", "-q", str(scratch), f"{ref}:{ref}")
        return Finished(returncode, stopped_after, _last_error(log))
    finally:
        if process is not None and process.poll() is None:
            stop_group(process)
        shutil.rmtree(scratch, ignore_errors=True)


# --- the experiment's result ----------------------------------------------------------------


def experiment_ref(repository: Path, name: str) -> str:
    """The git ref DVC gives experiment ``name`` on ``repository``'s HEAD."""
    from dvc.repo.experiments.refs import ExpRefInfo

    return str(ExpRefInfo(git(repository, "rev-parse", "HEAD"), name))


def experiment_commit(clone: Path, name: str) -> str | None:
    """The commit of experiment ``name`` on the clone's HEAD, if the clone has it."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", experiment_ref(clone, name)],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None


def kept_epoch(rows: list[dict[str, Any]], restore_best: bool, monitor: str) -> dict[str, Any]:
    """The history row whose weights the model file holds: the last epoch's, or with
    ``train.restore_best`` the first best one by ``monitor`` (as nnlib's training loop
    keeps it: lowest loss, highest accuracy)."""
    if not restore_best:
        return rows[-1]
    sign = 1.0 if monitor.endswith("loss") else -1.0
    return min(rows, key=lambda row: sign * float(row[monitor]))


def validation_accuracy(clone: Path, commit: str) -> tuple[float, int]:
    """The validation accuracy of the model experiment ``commit`` trained, and its epoch,
    from the DVCLive history it recorded."""
    params = yaml.safe_load(git(clone, "show", f"{commit}:{PARAMS}"))
    rows = read_recorded_history(clone, commit)
    if not rows or rows[-1]["val_accuracy"] is None:
        raise TrialFailed(f"experiment {commit[:7]}: {LIVE_DIR} has no validation accuracy")
    train = params["train"]
    row = kept_epoch(rows, bool(train.get("restore_best")), str(train.get("monitor")))
    return float(row["val_accuracy"]), int(row["epoch"])


# --- what a killed run leaves behind --------------------------------------------------------


def remove_stale_run(clone: Path, runs: Path, name: str, remove_experiment: bool) -> list[str]:
    """Remove what a killed run left: the scratch clones in ``runs`` and, with
    ``remove_experiment``, experiment ``name`` if its commit reached ``clone``. Returns what
    it removed. Only call it when no run is alive."""
    removed = []
    for path in sorted(runs.iterdir()) if runs.is_dir() else []:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(str(path))
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
