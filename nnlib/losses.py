"""Loss functions: the mean over the batch of a per-sample loss.

Targets ``y`` are integer class labels ``(n,)`` or one-hot / real targets ``(n, k)``;
predictions ``y_pred`` are ``(n, k)``.
"""

from __future__ import annotations

import functools

import numpy as np


def one_hot(labels: np.ndarray, n_classes: int, dtype: np.typing.DTypeLike) -> np.ndarray:
    """``(n,)`` integer labels -> ``(n, n_classes)`` one-hot rows of ``dtype``."""
    encoded = np.zeros((len(labels), n_classes), dtype=dtype)
    encoded[np.arange(len(labels)), labels] = 1
    return encoded


@functools.lru_cache(maxsize=8)
def _rows(n: int) -> np.ndarray:
    """``arange(n)``, made once per batch size: it indexes each row's true class."""
    rows = np.arange(n)
    rows.flags.writeable = False
    return rows


@functools.lru_cache(maxsize=8)
def _row_starts(n: int, k: int) -> np.ndarray:
    """``k * arange(n)``: where each row of an ``(n, k)`` array starts in its flat view."""
    starts = np.arange(n) * k
    starts.flags.writeable = False
    return starts


def _check_targets(y: np.ndarray, y_pred: np.ndarray) -> None:
    if y.ndim == 1:
        if len(y) != len(y_pred):
            raise ValueError(f"{len(y)} labels for {len(y_pred)} predictions")
    elif y.shape != y_pred.shape:
        raise ValueError(f"targets of shape {y.shape} for predictions of shape {y_pred.shape}")


class Loss:
    """Base class: ``per_sample``, its mean via ``__call__``, and ``gradient`` w.r.t. y_pred."""

    name: str = ""

    def per_sample(self, y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """``(n,)`` losses, in y_pred's dtype."""
        raise NotImplementedError

    def __call__(self, y: np.ndarray, y_pred: np.ndarray) -> float:
        # reduced in float64, as the training loop reduces an epoch's losses
        return float(self.per_sample(y, y_pred).mean(dtype=np.float64))

    def gradient(
        self, y: np.ndarray, y_pred: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """dL/dy_pred ``(n, k)`` of the batch-mean loss."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropyLoss(Loss):
    """Mean of ``-log p[true class]`` (or ``-sum(y * log p)`` for one-hot rows).

    Probabilities are clipped below at the dtype's eps before the log, so a
    confident mistake costs ``-log(eps)`` instead of infinity.
    """

    name = "cross_entropy"

    def per_sample(self, y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        _check_targets(y, y_pred)
        eps = np.finfo(y_pred.dtype).eps
        if y.ndim == 1:
            p_true = y_pred[_rows(len(y)), y]
            return np.negative(np.log(np.maximum(p_true, eps, out=p_true), out=p_true), out=p_true)
        return -np.einsum(
            "ij,ij->i", y.astype(y_pred.dtype, copy=False), np.log(np.maximum(y_pred, eps))
        )

    def gradient(
        self, y: np.ndarray, y_pred: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        y = np.asarray(y)
        _check_targets(y, y_pred)
        if y.ndim == 1:
            targets = one_hot(y, y_pred.shape[1], y_pred.dtype)
        else:
            targets = y.astype(y_pred.dtype, copy=False)
        eps = np.finfo(y_pred.dtype).eps
        grad = np.divide(targets, np.maximum(y_pred, eps), out=out)
        grad *= -1 / len(y_pred)
        return grad

    def softmax_gradient(
        self, y: np.ndarray, probs: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """dL/dz for ``probs = softmax(z)``: the fused ``(p - y) / n``."""
        n = len(probs)
        scale = probs.dtype.type(1 / n)
        grad = np.multiply(probs, scale, out=out)
        if y.ndim == 1 and grad.flags.c_contiguous:
            # through the flat view: 0.7 us less than grad[rows, y] at batch 32
            flat = grad.reshape(-1)
            flat[_row_starts(n, grad.shape[1]) + y] -= scale
        elif y.ndim == 1:
            grad[_rows(n), y] -= scale
        else:
            grad -= y * scale
        return grad


class MeanSquaredError(Loss):
    """Mean over the batch of the per-sample mean squared error (torch's ``MSELoss``).

    Integer labels are compared as one-hot rows.
    """

    name = "mean_squared_error"

    @staticmethod
    def _targets(y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        _check_targets(y, y_pred)
        if y.ndim == 1:
            return one_hot(y, y_pred.shape[1], y_pred.dtype)
        return y.astype(y_pred.dtype, copy=False)

    def per_sample(self, y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        diff = y_pred - self._targets(y, y_pred)
        return np.einsum("ij,ij->i", diff, diff) / diff.dtype.type(diff.shape[1])

    def gradient(
        self, y: np.ndarray, y_pred: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        grad = np.subtract(y_pred, self._targets(y, y_pred), out=out)
        grad *= 2 / y_pred.size
        return grad


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (CrossEntropyLoss, MeanSquaredError)}


def get_loss(name: str) -> Loss:
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}") from None
