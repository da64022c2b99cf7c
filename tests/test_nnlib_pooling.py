"""nnlib.pooling: MaxPool2D against a loop-by-loop reference, forward and backward, ties
included (torch: test_nnlib_torch_cnn.py)."""

from __future__ import annotations

import numpy as np
import pytest
from support import nnlib_reference as ref

import nnlib.pooling as pooling
from nnlib import MaxPool2D

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
# (kernel, stride or None, height, width)
VARIANTS = {
    "2": (2, None, 8, 6),
    "2-leaves-a-row-out": (2, None, 7, 9),
    "3": (3, None, 9, 10),
    "3-stride-2-overlapping": (3, 2, 9, 8),
    "2-stride-1-overlapping": (2, 1, 5, 6),
    "2-stride-3-gaps": (2, 3, 8, 8),
    "1": (1, None, 3, 4),
    "window-is-the-image": (4, None, 4, 4),
}


def pool(variant: str) -> MaxPool2D:
    kernel, stride, _, _ = VARIANTS[variant]
    return MaxPool2D(kernel, stride)


def images(variant: str, dtype: type, ties: bool, seed: int = 0) -> np.ndarray:
    """(3, 4, H, W): normal values, or small integers (many ties in every window)."""
    _, _, height, width = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    shape = (3, 4, height, width)
    values = rng.integers(0, 3, size=shape) if ties else rng.normal(size=shape)
    return values.astype(dtype)


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same batch, channels-last in memory (as the image layers hand it on)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@DTYPES
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_and_backward_equal_the_reference(variant: str, ties: bool, dtype: type) -> None:
    """The window maxima; backward sends each window's gradient to its maximum, to the first
    in row-major window order on ties, summed where windows overlap (exact but for the order
    of those sums)."""
    layer = pool(variant)
    x = images(variant, dtype, ties)
    for layout in (x, channels_last(x)):
        expected = ref.maxpool2d(x, layer.kernel_size, layer.stride)
        np.testing.assert_array_equal(layer.forward(layout), expected)
        out = layer.forward(layout, training=True)
        assert out.dtype == dtype
        assert out.shape[1:] == layer.output_shape(x.shape[1:])
        np.testing.assert_array_equal(out, expected)
        grad = np.random.default_rng(1).normal(size=out.shape).astype(dtype)
        expected_grad = ref.maxpool2d_backward(x, grad, layer.kernel_size, layer.stride)
        grad_x = layer.backward(channels_last(grad))
        assert grad_x.dtype == dtype
        tol = 1e-6 if dtype == np.float32 else 1e-14  # on gradients of O(1)
        np.testing.assert_allclose(grad_x, expected_grad, rtol=tol, atol=tol)


def test_ties_send_the_gradient_to_the_first_maximum_in_window_order() -> None:
    """Windows of 2x2 holding their maximum twice: the gradient goes to the first of the
    two, reading each window row by row, and nowhere else."""
    x = np.array(
        [
            [5, 5, 1, 7],
            [0, 2, 7, 7],
            [3, 0, 0, 0],
            [9, 9, 0, 0],
        ],
        dtype=np.float64,
    )[None, None]
    layer = MaxPool2D(2)
    out = layer.forward(x, training=True)
    np.testing.assert_array_equal(out[0, 0], [[5, 7], [9, 0]])
    grad_x = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(
        grad_x[0, 0],
        [
            [1, 0, 0, 2],
            [0, 0, 0, 0],
            [0, 0, 4, 0],
            [3, 0, 0, 0],
        ],
    )


def test_prediction_mode_keeps_nothing() -> None:
    layer = MaxPool2D(2)
    layer.forward(np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match="forward pass in training mode"):
        layer.backward(np.ones((2, 3, 2, 2), np.float32))
    assert not layer._outputs._arrays


def test_stride_defaults_to_the_kernel_and_the_config_rebuilds_it() -> None:
    layer = MaxPool2D(3)
    assert layer.stride == 3
    assert layer.config() == {"kind": "maxpool2d", "kernel_size": 3, "stride": 3}
    rebuilt = MaxPool2D.from_config(MaxPool2D(3, 2).config(), np.float32)
    assert (rebuilt.kernel_size, rebuilt.stride) == (3, 2)
    assert repr(rebuilt) == "MaxPool2D(kernel_size=3, stride=2)"


@pytest.mark.parametrize(
    ("args", "message"),
    [((0,), "kernel_size must be a positive integer"), ((2, 0), "stride must be a positive")],
)
def test_bad_arguments_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MaxPool2D(*args)


@pytest.mark.parametrize(
    ("input_shape", "message"),
    [
        ((4, 1, 6), "its 2x2 window does not fit in 1x6"),
        ((36,), r"expects images of shape \(channels, height, width\)"),
    ],
)
def test_inputs_it_cannot_take_are_named(input_shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MaxPool2D(2).output_shape(input_shape)


@pytest.mark.parametrize("variant", ["2", "3-stride-2-overlapping", "2-stride-3-gaps"])
def test_backward_a_few_samples_at_a_time_equals_the_reference(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backward routes a few samples at a time (to stay in cache); one at a time gives the
    same gradients."""
    monkeypatch.setattr(pooling, "_SAMPLES_BYTES", 1)
    layer = pool(variant)
    x = images(variant, np.float64, ties=True)
    out = layer.forward(channels_last(x), training=True)
    grad = np.random.default_rng(2).normal(size=out.shape)
    expected = ref.maxpool2d_backward(x, grad, layer.kernel_size, layer.stride)
    grad_x = layer.backward(channels_last(grad))
    np.testing.assert_allclose(grad_x, expected, rtol=1e-14, atol=1e-14)
