"""Smooth random displacement fields from a handful of random numbers.

Simard's elastic field smooths one uniform(-1, 1) number per pixel with a Gaussian of
standard deviation ``sigma`` (pixels). Along one axis of ``n`` pixels that smoothing is a
matrix ``G`` ``(n, n)``, and the 2-D field of a noise image ``N`` is ``G @ N @ G.T``. With
``G = U S V.T`` (singular values) and ``V`` orthogonal, ``V.T @ N @ V`` is again noise of
the same variance, so ``(U S) @ Z @ (U S).T`` with ``Z`` random ``(n, n)`` has the field's
mean and covariance. Few singular values of a wide Gaussian matter: keeping those at least
1% of the largest keeps 99.99% of the field's variance for ``sigma >= 2`` and leaves a
``(k, k)`` random ``Z`` (k = 7 for 28 pixels and ``sigma = 4``).
"""

from __future__ import annotations

import numpy as np

#: singular values below this fraction of the largest are dropped from the basis
RELATIVE_CUTOFF = 0.01
#: the Gaussian kernel reaches this many standard deviations each side (scipy's default)
TRUNCATE = 4.0


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """``index`` folded into ``[0, n)`` by mirroring at the edges (``d c b a | a b c d``)."""
    index = index % (2 * n)
    return np.where(index < n, index, 2 * n - 1 - index)


def gaussian_smoothing_matrix(n: int, sigma: float) -> np.ndarray:
    """``G`` ``(n, n)`` float64 such that ``G @ v`` is ``v`` ``(n,)`` smoothed by a Gaussian of
    standard deviation ``sigma``, reflected at the edges, truncated at 4 sigma (what
    ``scipy.ndimage.gaussian_filter1d(v, sigma)`` computes). ``sigma = 0`` is the identity."""
    if sigma == 0:
        return np.eye(n)
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    rows = np.arange(n)[:, None]
    matrix = np.zeros((n, n))
    np.add.at(matrix, (rows, _reflect(rows + offsets, n)), kernel)
    return matrix


def smooth_field_basis(n: int, sigma: float) -> np.ndarray:
    """``B`` ``(n, k)`` float64: ``B @ Z @ B.T`` with ``Z`` ``(k, k)`` iid of variance ``v`` is
    distributed as (mean and covariance) ``G @ N @ G.T`` with ``N`` ``(n, n)`` iid of variance
    ``v``, up to the singular values of ``G`` below ``RELATIVE_CUTOFF`` of the largest."""
    left, singular, _ = np.linalg.svd(gaussian_smoothing_matrix(n, sigma))
    k = max(1, int(np.count_nonzero(singular >= RELATIVE_CUTOFF * singular[0])))
    return left[:, :k] * singular[:k]
