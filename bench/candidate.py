"""One candidate for an accurate preset, scored on the validation split only.

Trains params.yaml with the given network, epochs, batch, learning rate, L2 and distortions
through the train stage's own code (``network_plan``, its memory check, ``train_model``,
``train.seed`` 42, one BLAS thread, augmentation in its background worker) and prints one
JSON line: the training's wall time, the seconds of each epoch's training steps, the
validation accuracy of every epoch and of the final model. The test split is never read:
``make accurate`` (``make accurate-cnn``) reads it once, for the candidate chosen here.

The network is an MLP (``--hidden``, model.hidden_sizes) or a stack of model.layers entries
(``--layers``, JSON, as ``-S model.layers=...`` takes them in YAML); ``--train-images`` keeps
the first N training images only, for a quick check that a candidate runs.

    python bench/candidate.py --hidden 800 --epochs 240 --learning-rate 1e-3 --distortions strong
    python bench/candidate.py --epochs 15 --learning-rate 2e-3 --distortions params \\
        --layers '[{"type": "conv2d", "filters": 32, "kernel": 5}, {"type": "maxpool2d",
        "size": 2}, {"type": "conv2d", "filters": 64, "kernel": 5}, {"type": "maxpool2d",
        "size": 2}, {"type": "dense", "units": 128}]'
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from defaults import FIRST_STRENGTHS, prepared_data, with_keys
from threadpoolctl import threadpool_limits

from nnlib.metrics import accuracy
from stages.cli.params import read_params_file, validate_params
from stages.data.processed import load_meta, load_split
from stages.network.memory import check_fits_in_memory
from stages.train import network_plan, train_model

#: Simard et al.'s elastic alpha with the wider rotation and slant; "params" keeps params.yaml's.
STRONG = {**FIRST_STRENGTHS, "elastic_alpha": 34}


def network_keys(hidden: str | None, layers: str | None) -> dict[str, Any]:
    """model.hidden_sizes and model.layers for ``--hidden`` or ``--layers`` (one of them)."""
    if (hidden is None) == (layers is None):
        raise typer.BadParameter("give --hidden (an MLP) or --layers (a stack of entries)")
    if hidden is not None:
        return {"model.hidden_sizes": [int(size) for size in hidden.split(",")], "model.layers": []}
    try:
        entries = json.loads(layers or "")
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--layers is not JSON: {exc}") from None
    return {"model.hidden_sizes": [], "model.layers": entries, "model.dropout": 0.0}


def main(
    epochs: Annotated[int, typer.Option(min=1)],
    hidden: Annotated[
        str | None, typer.Option(help="Hidden layer sizes, comma-separated (an MLP).")
    ] = None,
    layers: Annotated[
        str | None, typer.Option(help="model.layers entries as a JSON list (a CNN).")
    ] = None,
    learning_rate: Annotated[float, typer.Option()] = 1e-3,
    weight_decay: Annotated[float, typer.Option()] = 0.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    distortions: Annotated[Literal["strong", "params"], typer.Option()] = "strong",
    train_images: Annotated[
        int, typer.Option(min=0, help="Train on the first N training images (0: all).")
    ] = 0,
    params_path: Annotated[Path, typer.Option("--params")] = Path("params.yaml"),
    mnist_dir: Annotated[
        Path | None, typer.Option(help="Folder with the MNIST .gz files. Default: $MNIST_MIRROR.")
    ] = None,
) -> None:
    document = read_params_file(params_path)
    keys = {
        **network_keys(hidden, layers),
        "train.epochs": epochs,
        "train.batch_size": batch_size,
        "train.learning_rate": learning_rate,
        "train.weight_decay": weight_decay,
        "train.seed": 42,
    }
    if distortions == "strong":
        keys["train.augment"] = {"mnist": STRONG, "fashion-mnist": "none", "images": STRONG}
    settings = validate_params(with_keys(document, keys), params_path)
    with tempfile.TemporaryDirectory() as scratch, threadpool_limits(1, "blas"):
        mirror = mnist_dir or Path(os.environ["MNIST_MIRROR"])
        data_dir = prepared_data(params_path, mirror, Path(scratch))
        meta = load_meta(data_dir)
        n_classes = len(meta["class_names"])
        X_train, y_train = load_split(data_dir, "train", n_classes)
        if train_images:
            X_train, y_train = X_train[:train_images], y_train[:train_images]
        validation = load_split(data_dir, "val", n_classes)
        plan = network_plan(settings, meta)
        check_fits_in_memory(plan, batch_size, params_path)
        started = time.perf_counter()
        model, history = train_model(
            settings,
            settings.train,
            meta,
            (X_train, y_train),
            validation,
            plan,
            Path(scratch) / "dvclive",
            params_path,
        )
        seconds = time.perf_counter() - started
    steps = [record.seconds for record in history.epochs]
    print(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "network": keys["model.layers"] or keys["model.hidden_sizes"],
                "shapes": plan.describe(),
                "parameters": plan.n_params,
                "epochs": epochs,
                "train_images": len(X_train),
                "train_seconds": round(seconds, 1),
                "epoch_steps_seconds_median": round(statistics.median(steps), 2),
                "val_accuracy": accuracy(validation[1], model.predict(validation[0])),
                "val_curve": [record.val_accuracy for record in history.epochs],
            }
        )
    )


if __name__ == "__main__":
    typer.run(main)
