"""tools/search.py: an Optuna study whose trials are DVC experiments, run by real workers.

Two workers in two clones of a bare git origin (standing in for two machines) share a study
in a real PostgreSQL server started here on 127.0.0.1, fetch the data from moto's S3 server
and push their experiments to both; one of them is killed (SIGKILL) in the middle of a trial
and started again. A third clone pulls the experiments and sees every completed trial. On
one machine, ``start`` runs workers in clones of the repository that share its DVC cache
and a journal file. Everything on the tiny generated dataset, in seconds per trial.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO
from support.dvc_project import Project
from support.postgres import Postgres, Unavailable, postgres_server
from support.s3 import S3Server, add_remote, aws_environment, clone, share
from support.stage import error_lines, stage_environment, temporaries
from support.tiny_pipeline import tiny_project

from stages.outputs.history import read_recorded_history

pytestmark = [pytest.mark.pipeline, pytest.mark.s3]

optuna = pytest.importorskip("optuna", reason="optuna comes with the search extra")
pytest.importorskip("psycopg", reason="psycopg comes with the search extra")
pytest.importorskip("moto.server", reason="moto[server] comes with the dev extra")
pytest.importorskip("dvc_s3", reason="dvc-s3 comes with the s3 extra")

SEARCH = REPO / "tools" / "search.py"
BUCKET = "search-team"
STUDY = "team"
TRIALS = 5
EPOCHS = 3
# The test's search space: three keys, three epochs; the pruner may stop a trial after epoch 1.
SPACE = {
    "params": {
        "train.learning_rate": {"low": 1.0e-3, "high": 8.0e-3, "log": True},
        "train.batch_size": {"choices": [8, 16]},
        "model.hidden_sizes": {"choices": [[16], [32, 16]]},
    },
    "fixed": {"train.epochs": EPOCHS},
    "sampler": {"name": "TPESampler", "seed": 7, "n_startup_trials": 3},
    "pruner": {"name": "MedianPruner", "n_startup_trials": 2, "n_warmup_steps": 1},
}


def write_space(project: Project, space: dict[str, Any], name: str = "search.yaml") -> None:
    (project.root / name).write_text(yaml.safe_dump(space, sort_keys=False), encoding="utf-8")
    project.commit(f"search space {name}")


def search_command(*args: str) -> list[str]:
    return [sys.executable, str(SEARCH), *args]


def run_search(
    project: Project, *args: str, storage: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = dict(project.env)
    if storage is not None:
        env["SEARCH_STORAGE"] = storage
    return subprocess.run(
        search_command(*args),
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_worker(project: Project, storage: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``search.py worker`` in ``project``, in its own session, its output to ``log``."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            search_command("worker", "--study", STUDY, "--trials", str(TRIALS), *args),
            cwd=project.root,
            env={**project.env, "SEARCH_STORAGE": storage},
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_running_trial(project: Project, timeout: float = 180) -> dict[str, Any]:
    """The worker's record of its running trial, once its experiment's processes exist."""
    record = project.root / ".search" / "running.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            running = json.loads(record.read_text())
            if "pgid" in running:
                return running
        time.sleep(0.05)
    raise AssertionError(f"no trial started in {project.root}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def shown_experiments(project: Project) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json``: experiment name -> its params.yaml values."""
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    return {
        exp["name"]: exp["revs"][0]["data"]["params"]["params.yaml"]["data"]
        for commit in shown
        for exp in commit.get("experiments") or []
    }


