"""Stage 3: train the MLP that params.yaml describes; write the model and its history.

Run as ``python -m stages.train`` (options override params.yaml, e.g. ``--epochs 5``).
Reads ``data/processed/{train,val}_*.npy`` and ``meta.json``; writes
``models/model.npz`` and ``reports/train_history.csv`` (one row per epoch, for
``dvc plots``), each atomically and only after training succeeds.
"""

from __future__ import annotations

import csv
import itertools
import logging
import resource
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from nnlib.activations import Softmax, get_activation
from nnlib.atomicfile import atomic_write
from nnlib.data import Dataset
from nnlib.errors import NonFiniteLossError
from nnlib.layers import DenseLayer
from nnlib.losses import CrossEntropyLoss
from nnlib.model import Model
from nnlib.optimizers import SGD, Adam, AdamW, Optimizer
from nnlib.training import EpochRecord, History, training_loop
from stages.cli import LogLevelOption, ParamsOption, StageError, new_app, run, stage_errors
from stages.params import ModelParams, TrainParams, load_params, model_params, train_params
from stages.processed import load_meta, load_split
from stages.progress import progress_bar

logger = logging.getLogger("stages.train")

app = new_app("Train the MLP described in params.yaml (model.*, train.*) on the processed data.")


def make_optimizer(train: TrainParams) -> Optimizer:
    """The optimizer ``train.optimizer`` names, set up from the other train params."""
    if train.optimizer == "sgd":
        return SGD(train.learning_rate, momentum=train.momentum, weight_decay=train.weight_decay)
    if train.optimizer == "adamw":
        return AdamW(train.learning_rate, weight_decay=train.weight_decay)
    return Adam(train.learning_rate, weight_decay=train.weight_decay)


def build_model(
    n_inputs: int, n_classes: int, model: ModelParams, train: TrainParams, rng: np.random.Generator
) -> Model:
    """``n_inputs`` -> hidden layers -> softmax over ``n_classes``, cross-entropy loss."""
    sizes = (n_inputs, *model.hidden_sizes)
    layers = [
        DenseLayer(n_in, n_out, get_activation(model.activation), rng=rng)
        for n_in, n_out in itertools.pairwise(sizes)
    ]
    layers.append(DenseLayer(sizes[-1], n_classes, Softmax(), rng=rng))
    return Model(layers, loss=CrossEntropyLoss(), optimizer=make_optimizer(train))


def epoch_line(record: EpochRecord, epochs: int) -> str:
    """The seed post's log line, plus the validation figures."""
    line = f"Epoch {record.epoch}/{epochs}, Loss: {record.loss:.4f}, "
    line += f"Avg Accuracy: {record.accuracy:.4f}"
    if record.val_loss is not None:
        line += f", Val Loss: {record.val_loss:.4f}, Val Accuracy: {record.val_accuracy:.4f}"
    return line + f" ({record.seconds:.2f} s)"


def check_writable(*paths: Path) -> None:
    """Create the outputs' folders now, so a bad path fails before training, not after."""
    for path in paths:
        for parent in (path.parent, *path.parent.parents):
            if parent.exists() and not parent.is_dir():
                raise StageError(f"{path}: cannot write there, {parent} is not a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise StageError(f"{path}: is a directory, expected a file path")


HISTORY_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


def write_history(path: Path, history: History) -> None:
    """One CSV row per epoch (no timings, so that reruns give identical files)."""
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HISTORY_FIELDS)
        for r in history.epochs:
            row = (r.epoch, r.loss, r.accuracy, r.val_loss, r.val_accuracy)
            writer.writerow(["" if v is None else f"{v:.6g}" for v in row])


@app.command()
def main(
    params: ParamsOption = Path("params.yaml"),
    log_level: LogLevelOption = "INFO",
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override train.epochs.", show_default=False)
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", "--batch_size", help="Override train.batch_size."),
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option("--learning-rate", "--learning_rate", help="Override train.learning_rate."),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="The processed data to train on.", file_okay=False)
    ] = Path("data/processed"),
    model_path: Annotated[
        Path, typer.Option("--model", help="Where to write the model.", dir_okay=False)
    ] = Path("models/model.npz"),
    history_path: Annotated[
        Path, typer.Option("--history", help="Where to write the per-epoch CSV.", dir_okay=False)
    ] = Path("reports/train_history.csv"),
) -> None:
    """Train the model of params.yaml on the training split, watching the validation split."""
    with stage_errors(log_level):
        raw = load_params(params)
        architecture = model_params(raw, params)
        overrides = {
            "epochs": (epochs, "--epochs"),
            "batch_size": (batch_size, "--batch-size"),
            "learning_rate": (learning_rate, "--learning-rate"),
        }
        settings = train_params(raw, params, overrides)
        meta = load_meta(data_dir)
        class_names = list(meta["class_names"])
        X_train, y_train = load_split(data_dir, "train", len(class_names))
        X_val, y_val = load_split(data_dir, "val", len(class_names))
        check_writable(model_path, history_path)
        logger.info(
            "Starting training for %d epochs with batch size %d and learning rate %g "
            "(%s, %s); train %s, val %s",
            settings.epochs,
            settings.batch_size,
            settings.learning_rate,
            settings.optimizer,
            " -> ".join(map(str, (X_train.shape[1], *architecture.hidden_sizes, len(class_names)))),
            X_train.shape,
            X_val.shape,
        )
        rng = np.random.default_rng(settings.seed)
        model = build_model(X_train.shape[1], len(class_names), architecture, settings, rng)
        model.normalization = meta["normalization"]
        model.class_names = class_names
        validation = (X_val, y_val) if len(X_val) else None
        if validation is None and settings.monitor.startswith("val_"):
            raise StageError(
                f"{params}: train.monitor is {settings.monitor}, but {data_dir} has no "
                "validation split (data.val_size is 0); monitor loss or accuracy instead"
            )

        started = time.perf_counter()
        with progress_bar("training", total=settings.epochs) as advance:

            def on_epoch_end(record: EpochRecord, epochs: int) -> None:
                logger.info(epoch_line(record, epochs))
                advance()

            try:
                history = training_loop(
                    model,
                    Dataset(X_train, y_train, rng),
                    settings.epochs,
                    settings.batch_size,
                    validation=validation,
                    patience=settings.patience,
                    monitor=settings.monitor,
                    restore_best=settings.restore_best,
                    on_epoch_end=on_epoch_end,
                )
            except NonFiniteLossError as exc:
                raise StageError(
                    f"{exc} (train.learning_rate is {settings.learning_rate:g})"
                ) from exc
        write_history(history_path, history)
        model.save(model_path)
        seconds = time.perf_counter() - started
        per_epoch = sum(r.seconds for r in history.epochs) / len(history.epochs)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        logger.info(
            "Trained %d epochs in %.1f s (%.3f s/epoch of training steps), peak memory %.0f MB; "
            "wrote %s and %s",
            len(history.epochs),
            seconds,
            per_epoch,
            peak_mb,
            model_path,
            history_path,
        )


if __name__ == "__main__":
    run(app)
