"""One candidate for the accurate preset, scored on the validation split only.

Trains params.yaml with the given network, epochs, batch, learning rate, L2 and distortions
through the train stage's own code (``train_model``, ``train.seed`` 42, one BLAS thread,
augmentation in its background worker) and prints one JSON line: the training's wall time,
the validation accuracy of every epoch and of the final model. The test split is never
read: ``make accurate`` reads it once, for the candidate chosen here.

    python bench/candidate.py --hidden 800 --epochs 240 --learning-rate 1e-3 --distortions strong
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from defaults import FIRST_STRENGTHS, prepared_data, with_keys
from threadpoolctl import threadpool_limits

from nnlib.metrics import accuracy
from stages.cli.params import read_params_file, validate_params
from stages.data.processed import load_meta, load_split
from stages.train import train_model

#: Simard et al.'s elastic alpha with the wider rotation and slant; "params" keeps params.yaml's.
STRONG = {**FIRST_STRENGTHS, "elastic_alpha": 34}


def main(
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, comma-separated.")],
    epochs: Annotated[int, typer.Option(min=1)],
    learning_rate: Annotated[float, typer.Option()] = 1e-3,
    weight_decay: Annotated[float, typer.Option()] = 0.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    distortions: Annotated[Literal["strong", "params"], typer.Option()] = "strong",
    params_path: Annotated[Path, typer.Option("--params")] = Path("params.yaml"),
    mnist_dir: Annotated[
        Path | None, typer.Option(help="Folder with the MNIST .gz files. Default: $MNIST_MIRROR.")
    ] = None,
) -> None:
    document = read_params_file(params_path)
    sizes = [int(size) for size in hidden.split(",")]
    keys = {
        "model.hidden_sizes": sizes,
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
        training = load_split(data_dir, "train", n_classes)
        validation = load_split(data_dir, "val", n_classes)
        started = time.perf_counter()
        model, history = train_model(
            settings,
            settings.train,
            meta,
            training,
            validation,
            (784, *sizes, n_classes),
            Path(scratch) / "dvclive",
        )
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "hidden": sizes,
                "epochs": epochs,
                "train_seconds": round(seconds, 1),
                "val_accuracy": accuracy(validation[1], model.predict(validation[0])),
                "val_curve": [record.val_accuracy for record in history.epochs],
            }
        )
    )


if __name__ == "__main__":
    typer.run(main)
