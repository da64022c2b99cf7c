"""stages.augment.smoothing: the Gaussian smoothing matrix and the small basis of smooth fields."""

from __future__ import annotations

import numpy as np
import pytest

from stages.augment.smoothing import gaussian_smoothing_matrix, smooth_field_basis


@pytest.mark.parametrize(("n", "sigma"), [(28, 4.0), (28, 0.7), (10, 8.0), (28, 30.0), (5, 1.0)])
def test_the_smoothing_matrix_is_scipys_gaussian_filter(n: int, sigma: float) -> None:
    """Reflected at the edges, truncated at 4 sigma, even when the kernel is wider than the
    axis (it reflects again)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    vectors = np.random.default_rng(0).random((5, n))
    expected = ndimage.gaussian_filter1d(vectors, sigma, axis=1, mode="reflect")
    np.testing.assert_allclose(
        vectors @ gaussian_smoothing_matrix(n, sigma).T, expected, atol=1e-12
    )


def test_sigma_zero_smooths_nothing() -> None:
    np.testing.assert_array_equal(gaussian_smoothing_matrix(6, 0.0), np.eye(6))
    basis = smooth_field_basis(6, 0.0)
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-12)


@pytest.mark.parametrize(("sigma", "most"), [(2.0, 14), (4.0, 7), (8.0, 4)])
def test_the_basis_is_small_and_keeps_the_fields_covariance(sigma: float, most: int) -> None:
    """``B @ B.T`` is ``G @ G.T`` (the covariance of smoothed unit noise along one axis) to
    within 1%, from at most ``most`` of the 28 directions."""
    smoothing = gaussian_smoothing_matrix(28, sigma)
    basis = smooth_field_basis(28, sigma)
    assert basis.shape[0] == 28
    assert basis.shape[1] <= most
    covariance = smoothing @ smoothing.T
    error = np.linalg.norm(basis @ basis.T - covariance) / np.linalg.norm(covariance)
    assert error < 0.01
    # the 2-D field's variance, kept: (trace kept / trace) squared
    assert (np.trace(basis @ basis.T) / np.trace(covariance)) ** 2 > 0.9999