def dotted(params: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        params = params[part]
    return params


def scratch_runs(project: Project) -> list[str]:
    """Scratch clones of trials (and their epoch files) still in ``project``, and any
    temporary copy DVC itself would make for an experiment."""
    runs = project.root / ".search" / "runs"
    found = sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    exps = project.root / ".dvc" / "tmp" / "exps"
    return found + sorted(str(p) for p in exps.glob("**/tmp*")) if exps.exists() else found


@dataclass
class TeamSearch:
    postgres: Postgres
    origin: Path
    workers: list[Project]
    logs: list[Path]
    killed: dict[str, Any]  # the record of the trial running when worker 2 was killed
    codes: list[int]
    third: Project


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for this module's tests."""
    try:
        server = postgres_server()
        running = server.__enter__()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield running
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def team_search(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres
) -> Iterator[TeamSearch]:
    base = tmp_path_factory.mktemp("search")
    server = S3Server()
    server.client.create_bucket(Bucket=BUCKET)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        a = tiny_project(base / "a")
        aws_environment(a)
        add_remote(a, server.endpoint, BUCKET)
        write_space(a, SPACE)
        a.dvc("repro")
        a.commit("first run")
        origin = base / "origin.git"
        share(a, origin)
        a.dvc("push")

        workers = [clone(origin, base / f"worker-{i}") for i in (1, 2)]
        logs = [base / f"worker-{i}.log" for i in (1, 2)]
        processes = [
            start_worker(w, postgres.url, log) for w, log in zip(workers, logs, strict=True)
        ]
        killed = wait_for_running_trial(workers[1])
        os.kill(processes[1].pid, signal.SIGKILL)  # the worker only: its run goes on, orphaned
        processes[1].wait()
        processes[1] = start_worker(workers[1], postgres.url, logs[1])
        codes = [process.wait(timeout=600) for process in processes]

        third = clone(origin, base / "third")
        third.dvc("exp", "pull", "origin")
        yield TeamSearch(postgres, origin, workers, logs, killed, codes, third)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        server.stop()


def study_of(search: TeamSearch) -> Any:
    return optuna.load_study(study_name=STUDY, storage=search.postgres.url)


def test_both_workers_finish_the_study(team_search: TeamSearch) -> None:
    logs = [log.read_text() for log in team_search.logs]
    assert team_search.codes == [0, 0], logs
    study = study_of(team_search)
    trials = study.get_trials()
    states = {state: sum(t.state == state for t in trials) for state in optuna.trial.TrialState}
    # Workers stop starting trials once the study holds TRIALS; two that check at the same
    # moment may start one more.
    assert TRIALS <= len(trials) <= TRIALS + 1
    assert states[optuna.trial.TrialState.RUNNING] == 0
    assert states[optuna.trial.TrialState.COMPLETE] >= 2
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in trials}
    assert workers == {str(w.root) for w in team_search.workers}
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == list(range(1, EPOCHS + 1))
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert max(trial.intermediate_values) < EPOCHS


def test_a_killed_worker_loses_only_its_running_trial(team_search: TeamSearch) -> None:
    study = study_of(team_search)
    lost = [t for t in study.get_trials() if "lost" in t.user_attrs]
    assert [t.user_attrs["experiment"] for t in lost] == [team_search.killed["experiment"]]
    assert lost[0].state == optuna.trial.TrialState.FAIL
    assert [t for t in study.get_trials() if t.state == optuna.trial.TrialState.FAIL] == lost
    # the restarted worker went on with new trials
    restarted = team_search.logs[1].read_text().split("worker in ")[2]
    assert "was lost when its worker stopped" in restarted
    assert "trial " in restarted.split("was lost", 1)[1]
    # nothing of the killed run is left: processes, scratch clone, experiment, files
    worker = team_search.workers[1]
    assert not group_alive(team_search.killed["pgid"])
    assert scratch_runs(worker) == []
    assert team_search.killed["experiment"] not in shown_experiments(worker)
    assert team_search.killed["experiment"] not in shown_experiments(team_search.third)
    assert worker.git("status", "--porcelain").stdout == ""
    assert temporaries(worker.root) == []
    assert not (worker.root / ".search" / "running.json").exists()


def test_a_third_clone_pulls_every_completed_trial(team_search: TeamSearch) -> None:
    study = study_of(team_search)
    completed = {
        t.user_attrs["experiment"]: t
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }
    shown = shown_experiments(team_search.third)
    assert set(shown) == set(completed)
    for name, trial in completed.items():
        params = shown[name]
        assert dotted(params, "train.learning_rate") == trial.params["train.learning_rate"]
        assert dotted(params, "train.batch_size") == trial.params["train.batch_size"]
        hidden = json.loads(trial.params["model.hidden_sizes"])  # a list choice, as JSON text
        assert dotted(params, "model.hidden_sizes") == hidden
        assert dotted(params, "train.epochs") == EPOCHS


