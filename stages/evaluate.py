"""Stage 4: score the trained model; write metrics.json and the evaluation plots.

Run as ``python -m stages.evaluate``. Reads ``models/model.npz`` and
``data/processed``; writes ``metrics.json`` (test and train splits), the per-sample
``reports/confusion.csv`` rows for DVC's confusion template, ``reports/per_class_accuracy.csv``
and ``reports/misclassified.png``, all replaced together. It reads no params: the model file
carries the architecture, class names and normalization it was trained with.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import numpy as np
import typer

from nnlib.errors import NNLibError
from nnlib.metrics import accuracy, class_scores
from nnlib.model import Model
from stages.cli.app import (
    DATA_DIR,
    MODEL_PATH,
    DataDirOption,
    LogLevelOption,
    ModelOption,
    new_app,
    run,
    stage_errors,
)
from stages.data.errors import DataError
from stages.data.model_metadata import check_model_fits_data, describe_model
from stages.data.processed import images_path, load_meta, load_split
from stages.images.contact_sheet import contact_sheet
from stages.outputs.atomic import OutputSet

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger("stages.evaluate")

app = new_app("Score models/model.npz on the test and training splits; write metrics and plots.")

MISCLASSIFIED_SHOWN = 50
REPORT_FILES = ("confusion.csv", "per_class_accuracy.csv", "misclassified.png")


def split_metrics(model: Model, X: np.ndarray, y: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of one split (plain floats) and the predicted labels ``(n,)``."""
    probs = model.predict(X)
    scores = class_scores(y, probs, n_classes=model.output_size)
    metrics = {
        "accuracy": accuracy(y, probs),
        "loss": model.compute_loss(y, probs),
        "f1_macro": scores.macro_f1,
    }
    return _rounded(metrics), probs.argmax(axis=1)


def _rounded(value: Any) -> Any:
    """Floats rounded to 6 decimals, so metric diffs stay readable."""
    if isinstance(value, dict):
        return {key: _rounded(v) for key, v in value.items()}
    return round(float(value), 6)


def load_checked_split(
    data_dir: Path, split: str, model: Model, model_path: Path, meta: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """One split's images ``(n, n_features)`` and labels ``(n,)``, sized for ``model`` and
    normalized as ``meta`` says."""
    X, y = load_split(data_dir, split, model.output_size, meta["normalization"])
    if X.shape[1] != model.input_size:
        raise DataError(
            f"{model_path} takes {model.input_size} inputs, but {data_dir}'s {split} "
            f"images have {X.shape[1]} features; retrain (dvc repro)"
        )
    return X, y


def check_finite_scores(scores: dict[str, Any], image_file: Path, X: np.ndarray) -> None:
    """Refuse scores that are not finite (strict JSON has no NaN): a model that overflows on
    images ``(n, n_features)`` normalized as it was trained on (load_split checked that)."""
    bad = [key for key, value in scores.items() if isinstance(value, float)]
    bad = [key for key in bad if not math.isfinite(scores[key])]
    if bad:
        raise DataError(
            f"{image_file}: the model's {' and '.join(bad)} on these images (values "
            f"{X.min():g} to {X.max():g}) is not finite: it overflows on them; retrain it "
            "(dvc repro)"
        )


def write_confusion_rows(
    handle: TextIO, truth: np.ndarray, predicted: np.ndarray, names: list[str]
) -> None:
    """One ``actual,predicted`` row per test sample, as DVC's confusion template wants."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(("actual", "predicted"))
    writer.writerows((names[t], names[p]) for t, p in zip(truth, predicted, strict=True))


def write_per_class_accuracy(
    handle: TextIO, names: list[str], splits: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """One ``class,split,accuracy`` row per class and split: the class's accuracy (recall),
    from ``{split: (truth, predicted)}`` label arrays ``(n,)``; a bar chart in dvc.yaml
    rather than metric columns (one value column, as a stage's plot output takes)."""
    recalls = {
        split: class_scores(truth, predicted, n_classes=len(names)).recall
        for split, (truth, predicted) in splits.items()
    }
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(("class", "split", "accuracy"))
    for k, name in enumerate(names):
        writer.writerows((name, split, _rounded(recall[k])) for split, recall in recalls.items())


def misclassified_sheet(
    X: np.ndarray, y: np.ndarray, predicted: np.ndarray, names: list[str], shape: tuple[int, int]
) -> Image.Image:
    """The first ``MISCLASSIFIED_SHOWN`` misclassified images, captioned true -> predicted."""
    wrong = np.flatnonzero(predicted != y)
    shown = wrong[:MISCLASSIFIED_SHOWN]
    captions = [f"{names[y[i]]}->{names[predicted[i]]}" for i in shown]
    title = f"First {len(shown)} of {len(wrong)} misclassified test images: true -> predicted"
    return contact_sheet(X[shown], captions, shape, title)


@app.command()
def main(
    log_level: LogLevelOption = "INFO",
    model_path: ModelOption = MODEL_PATH,
    data_dir: DataDirOption = DATA_DIR,
    metrics_path: Annotated[
        Path, typer.Option("--metrics", help="Where to write the metrics.", dir_okay=False)
    ] = Path("metrics.json"),
    reports_dir: Annotated[
        Path, typer.Option("--reports-dir", help="Where to write the plot files.", file_okay=False)
    ] = Path("reports"),
) -> None:
    """Score the model on the test and training splits."""
    with stage_errors(log_level, NNLibError) as stage:
        outputs = (metrics_path, *(reports_dir / name for name in REPORT_FILES))
        stage.claim(*outputs, reads=(model_path, data_dir))
        model = Model.load(model_path)
        meta = load_meta(data_dir)
        check_model_fits_data(describe_model(model, model_path), model_path, meta, data_dir)
        names = list(meta["class_names"])
        X_test, y_test = load_checked_split(data_dir, "test", model, model_path, meta)
        X_train, y_train = load_checked_split(data_dir, "train", model, model_path, meta)

        results: dict[str, Any] = {}
        results["test"], test_predicted = split_metrics(model, X_test, y_test)
        results["train"], train_predicted = split_metrics(model, X_train, y_train)
        check_finite_scores(results["test"], images_path(data_dir, "test"), X_test)
        check_finite_scores(results["train"], images_path(data_dir, "train"), X_train)
        for split, scores in results.items():
            logger.info(
                "%s: accuracy %.4f, loss %.4f, macro F1 %.4f",
                split,
                scores["accuracy"],
                scores["loss"],
                scores["f1_macro"],
            )
        sheet = misclassified_sheet(
            X_test, y_test, test_predicted, names, tuple(meta["image_shape"])
        )
        # Everything is computed; only now are the outputs replaced, all together.
        per_class = {"test": (y_test, test_predicted), "train": (y_train, train_predicted)}
        with OutputSet() as outputs:
            with outputs.open(reports_dir / "confusion.csv", "w") as handle:
                write_confusion_rows(handle, y_test, test_predicted, names)
            with outputs.open(reports_dir / "per_class_accuracy.csv", "w") as handle:
                write_per_class_accuracy(handle, names, per_class)
            with outputs.open(reports_dir / "misclassified.png") as handle:
                sheet.save(handle, format="PNG")
            with outputs.open(metrics_path, "w") as handle:
                handle.write(json.dumps(results, indent=2, allow_nan=False) + "\n")
        logger.info("wrote %s and the plot files in %s", metrics_path, reports_dir)


if __name__ == "__main__":
    run(app)
