"""The training loop of the blog post this project follows, with validation, early stopping,
a history, and checks that the run is learning."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nnlib.data import Dataset
from nnlib.errors import NonFiniteLossError, NotLearningError
from nnlib.losses import Loss
from nnlib.metrics import accuracy, as_labels
from nnlib.model import Model

logger = logging.getLogger(__name__)

MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
#: an epoch whose training loss exceeds this many times the loss before training diverges
LOSS_RISE_LIMIT = 2.0
#: accuracy within this many standard errors of the majority-class rate is "chance"
CHANCE_STANDARD_ERRORS = 3.0
#: a loss above this fraction of the class frequencies' entropy (the loss of answering the
#: frequencies for every image) learned nothing either
CHANCE_LOSS_FRACTION = 0.95


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's figures. ``loss``/``accuracy`` are over the epoch's training batches,
    each sample scored by the weights it was trained from (as the blog post logs them);
    the ``val_`` figures score the whole validation set after the epoch;
    ``learning_rate`` is the rate of the epoch's last step."""

    epoch: int
    loss: float
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float


@dataclass
class History:
    """Per-epoch records; ``best_epoch`` when a best epoch was tracked (early stopping or
    ``restore_best``)."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False


EpochCallback = Callable[[EpochRecord, int], None]


@dataclass(frozen=True)
class _Plan:
    """The checked arguments of one ``training_loop`` call."""

    epochs: int
    batch_size: int
    classify: bool
    monitor: str
    patience: int
    restore_best: bool
    check_learning: bool


def _plan(
    model: Model,
    dataset: Dataset,
    epochs: int,
    batch_size: int,
    validation: tuple[np.ndarray, np.ndarray] | None,
    patience: int,
    monitor: str | None,
    restore_best: bool | None,
    check_learning: bool,
) -> _Plan:
    """Refuse arguments that cannot train, before any step is taken."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if patience < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    if model.optimizer is None:
        raise ValueError("training needs a model with an optimizer")
    classify = model.output_size > 1 and (dataset.y.ndim == 1 or dataset.y.shape[1] > 1)
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
    if monitor.startswith("val_") and validation is None:
        raise ValueError(f"monitor {monitor!r} needs validation data")
    if monitor.endswith("accuracy") and not classify:
        raise ValueError(f"monitor {monitor!r} needs a classifier (class labels, > 1 output)")
    if classify and dataset.y.ndim == 1 and len(dataset):
        low, high = int(dataset.y.min()), int(dataset.y.max())
        if low < 0 or high >= model.output_size:
            raise ValueError(
                f"class labels must be in [0, {model.output_size}) for this model, "
                f"got {low}..{high}"
            )
    restore_best = patience > 0 if restore_best is None else restore_best
    return _Plan(epochs, batch_size, classify, monitor, patience, restore_best, check_learning)


class _EpochScores:
    """Keeps each batch's outputs (computed before its step) and targets; scores the epoch
    once at its end, which costs less than scoring every batch."""

    def __init__(self, n: int, n_outputs: int, y: np.ndarray, dtype: np.dtype) -> None:
        self.outputs = np.empty((n, n_outputs), dtype=dtype)
        self.targets = np.empty((n, *y.shape[1:]), dtype=y.dtype)
        self.seen = 0

    def add(self, y: np.ndarray, y_pred: np.ndarray) -> None:
        start, stop = self.seen, self.seen + len(y_pred)
        self.outputs[start:stop] = y_pred
        self.targets[start:stop] = y
        self.seen = stop

    def result(self, loss: Loss, classify: bool) -> tuple[float, float | None]:
        """The epoch's mean loss and (for a classifier) accuracy; restarts the collection."""
        outputs, targets = self.outputs[: self.seen], self.targets[: self.seen]
        self.seen = 0
        mean_loss = loss(targets, outputs)
        return mean_loss, accuracy(targets, outputs) if classify else None


