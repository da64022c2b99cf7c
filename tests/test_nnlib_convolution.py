"""nnlib.convolution: Conv2D against a loop-by-loop reference, its parameters, initialization,
dtypes, memory layouts, prediction mode and refusals (torch: test_nnlib_torch_cnn.py)."""

from __future__ import annotations

import numpy as np
import pytest
from support import nnlib_reference as ref

import nnlib.convolution as convolution
from nnlib import Conv2D, ReLU, Sigmoid, Softmax, Tanh

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
# (in_channels, out_channels, kernel, stride, padding, height, width)
VARIANTS = {
    "one-channel": (1, 4, 3, 1, 0, 9, 9),
    "channels": (3, 5, 3, 1, 0, 8, 7),
    "padding": (2, 3, 3, 1, 1, 6, 6),
    "stride": (2, 3, 3, 2, 0, 9, 8),
    "stride-padding": (3, 4, 5, 2, 2, 11, 9),
    "one-channel-stride": (1, 2, 2, 3, 1, 10, 10),
    "kernel-1": (4, 2, 1, 1, 0, 5, 5),
    "kernel-fills-input": (2, 3, 4, 1, 0, 4, 4),
}
# float32 rounds each product's sum of up to 100 terms of O(1): ~1e-6 relative
TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-12}, np.float32: {"rtol": 1e-5, "atol": 1e-5}}


def make_layer(variant: str, dtype: type, seed: int = 0, **kwargs: object) -> Conv2D:
    c_in, c_out, k, stride, padding, _, _ = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    layer = Conv2D(c_in, c_out, k, stride=stride, padding=padding, rng=rng, dtype=dtype, **kwargs)
    layer.biases = rng.normal(size=c_out)
    return layer


def images(variant: str, n: int = 3, seed: int = 1, dtype: type = np.float64) -> np.ndarray:
    c_in, _, _, _, _, height, width = VARIANTS[variant]
    return np.random.default_rng(seed).normal(size=(n, c_in, height, width)).astype(dtype)


@DTYPES
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_equals_the_reference_cross_correlation(variant: str, dtype: type) -> None:
    """Training and prediction mode both give sum(window * kernel) + bias at every position,
    with torch's output size floor((H + 2p - k) / s) + 1."""
    layer = make_layer(variant, dtype)
    x = images(variant, dtype=dtype)
    expected = ref.conv2d(x, layer.weights, layer.biases, layer.stride, layer.padding)
    for training in (True, False):
        out = layer.forward(x, training=training)
        assert out.shape == expected.shape
        assert out.shape[1:] == layer.output_shape(x.shape[1:])
        assert out.dtype == dtype
        np.testing.assert_allclose(out, expected, **TOL[dtype])


def test_activation_is_applied_to_the_convolution() -> None:
    layer = make_layer("stride-padding", np.float64, activation_function=Tanh())
    x = images("stride-padding")
    expected = np.tanh(ref.conv2d(x, layer.weights, layer.biases, 2, 2))
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=1e-12, atol=1e-12)


def test_outputs_are_channels_last_in_memory() -> None:
    """The (n, C, H, W) output lies in memory as (n, H, W, C), each position's channels
    together (the layout the image layers work in)."""
    out = make_layer("channels", np.float32).forward(images("channels"), training=True)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous


def test_any_input_memory_layout_gives_the_same_output() -> None:
    """C-contiguous, channels-last and sliced (non-contiguous) batches of the same values
    give the same output."""
    layer = make_layer("stride-padding", np.float64)
    x = images("stride-padding", n=4)
    expected = layer.forward(x).copy()
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    wider = np.zeros((8, *x.shape[1:]))
    wider[::2] = x
    for same in (channels_last, wider[::2]):
        np.testing.assert_array_equal(layer.forward(same, training=True), expected)
        np.testing.assert_array_equal(layer.forward(same), expected)


def test_prediction_in_small_pieces_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """At prediction time the window columns are made a few samples at a time: any piece
    size gives the same output."""
    layer = make_layer("channels", np.float64)
    x = images("channels", n=7)
    whole = layer.forward(x)
    monkeypatch.setattr(convolution, "_PREDICT_COLUMN_VALUES", 1)  # one sample at a time
    np.testing.assert_array_equal(layer.forward(x), whole)


def test_prediction_mode_keeps_nothing() -> None:
    """training=False allocates no buffer and leaves no state for backward."""
    layer = make_layer("padding", np.float32)
    layer.forward(images("padding"), training=False)
    with pytest.raises(RuntimeError, match="forward pass in training mode"):
        layer.backward(np.ones((3, 3, 6, 6), np.float32))
    buffers = (layer._columns, layer._outputs, layer._padded_inputs, layer._input_grads)
    assert all(not buffer._arrays for buffer in buffers)


