"""nnlib.metrics on small cases whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nnlib import accuracy, class_scores, confusion_matrix, log_loss
from nnlib.metrics import as_labels


def test_accuracy_accepts_labels_onehot_and_probabilities() -> None:
    """accuracy compares argmaxes: one-hot y with probability y_pred, or plain labels."""
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3)[labels]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    # predicted 0, 2, 0, 2: three of four right
    assert accuracy(onehot, probs) == 0.75
    assert accuracy(labels, probs) == 0.75
    assert accuracy(labels, np.array([0, 2, 0, 2])) == 0.75
    assert type(accuracy(labels, probs)) is float  # not numpy's float64, a float subclass


def test_accuracy_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="labels"):
        accuracy(np.array([0, 1, 2]), np.array([0, 1]))


def test_confusion_matrix_counts_by_hand() -> None:
    """Rows are true classes, columns predicted classes."""
    y = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(y, predicted), expected)
    padded = confusion_matrix(y, predicted, n_classes=4)
    assert padded.shape == (4, 4)
    np.testing.assert_array_equal(padded[:3, :3], expected)
    assert padded[3].sum() == padded[:, 3].sum() == 0


def test_confusion_matrix_refuses_labels_outside_n_classes() -> None:
    """A label >= n_classes must not be silently counted in another cell.

    With n_classes=3, true 0 / predicted 3 becomes flat index 0 * 3 + 3 = 3, i.e. the cell
    (true 1, predicted 0): a sample that never existed. It should raise instead.
    """
    with pytest.raises(ValueError, match=r"class|label"):
        confusion_matrix(np.array([0, 1]), np.array([3, 1]), n_classes=3)


def test_class_scores_by_hand() -> None:
    """Precision = TP / predicted, recall = TP / present, F1 their harmonic mean."""
    y = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    scores = class_scores(y, predicted)
    np.testing.assert_allclose(scores.precision, [1 / 2, 1 / 2, 1.0])
    np.testing.assert_allclose(scores.recall, [1 / 2, 1.0, 2 / 3])
    np.testing.assert_allclose(scores.f1, [1 / 2, 2 / 3, 0.8])
    np.testing.assert_array_equal(scores.support, [2, 1, 3])
    assert scores.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_log_loss_by_hand() -> None:
    """Mean of -log p[true]: -(log 0.5 + log 0.25) / 2."""
    probs = np.array([[0.5, 0.5], [0.75, 0.25]])
    assert log_loss(np.array([0, 1]), probs) == pytest.approx(-(np.log(0.5) + np.log(0.25)) / 2)
    assert log_loss(np.eye(2)[[0, 1]], probs) == pytest.approx(-(np.log(0.5) + np.log(0.25)) / 2)


def test_a_single_probability_column_is_a_binary_prediction() -> None:
    probs = np.array([[0.2], [0.7], [0.5]], np.float32)
    np.testing.assert_array_equal(as_labels(probs), [0, 1, 1])
    assert accuracy(np.array([0, 1, 0]), probs) == pytest.approx(2 / 3)
