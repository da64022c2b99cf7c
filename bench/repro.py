"""The whole default pipeline from a fresh clone: ``dvc repro`` wall time, the train stage's
own time and peak memory, the test accuracy, and whether the model is byte for byte the one
dvc.lock records; then the run-cache: another ``train.epochs``, ``dvc repro``, params.yaml
put back, ``dvc repro`` timed (no stage should run).

In a scratch clone of HEAD (``make repro``'s pipeline, its venv already set up), with the
MNIST files as the mirror, ``dvc repro`` runs every stage from nothing, ``--rounds`` times
(the clone's outputs and DVC cache removed in between); the median is reported. Each is
followed, as in ``make repro``, by ``dvc commit --force``: the run-cache entries of the
stages ``dvc repro`` skipped as matching dvc.lock.

    python bench/repro.py [--rounds 3] [--json bench/repro.json]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
from pathlib import Path
from typing import Annotated

import typer
import yaml
from results import run_description
from scratch import command_environment, scratch_clone, timed

TRAINED = re.compile(
    r"Trained (\d+) epochs in ([\d.]+) s \(([\d.]+) s/epoch of training steps\), "
    r"peak memory (\d+) MB"
)


def recorded_model_md5(clone: Path) -> str:
    """The md5 dvc.lock records for models/model.npz."""
    lock = yaml.safe_load((clone / "dvc.lock").read_text(encoding="utf-8"))
    outs = lock["stages"]["train"]["outs"]
    return next(out["md5"] for out in outs if out["path"] == "models/model.npz")


def run_cache_restore(clone: Path, env: dict[str, str]) -> dict[str, object]:
    """Train 2 epochs instead, put params.yaml back, and time the ``dvc repro`` that the
    run-cache should answer without running a stage."""
    params = clone / "params.yaml"
    recorded = params.read_text(encoding="utf-8")
    params.write_text(re.sub(r"(?m)^  epochs: \d+$", "  epochs: 2", recorded), encoding="utf-8")
    timed(clone, env, "dvc", "repro")
    params.write_text(recorded, encoding="utf-8")
    seconds, output = timed(clone, env, "dvc", "repro")
    model_md5 = timed(clone, env, "md5sum", "models/model.npz")[1].split()[0]
    return {
        "restore_seconds": seconds,
        "stages_run": re.findall(r"Running stage '(\w+)'", output),
        "stages_restored": re.findall(r"Stage '(\w+)' is cached - skipping run", output),
        "model_as_recorded": model_md5 == recorded_model_md5(clone),
    }


def main(
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    mnist_dir: Annotated[Path | None, typer.Option(help="Default: $MNIST_MIRROR.")] = None,
    json_path: Annotated[Path, typer.Option("--json")] = Path("bench/repro.json"),
) -> None:
    env = command_environment(mnist_dir or Path(os.environ["MNIST_MIRROR"]))
    runs = []
    with scratch_clone() as clone:
        for round_ in range(rounds):
            for output in ("data", "models", ".dvc/cache", ".dvc/tmp"):
                shutil.rmtree(clone / output, ignore_errors=True)
            seconds, output = timed(clone, env, "dvc", "repro")
            # as `make repro` does: the run-cache entries of the stages dvc repro skipped
            timed(clone, env, "dvc", "commit", "--force", "--quiet")
            trained = TRAINED.search(output)
            if trained is None:
                raise SystemExit(f"error: no training summary in the output:\n{output[-2000:]}")
            _, status = timed(clone, env, "dvc", "status")
            model_md5 = timed(clone, env, "md5sum", "models/model.npz")[1].split()[0]
            metrics = json.loads((clone / "metrics.json").read_text(encoding="utf-8"))
            runs.append(
                {
                    "repro_seconds": seconds,
                    "test_accuracy": metrics["test"]["accuracy"],
                    "train_seconds": float(trained[2]),
                    "train_seconds_per_epoch": float(trained[3]),
                    "train_epochs": int(trained[1]),
                    "train_peak_mb": int(trained[4]),
                    "model_as_recorded": model_md5 == recorded_model_md5(clone),
                    "up_to_date_after": "up to date" in status,
                }
            )
            print(f"round {round_ + 1}: {runs[-1]}", flush=True)
        restored = run_cache_restore(clone, env)
        print(f"run-cache: {restored}", flush=True)
    report = {
        **run_description(f"python bench/repro.py --rounds {rounds}"),
        "repro_seconds_median": statistics.median(r["repro_seconds"] for r in runs),
        "train_seconds_median": statistics.median(r["train_seconds"] for r in runs),
        "train_peak_mb": max(r["train_peak_mb"] for r in runs),
        "model_as_recorded": all(r["model_as_recorded"] for r in runs),
        "test_accuracy": runs[-1]["test_accuracy"],
        "run_cache": restored,
        "rounds": runs,
    }
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
