"""The measured search: ``make search`` on the real MNIST from a fresh clone, timed, its best
trial's validation accuracy (what the study maximized) and test accuracy (read once, from
its experiment's metrics) beside those of params.yaml's own values.

In a scratch clone of HEAD, with the MNIST files as the mirror and this checkout's venv:
``dvc repro`` (untimed: the default model, and the data the workers check out), then
``make search SEARCH_TRIALS=N`` timed; the study's summary comes from ``tools/search.py best
--json``, the best experiment's metrics from ``dvc exp show --json``.

    python bench/search.py [--trials 12] [--json bench/search.json]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from results import run_description
from scratch import REPO, command_environment, make_command, scratch_clone, stdout_of, timed

from stages.outputs.history import read_live_folder


def experiment_metrics(shown: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The metrics.json of experiment ``name`` in ``dvc exp show --json`` output."""
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                if name in (experiment.get("name"), rev.get("name")):
                    return rev["data"]["metrics"]["metrics.json"]["data"]
    raise SystemExit(f"error: experiment {name} is not in dvc exp show")


def main(
    trials: Annotated[int, typer.Option(min=1)] = 12,
    mnist_dir: Annotated[Path | None, typer.Option(help="Default: $MNIST_MIRROR.")] = None,
    json_path: Annotated[Path, typer.Option("--json")] = Path("bench/search.json"),
) -> None:
    env = command_environment(mnist_dir or Path(os.environ["MNIST_MIRROR"]))
    venv = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv"))
    with scratch_clone() as clone:
        timed(clone, env, "dvc", "repro")
        default_val = read_live_folder(clone / "dvclive")[-1]["val_accuracy"]
        default_test = json.loads((clone / "metrics.json").read_text())["test"]["accuracy"]
        seconds, _ = timed(clone, env, *make_command("search", venv, f"SEARCH_TRIALS={trials}"))
        summary = json.loads(stdout_of(clone, env, "python", "tools/search.py", "best", "--json"))
        shown = json.loads(stdout_of(clone, env, "dvc", "exp", "show", "--json"))
        best = summary["best"]
        best_test = experiment_metrics(shown, best["experiment"])["test"]["accuracy"]
    report = {
        **run_description(f"python bench/search.py --trials {trials}"),
        "workers": 2,
        "wall_seconds": seconds,
        "trials": summary["trials"],
        "states": summary["states"],
        "best": {**best, "test_accuracy": best_test},
        "default": {"val_accuracy": default_val, "test_accuracy": default_test},
    }
    print(
        f"{summary['trials']} trials in {seconds / 60:.1f} minutes; best validation "
        f"{best['value']:.4f} (test {best_test:.4f}), params.yaml's {default_val:.4f} "
        f"({default_test:.4f})"
    )
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
