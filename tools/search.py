"""Hyperparameter search: an Optuna study whose trials are DVC experiments (docs/searching.md).

    python tools/search.py start [--workers 2] [--trials 20]   # this machine (make search)
    python tools/search.py worker --storage URL --study NAME   # one worker, in its own clone
    python tools/search.py best [--study NAME] [--json]        # the study so far

``search.yaml`` names the params.yaml keys the trials set and their ranges. Each trial runs
the pipeline as a named experiment (``dvc exp run -S key=value``, in a scratch clone), is
scored by the validation accuracy of the model it trained, and is stopped early when the
pruner finds its per-epoch validation curve hopeless. Workers push their experiments to the
git remote (and the DVC remote), where any clone can ``dvc exp pull`` them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from search_space import SpaceError, load_space
from search_study import (
    DEFAULT_JOURNAL,
    OBJECTIVE,
    SEARCH_DIR,
    Clone,
    SearchError,
    Worker,
    WorkerSettings,
    fetch_inputs,
    is_database_url,
    join_study,
    open_storage,
    recover,
    storage_label,
)
from search_trial import TrialFailed, dvc_command, git, stage_environment

from stages.cli.app import LogLevelOption, new_app, run, stage_errors
from stages.cli.errors import ParamsError

logger = logging.getLogger("tools.search")

app = new_app("Search hyperparameters with Optuna; every trial is a DVC experiment.")

ERRORS = (SearchError, SpaceError, TrialFailed, ParamsError)
STORAGE_HELP = (
    "Where the study lives: a journal file shared by the workers of one machine, or a "
    "database URL (postgresql+psycopg://user:password@host/db) for several machines; "
    "also read from $SEARCH_STORAGE."
)

StudyOption = Annotated[
    str | None,
    typer.Option("--study", help="The study's name (default: search-<HEAD's short hash>)."),
]
SpaceOption = Annotated[
    Path, typer.Option("--space", help="The search space file.", dir_okay=False)
]
TrialsOption = Annotated[
    int, typer.Option("--trials", min=1, help="Trials the study runs in all, over every worker.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout-minutes", min=0, help="Start no trial after this long."),
]


def default_study(commit: str) -> str:
    return f"search-{commit[:7]}"


def repository_root() -> Path:
    """The root of the repository around the working directory, which becomes the working
    directory: files given on the command line are relative to it."""
    try:
        root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))
    except TrialFailed:
        raise SearchError(f"{Path.cwd()}: not in a git repository") from None
    os.chdir(root)
    return root


# --- summary --------------------------------------------------------------------------------


def study_summary(study: Any) -> dict[str, Any]:
    """What the study holds: trial counts by state, every trial, and its best trial."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {state.name.lower(): 0 for state in TrialState}
    rows = []
    for trial in trials:
        states[trial.state.name.lower()] += 1
        steps = sorted(trial.intermediate_values)
        value = trial.value
        if value is None and steps:
            value = trial.intermediate_values[steps[-1]]
        rows.append(
            {
                "number": trial.number,
                "state": "lost" if "lost" in trial.user_attrs else trial.state.name.lower(),
                "value": value,
                "epoch": trial.user_attrs.get("epoch", steps[-1] if steps else None),
                "experiment": trial.user_attrs.get("experiment"),
                "params": trial.params,
            }
        )
    completed = states["complete"]
    best = study.best_trial if completed else None
    return {
        "study": study.study_name,
        "commit": study.user_attrs.get("commit"),
        "objective": OBJECTIVE,
        "trials": len(trials),
        "states": states,
        "best": None
        if best is None
        else {
            "number": best.number,
            "experiment": best.user_attrs["experiment"],
            "value": best.value,
            "epoch": best.user_attrs.get("epoch"),
            "params": best.params,
        },
        "rows": rows,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_summary(summary: dict[str, Any], storage: str, git_remote: str = "origin") -> None:
    states = summary["states"]
    counted = ", ".join(f"{n} {state}" for state, n in states.items() if n)
    print(
        f"study {summary['study']} ({storage_label(storage)}), commit "
        f"{(summary['commit'] or '?')[:7]}: {summary['trials']} trials ({counted or 'none'})"
    )
    if not summary["rows"]:
        return
    keys = sorted({key for row in summary["rows"] for key in row["params"]})
    header = ["trial", "state", "val_accuracy", "epoch", "experiment", *keys]
    table = [header] + [
        [
            str(row["number"]),
            row["state"],
            "-" if row["value"] is None else f"{row['value']:.4f}",
            _cell(row["epoch"]),
            row["experiment"] if row["state"] == "complete" else "-",  # the others stopped
            *(_cell(row["params"].get(key)) for key in keys),
        ]
        for row in summary["rows"]
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    best = summary["best"]
    if best is None:
        print("no trial has completed yet")
        return
    print(
        f"best: trial {best['number']} ({best['experiment']}), {OBJECTIVE} {best['value']:.4f} "
        f"at epoch {best['epoch']}"
    )
    print(f"  apply it:  dvc exp apply {best['experiment']}")
    print(f"  (a clone without it first runs: dvc exp pull {git_remote} {best['experiment']})")
    print("  every completed trial is an experiment: dvc exp show (pruned ones stopped early)")


def _load_study(storage: str, name: str) -> Any:
    import optuna

    if not is_database_url(storage) and not Path(storage).is_file():
        raise SearchError(f"{storage}: no study storage there (a search creates it)")
    store = open_storage(storage)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        raise SearchError(
            f"{storage_label(storage)} holds no study {name!r} "
            f"(it holds: {', '.join(names) or 'none'})"
        ) from None


# --- commands -------------------------------------------------------------------------------


@app.command()
def worker(
    study: StudyOption = None,
    storage: Annotated[
        str, typer.Option("--storage", envvar="SEARCH_STORAGE", help=STORAGE_HELP)
    ] = DEFAULT_JOURNAL,
    trials: TrialsOption = 20,
    space: SpaceOption = Path("search.yaml"),
    timeout_minutes: TimeoutOption = None,
    git_remote: Annotated[
        str, typer.Option("--git-remote", help="Where experiments are pushed.")
    ] = "origin",
    push: Annotated[
        bool, typer.Option(help="Push each experiment (dvc exp push) as it completes.")
    ] = True,
    push_cache: Annotated[
        bool, typer.Option(help="Push its outputs to the default DVC remote too.")
    ] = True,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run trials of the study in this clone until it holds --trials of them."""
    with stage_errors(log_level, *ERRORS):
        clone = Clone(repository_root())
        with clone.locked():
            clone.check_clean()
            commit = clone.head()
            search_space = load_space(space, Path("params.yaml"))
            name = study or default_study(commit)
            if push and not git(clone.root, "remote").split().count(git_remote):
                raise SearchError(
                    f"{clone.root}: no git remote {git_remote!r} to push experiments to; "
                    "name one with --git-remote, or pass --no-push"
                )
            store = open_storage(storage)
            the_study = join_study(store, name, search_space, commit)
            logger.info(
                "worker in %s: study %s in %s, commit %s, %d trials in all",
                clone.root,
                name,
                storage_label(storage),
                commit[:7],
                trials,
            )
            settings = WorkerSettings(
                study=name,
                trials=trials,
                timeout_seconds=None if timeout_minutes is None else timeout_minutes * 60,
                git_remote=git_remote if push else None,
                push_cache=push_cache,
            )
            searcher = Worker(clone, the_study, search_space, settings)
            recover(clone, store, name)
            fetch_inputs(clone.root)
            try:
                searcher.run()
            finally:
                recover(clone, store, name)
            best = study_summary(the_study)["best"]
            logger.info(
                "worker done: it ran %d trials; the study's best is %s",
                searcher.ran,
                "none yet"
                if best is None
                else f"trial {best['number']} ({best['experiment']}), {best['value']:.4f}",
            )


@app.command()
def best(
    study: StudyOption = None,
    storage: Annotated[
        str | None, typer.Option("--storage", envvar="SEARCH_STORAGE", help=STORAGE_HELP)
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Print the study's trials and its best trial, with the command that applies it."""
    with stage_errors(log_level, *ERRORS):
        root = repository_root() if study is None or storage is None else Path.cwd()
        storage = storage or str(root / DEFAULT_JOURNAL)
        name = study or default_study(Clone(root).head())
        summary = study_summary(_load_study(storage, name))
        if json_output:
            print(json.dumps(summary, indent=2))
        else:
            print_summary(summary, storage)


def prepare_worker_clone(root: Path, path: Path, commit: str, cache_dir: str) -> Clone:
    """``path``: a clone of ``root`` at ``commit`` that shares ``root``'s DVC cache and
    pushes its experiments into ``root``."""
    if not (path / ".git").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        git(root, "clone", "-q", "--no-checkout", str(root), str(path))
    git(path, "fetch", "-q", "origin", "HEAD")
    git(path, "checkout", "-q", "--force", "--detach", commit)
    subprocess.run(
        dvc_command("config", "--local", "cache.dir", cache_dir),
        cwd=path,
        env=stage_environment(),
        check=True,
        capture_output=True,
    )
    return Clone(path)


def _relay(stream: IO[bytes], prefix: str, log: Path) -> None:
    """Copy a worker's output to this terminal, each line prefixed, and to its log file."""
    with log.open("ab") as handle:
        for line in iter(stream.readline, b""):
            handle.write(line)
            handle.flush()
            sys.stdout.write(prefix + line.decode("utf-8", errors="replace"))
            sys.stdout.flush()


@app.command()
def start(
    workers: Annotated[int, typer.Option("--workers", min=1, help="Workers on this machine.")] = 2,
    trials: TrialsOption = 20,
    study: StudyOption = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            envvar="SEARCH_STORAGE",
            help=STORAGE_HELP + f" Default: {DEFAULT_JOURNAL}.",
        ),
    ] = None,
    space: SpaceOption = Path("search.yaml"),
    timeout_minutes: TimeoutOption = None,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Search on this machine: each worker in its own clone under .search/workers, sharing
    this repository's DVC cache and pushing its experiments here."""
    with stage_errors(log_level, *ERRORS):
        from dvc.repo import Repo

        main = Clone(repository_root())
        main.check_clean()
        commit = main.head()
        load_space(space, Path("params.yaml"))
        if not git(main.root, "ls-files", "--", str(space)):
            raise SearchError(f"{space} is not committed: the workers' clones would not have it")
        name = study or default_study(commit)
        storage = storage or str(main.root / DEFAULT_JOURNAL)
        if not is_database_url(storage):
            storage = str(Path(storage).resolve())
        open_storage(storage)  # one line now, rather than one per worker
        with Repo(str(main.root)) as repo:
            cache_dir = repo.cache.local_cache_dir
        folder = main.root / SEARCH_DIR / "workers"
        clones = [
            prepare_worker_clone(main.root, folder / str(i), commit, cache_dir)
            for i in range(workers)
        ]
        arguments = ["--study", name, "--trials", str(trials), "--space", str(space)]
        arguments += ["--no-push-cache", "--log-level", log_level]
        if timeout_minutes is not None:
            arguments += ["--timeout-minutes", str(timeout_minutes)]
        print(f"study {name} ({storage_label(storage)}): {workers} workers, {trials} trials")
        processes, relays = [], []
        for i, clone in enumerate(clones):
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "worker", *arguments],
                cwd=clone.root,
                env=stage_environment({"SEARCH_STORAGE": storage}),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            relay = threading.Thread(
                target=_relay, args=(process.stdout, f"[{i}] ", folder / f"{i}.log"), daemon=True
            )
            relay.start()
            processes.append(process)
            relays.append(relay)
        try:
            codes = [process.wait() for process in processes]
        except BaseException:
            for process in processes:  # Ctrl-C at a terminal reached them already
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes:
                process.wait()
            raise
        finally:
            for relay in relays:
                relay.join(timeout=5)
        print_summary(study_summary(_load_study(storage, name)), storage)
        failed = [(i, code) for i, code in enumerate(codes) if code != 0]
        if failed:
            i, code = failed[0]
            raise SearchError(f"worker {i} exited {code}; its output is in {folder / f'{i}.log'}")


if __name__ == "__main__":
    run(app)
