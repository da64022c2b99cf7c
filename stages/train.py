"""Stage 3: train the MLP that params.yaml describes; write the model and its history.

Run as ``python -m stages.train`` (options override params.yaml, e.g. ``--epochs 5``).
Reads ``data/processed/{train,val}_*.npy`` and ``meta.json``; writes
``models/model.npz`` and ``reports/train_history.csv`` (one row per epoch, for
``dvc plots``), each atomically and only after training succeeds.
"""

from __future__ import annotations

import itertools
import logging
import resource
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from nnlib.activations import Softmax, get_activation
from nnlib.data import Dataset
from nnlib.errors import NNLibError, NonFiniteLossError
from nnlib.layers import DenseLayer
from nnlib.losses import CrossEntropyLoss
from nnlib.model import Model
from nnlib.optimizers import Optimizer, make_optimizer
from nnlib.training import EpochRecord, History, training_loop
from stages.cli.app import LogLevelOption, ParamsOption, new_app, run, stage_errors
from stages.cli.errors import StageError
from stages.cli.params import ModelParams, TrainParams, load_params, model_params, train_params
from stages.cli.progress import progress_bar
from stages.data.processed import load_meta, load_split
from stages.outputs.atomic import atomic_write
from stages.outputs.history import write_history

logger = logging.getLogger("stages.train")

app = new_app("Train the MLP described in params.yaml (model.*, train.*) on the processed data.")


def build_optimizer(train: TrainParams) -> Optimizer:
    """The optimizer ``train.optimizer`` names, set up from the other train params."""
    return make_optimizer(
        train.optimizer,
        train.learning_rate,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
    )


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
    return Model(layers, loss=CrossEntropyLoss(), optimizer=build_optimizer(train))


def epoch_line(record: EpochRecord, epochs: int) -> str:
    """The blog post's log line, plus the validation figures."""
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


def fit(
    model: Model,
    train: TrainParams,
    data: Dataset,
    validation: tuple[np.ndarray, np.ndarray] | None,
) -> History:
    """Run the training loop with a progress bar and the blog post's per-epoch log lines."""
    with progress_bar("training", total=train.epochs) as advance:

        def on_epoch_end(record: EpochRecord, epochs: int) -> None:
            logger.info(epoch_line(record, epochs))
            advance()

        try:
            return training_loop(
                model,
                data,
                train.epochs,
                train.batch_size,
                validation=validation,
                patience=train.patience,
                monitor=train.monitor,
                restore_best=train.restore_best,
                on_epoch_end=on_epoch_end,
            )
        except NonFiniteLossError as exc:
            raise StageError(f"{exc} (train.learning_rate is {train.learning_rate:g})") from exc


def describe_run(train: TrainParams, layer_sizes: tuple[int, ...], shapes: dict[str, Any]) -> str:
    return (
        f"Starting training for {train.epochs} epochs with batch size {train.batch_size} and "
        f"learning rate {train.learning_rate:g} ({train.optimizer}, "
        f"{' -> '.join(map(str, layer_sizes))}); train {shapes['train']}, val {shapes['val']}"
    )


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
    with stage_errors(log_level, NNLibError):
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
        validation = (X_val, y_val) if len(X_val) else None
        if validation is None and settings.monitor.startswith("val_"):
            raise StageError(
                f"{params}: train.monitor is {settings.monitor}, but {data_dir} has no "
                "validation split (data.val_size is 0); monitor loss or accuracy instead"
            )
        check_writable(model_path, history_path)

        layer_sizes = (X_train.shape[1], *architecture.hidden_sizes, len(class_names))
        shapes = {"train": X_train.shape, "val": X_val.shape}
        logger.info(describe_run(settings, layer_sizes, shapes))
        rng = np.random.default_rng(settings.seed)
        model = build_model(X_train.shape[1], len(class_names), architecture, settings, rng)
        model.normalization = meta["normalization"]
        model.class_names = class_names
        model.dataset = meta["dataset"]
        model.image_shape = list(meta["image_shape"])

        started = time.perf_counter()
        history = fit(model, settings, Dataset(X_train, y_train, rng), validation)
        with atomic_write(history_path, "w") as handle:
            write_history(handle, history)
        with atomic_write(model_path, "wb") as handle:
            model.save(handle)
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
