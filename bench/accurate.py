"""The accurate preset (``make accurate``) from a fresh clone: its wall time, the validation
accuracy it was chosen by, and its test accuracy, read once.

In a scratch clone of HEAD, with the MNIST files as the mirror and this checkout's venv,
``make accurate`` runs as a user runs it (a named ``dvc exp run``: download, preprocess, the
wide network's training and evaluate); then the experiment's history gives the validation
accuracy of its last epoch and its metrics.json the test accuracy.

    python bench/accurate.py [--json bench/accurate.json]
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Annotated

import typer
from results import run_description
from scratch import REPO, command_environment, make_command, scratch_clone, timed

TRAINED = re.compile(r"Trained (\d+) epochs in ([\d.]+) s \(([\d.]+) s/epoch")


def main(
    mnist_dir: Annotated[Path | None, typer.Option(help="Default: $MNIST_MIRROR.")] = None,
    json_path: Annotated[Path, typer.Option("--json")] = Path("bench/accurate.json"),
) -> None:
    env = command_environment(mnist_dir or Path(os.environ["MNIST_MIRROR"]))
    venv = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv"))
    with scratch_clone() as clone:
        seconds, output = timed(clone, env, *make_command("accurate", venv))
        trained = TRAINED.search(output)
        with (clone / "reports" / "train_history.csv").open(encoding="utf-8") as handle:
            history = list(csv.DictReader(handle))
        metrics = json.loads((clone / "metrics.json").read_text(encoding="utf-8"))
        params = (clone / "params.yaml").read_text(encoding="utf-8")
    report = {
        **run_description("python bench/accurate.py"),
        "wall_seconds": seconds,
        "train_seconds": float(trained[2]) if trained else None,
        "epochs": len(history),
        "val_accuracy": float(history[-1]["val_accuracy"]),
        "val_curve": [float(row["val_accuracy"]) for row in history],
        "test_accuracy": metrics["test"]["accuracy"],
        "test_loss": metrics["test"]["loss"],
        "params_yaml": params,
    }
    print(
        f"make accurate: {seconds / 60:.1f} minutes, validation {report['val_accuracy']:.4f}, "
        f"test {report['test_accuracy']:.4f}"
    )
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