def test_the_best_trial_printed_is_the_studys(team_search: TeamSearch) -> None:
    third = team_search.third
    study = study_of(team_search)
    url = team_search.postgres.url
    printed = run_search(third, "best", "--study", STUDY, "--json", storage=url)
    assert printed.returncode == 0, printed.stderr
    summary = json.loads(printed.stdout)
    assert summary["trials"] == len(study.trials)
    assert summary["best"]["number"] == study.best_trial.number
    assert summary["best"]["value"] == study.best_value
    assert summary["best"]["experiment"] == study.best_trial.user_attrs["experiment"]
    assert url.split("@")[0] not in printed.stdout + printed.stderr  # no password shown

    table = run_search(third, "best", "--study", STUDY, storage=url)
    assert table.returncode == 0, table.stderr
    best = summary["best"]["experiment"]
    assert f"dvc exp apply {best}" in table.stdout
    assert f"{len(study.trials)} trials" in table.stdout

    # The study's value is the validation accuracy of the epoch the pulled model holds.
    ref = third.run("git", "for-each-ref", "--format=%(objectname)", f"refs/exps/*/*/{best}")
    rows = read_recorded_history(third.root, ref.stdout.strip())
    assert rows[-1]["val_accuracy"] == study.best_value
    assert int(rows[-1]["epoch"]) == EPOCHS

    third.dvc("exp", "apply", best)
    assert "up to date" in third.dvc("status").stdout  # outputs from the remote, not rerun
    assert third.params()["train"]["learning_rate"] == study.best_params["train.learning_rate"]


def test_workers_that_start_together_on_an_empty_database_all_join(
    postgres: Postgres,
) -> None:
    """PostgreSQL refuses all but one of the concurrent CREATE TABLEs of Optuna's schema."""
    url = postgres.new_database("fresh")
    code = (
        f"import sys; sys.path.insert(0, {str(SEARCH.parent)!r}); import search_study; "
        "search_study.open_storage(sys.argv[1])"
    )
    openers = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0, 0, 0, 0], errors


# --- one machine ----------------------------------------------------------------------------


def journal_study(project: Project, name: str) -> Any:
    journal = project.root / ".search" / "journal.log"
    backend = optuna.storages.journal.JournalFileBackend(str(journal))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


def default_study(project: Project) -> str:
    return "search-" + project.git("rev-parse", "HEAD").stdout.strip()[:7]


@pytest.fixture(scope="module")
def local_search(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Project, subprocess.CompletedProcess[str]]:
    """``start`` with two workers on a committed project (the ``make search`` path)."""
    project = tiny_project(tmp_path_factory.mktemp("local"))
    write_space(project, SPACE)
    project.dvc("repro")
    project.commit("first run")
    return project, run_search(project, "start", "--workers", "2", "--trials", "3", timeout=600)


def test_start_runs_workers_that_push_into_the_repository(
    local_search: tuple[Project, subprocess.CompletedProcess[str]],
) -> None:
    project, started = local_search
    assert started.returncode == 0, started.stdout + started.stderr
    study = journal_study(project, default_study(project))
    assert 3 <= len(study.trials) <= 4
    completed = {
        t.user_attrs["experiment"]
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }
    assert set(shown_experiments(project)) == completed
    assert {t.user_attrs["worker"].rsplit("/", 1)[1] for t in study.trials} == {"0", "1"}
    best = study.best_trial.user_attrs["experiment"]
    assert f"dvc exp apply {best}" in started.stdout
    assert f"{len(study.trials)} trials" in started.stdout
    for i in (0, 1):
        clone_root = project.root / ".search" / "workers" / str(i)
        assert git_status(clone_root) == ""
        assert (project.root / ".search" / "workers" / f"{i}.log").read_text().count("trial ")
    # the repository itself is untouched, and it has the workers' outputs (one cache)
    assert project.git("status", "--porcelain").stdout == ""
    project.dvc("exp", "apply", best)
    assert "up to date" in project.dvc("status").stdout


