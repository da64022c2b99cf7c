"""Stage 4: score the trained model; write metrics.json and the evaluation plots.

Run as ``python -m stages.evaluate``. Reads ``models/model.npz`` and
``data/processed``; writes ``metrics.json`` (test and train splits), the per-sample
``reports/confusion.csv`` rows for DVC's confusion template and
``reports/misclassified.png``, each atomically. It reads no params: the model file
carries the architecture, class names and normalization it was trained with.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from nnlib.atomicfile import atomic_write
from nnlib.metrics import accuracy, class_scores
from nnlib.model import Model
from stages.cli import LogLevelOption, StageError, new_app, run, stage_errors
from stages.images import contact_sheet, save_png
from stages.processed import META_FILE, load_meta, load_split

logger = logging.getLogger("stages.evaluate")

app = new_app("Score models/model.npz on the test and training splits; write metrics and plots.")

MISCLASSIFIED_SHOWN = 50


def split_metrics(model: Model, X: np.ndarray, y: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of one split (plain floats) and the predicted labels ``(n,)``."""
    probs = model.predict(X)
    scores = class_scores(y, probs, n_classes=model.output_size)
    names = model.class_names or [str(k) for k in range(model.output_size)]
    metrics = {
        "accuracy": accuracy(y, probs),
        "loss": model.compute_loss(y, probs),
        "precision_macro": scores.macro_precision,
        "recall_macro": scores.macro_recall,
        "f1_macro": scores.macro_f1,
        "per_class_accuracy": dict(zip(names, scores.recall.tolist(), strict=True)),
    }
    return _rounded(metrics), probs.argmax(axis=1)


def _rounded(value: Any) -> Any:
    """Floats rounded to 6 decimals, so metric diffs stay readable."""
    if isinstance(value, dict):
        return {key: _rounded(v) for key, v in value.items()}
    return round(float(value), 6)


def check_compatible(model: Model, model_path: Path, meta: dict[str, Any], data_dir: Path) -> None:
    """Refuse data prepared differently from what the model was trained on."""
    if model.class_names is not None and model.class_names != meta["class_names"]:
        raise StageError(
            f"{model_path} was trained on classes {model.class_names}, but {data_dir} holds "
            f"{meta['class_names']}; retrain (dvc repro)"
        )
    if model.normalization is not None and model.normalization != meta["normalization"]:
        raise StageError(
            f"{model_path} expects inputs normalized as {model.normalization}, but {data_dir} "
            f"holds {meta['normalization']}; retrain (dvc repro)"
        )


def write_confusion_rows(
    path: Path, truth: np.ndarray, predicted: np.ndarray, names: list[str]
) -> None:
    """One ``actual,predicted`` row per test sample, as DVC's confusion template wants."""
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("actual", "predicted"))
        writer.writerows((names[t], names[p]) for t, p in zip(truth, predicted, strict=True))


@app.command()
def main(
    log_level: LogLevelOption = "INFO",
    model_path: Annotated[
        Path, typer.Option("--model", help="The model to score.", dir_okay=False)
    ] = Path("models/model.npz"),
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="The processed data.", file_okay=False)
    ] = Path("data/processed"),
    metrics_path: Annotated[
        Path, typer.Option("--metrics", help="Where to write the metrics.", dir_okay=False)
    ] = Path("metrics.json"),
    reports_dir: Annotated[
        Path, typer.Option("--reports-dir", help="Where to write the plot files.", file_okay=False)
    ] = Path("reports"),
) -> None:
    """Score the model on the test and training splits."""
    with stage_errors(log_level):
        model = Model.load(model_path)
        meta = load_meta(data_dir)
        check_compatible(model, model_path, meta, data_dir)
        names = list(meta["class_names"])
        results, predictions, test_data = {}, None, None
        for split in ("test", "train"):
            X, y = load_split(data_dir, split, len(names))
            if X.shape[1] != model.input_size:
                raise StageError(
                    f"{model_path} takes {model.input_size} inputs, but {data_dir}'s {split} "
                    f"images have {X.shape[1]} features; retrain (dvc repro)"
                )
            results[split], predicted = split_metrics(model, X, y)
            if split == "test":
                predictions, test_data = predicted, (X, y)
            logger.info(
                "%s: accuracy %.4f, loss %.4f, macro F1 %.4f",
                split,
                results[split]["accuracy"],
                results[split]["loss"],
                results[split]["f1_macro"],
            )

        X_test, y_test = test_data
        shape = tuple(meta["image_shape"])
        if int(np.prod(shape)) != X_test.shape[1]:
            raise StageError(
                f"{data_dir / META_FILE}: image_shape {list(shape)} does not match the "
                f"{X_test.shape[1]} features of the images"
            )
        wrong = np.flatnonzero(predictions != y_test)[:MISCLASSIFIED_SHOWN]
        captions = [f"{names[y_test[i]]}->{names[predictions[i]]}" for i in wrong]
        title = f"First {len(wrong)} of {int((predictions != y_test).sum())} misclassified "
        title += "test images: true -> predicted"
        sheet = contact_sheet(X_test[wrong], captions, shape, title)
        # Everything is computed; only now are the outputs replaced.
        write_confusion_rows(reports_dir / "confusion.csv", y_test, predictions, names)
        save_png(sheet, reports_dir / "misclassified.png")
        with atomic_write(metrics_path, "w") as handle:
            handle.write(json.dumps(results, indent=2) + "\n")
        logger.info("wrote %s and %s/{confusion.csv,misclassified.png}", metrics_path, reports_dir)


if __name__ == "__main__":
    run(app)
