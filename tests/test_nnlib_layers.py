"""nnlib.layers: the dense layer's initialization and its input dtype."""

from __future__ import annotations

import numpy as np
import pytest

from nnlib import DenseLayer, ReLU, Tanh


@pytest.mark.parametrize(("activation", "scheme"), [(ReLU(), "he"), (Tanh(), "glorot")])
def test_default_initialization_statistics(activation: object, scheme: str) -> None:
    """He: normal, std sqrt(2 / fan_in). Glorot: uniform within sqrt(6 / (fan_in + fan_out)).

    With 400 * 300 draws the sample std is within 1% of the target (its own error is ~0.2%)
    and the mean within 0.02 std of 0 (its standard error is 0.003 std).
    """
    layer = DenseLayer(400, 300, activation, rng=np.random.default_rng(0), dtype=np.float64)
    w = layer.weights
    assert layer.init == scheme
    np.testing.assert_array_equal(layer.biases, 0.0)
    if scheme == "he":
        assert w.std() == pytest.approx(np.sqrt(2 / 400), rel=0.01)
    else:
        limit = np.sqrt(6 / 700)
        assert np.abs(w).max() <= limit
        assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)
    assert abs(w.mean()) < 0.02 * w.std()  # ~7 standard errors of the mean


def test_dense_layer_casts_its_input_to_its_own_dtype() -> None:
    layer = DenseLayer(3, 2, ReLU(), rng=np.random.default_rng(0), dtype=np.float32)
    assert layer.forward(np.ones((4, 3), np.float64)).dtype == np.float32