class _BestEpoch:
    """Follows one figure of the epoch records; keeps the weights of its best epoch."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.sign = 1.0 if monitor.endswith("loss") else -1.0  # lower loss, higher accuracy
        self.best = np.inf
        self.epoch: int | None = None
        self.weights: np.ndarray | None = None
        self.epochs_since = 0

    def update(self, record: EpochRecord, model: Model) -> None:
        value = self.sign * getattr(record, self.monitor)
        if value < self.best:
            self.best, self.epoch, self.epochs_since = value, record.epoch, 0
            self.weights = model.get_weights()
        else:
            self.epochs_since += 1


def _train_epoch(
    model: Model, dataset: Dataset, plan: _Plan, scores: _EpochScores, first_loss: list[float]
) -> tuple[float, float | None]:
    """One pass over ``dataset``: the epoch's training loss and accuracy.

    ``first_loss`` receives the loss of the very first batch, scored before any step.
    """
    # Divergence is reported once per epoch by the caller, not as a warning per batch.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for x, y in dataset.get_batches(plan.batch_size):
            y_pred = model.fit_batch(x, y)
            if not first_loss:
                first_loss.append(model.compute_loss(y, y_pred))
            scores.add(y, y_pred)
        result = scores.result(model.loss, plan.classify)
    model.optimizer.flush_subnormals()
    return result


def _check_finite(model: Model, loss: float, epoch: int, epochs: int) -> None:
    weights_finite = bool(np.isfinite(model.parameters[0]).all())
    if np.isfinite(loss) and weights_finite:
        return
    weights = "are finite" if weights_finite else "are no longer finite"
    raise NonFiniteLossError(
        f"training diverged in epoch {epoch}/{epochs}: the training loss is {loss} "
        f"and the weights {weights}; a smaller learning rate usually helps"
    )


def _check_loss_rise(loss: float, first_loss: float, epoch: int, epochs: int) -> None:
    if loss > LOSS_RISE_LIMIT * first_loss:
        raise NotLearningError(
            f"training is not learning: the training loss rose from {first_loss:.4g} before "
            f"training to {loss:.4g} in epoch {epoch}/{epochs}; a smaller learning rate "
            "usually helps"
        )


def chance_accuracy(labels: np.ndarray) -> float:
    """The accuracy of always answering the most frequent class of ``labels`` ``(n,)``."""
    labels = as_labels(labels)
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def chance_loss(labels: np.ndarray) -> float:
    """The mean cross-entropy of answering the class frequencies of ``labels`` ``(n,)`` for
    every sample: their entropy, in nats."""
    counts = np.bincount(as_labels(labels))
    frequencies = counts[counts > 0] / len(labels)
    return float(-(frequencies * np.log(frequencies)).sum())


def _check_better_than_chance(
    history: History, plan: _Plan, labels: np.ndarray, split: str
) -> None:
    """Refuse a classifier that is no better than chance by both its scores: its accuracy
    within a few standard errors of the most common class's share, and its loss no lower
    than that of answering the class frequencies. (On a small split the accuracy alone
    cannot tell a weak model from one that learned nothing; the loss can.)"""
    kept = history.best_epoch if plan.restore_best and history.best_epoch else len(history.epochs)
    record = history.epochs[kept - 1]  # the epoch whose weights the model ends with
    validation = split == "validation"
    reached = record.val_accuracy if validation else record.accuracy
    loss = record.val_loss if validation else record.loss
    if not len(labels) or reached is None or loss is None:
        return
    chance = chance_accuracy(labels)
    margin = CHANCE_STANDARD_ERRORS * math.sqrt(chance * (1 - chance) / len(labels))
    constant = chance_loss(labels)
    if reached <= chance + margin and loss >= CHANCE_LOSS_FRACTION * constant:
        raise NotLearningError(
            f"training did not learn: after {len(history.epochs)} epochs the {split} "
            f"accuracy {reached:.4f} is within the sampling error ({margin:.4f} over "
            f"{len(labels)} images) of always answering the most common class ({chance:.4f}), "
            f"and the {split} loss {loss:.4g} is no lower than that of answering the class "
            f"frequencies ({constant:.4g}); try another learning rate, more epochs, or check "
            "that the labels match the images"
        )


def training_loop(
    model: Model,
    dataset: Dataset,
    epochs: int,
    batch_size: int,
    learning_rate: float | None = None,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int = 0,
    monitor: str | None = None,
    restore_best: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
    check_learning: bool = False,
) -> History:
    """Train ``model`` on ``dataset`` for up to ``epochs`` epochs of ``batch_size`` batches.

    Each batch: forward, loss, backward (gradients + optimizer step), as in the blog post
    (``Model.fit_batch``). ``learning_rate`` replaces the optimizer's if given.

    Parameters
    ----------
    validation : (X_val, y_val), optional
        Scored after every epoch.
    patience : int
        If > 0, stop after ``patience`` epochs in which ``monitor`` did not improve.
    monitor : {"val_loss", "val_accuracy", "loss", "accuracy"}, optional
        The figure that defines the best epoch; default ``val_loss``, or ``loss``
        without validation data.
    restore_best : bool, optional
        End with the weights of the best epoch instead of the last one. Default:
        True when ``patience`` > 0 (early stopping), else False.
    on_epoch_end : callable(record, epochs), optional
        Called after each epoch, e.g. to log or advance a progress bar.
    check_learning : bool, default False
        Raise NotLearningError when an epoch's training loss rises above twice the loss
        before training, or when a classifier ends no better than chance: on the
        validation data if given, its accuracy within three standard errors of always
        answering the most common class, and its loss above 95% of that of answering the
        class frequencies.

    Raises NonFiniteLossError as soon as an epoch ends with a NaN/inf loss or weights.
    """
    plan = _plan(
        model,
        dataset,
        epochs,
        batch_size,
        validation,
        patience,
        monitor,
        restore_best,
        check_learning,
    )
    if learning_rate is not None:
        model.optimizer.learning_rate = learning_rate
    best = _BestEpoch(plan.monitor) if plan.patience or plan.restore_best else None
    history = History()
    first_loss: list[float] = []
    scores = _EpochScores(len(dataset), model.output_size, dataset.y, model.dtype)

    for epoch in range(1, plan.epochs + 1):
        started = time.perf_counter()
        loss, train_accuracy = _train_epoch(model, dataset, plan, scores, first_loss)
        seconds = time.perf_counter() - started
        _check_finite(model, loss, epoch, plan.epochs)
        if plan.check_learning:
            _check_loss_rise(loss, first_loss[0], epoch, plan.epochs)

        val_loss = val_accuracy = None
        if validation is not None:
            probs = model.predict(validation[0])
            val_loss = model.compute_loss(validation[1], probs)
            val_accuracy = accuracy(validation[1], probs) if plan.classify else None
        rate = model.optimizer.last_learning_rate
        record = EpochRecord(epoch, loss, train_accuracy, val_loss, val_accuracy, rate, seconds)
        history.epochs.append(record)
        if on_epoch_end is not None:
            on_epoch_end(record, plan.epochs)

        if best is None:
            continue
        best.update(record, model)
        history.best_epoch = best.epoch
        if plan.patience and best.epochs_since >= plan.patience:
            history.stopped_early = True
            logger.info(
                "early stop after epoch %d: %s has not improved for %d epochs",
                epoch,
                plan.monitor,
                plan.patience,
            )
            break
    if plan.restore_best and best is not None and best.weights is not None:
        model.set_weights(best.weights)
        logger.info("keeping the weights of epoch %d, the best by %s", best.epoch, plan.monitor)
    if plan.check_learning and plan.classify:
        labels, split = (validation[1], "validation") if validation else (dataset.y, "training")
        _check_better_than_chance(history, plan, labels, split)
    return history
