"""Backpropagation checked against central finite differences on tiny float64 nets.

Every hidden activation x every (output activation, loss, target kind), for every
weight and bias and for dL/dx through a 3-layer model, and through a dropout layer.
Parameters (biases too) are set to random values so no gradient is trivially zero, and
inputs are checked to keep every ReLU pre-activation well away from its kink.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from support import nnlib_reference as ref
from support.models import ReplayedUniforms, classifier, random_parameters

from nnlib import (
    SGD,
    CrossEntropyLoss,
    DenseLayer,
    Dropout,
    Identity,
    LeakyReLU,
    MeanSquaredError,
    Model,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from nnlib.activations import Activation
from nnlib.losses import Loss

EPS = 1e-6  # finite-difference step
KINK_MARGIN = 1e-3  # no ReLU pre-activation closer than this to 0 (the step moves z by ~1e-6)
RTOL, ATOL = 1e-6, 1e-9  # per entry; gradients here are O(0.01..1)

HIDDEN: dict[str, Callable[[], Activation]] = {
    "relu": ReLU,
    "leaky_relu": lambda: LeakyReLU(0.1),
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
}

# (output activation, loss, target kind); "labels" = integer classes, "onehot" = one-hot
# rows, "real" = arbitrary real targets. CE on Softmax takes nnlib's fused (p - y)/n path;
# every other pair goes through loss.gradient and the output activation's backward.
HEADS: dict[str, tuple[Callable[[], Activation], Callable[[], Loss], str]] = {
    "softmax-ce-labels": (Softmax, CrossEntropyLoss, "labels"),
    "softmax-ce-onehot": (Softmax, CrossEntropyLoss, "onehot"),
    "softmax-ce-soft": (Softmax, CrossEntropyLoss, "soft"),
    "softmax-mse-onehot": (Softmax, MeanSquaredError, "onehot"),
    "softmax-mse-labels": (Softmax, MeanSquaredError, "labels"),
    "identity-mse-real": (Identity, MeanSquaredError, "real"),
    "sigmoid-mse-real": (Sigmoid, MeanSquaredError, "real"),
    "tanh-mse-real": (Tanh, MeanSquaredError, "real"),
    "sigmoid-ce-onehot": (Sigmoid, CrossEntropyLoss, "onehot"),
}


def make_targets(kind: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.arange(n) % k  # every class present
    rng.shuffle(labels)
    if kind == "labels":
        return labels
    if kind == "onehot":
        return ref.one_hot(labels, k)
    if kind == "soft":  # probability rows (label smoothing-like targets)
        return ref.softmax(rng.normal(size=(n, k)))
    return rng.normal(size=(n, k))


def assert_away_from_kinks(model: Model, x: np.ndarray) -> None:
    """No pre-activation of a ReLU-like layer lies within KINK_MARGIN of 0."""
    h = np.asarray(x, np.float64)
    for layer in model.layers:
        z = h @ layer.weights + layer.biases
        if isinstance(layer.activation, (ReLU, LeakyReLU)):
            assert np.abs(z).min() > KINK_MARGIN, "test data too close to a ReLU kink"
        h = layer.activation.forward(z.copy())


def build_case(
    hidden_name: str, head_name: str, sizes: list[int], seed: int
) -> tuple[Model, np.ndarray, np.ndarray]:
    head, loss_cls, kind = HEADS[head_name]
    # Seeds are fixed per case; a few are skipped forward if one lands near a kink.
    for attempt in range(20):
        rng = np.random.default_rng([seed, attempt])
        model = classifier(
            sizes, HIDDEN[hidden_name], head, loss=loss_cls(), rng=rng, dtype=np.float64
        )
        # Random biases too (they start at zero), moderate scale so sigmoids are not saturated.
        random_parameters(model, rng, 0.6)
        x = rng.normal(size=(7, sizes[0]))
        y = make_targets(kind, 7, sizes[-1], rng)
        try:
            assert_away_from_kinks(model, x)
        except AssertionError:
            continue
        return model, x, y
    raise AssertionError("could not draw test data away from ReLU kinks")


def loss_at(model: Model, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    return lambda: model.compute_loss(y, model.forward(x))


def assert_gradients_close(analytic: np.ndarray, numeric: np.ndarray) -> None:
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL)
    # and the global relative error (the usual gradient-check criterion), which no atol can
    # hide behind
    rel = np.linalg.norm(analytic - numeric) / max(
        np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300
    )
    assert rel < 1e-7


@pytest.mark.parametrize("head_name", list(HEADS))
@pytest.mark.parametrize("hidden_name", list(HIDDEN))
def test_parameter_gradients_match_finite_differences(hidden_name: str, head_name: str) -> None:
    """dL/dW and dL/db of every layer equal central differences of the batch-mean loss."""
    model, x, y = build_case(hidden_name, head_name, [4, 5, 3], seed=11)
    y_pred = model.forward(x)
    assert model.compute_gradients(y, y_pred) is None  # no input gradient unless asked
    analytic = [(layer.grad_weights.copy(), layer.grad_biases.copy()) for layer in model.layers]
    f = loss_at(model, x, y)
    for layer, (grad_w, grad_b) in zip(model.layers, analytic, strict=True):
        # perturb through the layer's own views, so this also checks the flat packing
        assert_gradients_close(grad_w, ref.numerical_gradient(f, layer.weights, EPS))
        assert_gradients_close(grad_b, ref.numerical_gradient(f, layer.biases, EPS))


@pytest.mark.parametrize("head_name", list(HEADS))
@pytest.mark.parametrize("hidden_name", list(HIDDEN))
def test_input_gradient_of_three_layer_model(hidden_name: str, head_name: str) -> None:
    """compute_gradients(input_gradient=True) returns dL/dx of the whole 3-layer chain."""
    model, x, y = build_case(hidden_name, head_name, [4, 6, 5, 3], seed=23)
    y_pred = model.forward(x)
    grad_x = model.compute_gradients(y, y_pred, input_gradient=True)
    assert grad_x is not None
    assert grad_x.shape == x.shape
    numeric = ref.numerical_gradient(loss_at(model, x, y), x, EPS)
    assert_gradients_close(grad_x, numeric)


def test_flat_gradient_layout_matches_layers() -> None:
    """model.gradients[0] is every layer's weights (row-major) then biases, in layer order."""
    model, x, y = build_case("tanh", "softmax-ce-labels", [4, 6, 5, 3], seed=5)
    model.compute_gradients(y, model.forward(x))
    expected = np.concatenate(
        [np.concatenate([lay.grad_weights.ravel(), lay.grad_biases]) for lay in model.layers]
    )
    np.testing.assert_array_equal(model.gradients[0], expected)
    params = np.concatenate(
        [np.concatenate([lay.weights.ravel(), lay.biases]) for lay in model.layers]
    )
    np.testing.assert_array_equal(model.parameters[0], params)


