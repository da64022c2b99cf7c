"""nnlib.losses: the loss values, the clipping of log(0), and the fused softmax gradient."""

from __future__ import annotations

import numpy as np
import pytest
from support import nnlib_reference as ref

from nnlib import CrossEntropyLoss, MeanSquaredError, Softmax


def test_loss_values_match_reference_formulas() -> None:
    """CE is -mean log p[true]; MSE is the mean over all entries of (p - y)^2."""
    rng = np.random.default_rng(0)
    p = ref.softmax(rng.normal(size=(6, 4)))
    labels = np.array([0, 1, 2, 3, 1, 2])
    onehot = ref.one_hot(labels, 4)
    targets = rng.normal(size=(6, 4))
    ce = CrossEntropyLoss()
    mse = MeanSquaredError()
    expected_ce = -np.mean(np.log(p[np.arange(6), labels]))
    assert ce(labels, p) == pytest.approx(expected_ce, rel=1e-14)
    assert ce(onehot, p) == pytest.approx(expected_ce, rel=1e-14)
    assert ce(labels, p) == pytest.approx(ref.cross_entropy(labels, p), rel=1e-14)
    assert mse(targets, p) == pytest.approx(ref.mean_squared_error(targets, p), rel=1e-14)
    assert mse(labels, p) == pytest.approx(ref.mean_squared_error(onehot, p), rel=1e-14)
    np.testing.assert_allclose(
        ce.per_sample(labels, p), -np.log(p[np.arange(6), labels]), rtol=1e-14
    )
    np.testing.assert_allclose(mse.per_sample(targets, p), ((p - targets) ** 2).mean(axis=1))


def test_cross_entropy_clips_at_dtype_eps() -> None:
    """A zero probability on the true class costs -log(eps) of the dtype, not infinity."""
    for dtype in (np.float32, np.float64):
        p = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=dtype)
        losses = CrossEntropyLoss().per_sample(np.array([1, 0]), p)
        assert np.isfinite(losses).all()
        assert losses[0] == pytest.approx(-np.log(np.finfo(dtype).eps), rel=1e-6)


def test_fused_softmax_gradient_is_p_minus_y_over_n() -> None:
    """softmax_gradient is (p - y)/n and equals Softmax.backward applied to CE's gradient."""
    rng = np.random.default_rng(1)
    p = ref.softmax(rng.normal(size=(5, 3)))
    labels = np.array([0, 2, 1, 1, 0])
    onehot = ref.one_hot(labels, 3)
    ce = CrossEntropyLoss()
    expected = (p - onehot) / 5
    np.testing.assert_allclose(ce.softmax_gradient(labels, p), expected, rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(ce.softmax_gradient(onehot, p), expected, rtol=1e-14, atol=1e-17)
    chained = Softmax().backward(p, ce.gradient(labels, p))
    np.testing.assert_allclose(chained, expected, rtol=1e-12, atol=1e-15)
