"""Stage 3: train the network params.yaml describes (an MLP or a convolutional network);
write the model and its history.

Run as ``python -m stages.train`` (options override params.yaml, e.g. ``--epochs 5``).
Reads ``data/processed/{train,val}_*.npy`` and ``meta.json``; logs each epoch through
DVCLive into ``dvclive/`` as it ends (``stages.outputs.history``), and writes
``models/model.npz`` only when training succeeds.
"""

from __future__ import annotations

import logging
import math
import resource
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from nnlib.data import Dataset
from nnlib.errors import NNLibError
from nnlib.losses import CrossEntropyLoss
from nnlib.model import Model
from nnlib.optimizers import Optimizer, make_optimizer
from nnlib.schedules import make_schedule
from nnlib.training import EpochRecord, History, training_loop
from stages.augment.distortions import PIXEL_LIMITS, Strengths, pixel_limits
from stages.augment.epochs import training_distortions
from stages.cli.app import (
    DATA_DIR,
    MODEL_PATH,
    DataDirOption,
    LogLevelOption,
    ModelOption,
    ParamsOption,
    new_app,
    run,
    stage_errors,
)
from stages.cli.errors import StageError, UsageError, preview
from stages.cli.hints import training_hint
from stages.cli.params import Params, TrainParams, load_params, with_available_monitor
from stages.cli.progress import progress_bar
from stages.data.model_metadata import model_metadata
from stages.data.processed import load_meta, load_split
from stages.network.build import build_layers, check_layers_fit
from stages.network.memory import check_fits_in_memory
from stages.network.plan import Plan, plan_network
from stages.outputs.atomic import atomic_write
from stages.outputs.history import LIVE_DIR, live_history

logger = logging.getLogger("stages.train")

app = new_app("Train the network params.yaml describes (model.*, train.*) on the processed data.")


def build_optimizer(train: TrainParams, steps_per_epoch: int) -> Optimizer:
    """The optimizer ``train.optimizer`` names, on ``train.lr_schedule`` over the whole run."""
    return make_optimizer(
        train.optimizer,
        train.learning_rate,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        schedule=make_schedule(train.lr_schedule, train.epochs * steps_per_epoch),
    )


def network_plan(settings: Params, meta: dict[str, Any]) -> Plan:
    """The network ``settings.model`` describes, for the images and classes of ``meta``."""
    rows, cols = meta["image_shape"]
    return plan_network(settings.model, (rows, cols), len(meta["class_names"]))


def check_splits(n_train: int, n_classes: int, train: TrainParams, source: Path) -> None:
    """Refuse a training split too small for one batch or for one image per class."""
    if n_train < max(train.batch_size, n_classes):
        raise StageError(
            f"{source}: the training split holds {n_train} images, fewer than "
            f"train.batch_size ({train.batch_size}) or the {n_classes} classes; "
            "lower data.val_size or train.batch_size"
        )


def epoch_line(record: EpochRecord, epochs: int) -> str:
    """The blog post's log line, plus the validation figures and the learning rate."""
    line = f"Epoch {record.epoch}/{epochs}, Loss: {record.loss:.4f}, "
    line += f"Avg Accuracy: {record.accuracy:.4f}"
    if record.val_loss is not None:
        line += f", Val Loss: {record.val_loss:.4f}, Val Accuracy: {record.val_accuracy:.4f}"
    return line + f", LR: {record.learning_rate:.3g} ({record.seconds:.2f} s)"


def check_writable(*paths: Path) -> None:
    """Create the outputs' folders now, so a bad path fails before training, not after."""
    for path in paths:
        for parent in (path.parent, *path.parent.parents):
            if parent.exists() and not parent.is_dir():
                raise StageError(f"{path}: cannot write there, {parent} is not a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise StageError(f"{path}: is a directory, expected a file path")


#: what DVCLive writes into its folder (and DVC's .gitignore beside them)
LIVE_FILES = frozenset({"metrics.json", "plots", "params.yaml", "report.html", "report.md"})


def check_live_dir(live_dir: Path) -> None:
    """Refuse a live folder holding files DVCLive did not write: it empties its folder of its
    own files at the start, and a folder shared with other files (``.``, say, with
    evaluate's metrics.json) would lose them."""
    foreign = sorted(
        entry.name
        for entry in (live_dir.iterdir() if live_dir.is_dir() else ())
        if entry.name not in LIVE_FILES and entry.name != ".gitignore"
    )
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise UsageError(
            f"--live-dir {live_dir}: holds {preview(foreign[0])}{more}, which DVCLive did not "
            "write; DVCLive empties its folder, so give it one of its own"
        )


def fit(
    model: Model,
    train: TrainParams,
    data: Dataset,
    validation: tuple[np.ndarray, np.ndarray] | None,
    live_dir: Path,
    hint: str,
) -> History:
    """Run the training loop with a progress bar, the blog post's per-epoch log lines and
    each epoch's figures logged into ``live_dir`` through DVCLive.

    A run that diverges or does not learn stops with one line (StageError) ending in
    ``hint`` (``stages.cli.hints``).
    """
    with progress_bar("training", total=train.epochs) as advance, live_history(live_dir) as log:

        def on_epoch_end(record: EpochRecord, epochs: int) -> None:
            logger.info(epoch_line(record, epochs))
            log(record)
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
                check_learning=True,
            )
        except NNLibError as exc:
            raise StageError(f"{exc}{hint}") from exc


