"""nnlib against scikit-learn: MLP forward pass vs MLPClassifier, metrics vs sklearn.metrics.

An MLPClassifier is fitted for one iteration on tiny data (only to make it build its
arrays), then given nnlib's weights: sklearn's coefs_ have nnlib's (in, out) layout.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from support.models import classifier, random_biases

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the reference for these tests")

from sklearn import metrics as skm  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

import nnlib  # noqa: E402
from nnlib import (  # noqa: E402
    Identity,
    Model,
    ReLU,
    Sigmoid,
    Tanh,
)

SK_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "logistic": Sigmoid, "identity": Identity}
SIZES = [5, 7, 4, 3]


def nnlib_model(activation: str, dtype: type, seed: int = 0) -> Model:
    """The net of SIZES with scikit-learn's ``activation`` and random biases."""
    rng = np.random.default_rng(seed)
    model = classifier(SIZES, SK_ACTIVATIONS[activation], rng=rng, dtype=dtype)
    return random_biases(model, rng, 0.5)


def sklearn_twin(model: Model, activation: str) -> MLPClassifier:
    """An MLPClassifier holding ``model``'s weights (in float64)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, SIZES[0]))
    y = np.arange(30) % SIZES[-1]
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(SIZES[1:-1]), activation=activation, max_iter=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    assert clf.out_activation_ == "softmax"
    for i, layer in enumerate(model.layers):
        assert clf.coefs_[i].shape == layer.weights.shape
        clf.coefs_[i] = layer.weights.astype(np.float64)
        clf.intercepts_[i] = layer.biases.astype(np.float64)
    return clf


@pytest.mark.parametrize("activation", list(SK_ACTIVATIONS))
def test_predict_matches_mlpclassifier_predict_proba(activation: str) -> None:
    """Same weights -> model.predict and model.forward equal MLPClassifier.predict_proba."""
    model = nnlib_model(activation, np.float64)
    clf = sklearn_twin(model, activation)
    x = np.random.default_rng(2).normal(size=(50, SIZES[0]))
    expected = clf.predict_proba(x)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(model.predict(x).argmax(axis=1), clf.predict(x))


@pytest.mark.parametrize("activation", list(SK_ACTIVATIONS))
def test_float32_predict_matches_mlpclassifier(activation: str) -> None:
    """A float32 model agrees with sklearn (float64, same rounded weights) to float32 precision."""
    model = nnlib_model(activation, np.float32)
    clf = sklearn_twin(model, activation)
    x = np.random.default_rng(3).normal(size=(50, SIZES[0]))
    probs = model.predict(x)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, clf.predict_proba(x), rtol=1e-5, atol=1e-6)


def test_predict_in_chunks_equals_one_pass() -> None:
    """predict(batch_size=...) splits into chunks and reassembles every row in place.

    Not bit-for-bit: BLAS may round a row differently inside a matrix of another height.
    """
    model = nnlib_model("tanh", np.float64)
    x = np.random.default_rng(4).normal(size=(23, SIZES[0]))
    whole = model.predict(x, batch_size=1000)
    for batch_size in (1, 5, 22, 23):
        np.testing.assert_allclose(model.predict(x, batch_size=batch_size), whole, rtol=1e-13)
    np.testing.assert_allclose(model.forward(x), whole, rtol=1e-13)


# --------------------------------------------------------------------------- metrics


def predictions(seed: int, n: int = 200, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities that are right a bit over half of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    probs = np.exp(logits)
    return y, probs / probs.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed: int) -> None:
    """accuracy, log_loss, confusion_matrix and per-class/macro P/R/F1 equal sklearn's."""
    y, probs = predictions(seed)
    k = probs.shape[1]
    labels = list(range(k))
    predicted = probs.argmax(axis=1)
    assert nnlib.accuracy(y, probs) == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-15)
    assert nnlib.log_loss(y, probs) == pytest.approx(skm.log_loss(y, probs, labels=labels), 1e-12)
    np.testing.assert_array_equal(
        nnlib.confusion_matrix(y, probs, k), skm.confusion_matrix(y, predicted, labels=labels)
    )
    scores = nnlib.class_scores(y, probs, k)
    p, r, f, s = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, average=None, zero_division=0
    )
    np.testing.assert_allclose(scores.precision, p, rtol=1e-14)
    np.testing.assert_allclose(scores.recall, r, rtol=1e-14)
    np.testing.assert_allclose(scores.f1, f, rtol=1e-14)
    np.testing.assert_array_equal(scores.support, s)
    mp, mr, mf, _ = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, average="macro", zero_division=0
    )
    assert scores.macro_precision == pytest.approx(mp, rel=1e-14)
    assert scores.macro_recall == pytest.approx(mr, rel=1e-14)
    assert scores.macro_f1 == pytest.approx(mf, rel=1e-14)


def test_metrics_of_model_predictions_match_sklearn() -> None:
    """The same agreement on a model's own predictions (float32 probabilities)."""
    model = nnlib_model("relu", np.float32)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, SIZES[0]))
    y = rng.integers(0, SIZES[-1], size=120)
    probs = model.predict(x)
    predicted = probs.argmax(axis=1)
    labels = list(range(SIZES[-1]))
    assert nnlib.accuracy(y, probs) == pytest.approx(skm.accuracy_score(y, predicted))
    assert nnlib.log_loss(y, probs) == pytest.approx(
        skm.log_loss(y, probs, labels=labels), rel=1e-5
    )
    np.testing.assert_array_equal(
        nnlib.confusion_matrix(y, probs, SIZES[-1]),
        skm.confusion_matrix(y, predicted, labels=labels),
    )
    _, _, f, _ = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, average=None, zero_division=0
    )
    np.testing.assert_allclose(nnlib.class_scores(y, probs, SIZES[-1]).f1, f, rtol=1e-12)


def test_class_never_predicted_matches_sklearn_zero_division() -> None:
    """A class that is never predicted scores precision 0 (no NaN, no warning), as sklearn's
    zero_division=0; a class never present scores recall 0."""
    y = np.array([0, 0, 1, 1, 2, 2, 0])
    predicted = np.array([0, 1, 1, 1, 0, 0, 3])  # class 2 never predicted, 3 never present
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = nnlib.class_scores(y, predicted, n_classes=4)
    for values in (scores.precision, scores.recall, scores.f1):
        assert np.isfinite(values).all()
    p, r, f, s = skm.precision_recall_fscore_support(
        y, predicted, labels=[0, 1, 2, 3], average=None, zero_division=0
    )
    np.testing.assert_allclose(scores.precision, p)
    np.testing.assert_allclose(scores.recall, r)
    np.testing.assert_allclose(scores.f1, f)
    np.testing.assert_array_equal(scores.support, s)
    assert scores.precision[2] == 0.0
    assert scores.recall[3] == 0.0