def test_start_again_continues_the_same_study(
    local_search: tuple[Project, subprocess.CompletedProcess[str]],
) -> None:
    project, _ = local_search
    before = len(journal_study(project, default_study(project)).trials)
    project.git("checkout", "--", ".")  # the previous test applied an experiment
    again = run_search(project, "start", "--workers", "1", "--trials", str(before), timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already holds" in again.stdout
    assert len(journal_study(project, default_study(project)).trials) == before


def test_a_worker_killed_after_its_trial_completed_keeps_the_experiment(
    local_search: tuple[Project, subprocess.CompletedProcess[str]],
) -> None:
    """The record of a trial that completed (the worker died before clearing it) ends
    nothing and removes nothing when the worker starts again."""
    project, _ = local_search
    study = journal_study(project, default_study(project))
    done = next(
        t
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs["worker"].endswith("/0")
    )
    clone_root = project.root / ".search" / "workers" / "0"
    record = {"study": study.study_name, "trial_number": done.number}
    record["experiment"] = done.user_attrs["experiment"]
    (clone_root / ".search" / "running.json").write_text(json.dumps(record))
    again = subprocess.run(
        search_command("worker", "--trials", "1", "--no-push"),
        cwd=clone_root,
        env={**project.env, "SEARCH_STORAGE": str(project.root / ".search" / "journal.log")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "list", "--name-only"],
        cwd=clone_root,
        env=project.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert done.user_attrs["experiment"] in listed
    again_study = journal_study(project, default_study(project))
    assert again_study.trials[done.number].state == optuna.trial.TrialState.COMPLETE
    assert not (clone_root / ".search" / "running.json").exists()


def git_status(root: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    ).stdout


# A trial long enough to be stopped in the middle: 20,000 epochs of the tiny data.
LONG = {**SPACE, "fixed": {"train.epochs": 20_000}}


@pytest.fixture
def long_trials(tmp_path: Path) -> Project:
    """A committed project not yet run: trials compute the data in their own copies."""
    return tiny_project(tmp_path)


def leftovers(project: Project) -> list[str]:
    """What a stopped run could leave in the clone: DVC's temporary copies, experiments,
    half-written outputs, changed files, the worker's record of a running trial."""
    found = [f"scratch {name}" for name in scratch_runs(project)]
    found += [f"experiment {name}" for name in shown_experiments(project)]
    found += temporaries(project.root)
    found += project.git("status", "--porcelain").stdout.splitlines()
    if (project.root / ".search" / "running.json").exists():
        found.append("running.json")
    return found


def test_a_hopeless_trial_is_stopped_after_its_first_epoch(long_trials: Project) -> None:
    project = long_trials
    # No validation accuracy reaches 1.01: every trial is hopeless from its first epoch.
    write_space(project, {**LONG, "pruner": {"name": "ThresholdPruner", "lower": 1.01}})
    result = run_search(project, "worker", "--trials", "1", "--no-push")
    assert result.returncode == 0, result.stderr
    (trial,) = journal_study(project, default_study(project)).trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert 1 <= len(trial.intermediate_values) < 20_000  # stopped, not trained to the end
    assert "pruned after epoch" in result.stderr
    log = project.root / ".search" / "logs" / f"{trial.user_attrs['experiment']}.log"
    assert "error: interrupted" in log.read_text()  # train's own Ctrl-C handling
    assert leftovers(project) == []


def test_a_failing_trial_is_recorded_with_the_stages_error(long_trials: Project) -> None:
    project = long_trials
    space = {**SPACE, "params": {"train.batch_size": {"choices": [8, 16]}}}
    write_space(project, {**space, "fixed": {"train.learning_rate": 50.0}})  # diverges
    result = run_search(project, "worker", "--trials", "1", "--no-push")
    assert result.returncode == 0, result.stderr
    trials = journal_study(project, default_study(project)).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL]
    for trial in trials:
        failure = trial.user_attrs["failure"]
        assert "(train.learning_rate is 50)" in failure
        log = project.root / ".search" / "logs" / f"{trial.user_attrs['experiment']}.log"
        assert failure.endswith(f"(log: {log})")
        assert f"trial {trial.number} failed: {failure}" in result.stderr
    assert leftovers(project) == []


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_stopped_worker_ends_its_run_and_fails_its_trial(
    long_trials: Project, sig: signal.Signals, code: int, word: str
) -> None:
    project = long_trials
    write_space(project, {**LONG, "pruner": {"name": "NopPruner"}})
    log = project.root.parent / "worker.log"
    env = {**project.env, "SEARCH_STORAGE": str(project.root / ".search" / "journal.log")}
    with log.open("wb") as output:
        worker = subprocess.Popen(
            search_command("worker", "--trials", "3", "--no-push"),
            cwd=project.root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        running = wait_for_running_trial(project)
        second = run_search(project, "worker", "--no-push", storage=env["SEARCH_STORAGE"])
        assert second.returncode == 1
        assert second.stderr.splitlines()[-1] == (
            f"error: {project.root}: a worker already runs in this clone (pid {worker.pid}); "
            "each worker needs its own clone"
        )
        os.kill(worker.pid, sig)
        assert worker.wait(timeout=120) == code
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
    assert log.read_text().splitlines()[-1] == f"error: {word}"
    assert not group_alive(running["pgid"])
    (trial,) = journal_study(project, default_study(project)).trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert leftovers(project) == []


def test_a_worker_killed_with_its_run_leaves_its_clone_as_it_was(long_trials: Project) -> None:
    """SIGKILL to the worker and to every process of its run (a job killed as a whole), at
    whatever point DVC had reached: started again, the worker finds its clone untouched,
    removes the scratch clone and records the trial as lost."""
    project = long_trials
    write_space(project, {**LONG, "pruner": {"name": "NopPruner"}})
    env = {**project.env, "SEARCH_STORAGE": str(project.root / ".search" / "journal.log")}
    worker = subprocess.Popen(
        search_command("worker", "--trials", "1", "--no-push"),
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        running = wait_for_running_trial(project)
        time.sleep(1.0)  # into dvc's own work: its stash, params edits, stages
        current = json.loads((project.root / ".search" / "running.json").read_text())
        os.kill(worker.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(current["pgid"], signal.SIGKILL)
        worker.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
    assert project.git("status", "--porcelain").stdout == ""
    assert [p.name for p in (project.root / ".git").glob("*.lock")] == []
    again = run_search(
        project, "worker", "--trials", "1", "--no-push", storage=env["SEARCH_STORAGE"]
    )
    assert again.returncode == 0, again.stderr
    assert f"trial 0 ({running['experiment']}) was lost" in again.stderr
    (trial,) = journal_study(project, default_study(project)).trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["lost"]
    assert leftovers(project) == []


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (
            lambda root: (root / "search.yaml").write_text(
                "params: {train.learnig_rate: {low: 0.001, high: 0.01}}\n"
                "sampler: {name: TPESampler, seed: 1}\n"
            ),
            (),
            "error: search.yaml: params: train.learnig_rate is not a key of params.yaml "
            "(did you mean train.learning_rate?)",
        ),
        (
            lambda root: None,
            ("--space", "missing.yaml"),
            "error: missing.yaml: no such search space file",
        ),
        (
            lambda root: None,
            (),
            "error: {root}: no git remote 'origin' to push experiments to; name one with "
            "--git-remote, or pass --no-push",
        ),
    ],
)
def test_a_worker_refuses_bad_input_in_one_line(
    long_trials: Project, change: Any, args: tuple[str, ...], message: str
) -> None:
    project = long_trials
    write_space(project, SPACE)
    change(project.root)
    project.commit("the change")
    result = run_search(project, "worker", *args)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [message.replace("{root}", str(project.root))]
    assert leftovers(project) == []


def test_a_worker_refuses_a_clone_with_uncommitted_changes(long_trials: Project) -> None:
    project = long_trials
    write_space(project, SPACE)
    project.set_param("train", "epochs", 4)
    result = run_search(project, "worker", "--no-push")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {project.root}: tracked files differ from HEAD (M params.yaml, ...); "
        "trials run from the commit alone: commit or stash the changes first"
    ]


@pytest.mark.parametrize(
    "command", [["best", "--study", STUDY], ["worker", "--no-push"], ["start"]], ids=lambda c: c[0]
)
def test_a_database_that_never_answers_is_given_up_in_seconds(
    long_trials: Project, listener: socket.socket, command: list[str]
) -> None:
    """An address that accepts connections and never answers (a socket listening on
    127.0.0.1, nothing behind it): one line naming it, password hidden, within seconds,
    and no worker started."""
    project = long_trials
    write_space(project, SPACE)
    port = listener.getsockname()[1]
    url = f"postgresql+psycopg://searcher:hunter2@127.0.0.1:{port}/search"
    started = time.monotonic()
    result = run_search(project, *command, storage=url)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: cannot open the study storage postgresql+psycopg://searcher:***@127.0.0.1:"
        f"{port}/search: no answer within 5 s; check the address, and that the database "
        "server runs there"
    ]
    assert "hunter2" not in result.stdout + result.stderr
    assert elapsed < 20
    assert not (project.root / ".search" / "workers").exists()


def damaged_journal(path: Path, line: bytes) -> Path:
    """A journal holding a study with two trials, ``line`` written among its records."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    records = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*records[:2], line + b"\n", *records[2:]]))
    return path


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (
            b"caf\xe9",
            "'utf-8' codec can't decode byte 0xe9 in position 3: invalid continuation byte",
        ),
        (b'{"op_code": 4, "wor', "Invalid control character at: line 1 column 20 (char 19)"),
        (b'{"hello": 1}', "a record without 'op_code'"),
    ],
    ids=["not-utf8", "not-json", "not-a-record"],
)
def test_a_damaged_journal_is_one_line_saying_what_to_do(
    tmp_path: Path, line: bytes, what: str
) -> None:
    damaged_journal(tmp_path / "journal.log", line)
    result = subprocess.run(
        search_command("best", "--study", STUDY, "--storage", "journal.log"),
        cwd=tmp_path,
        env=stage_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: journal.log: not a study journal Optuna can read ({what}); move it aside "
        "(mv journal.log journal.log.damaged) to start a new study, or give another --storage"
    ]
