"""An accurate preset (``make accurate``, ``make accurate-cnn``) from a fresh clone: its wall
time, the validation accuracy it was chosen by, and its test accuracy, read once.

In a scratch clone of HEAD, with the MNIST files as the mirror and this checkout's venv, the
preset's make target runs as a user runs it (a named ``dvc exp run``: download, preprocess,
the network's training and evaluate); then the experiment's DVCLive history gives the
validation accuracy of its last epoch and its metrics.json the test accuracy.

``--settings`` passes more ``-S`` settings after the preset's (make's ``SETTINGS``), for a
quick check that the script runs (``--settings "-S train.epochs=1"``) or the preset on
another dataset (``-S data.dataset=fashion-mnist``): its numbers then go to ``--json``.

    python bench/accurate.py [--preset mlp|cnn] [--settings "..."] [--json PATH]
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Annotated, Literal

import typer
from results import run_description
from scratch import REPO, command_environment, make_command, scratch_clone, timed

from stages.outputs.history import read_live_folder

TRAINED = re.compile(r"Trained (\d+) epochs in ([\d.]+) s \(([\d.]+) s/epoch")
#: each preset's make target and the file its numbers go to by default
PRESETS = {
    "mlp": ("accurate", Path("bench/accurate.json")),
    "cnn": ("accurate-cnn", Path("bench/accurate_cnn.json")),
}


def main(
    preset: Annotated[Literal["mlp", "cnn"], typer.Option()] = "mlp",
    settings: Annotated[
        str, typer.Option(help="More -S settings after the preset's (make's SETTINGS).")
    ] = "",
    mnist_dir: Annotated[Path | None, typer.Option(help="Default: $MNIST_MIRROR.")] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Default: bench/accurate[_cnn].json.")
    ] = None,
    keep_model: Annotated[
        Path | None,
        typer.Option(help="Copy the trained model here (for bench/predict_looks.py --model)."),
    ] = None,
) -> None:
    target, default_json = PRESETS[preset]
    json_path = json_path or default_json
    env = command_environment(mnist_dir or Path(os.environ["MNIST_MIRROR"]))
    venv = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv"))
    variables = [f"SETTINGS={settings}"] if settings else []
    with scratch_clone() as clone:
        seconds, output = timed(clone, env, *make_command(target, venv, *variables))
        trained = TRAINED.search(output)
        history = read_live_folder(clone / "dvclive")
        metrics = json.loads((clone / "metrics.json").read_text(encoding="utf-8"))
        params = (clone / "params.yaml").read_text(encoding="utf-8")
        if keep_model is not None:
            shutil.copyfile(clone / "models" / "model.npz", keep_model)
    command = f"python bench/accurate.py --preset {preset}"
    report = {
        **run_description(command + (f" --settings {settings!r}" if settings else "")),
        "make_target": target,
        "settings": settings,
        "wall_seconds": seconds,
        "train_seconds": float(trained[2]) if trained else None,
        "epoch_steps_seconds": float(trained[3]) if trained else None,
        "epochs": len(history),
        "val_accuracy": history[-1]["val_accuracy"],
        "val_curve": [row["val_accuracy"] for row in history],
        "test_accuracy": metrics["test"]["accuracy"],
        "test_loss": metrics["test"]["loss"],
        "params_yaml": params,
    }
    print(
        f"make {target}: {seconds / 60:.1f} minutes, validation {report['val_accuracy']:.4f}, "
        f"test {report['test_accuracy']:.4f}"
    )
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
