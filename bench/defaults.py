"""How the default params were chosen: configurations trained over seeds, exactly as the
pipeline trains, compared on the validation split, the test split reported beside.

The real MNIST goes through the preprocess stage's own code once (params.yaml's data
section); every configuration is params.yaml with the keys of ``CONFIGURATIONS`` set (each
row sets all the keys any row changes), checked by the params schema, and trained by the
train stage's own ``train_model`` (augmentation, dropout and all) for each ``train.seed``,
so a cell reproduces ``dvc repro`` with those params. The configuration with the best median
validation accuracy is marked, and so is the one params.yaml holds; the test accuracies are
read once, for the table.

    python bench/defaults.py [--seeds 1,2,3,4,5] [--json bench/defaults.json]
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from results import run_description
from threadpoolctl import threadpool_limits

from nnlib.metrics import accuracy
from stages.cli.params import read_params_file, validate_params
from stages.data.processed import load_meta, load_split
from stages.data.sources import IDX_FILES
from stages.preprocess import preprocess
from stages.train import network_plan, train_model

#: what every configuration sets, whatever params.yaml holds: the seed net's training
#: settings before augmentation, with the first strengths tried (the rows change them)
BASE: dict[str, Any] = {
    "model.hidden_sizes": [64, 32],
    "model.dropout": 0.0,
    "train.epochs": 20,
    "train.batch_size": 32,
    "train.lr_schedule": "cosine",
    "train.learning_rate": 0.002,
    "train.augment": "none",
}
FIRST_STRENGTHS = {
    "rotation": 12,
    "scale": 0.1,
    "shear": 0.15,
    "shift": 2,
    "elastic_alpha": 15,
    "elastic_sigma": 4,
    "mirror": False,
}
MILDER = {**FIRST_STRENGTHS, "rotation": 8, "shear": 0.1}


def augmented(strengths: dict[str, Any] = FIRST_STRENGTHS, **keys: Any) -> dict[str, Any]:
    """``BASE`` with MNIST's images distorted by ``strengths`` and ``keys`` (dotted, with
    ``__`` for the dots) replaced."""
    return {
        **BASE,
        "train.augment": {"mnist": strengths, "fashion-mnist": "none", "images": strengths},
        **{key.replace("__", "."): value for key, value in keys.items()},
    }


#: name -> every key it sets (dotted)
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "the blog post: constant 1e-3, no augmentation": {
        **BASE,
        "train.lr_schedule": "constant",
        "train.learning_rate": 0.001,
    },
    "cosine 2e-3, no augmentation": BASE,
    "augmented (rotation 12, scale 0.1, shear 0.15, shift 2, elastic 15/4)": augmented(),
    "augmented, elastic alpha 10": augmented({**FIRST_STRENGTHS, "elastic_alpha": 10}),
    "augmented, elastic alpha 20": augmented({**FIRST_STRENGTHS, "elastic_alpha": 20}),
    "augmented, dropout 0.1": augmented(model__dropout=0.1),
    "augmented, learning rate 3e-3": augmented(train__learning_rate=0.003),
    "augmented, 30 epochs": augmented(train__epochs=30),
    "augmented, 40 epochs": augmented(train__epochs=40),
    "augmented, 50 epochs": augmented(train__epochs=50),
    "augmented, 40 epochs of batch 64": augmented(train__epochs=40, train__batch_size=64),
    "augmented, 40 epochs, milder (rotation 8, shear 0.1)": augmented(MILDER, train__epochs=40),
    "augmented, 50 epochs, milder (rotation 8, shear 0.1)": augmented(MILDER, train__epochs=50),
    "augmented, 40 epochs, milder still (rotation 5, shear 0.05, elastic alpha 10)": augmented(
        {**MILDER, "rotation": 5, "shear": 0.05, "elastic_alpha": 10}, train__epochs=40
    ),
}


def with_keys(document: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """``document`` (params.yaml's content) with each dotted key set to its value."""
    changed = copy.deepcopy(document)
    for key, value in keys.items():
        *parents, leaf = key.split(".")
        node = changed
        for part in parents:
            node = node[part]
        node[leaf] = value
    return changed


def prepared_data(params_path: Path, mnist_dir: Path, folder: Path) -> Path:
    """``folder/processed``: the preprocess stage's output for params.yaml's data section."""
    params = validate_params(read_params_file(params_path), params_path)
    raw = folder / "raw" / params.data.dataset
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        (raw / name).symlink_to((mnist_dir / name).resolve())
    preprocess(folder / "raw", folder / "processed", params.data, params_path)
    return folder / "processed"


def scores(
    document: dict[str, Any], params_path: Path, data_dir: Path, seed: int
) -> dict[str, float]:
    """Validation and test accuracy of one run of the train stage with ``train.seed = seed``."""
    settings = validate_params(with_keys(document, {"train.seed": seed}), params_path)
    meta = load_meta(data_dir)
    n_classes = len(meta["class_names"])
    training = load_split(data_dir, "train", n_classes)
    validation = load_split(data_dir, "val", n_classes)
    test = load_split(data_dir, "test", n_classes)
    plan = network_plan(settings, meta)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as live_dir:
        model, _ = train_model(
            settings, settings.train, meta, training, validation, plan, Path(live_dir)
        )
    return {
        "val": accuracy(validation[1], model.predict(validation[0])),
        "test": accuracy(test[1], model.predict(test[0])),
        "seconds": time.perf_counter() - started,
    }


def main(
    seeds: Annotated[str, typer.Option(help="Comma-separated train.seed values.")] = "1,2,3,4,5",
    only: Annotated[
        str | None, typer.Option(help="Run only the configurations whose name holds this.")
    ] = None,
    params_path: Annotated[Path, typer.Option("--params")] = Path("params.yaml"),
    mnist_dir: Annotated[
        Path | None, typer.Option(help="Folder with the MNIST .gz files. Default: $MNIST_MIRROR.")
    ] = None,
    json_path: Annotated[Path, typer.Option("--json")] = Path("bench/defaults.json"),
) -> None:
    seed_list = [int(s) for s in seeds.split(",")]
    document = read_params_file(params_path)
    chosen = {n: k for n, k in CONFIGURATIONS.items() if only is None or only in n}
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch, threadpool_limits(1, "blas"):
        data_dir = prepared_data(
            params_path, mnist_dir or Path(os.environ["MNIST_MIRROR"]), Path(scratch)
        )
        for name, keys in chosen.items():
            runs = [scores(with_keys(document, keys), params_path, data_dir, s) for s in seed_list]
            results[name] = {part: [run[part] for run in runs] for part in runs[0]}
            print(f"{name}: {results[name]}", flush=True)
    best = max(results, key=lambda name: statistics.median(results[name]["val"]))
    default = [name for name in results if with_keys(document, CONFIGURATIONS[name]) == document]
    print(f"\n| configuration | validation, median | test, median | test, seeds {seeds} |")
    print("|---|---|---|---|")
    for name, cells in results.items():
        marks = ["best on validation"] if name == best else []
        marks += ["params.yaml"] if name in default else []
        mark = f" ({', '.join(marks)})" if marks else ""
        print(
            f"| {name}{mark} | {statistics.median(cells['val']):.4f} "
            f"| {statistics.median(cells['test']):.4f} "
            f"| {' / '.join(f'{a:.4f}' for a in cells['test'])} |"
        )
    report = {
        **run_description(f"python bench/defaults.py --seeds {seeds}"),
        "seeds": seed_list,
        "best_on_validation": best,
        "params_yaml": default[0] if default else None,
        "configurations": {
            name: {
                "keys": CONFIGURATIONS[name],
                "val_accuracy": cells["val"],
                "test_accuracy": cells["test"],
                "val_median": statistics.median(cells["val"]),
                "test_median": statistics.median(cells["test"]),
                "seconds": cells["seconds"],
            }
            for name, cells in results.items()
        },
    }
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
