"""The study: Optuna's storage shared by every worker, and one worker's loop over trials.

A worker runs in its own clone of the repository. It takes trials from the study until the
study holds as many as asked, runs each one as a DVC experiment (search_trial.py) and pushes
it. Its files live in the clone's git-ignored ``.search/`` folder: a lock (one worker per
clone), the record of the trial it is running, and one log per experiment. A worker that is
killed leaves that record behind; started again, it ends the runs it left, removes what they
left in the clone, and marks the trial failed: the study loses that trial and no other.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_space import SearchSpace, overrides
from search_trial import (
    TrialFailed,
    experiment_commit,
    git,
    push_experiment,
    remove_stale_run,
    run_experiment,
    validation_accuracy,
)

logger = logging.getLogger("tools.search")

SEARCH_DIR = ".search"  # the search's files in a clone; git-ignored
DEFAULT_JOURNAL = f"{SEARCH_DIR}/journal.log"
# Database storages only: a worker's running trial whose heartbeat stops for GRACE_SECONDS
# (its machine died) is marked failed by the next worker that starts a trial.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
# A PostgreSQL server answers a connection in milliseconds; psycopg's default wait is 130 s
# per attempt, and an address that accepts connections and never answers cost minutes.
CONNECT_SECONDS = 5
CREATE_ATTEMPTS = 5
OBJECTIVE = "validation accuracy"


class SearchError(Exception):
    """The search cannot go on; the message is one line naming what is wrong."""


# --- storage --------------------------------------------------------------------------------


def is_database_url(storage: str) -> bool:
    return "://" in storage


def storage_label(storage: str) -> str:
    """``storage`` fit to print: a database URL without its password."""
    if not is_database_url(storage):
        path = Path(storage).absolute()
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else storage
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage.split("://", 1)[0] + "://..."


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy's engine options for ``url``: connections checked before use, and for
    PostgreSQL given up after ``CONNECT_SECONDS`` without an answer."""
    from sqlalchemy.engine import make_url

    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if make_url(url).get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": CONNECT_SECONDS}
    return kwargs


def _database_storage(url: str) -> Any:
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in itertools.count(1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=_engine_kwargs(url),
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                )
        except (IntegrityError, ProgrammingError):
            # Workers that start together on an empty database race to create Optuna's
            # tables; PostgreSQL refuses the losers' CREATE TABLE. The tables exist now.
            if attempt == CREATE_ATTEMPTS:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("not reached")


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLAlchemy's wrapping of psycopg's connection timeout."""
    try:
        from psycopg.errors import ConnectionTimeout
    except ImportError:
        return False
    return isinstance(getattr(exc, "orig", None), ConnectionTimeout)


def open_storage(storage: str) -> Any:
    """Optuna's storage for ``storage``: a database URL (``postgresql+psycopg://...``,
    ``sqlite:///...``) with heartbeats, or the path of a journal file shared by the workers
    of one machine."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported here
    if not is_database_url(storage):
        path = Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # Optuna reads the whole journal here
            return JournalStorage(JournalFileBackend(str(path)))
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # decoding errors too
            label = storage_label(storage)
            what = (
                f"a record without {exc}"
                if isinstance(exc, KeyError)
                else " ".join(str(exc).split())
            )
            moved = f"mv {shlex.quote(label)} {shlex.quote(label + '.damaged')}"
            raise SearchError(
                f"{label}: not a study journal Optuna can read ({what}); move it aside "
                f"({moved}) to start a new study, or give another --storage"
            ) from None
    try:
        return _database_storage(storage)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _timed_out(exc):
            reason = (
                f"no answer within {CONNECT_SECONDS} s; check the address, and that the "
                "database server runs there"
            )
        label = storage_label(storage)
        raise SearchError(f"cannot open the study storage {label}: {reason}") from None


def join_study(storage: Any, name: str, space: SearchSpace, commit: str) -> Any:
    """Study ``name``, created if it does not exist; refused if it was created for another
    commit or search space (its trials would not be comparable)."""
    import optuna

    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=space.make_sampler(),
        pruner=space.make_pruner(),
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {name!r} exists and does not maximize; name another study")
    expected = {"commit": commit, "space": space.fingerprint(), "objective": OBJECTIVE}
    for key, value in expected.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    recorded = study.user_attrs
    if recorded["commit"] != commit:
        raise SearchError(
            f"study {name!r} searches from commit {recorded['commit'][:7]}, this clone is at "
            f"{commit[:7]}: check out {recorded['commit'][:7]}, or name another study"
        )
    if recorded["space"] != expected["space"]:
        raise SearchError(
            f"study {name!r} was created with another search space than this clone's; "
            "name another study"
        )
    return study


