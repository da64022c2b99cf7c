"""Test accuracy of learning-rate schedules over seeds, exactly as the train stage trains.

For each configuration and seed, the real MNIST is split and normalized as preprocess does
(params.yaml's data section), and the model is built and trained as the train stage does
(its model and train sections, with the configuration's keys replaced and ``train.seed``
set), so a row reproduces ``dvc repro`` with those params bit for bit.

    python bench/lr_schedules.py [--seeds 1,2,3,4,5] [--json bench/lr_schedules.json]
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from threadpoolctl import threadpool_limits

from nnlib.data import Dataset
from nnlib.metrics import accuracy
from stages.cli.params import Params, load_params
from stages.data.normalization import Normalization
from stages.data.raw import load_pair
from stages.data.sources import get_source
from stages.data.splits import stratified_split
from stages.train import build_model, build_optimizer, fit

# name -> the train keys it replaces in params.yaml
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "constant 1e-3, last epoch (the blog post)": {
        "lr_schedule": "constant",
        "learning_rate": 0.001,
        "restore_best": False,
    },
    "constant 1e-3, best validation epoch": {
        "lr_schedule": "constant",
        "learning_rate": 0.001,
        "restore_best": True,
    },
    "constant 2e-3, last epoch": {
        "lr_schedule": "constant",
        "learning_rate": 0.002,
        "restore_best": False,
    },
    "cosine 1e-3, last epoch": {
        "lr_schedule": "cosine",
        "learning_rate": 0.001,
        "restore_best": False,
    },
    "cosine 2e-3, last epoch": {
        "lr_schedule": "cosine",
        "learning_rate": 0.002,
        "restore_best": False,
    },
    "cosine 2e-3, best validation epoch": {
        "lr_schedule": "cosine",
        "learning_rate": 0.002,
        "restore_best": True,
    },
}


def splits(params: Params, mnist_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train, validation and test images (float32, normalized) and labels, as preprocess."""
    source = get_source(params.data.dataset)
    files = source.files
    train = load_pair(mnist_dir / files.train_images, mnist_dir / files.train_labels, 10)
    test = load_pair(mnist_dir / files.test_images, mnist_dir / files.test_labels, 10)
    train_idx, val_idx = stratified_split(
        train.labels, params.data.val_size, params.data.split_seed
    )
    normalization = Normalization.fit(params.data.normalize, train.images[train_idx])
    labels = train.labels.astype(np.intp)  # as the train stage reads them
    return {
        "train": (normalization.apply(train.images[train_idx]), labels[train_idx]),
        "val": (normalization.apply(train.images[val_idx]), labels[val_idx]),
        "test": (normalization.apply(test.images), test.labels.astype(np.intp)),
    }


def test_accuracy(
    params: Params, data: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, keys: dict
) -> float:
    """Train as the train stage does with ``keys`` replaced and ``train.seed = seed``."""
    train = params.train.model_copy(update={**keys, "seed": seed})
    X, y = data["train"]
    rng = np.random.default_rng(seed)
    optimizer = build_optimizer(train, math.ceil(len(X) / train.batch_size))
    layer_sizes = (X.shape[1], *params.model.hidden_sizes, 10)
    model = build_model(layer_sizes, params.model, optimizer, rng)
    fit(model, train, Dataset(X, y, rng), data["val"])
    X_test, y_test = data["test"]
    return accuracy(y_test, model.predict(X_test))


def main(
    seeds: Annotated[str, typer.Option(help="Comma-separated train.seed values.")] = "1,2,3,4,5",
    params_path: Annotated[Path, typer.Option("--params")] = Path("params.yaml"),
    mnist_dir: Annotated[
        Path | None, typer.Option(help="Folder with the MNIST .gz files. Default: $MNIST_MIRROR.")
    ] = None,
    json_path: Annotated[Path, typer.Option("--json")] = Path("bench/lr_schedules.json"),
) -> None:
    params = load_params(params_path)
    seed_list = [int(s) for s in seeds.split(",")]
    data = splits(params, mnist_dir or Path(os.environ["MNIST_MIRROR"]))
    results: dict[str, list[float]] = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, keys in CONFIGURATIONS.items():
            results[name] = [test_accuracy(params, data, seed, keys) for seed in seed_list]
            print(f"{name}: {results[name]}", flush=True)
    print(f"\n| configuration | test accuracy, seeds {seeds} | median | range |")
    print("|---|---|---|---|")
    for name, accuracies in results.items():
        cells = " / ".join(f"{a:.4f}" for a in accuracies)
        print(
            f"| {name} | {cells} | {statistics.median(accuracies):.4f} "
            f"| {min(accuracies):.4f}-{max(accuracies):.4f} |"
        )
    report = {
        "command": f"python bench/lr_schedules.py --seeds {seeds}",
        "seeds": seed_list,
        "configurations": {
            name: {"train": CONFIGURATIONS[name], "test_accuracy": acc}
            for name, acc in results.items()
        },
    }
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
