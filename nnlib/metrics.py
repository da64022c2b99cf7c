"""Classification metrics on integer labels or probability rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlib.losses import CrossEntropyLoss


def as_labels(y: np.ndarray) -> np.ndarray:
    """Integer labels ``(n,)`` from labels, one-hot rows or probabilities ``(n, k)``.

    A single column ``(n, 1)`` is a binary probability: class 1 where it is >= 0.5.
    """
    y = np.asarray(y)
    if y.ndim != 2:
        return y
    if y.shape[1] == 1:
        return (y[:, 0] >= 0.5).astype(np.intp)
    return y.argmax(axis=1)


def accuracy(y: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples whose predicted class (argmax of ``y_pred``) is the true one."""
    truth, predicted = as_labels(y), as_labels(y_pred)
    if truth.shape != predicted.shape:
        raise ValueError(f"{len(truth)} labels for {len(predicted)} predictions")
    return float(np.mean(truth == predicted))


def log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean cross-entropy of probabilities ``(n, k)`` against labels or one-hot rows."""
    return CrossEntropyLoss()(y, probs)


def confusion_matrix(y: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """``(k, k)`` counts: row = true class, column = predicted class."""
    truth, predicted = as_labels(y), as_labels(y_pred)
    if truth.shape != predicted.shape:
        raise ValueError(f"{len(truth)} labels for {len(predicted)} predictions")
    if n_classes is None:
        n_classes = int(max(truth.max(initial=0), predicted.max(initial=0))) + 1
    for name, labels in (("true", truth), ("predicted", predicted)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(
                f"{name} labels must be in [0, {n_classes}), got {labels.min()}..{labels.max()}"
            )
    flat = truth.astype(np.int64) * n_classes + predicted
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall (= per-class accuracy) and F1, each ``(k,)``, and macro means.

    A class never predicted (or never present) scores 0 where its denominator is 0.
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def macro_precision(self) -> float:
        return float(self.precision.mean())

    @property
    def macro_recall(self) -> float:
        return float(self.recall.mean())

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def class_scores(y: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> ClassScores:
    """Precision, recall and F1 per class from labels or probabilities."""
    counts = confusion_matrix(y, y_pred, n_classes).astype(np.float64)
    hits = np.diag(counts)
    precision = _safe_divide(hits, counts.sum(axis=0))
    recall = _safe_divide(hits, counts.sum(axis=1))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return ClassScores(precision, recall, f1, counts.sum(axis=1).astype(np.int64))