def test_full_flat_gradient_matches_finite_differences() -> None:
    """Perturbing the flat parameter vector itself gives the flat gradient vector."""
    model, x, y = build_case("sigmoid", "softmax-mse-onehot", [3, 4, 4, 2], seed=3)
    model.compute_gradients(y, model.forward(x))
    analytic = model.gradients[0].copy()
    numeric = ref.numerical_gradient(loss_at(model, x, y), model.parameters[0], EPS)
    assert_gradients_close(analytic, numeric)


@pytest.mark.parametrize("head_name", ["softmax-ce-labels", "identity-mse-real"])
def test_backward_is_gradient_then_step(head_name: str) -> None:
    """model.backward(y, y_pred, lr) with plain SGD moves params by exactly -lr * dL/dp."""
    model, x, y = build_case("tanh", head_name, [4, 5, 3], seed=17)
    numeric = ref.numerical_gradient(loss_at(model, x, y), model.parameters[0], EPS)
    before = model.get_weights()
    model.optimizer = SGD(learning_rate=1.0)
    model.backward(y, model.forward(x), learning_rate=0.05)
    np.testing.assert_allclose(model.parameters[0], before - 0.05 * numeric, rtol=1e-9, atol=1e-10)
    assert model.optimizer.learning_rate == 0.05


@pytest.mark.parametrize("hidden_name", ["relu", "tanh"])
def test_gradients_through_dropout_match_finite_differences(hidden_name: str) -> None:
    """With its mask held fixed, a Dropout layer between dense layers passes exact
    gradients: every parameter's and the input's, against central differences."""
    model, x, y = build_case(hidden_name, "softmax-ce-labels", [4, 6, 5, 3], seed=29)
    uniforms = np.random.default_rng(3).random((len(x), 6))
    dropout = Dropout(0.4, rng=ReplayedUniforms(uniforms))
    layers = [model.layers[0], dropout, model.layers[1], model.layers[2]]
    model = Model(layers, model.loss)
    grad_x = model.compute_gradients(y, model.forward(x), input_gradient=True)
    assert dropout.mask is not None
    assert 0 < (dropout.mask == 0).sum() < dropout.mask.size  # some dropped, some kept
    analytic = [
        (layer.grad_weights.copy(), layer.grad_biases.copy())
        for layer in model.layers
        if isinstance(layer, DenseLayer)
    ]
    f = loss_at(model, x, y)
    dense = [layer for layer in model.layers if isinstance(layer, DenseLayer)]
    for layer, (grad_w, grad_b) in zip(dense, analytic, strict=True):
        assert_gradients_close(grad_w, ref.numerical_gradient(f, layer.weights, EPS))
        assert_gradients_close(grad_b, ref.numerical_gradient(f, layer.biases, EPS))
    assert_gradients_close(grad_x, ref.numerical_gradient(f, x, EPS))