def test_weights_and_biases_are_torch_shaped_views_once_in_a_model() -> None:
    """weights (out_channels, in_channels, k, k), biases (out_channels,); n_params counts
    both; bound to a flat vector they are views into it, weights first."""
    layer = Conv2D(3, 5, 4, rng=np.random.default_rng(0), dtype=np.float64)
    assert layer.weights.shape == (5, 3, 4, 4)
    assert layer.biases.shape == (5,)
    assert layer.n_params == 5 * 3 * 4 * 4 + 5
    weights = layer.weights.copy()
    params, grads = np.zeros(layer.n_params), np.zeros(layer.n_params)
    layer.bind(params, grads)
    np.testing.assert_array_equal(params[: weights.size], weights.ravel())
    assert np.shares_memory(layer.weights, params)
    assert np.shares_memory(layer.grad_biases, grads)
    layer.biases = [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(params[-5:], [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="shape"):
        layer.weights = np.zeros((5, 3, 3, 3))


@pytest.mark.parametrize(("activation", "scheme"), [(ReLU(), "he"), (Sigmoid(), "glorot")])
def test_default_initialization_counts_the_kernel_in_its_fans(
    activation: object, scheme: str
) -> None:
    """He: normal, std sqrt(2 / fan_in); Glorot: uniform within sqrt(6 / (fan_in + fan_out));
    fan_in = in_channels * k * k, fan_out = out_channels * k * k. 64 * 32 * 25 draws: the
    sample std is within 1% of the target."""
    layer = Conv2D(
        32, 64, 5, activation_function=activation, rng=np.random.default_rng(0), dtype=np.float64
    )
    w = layer.weights
    assert layer.init == scheme
    np.testing.assert_array_equal(layer.biases, 0.0)
    fan_in, fan_out = 32 * 25, 64 * 25
    if scheme == "he":
        assert w.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.01)
    else:
        limit = np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= limit
        assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)
    assert abs(w.mean()) < 0.03 * w.std()


def test_float32_and_float64_layers_from_one_seed_agree() -> None:
    """The initial weights are drawn in float64 and rounded once."""
    single = Conv2D(2, 3, 3, rng=np.random.default_rng(4), dtype=np.float32)
    double = Conv2D(2, 3, 3, rng=np.random.default_rng(4), dtype=np.float64)
    np.testing.assert_array_equal(single.weights, double.weights.astype(np.float32))


@pytest.mark.parametrize("input_dtype", [np.float64, np.float16, np.int64])
def test_input_of_another_dtype_is_cast_to_the_layers(input_dtype: type) -> None:
    layer = make_layer("channels", np.float32)
    x = images("channels").astype(input_dtype)
    assert layer.forward(x, training=True).dtype == np.float32
    assert layer.forward(x).dtype == np.float32


def test_backward_fills_float32_gradients_and_returns_float32() -> None:
    layer = make_layer("stride-padding", np.float32)
    out = layer.forward(images("stride-padding", dtype=np.float32), training=True)
    grad_x = layer.backward(np.ones(out.shape, np.float32))
    assert grad_x.dtype == layer.grad_weights.dtype == layer.grad_biases.dtype == np.float32
    assert grad_x.shape == (3, 3, 11, 9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": 0}, "kernel_size must be a positive integer"),
        ({"kernel_size": 2.0}, "kernel_size must be a positive integer"),
        ({"in_channels": True}, "in_channels must be a positive integer"),
        ({"out_channels": -1}, "out_channels must be a positive integer"),
        ({"stride": 0}, "stride must be a positive integer"),
        ({"padding": -1}, "padding must be a non-negative integer"),
        ({"activation_function": Softmax()}, "activation must be one of"),
        ({"dtype": np.float16}, "float32 or float64"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    arguments = {"in_channels": 1, "out_channels": 2, "kernel_size": 3, **kwargs}
    error = TypeError if "dtype" in kwargs else ValueError
    with pytest.raises(error, match=message):
        Conv2D(
            arguments.pop("in_channels"),
            arguments.pop("out_channels"),
            arguments.pop("kernel_size"),
            **arguments,
        )


@pytest.mark.parametrize(
    ("input_shape", "message"),
    [
        ((2, 8, 8), r"expects 3 channels"),
        ((3, 2, 8), r"3x3 kernel does not fit in 2x8 \(padding 0\)"),
        ((24,), r"expects images of shape \(3, height, width\)"),
    ],
)
def test_inputs_it_cannot_take_are_named(input_shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Conv2D(3, 4, 3).output_shape(input_shape)


def test_output_shape_follows_torchs_formula() -> None:
    assert Conv2D(1, 8, 5).output_shape((1, 28, 28)) == (8, 24, 24)
    assert Conv2D(1, 8, 5, padding=2).output_shape((1, 28, 28)) == (8, 28, 28)
    assert Conv2D(3, 2, 3, stride=2, padding=1).output_shape((3, 28, 27)) == (2, 14, 14)


def test_config_rebuilds_the_same_layer() -> None:
    layer = Conv2D(3, 4, 5, stride=2, padding=1, activation_function=Tanh())
    rebuilt = Conv2D.from_config(layer.config(), np.float64)
    assert rebuilt.config() == layer.config()
    assert rebuilt.dtype == np.float64
    assert "Conv2D(in_channels=3, out_channels=4, kernel_size=5, stride=2" in repr(layer)
