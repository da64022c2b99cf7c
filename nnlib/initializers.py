"""Weight initialization drawn from an explicit ``numpy.random.Generator``."""

from __future__ import annotations

import numpy as np

INITIALIZERS = ("he", "glorot")


def initial_weights(
    scheme: str,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Weights of ``shape``, by default a ``(fan_in, fan_out)`` matrix.

    A convolution's fans count its kernel too: ``in_channels * k * k`` in,
    ``out_channels * k * k`` out (as torch's ``kaiming_normal_`` and ``xavier_uniform_``).

    ``he``: normal with std sqrt(2 / fan_in), for ReLU-like units (He et al. 2015).
    ``glorot``: uniform on +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
    Drawn in float64 and rounded once, so float32 and float64 nets built from the
    same seed hold the same numbers to float32 precision.
    """
    size = (fan_in, fan_out) if shape is None else shape
    if scheme == "he":
        weights = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=size)
    elif scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights = rng.uniform(-limit, limit, size=size)
    else:
        raise ValueError(f"unknown initializer {scheme!r}; known: {', '.join(INITIALIZERS)}")
    return weights.astype(dtype)
