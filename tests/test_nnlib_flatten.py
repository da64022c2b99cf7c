"""nnlib.flatten: each sample's values in one row, in C order, whatever the memory layout."""

from __future__ import annotations

import numpy as np
import pytest

from nnlib import Flatten


def batches() -> dict[str, np.ndarray]:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return {"contiguous": x, "channels-last": channels_last, "sliced": np.repeat(x, 2, 0)[::2]}


@pytest.mark.parametrize("layout", ["contiguous", "channels-last", "sliced"])
@pytest.mark.parametrize("training", [True, False])
def test_rows_are_the_samples_in_c_order(layout: str, training: bool) -> None:
    """channel by channel, each row by row: as x.reshape(n, -1) reads a C-ordered batch."""
    x = batches()[layout]
    out = Flatten().forward(x, training=training)
    assert out.shape == (2, 60)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(120, dtype=np.float32).reshape(2, 60))


def test_backward_gives_the_gradient_back_in_the_input_shape_channels_last() -> None:
    layer = Flatten()
    layer.forward(batches()["channels-last"], training=True)
    grad = np.random.default_rng(0).normal(size=(2, 60)).astype(np.float32)
    grad_x = layer.backward(grad)
    assert grad_x.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(grad_x, grad.reshape(2, 3, 4, 5))
    assert grad_x.transpose(0, 2, 3, 1).flags.c_contiguous  # the image layers' layout


def test_flat_and_other_inputs() -> None:
    """A flat batch passes unchanged; any (n, ...) becomes (n, product)."""
    layer = Flatten()
    assert layer.output_shape((7,)) == (7,)
    assert layer.output_shape((2, 3)) == (6,)
    assert layer.output_shape((3, 28, 28)) == (3 * 28 * 28,)
    x = np.ones((4, 2, 3))
    assert layer.forward(x, training=True).shape == (4, 6)
    assert layer.backward(np.ones((4, 6))).shape == (4, 2, 3)


def test_backward_needs_a_training_forward() -> None:
    layer = Flatten()
    layer.forward(np.ones((2, 3, 4, 5)))
    with pytest.raises(RuntimeError, match="forward pass in training mode"):
        layer.backward(np.ones((2, 60)))
    assert Flatten.from_config(layer.config(), np.float32).config() == {"kind": "flatten"}
