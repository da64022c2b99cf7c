"""The training loop of the seed post, with validation, early stopping and a history."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nnlib.data import Dataset
from nnlib.errors import NonFiniteLossError
from nnlib.metrics import accuracy, as_labels
from nnlib.model import Model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's figures. ``loss``/``accuracy`` are over the epoch's training batches,
    each sample scored by the weights it was trained from (as the seed post logs them);
    the ``val_`` figures score the whole validation set after the epoch."""

    epoch: int
    loss: float
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass
class History:
    """Per-epoch records; ``best_epoch`` when a best epoch was tracked (early stopping or
    ``restore_best``)."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False


EpochCallback = Callable[[EpochRecord, int], None]


class _EpochScores:
    """Collects each sample's loss and predicted class during an epoch, reduced once at the end."""

    def __init__(self, n: int, dtype: np.dtype, classify: bool) -> None:
        self.losses = np.empty(n, dtype=dtype)
        self.classify = classify
        self.predicted = np.empty(n, dtype=np.intp) if classify else None
        self.truth = np.empty(n, dtype=np.intp) if classify else None
        self.seen = 0

    def add(self, per_sample_loss: np.ndarray, y: np.ndarray, y_pred: np.ndarray) -> None:
        start, stop = self.seen, self.seen + len(y_pred)
        self.losses[start:stop] = per_sample_loss
        if self.classify:
            y_pred.argmax(axis=1, out=self.predicted[start:stop])
            self.truth[start:stop] = as_labels(y)
        self.seen = stop

    def result(self) -> tuple[float, float | None]:
        loss = float(self.losses[: self.seen].mean(dtype=np.float64))
        if not self.classify:
            return loss, None
        hits = self.predicted[: self.seen] == self.truth[: self.seen]
        return loss, float(hits.mean())


MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


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


def _check_finite(model: Model, loss: float, epoch: int, epochs: int) -> None:
    weights_finite = bool(np.isfinite(model.parameters[0]).all())
    if np.isfinite(loss) and weights_finite:
        return
    weights = "are finite" if weights_finite else "are no longer finite"
    raise NonFiniteLossError(
        f"training diverged in epoch {epoch}/{epochs}: the training loss is {loss} "
        f"and the weights {weights}; a smaller learning rate usually helps"
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
) -> History:
    """Train ``model`` on ``dataset`` for up to ``epochs`` epochs of ``batch_size`` batches.

    Each batch: forward, loss, backward (gradients + optimizer step), as in the
    seed post. ``learning_rate`` replaces the optimizer's if given.

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

    Raises NonFiniteLossError as soon as an epoch ends with a NaN/inf loss or weights.
    """
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
    best = _BestEpoch(monitor) if patience or restore_best else None
    if learning_rate is not None:
        model.optimizer.learning_rate = learning_rate
    history = History()

    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        scores = _EpochScores(len(dataset), model.dtype, classify)
        # Divergence is reported once per epoch below, not as a warning per batch.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for x, y in dataset.get_batches(batch_size):
                y_pred = model.forward(x)
                scores.add(model.loss.per_sample(y, y_pred), y, y_pred)
                model.backward(y, y_pred)
        loss, train_accuracy = scores.result()
        seconds = time.perf_counter() - started
        _check_finite(model, loss, epoch, epochs)

        val_loss = val_accuracy = None
        if validation is not None:
            probs = model.predict(validation[0])
            val_loss = model.compute_loss(validation[1], probs)
            val_accuracy = accuracy(validation[1], probs) if classify else None
        record = EpochRecord(epoch, loss, train_accuracy, val_loss, val_accuracy, seconds)
        history.epochs.append(record)
        if on_epoch_end is not None:
            on_epoch_end(record, epochs)

        if best is None:
            continue
        best.update(record, model)
        history.best_epoch = best.epoch
        if patience and best.epochs_since >= patience:
            history.stopped_early = True
            logger.info(
                "early stop after epoch %d: %s has not improved for %d epochs",
                epoch,
                monitor,
                patience,
            )
            break
    if restore_best and best is not None and best.weights is not None:
        model.set_weights(best.weights)
        logger.info("keeping the weights of epoch %d, the best by %s", best.epoch, monitor)
    return history
