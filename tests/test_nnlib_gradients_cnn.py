"""Backpropagation through the image layers checked against central finite differences, in
float64: every parameter and the input, through Conv2D (strides, padding, one and several
channels), MaxPool2D (overlapping windows, gaps, rows left out), Flatten and a dropout
layer after a convolution.

Inputs are checked to stay away from the points where the loss has no derivative: no ReLU
pre-activation near 0 and no window whose two largest values are close (the finite
difference step would swap them). At ties the derivative does not exist; there the
routing is checked against torch and by hand (test_nnlib_torch_cnn.py,
test_nnlib_pooling.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from support import nnlib_reference as ref
from support.models import CNN_INPUT, ReplayedUniforms, cnn_layers, random_parameters

from nnlib import (
    SGD,
    Conv2D,
    CrossEntropyLoss,
    DenseLayer,
    Dropout,
    Flatten,
    Identity,
    MaxPool2D,
    Model,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from nnlib.layers import Layer

EPS = 1e-6
MARGIN = 1e-3  # no kink closer than this (the step moves values by ~1e-6)
RTOL, ATOL = 1e-6, 1e-9


def assert_gradients_close(analytic: np.ndarray, numeric: np.ndarray) -> None:
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL)
    rel = np.linalg.norm(analytic - numeric) / max(
        np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300
    )
    assert rel < 1e-7


def assert_away_from_kinks(model: Model, x: np.ndarray) -> None:
    """Walk the layers at prediction time: ReLU convolutions' pre-activations and pooling
    windows' two largest values stay MARGIN apart. A window of a ReLU's zeros may tie: every
    value in it comes from a pre-activation below -MARGIN, where nothing has a slope."""
    h, after_relu = x, False
    for layer in model.layers:
        if isinstance(layer, Conv2D) and isinstance(layer.activation, ReLU):
            z = ref.conv2d(h, layer.weights, layer.biases, layer.stride, layer.padding)
            assert np.abs(z).min() > MARGIN, "test data too close to a ReLU kink"
        if isinstance(layer, MaxPool2D):
            k, s = layer.kernel_size, layer.stride
            _, _, rows, cols = layer.forward(h).shape
            for r in range(rows):
                for c in range(cols):
                    window = h[:, :, r * s : r * s + k, c * s : c * s + k].reshape(*h.shape[:2], -1)
                    second, first = np.moveaxis(np.sort(window, axis=-1)[..., -2:], -1, 0)
                    flat_zeros = after_relu & (first == 0)
                    assert (first - second)[~flat_zeros].min() > MARGIN, "near a tie"
        if not isinstance(layer, Dropout):
            after_relu = isinstance(layer, Conv2D) and isinstance(layer.activation, ReLU)
        h = layer.forward(h)


def checked_case(
    make_layers: Callable[[np.random.Generator], list[Layer]],
    input_shape: tuple[int, ...],
    seed: int,
    n: int = 3,
    scale: float = 0.5,
) -> tuple[Model, np.ndarray, np.ndarray]:
    """A float64 model of ``make_layers`` with random parameters (biases too) of ``scale``,
    and data away from kinks (fixed seeds, skipped forward when one lands near a kink)."""
    for attempt in range(50):
        rng = np.random.default_rng([seed, attempt])
        model = Model(make_layers(rng), CrossEntropyLoss(), input_shape=input_shape)
        random_parameters(model, rng, scale)
        x = rng.normal(size=(n, *input_shape))
        y = rng.integers(0, model.output_size, size=n)
        try:
            assert_away_from_kinks(model, x)
        except AssertionError:
            continue
        return model, x, y
    raise AssertionError("could not draw test data away from the kinks")


def assert_every_gradient_matches(model: Model, x: np.ndarray, y: np.ndarray) -> None:
    """Each layer's parameter gradients and dL/dx equal central differences of the loss."""
    grad_x = model.compute_gradients(y, model.forward(x), input_gradient=True)
    analytic = [
        {name: getattr(layer, f"grad_{name}").copy() for name in layer.named_parameters()}
        for layer in model.layers
    ]

    def loss() -> float:
        return model.compute_loss(y, model.forward(x))

    for layer, grads in zip(model.layers, analytic, strict=True):
        for name, array in layer.named_parameters().items():
            assert_gradients_close(grads[name], ref.numerical_gradient(loss, array, EPS))
    assert grad_x.shape == x.shape
    assert_gradients_close(grad_x, ref.numerical_gradient(loss, x, EPS))