def count_trials(study: Any, *states: Any) -> int:
    return len(study.get_trials(deepcopy=False, states=states or None))


# --- one worker's clone ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clone:
    """A worker's clone and its files under ``.search/``."""

    root: Path

    @property
    def folder(self) -> Path:
        return self.root / SEARCH_DIR

    @property
    def running_record(self) -> Path:
        return self.folder / "running.json"

    @property
    def runs(self) -> Path:
        """Where each trial's scratch clone lives while it runs."""
        return self.folder / "runs"

    def log(self, experiment: str) -> Path:
        return self.folder / "logs" / f"{experiment}.log"

    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD")

    def check_clean(self) -> None:
        """Refuse a clone whose tracked files differ from HEAD: ``dvc exp run`` would carry
        the differences into every trial."""
        changed = git(self.root, "status", "--porcelain", "--untracked-files=no")
        if changed:
            first = changed.splitlines()[0].strip()
            raise SearchError(
                f"{self.root}: tracked files differ from HEAD ({first}, ...); trials run from "
                "the commit alone: commit or stash the changes first"
            )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One worker per clone: hold ``.search/worker.lock`` for the worker's life."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "worker.lock"
        with path.open("a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise SearchError(
                    f"{self.root}: a worker already runs in this clone ({holder}); "
                    "each worker needs its own clone"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield

    def write_record(self, record: dict[str, Any]) -> None:
        temporary = self.running_record.with_suffix(".tmp")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, self.running_record)

    def read_record(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.running_record.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def clear_record(self) -> None:
        self.running_record.unlink(missing_ok=True)


def _process_group_members(pgid: int, within: Path) -> list[int]:
    """Live processes of group ``pgid`` whose working directory is in ``within``."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            group = int(stat.rsplit(")", 1)[1].split()[2])
            cwd = (entry / "cwd").resolve()
        except (OSError, ValueError, IndexError):
            continue
        if group == pgid and cwd.is_relative_to(within.resolve()):
            members.append(int(entry.name))
    return members


def end_stale_group(pgid: int, clone: Path) -> bool:
    """SIGKILL what is left of a run whose worker was killed: its process group, if its
    members still work in ``clone``. True if there was one."""
    if not _process_group_members(pgid, clone):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _process_group_members(pgid, clone) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def recover(clone: Clone, storage: Any, study_name: str) -> None:
    """Finish what a previous run of this worker left: end its experiment's processes and
    remove their leftovers from the clone; if the study still has that trial running, mark
    it failed (lost) and remove an experiment its run may have committed meanwhile."""
    from optuna.trial import TrialState

    record = clone.read_record()
    if record is None:
        return
    experiment = record.get("experiment") or ""
    if record.get("pgid") and end_stale_group(int(record["pgid"]), clone.root):
        logger.info("ended the processes of %s, left running by a worker that stopped", experiment)
    trial = trial_id = None
    if record.get("study") == study_name and "trial_number" in record:
        study_id = storage.get_study_id_from_name(study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, record["trial_number"])
        trial = storage.get_trial(trial_id)
    lost = (
        trial is not None
        and trial.state == TrialState.RUNNING
        and trial.user_attrs.get("experiment") == experiment
    )
    for what in remove_stale_run(clone.root, clone.runs, experiment, remove_experiment=lost):
        logger.info("removed %s, left by a run that did not finish", what)
    if lost:
        storage.set_trial_user_attr(trial_id, "lost", "its worker stopped during it")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        logger.info("trial %d (%s) was lost when its worker stopped", trial.number, experiment)
    clone.clear_record()


# --- the worker loop ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSettings:
    study: str
    trials: int
    timeout_seconds: float | None
    git_remote: str | None  # None: keep the experiments in the clone
    push_cache: bool


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in values.items()
    )


class Worker:
    """Takes trials from the study and runs each as a DVC experiment in ``clone``."""

    def __init__(
        self, clone: Clone, study: Any, space: SearchSpace, settings: WorkerSettings
    ) -> None:
        self.clone = clone
        self.study = study
        self.space = space
        self.settings = settings
        self.unpushed: list[str] = []
        self.ran = 0

    def enough(self) -> bool:
        """Whether the study holds the trials asked for (running ones included)."""
        from optuna.trial import TrialState

        started = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
        return count_trials(self.study, *started) >= self.settings.trials

    def objective(self, trial: Any) -> float:
        import optuna

        # Trial n draws from a sampler seeded with seed + n: reproducible given the trials
        # it sees, and never a repeat of another worker's draws.
        self.study.sampler = self.space.make_sampler(seed_offset=trial.number)
        values = self.space.suggest(trial)
        name = f"{self.settings.study}-{trial.number}"
        trial.set_user_attr("experiment", name)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{self.clone.root}")
        record = {"study": self.settings.study, "trial_number": trial.number, "experiment": name}
        self.clone.write_record(record)
        logger.info("trial %d (%s): %s", trial.number, name, _describe(values))
        started = time.monotonic()

        def on_start(pgid: int) -> None:
            self.clone.write_record({**record, "pgid": pgid})

        reported: dict[int, float] = {}

        def on_epoch(figures: dict[str, Any]) -> bool:
            if figures.get("val_accuracy") is None:
                return False
            reported[figures["epoch"]] = figures["val_accuracy"]
            trial.report(figures["val_accuracy"], figures["epoch"])
            return trial.should_prune()

        log = self.clone.log(name)
        finished = run_experiment(
            self.clone.root,
            self.clone.runs / name,
            name,
            overrides(values),
            log,
            on_epoch,
            on_start,
        )
        minutes = (time.monotonic() - started) / 60
        if finished.stopped_after is not None and finished.returncode != 0:
            logger.info(
                "trial %d: pruned after epoch %d (%s %.4f), %.1f min",
                trial.number,
                finished.stopped_after,
                OBJECTIVE,
                reported[finished.stopped_after],
                minutes,
            )
            raise optuna.TrialPruned(f"stopped after epoch {finished.stopped_after}")
        if finished.returncode != 0:
            raise TrialFailed(f"{finished.last_error} (log: {log})")
        commit = experiment_commit(self.clone.root, name)
        if commit is None:
            raise TrialFailed(f"dvc exp run ended without experiment {name} (log: {log})")
        value, epoch = validation_accuracy(self.clone.root, commit)
        trial.set_user_attr("commit", commit)
        trial.set_user_attr("epoch", epoch)
        logger.info(
            "trial %d: %s %.4f (epoch %d), %.1f min", trial.number, OBJECTIVE, value, epoch, minutes
        )
        self.push(name)
        return value

    def push(self, name: str) -> None:
        """Push this experiment and any an earlier push missed."""
        if self.settings.git_remote is None:
            return
        self.unpushed.append(name)
        for experiment in list(self.unpushed):
            problem = push_experiment(
                self.clone.root, self.settings.git_remote, experiment, self.settings.push_cache
            )
            if problem:
                logger.warning("could not push %s (will retry): %s", experiment, problem)
                return
            self.unpushed.remove(experiment)
            logger.info("pushed %s to %s", experiment, self.settings.git_remote)

    def after_trial(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        self.clone.clear_record()
        self.ran += 1
        if trial.state == TrialState.FAIL and "lost" not in trial.user_attrs:
            reason = trial.user_attrs.get("failure", "")
            logger.warning("trial %d failed%s", trial.number, f": {reason}" if reason else "")
        if self.enough():
            study.stop()

    def run(self) -> None:
        import optuna

        if self.enough():
            logger.info(
                "study %s already holds %d trials", self.settings.study, self.settings.trials
            )
            return

        def objective(trial: Any) -> float:
            try:
                return self.objective(trial)
            except TrialFailed as exc:
                trial.set_user_attr("failure", str(exc))
                raise

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.optimize(
                objective,
                timeout=self.settings.timeout_seconds,
                callbacks=[self.after_trial],
                catch=(TrialFailed,),
                gc_after_trial=False,
            )
        if self.unpushed:
            raise SearchError(
                f"experiments not pushed to {self.settings.git_remote}: "
                f"{', '.join(self.unpushed)} (push them with dvc exp push)"
            )


def fetch_inputs(clone: Path) -> None:
    """Fill the clone's cache from the default DVC remote, if one is set, so that trials
    check the data out rather than compute it; a failure only costs time."""
    from search_trial import dvc_command, stage_environment

    remote = subprocess.run(
        dvc_command("remote", "default"), cwd=clone, capture_output=True, text=True, check=False
    )
    if remote.returncode != 0 or not remote.stdout.strip():
        return
    fetched = subprocess.run(
        dvc_command("fetch"),
        cwd=clone,
        env=stage_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if fetched.returncode != 0:
        reason = (fetched.stderr.strip().splitlines() or ["failed"])[-1]
        logger.warning("dvc fetch: %s; trials compute what is missing", reason)
