"""nnlib.layers: the dense layer's initialization and input dtype, and dropout."""

from __future__ import annotations

import numpy as np
import pytest

from nnlib import CrossEntropyLoss, DenseLayer, Dropout, Model, ReLU, Softmax, Tanh


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


def test_dropout_zeroes_a_fraction_rate_and_scales_the_rest() -> None:
    """In training each input is zeroed with probability rate (here 0.3 of 200,000 inputs:
    the observed fraction is within 5 standard errors), the others scaled by 1 / (1 - rate);
    backward multiplies the gradient by the same mask."""
    rng = np.random.default_rng(0)
    layer = Dropout(0.3, rng=rng)
    x = rng.normal(size=(400, 500)).astype(np.float32)
    out = layer.forward(x, training=True)
    mask = layer.mask
    assert mask is not None
    assert out.dtype == mask.dtype == np.float32
    assert set(np.unique(mask)) == {np.float32(0), np.float32(1 / 0.7)}
    dropped = float((mask == 0).mean())
    assert abs(dropped - 0.3) < 5 * np.sqrt(0.3 * 0.7 / mask.size)
    np.testing.assert_array_equal(out, x * mask)
    grad = rng.normal(size=x.shape).astype(np.float32)
    expected = grad * mask
    np.testing.assert_array_equal(layer.backward(grad), expected)


def test_dropout_is_the_identity_at_prediction_time_and_at_rate_zero() -> None:
    """training=False returns the input itself; rate 0 returns it in training too and draws
    nothing from the Generator (runs without dropout stay byte-identical)."""
    x = np.ones((4, 3), np.float32)
    rng = np.random.default_rng(5)
    assert Dropout(0.5, rng=rng).forward(x, training=False) is x
    state = rng.bit_generator.state
    assert Dropout(0.0, rng=rng).forward(x, training=True) is x
    assert rng.bit_generator.state == state


def test_dropout_masks_replay_from_the_generator() -> None:
    """The same seed gives the same masks, call after call; another seed other masks."""

    def masks(seed: int) -> list[np.ndarray]:
        layer = Dropout(0.5, rng=np.random.default_rng(seed))
        x = np.ones((8, 16), np.float32)
        return [layer.forward(x, training=True).copy() for _ in range(3)]

    first = masks(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, masks(1), strict=True))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], masks(2)[0])


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, True, "0.5"])
def test_dropout_refuses_rates_outside_0_to_1(rate: object) -> None:
    with pytest.raises(ValueError, match="dropout rate"):
        Dropout(rate)


def test_a_model_with_dropout_predicts_as_the_same_model_without() -> None:
    """Dropout layers change nothing at prediction time: the same dense layers with and
    without them give identical probabilities."""
    rng = np.random.default_rng(0)
    dense = [
        DenseLayer(6, 8, ReLU(), rng=rng),
        DenseLayer(8, 5, ReLU(), rng=rng),
        DenseLayer(5, 3, Softmax(), rng=rng),
    ]
    plain = Model(dense, CrossEntropyLoss())
    dropped = Model([dense[0], Dropout(0.5), dense[1], Dropout(0.2), dense[2]], CrossEntropyLoss())
    x = rng.normal(size=(10, 6))
    np.testing.assert_array_equal(dropped.predict(x), plain.predict(x))
    assert not np.array_equal(dropped.forward(x), plain.forward(x))  # training mode drops