# (in_channels, out_channels, kernel, stride, padding, height, width)
CONVOLUTIONS = {
    "one-channel": (1, 3, 3, 1, 0, 6, 6),
    "channels": (3, 2, 3, 1, 0, 5, 6),
    "padding": (2, 3, 3, 1, 1, 5, 5),
    "stride": (2, 2, 3, 2, 0, 7, 6),
    "stride-padding": (2, 2, 4, 3, 2, 7, 8),
    "one-channel-stride-padding": (1, 2, 2, 2, 1, 5, 6),
}
ACTIVATIONS = {"tanh": Tanh, "sigmoid": Sigmoid, "identity": Identity}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("variant", list(CONVOLUTIONS))
def test_convolution_gradients(variant: str, activation: str) -> None:
    """conv -> flatten -> dense softmax: the kernel's, the biases' and the input's."""
    c_in, c_out, k, stride, padding, height, width = CONVOLUTIONS[variant]
    conv = Conv2D(c_in, c_out, k, stride=stride, padding=padding, dtype=np.float64)
    flat = int(np.prod(conv.output_shape((c_in, height, width))))

    def make(rng: np.random.Generator) -> list[Layer]:
        return [
            Conv2D(
                c_in,
                c_out,
                k,
                stride=stride,
                padding=padding,
                activation_function=ACTIVATIONS[activation](),
                rng=rng,
                dtype=np.float64,
            ),
            Flatten(),
            DenseLayer(flat, 3, Softmax(), rng=rng, dtype=np.float64),
        ]

    model, x, y = checked_case(make, (c_in, height, width), seed=3)
    assert_every_gradient_matches(model, x, y)


# (kernel, stride or None, height, width): the conv before it keeps the size (padding 1)
POOLS = {
    "2": (2, None, 6, 6),
    "2-leaves-a-row-out": (2, None, 5, 7),
    "3-stride-2-overlapping": (3, 2, 7, 7),
    "2-stride-1-overlapping": (2, 1, 4, 5),
    "2-stride-3-gaps": (2, 3, 7, 8),
}


@pytest.mark.parametrize("variant", list(POOLS))
def test_max_pooling_gradients(variant: str) -> None:
    """conv -> max-pool -> flatten -> dense softmax, every gradient through the pool."""
    kernel, stride, height, width = POOLS[variant]
    pool = MaxPool2D(kernel, stride)
    flat = 2 * int(np.prod(pool.output_shape((2, height, width))[1:]))

    def make(rng: np.random.Generator) -> list[Layer]:
        return [
            Conv2D(2, 2, 3, padding=1, activation_function=Tanh(), rng=rng, dtype=np.float64),
            MaxPool2D(kernel, stride),
            Flatten(),
            DenseLayer(flat, 3, Softmax(), rng=rng, dtype=np.float64),
        ]

    model, x, y = checked_case(make, (2, height, width), seed=5)
    assert_every_gradient_matches(model, x, y)


def test_small_cnn_gradients() -> None:
    """The small CNN (ReLU conv, pool, conv with padding, pool leaving a row out, flatten,
    dense softmax): every parameter and the input."""

    def make(rng: np.random.Generator) -> list[Layer]:
        return cnn_layers(rng=rng, dtype=np.float64, second=Tanh)

    model, x, y = checked_case(make, CNN_INPUT, seed=7, scale=0.2)  # tanh far from saturation
    assert_every_gradient_matches(model, x, y)


def test_gradients_through_dropout_after_a_convolution() -> None:
    """With its mask held fixed, a Dropout between a conv (and its pool) and the next conv
    passes exact gradients. The mask is drawn in the memory order of the pooled batch,
    (n, H, W, C)."""
    n = 3
    uniforms = np.random.default_rng(11).random((n, 5, 5, 4))
    holder: list[Dropout] = []

    def make(rng: np.random.Generator) -> list[Layer]:
        layers = cnn_layers(rng=rng, dtype=np.float64, dropout=0.4, second=Tanh)
        holder[:] = [Dropout(0.4, rng=ReplayedUniforms(uniforms))]
        layers[2] = holder[0]
        return layers

    model, x, y = checked_case(make, CNN_INPUT, seed=13, n=n, scale=0.2)
    model.forward(x)
    mask = holder[0].mask
    assert mask is not None
    assert mask.shape == (n, 4, 5, 5)
    assert 0 < (mask == 0).sum() < mask.size  # some dropped, some kept
    np.testing.assert_array_equal(mask == 0, uniforms.transpose(0, 3, 1, 2) < 0.4)
    assert_every_gradient_matches(model, x, y)


def test_a_cnns_backward_is_its_gradient_then_a_step() -> None:
    """model.backward(y, y_pred, lr) with plain SGD moves every parameter of the CNN by
    exactly -lr * dL/dp (central differences), through the one flat vector."""

    def make(rng: np.random.Generator) -> list[Layer]:
        return cnn_layers(rng=rng, dtype=np.float64, second=Tanh)

    model, x, y = checked_case(make, CNN_INPUT, seed=17, scale=0.2)
    numeric = ref.numerical_gradient(
        lambda: model.compute_loss(y, model.forward(x)), model.parameters[0], EPS
    )
    before = model.get_weights()
    model.optimizer = SGD(learning_rate=1.0)
    model.backward(y, model.forward(x), learning_rate=0.05)
    np.testing.assert_allclose(model.parameters[0], before - 0.05 * numeric, rtol=1e-9, atol=1e-10)