def check_pixel_strengths(
    train: TrainParams, dataset: str, image_shape: tuple[int, int], source: Path
) -> None:
    """Refuse a distortion of ``train.augment``'s entry for ``dataset`` measured in pixels
    that is too strong for pictures of ``image_shape`` (``PIXEL_LIMITS``)."""
    side = min(image_shape)
    strengths = train.augment_for(dataset)
    for name, limit in pixel_limits(image_shape).items():
        value = getattr(strengths, name)
        if value > limit:
            raise StageError(
                f"{source}: train.augment.{dataset}.{name} is {value:g} pixels, more than "
                f"{PIXEL_LIMITS[name]:g} times the {side}-pixel side of the pictures "
                f"({limit:g}); choose at most that"
            )


def train_model(
    settings: Params,
    train: TrainParams,
    meta: dict[str, Any],
    training: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    plan: Plan,
    live_dir: Path,
    source: Path = Path("params.yaml"),
) -> tuple[Model, History]:
    """The network of ``plan`` (``network_plan(settings, meta)``, its memory checked), on
    cross-entropy, trained as ``settings`` say (``train`` in place of their train section)
    on ``training`` images ``(n, n_features)`` and labels ``(n,)``, distorted afresh each
    epoch as ``train.augment`` says for ``settings.data.dataset``, watching ``validation``;
    each epoch logged into ``live_dir``. ``source`` names the params file in errors."""
    X_train, y_train = training
    rng = np.random.default_rng(train.seed)
    optimizer = build_optimizer(train, math.ceil(len(X_train) / train.batch_size))
    model = Model(
        build_layers(plan, rng, source),
        loss=CrossEntropyLoss(),
        optimizer=optimizer,
        metadata=model_metadata(meta),
        input_shape=plan.input_shape,
    )
    strengths = Strengths(**train.augment_for(settings.data.dataset).model_dump())
    with training_distortions(strengths, X_train, meta, rng, train.epochs) as distortions:
        data = Dataset(X_train, y_train, rng, epoch_inputs=distortions)
        hint = training_hint(train, settings.model)
        history = fit(model, train, data, validation, live_dir, hint)
    return model, history


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
    data_dir: DataDirOption = DATA_DIR,
    model_path: ModelOption = MODEL_PATH,
    live_dir: Annotated[
        Path,
        typer.Option(
            "--live-dir", help="Where DVCLive logs each epoch's figures.", file_okay=False
        ),
    ] = LIVE_DIR,
) -> None:
    """Train the model of params.yaml on the training split, watching the validation split."""
    with stage_errors(log_level, NNLibError) as stage:
        overrides = {
            "train.epochs": (epochs, "--epochs"),
            "train.batch_size": (batch_size, "--batch-size"),
            "train.learning_rate": (learning_rate, "--learning-rate"),
        }
        settings = load_params(params, overrides)
        live_metrics = live_dir / "metrics.json"
        stage.claim(model_path, live_metrics, reads=(params, data_dir))
        check_live_dir(live_dir)
        meta = load_meta(data_dir)
        class_names = list(meta["class_names"])
        plan = network_plan(settings, meta)
        check_fits_in_memory(plan, settings.train.batch_size, params)
        check_layers_fit(plan, params)
        normalization = meta["normalization"]
        X_train, y_train = load_split(data_dir, "train", len(class_names), normalization)
        X_val, y_val = load_split(data_dir, "val", len(class_names), normalization)
        validation = (X_val, y_val) if len(X_val) else None
        train = with_available_monitor(settings, validation is not None, params, data_dir)
        check_splits(len(X_train), len(class_names), train, params)
        check_pixel_strengths(train, settings.data.dataset, tuple(meta["image_shape"]), params)
        check_writable(model_path, live_metrics)

        logger.info(
            "Starting training for %d epochs with batch size %d and learning rate %g "
            "(%s, %s schedule, %s); train %s, val %s",
            train.epochs,
            train.batch_size,
            train.learning_rate,
            train.optimizer,
            train.lr_schedule,
            plan.describe(),
            X_train.shape,
            X_val.shape,
        )
        started = time.perf_counter()
        model, history = train_model(
            settings, train, meta, (X_train, y_train), validation, plan, live_dir, params
        )
        with atomic_write(model_path) as handle:
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
            live_dir,
        )


if __name__ == "__main__":
    run(app)
