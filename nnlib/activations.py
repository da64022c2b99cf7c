"""Activation functions, applied in place to preallocated batches.

Every activation computes ``a = f(z)`` and back-propagates using only its own
output ``a`` (each derivative here can be written in terms of ``a``), so a layer
keeps one buffer per batch instead of both ``z`` and ``a``. Shapes are
``(n_samples, n_units)``; nothing is upcast.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlib.buffers import BatchBuffers


@functools.lru_cache(maxsize=32)
def ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones: sums as BLAS products (``ones @ a`` sums a's rows)."""
    vector = np.ones(n, dtype=dtype)
    vector.flags.writeable = False
    return vector


class Activation:
    """Base class: ``forward(z, out)`` writes f(z); ``backward(a, grad, out)`` grad * f'(z)."""

    name: str = ""
    #: initialization that keeps activations' variance stable under this function
    default_init: str = "glorot"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Chain rule through the activation: dL/dz from ``a = f(z)`` and ``grad = dL/da``."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """What rebuilds this activation (``activation_from_config``): its name and settings."""
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: ReLU's backward multiplies by a boolean mask from this many values on
_RELU_MASK_FROM = 4096


class ReLU(Activation):
    name = "relu"
    default_init = "he"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(z, z.dtype.type(0), out=out)

    def __init__(self) -> None:
        self._signs = BatchBuffers()
        self._positive = BatchBuffers()

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        # a >= 0, so sign(a) is the 0/1 derivative; as a float array the product is one
        # float32 loop (a bool mask costs a cast: 0.1-0.5 us more at batch 32). From a few
        # thousand values on, the mask wins: np.sign is not vectorized, a > 0 is (0.96 ms
        # against 1.75 ms for a convolution's 73,728 x 32 outputs). Same numbers either way.
        if a.size < _RELU_MASK_FROM:
            signs = np.sign(a, out=self._signs.get(a.shape[0], a.shape[1], a.dtype))
            return np.multiply(grad, signs, out=out)
        positive = np.greater(a, 0, out=self._positive.get(a.shape[0], a.shape[1], np.dtype(bool)))
        return np.multiply(grad, positive, out=out)


class LeakyReLU(Activation):
    name = "leaky_relu"
    default_init = "he"

    def __init__(self, negative_slope: float = 0.01) -> None:
        if not 0 < negative_slope < 1:
            raise ValueError(f"negative_slope must be in (0, 1), got {negative_slope}")
        self.negative_slope = negative_slope

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # For 0 < slope < 1, max(z, slope * z) is z where z > 0 and slope * z elsewhere.
        return np.maximum(z, z * z.dtype.type(self.negative_slope), out=out)

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        # a and z share their sign, so a > 0 selects the unit-slope side.
        slope = np.where(a > 0, a.dtype.type(1), a.dtype.type(self.negative_slope))
        return np.multiply(grad, slope, out=out)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "negative_slope": self.negative_slope}

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # 1 / (1 + exp(-z)) overflows for very negative z; 0.5 * (1 + tanh(z / 2)) cannot.
        half = z.dtype.type(0.5)
        out = np.multiply(z, half, out=out)
        np.tanh(out, out=out)
        out += 1
        out *= half
        return out

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        return np.multiply(grad, a * (1 - a), out=out)


class Tanh(Activation):
    name = "tanh"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.tanh(z, out=out)

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        return np.multiply(grad, 1 - a * a, out=out)


class Identity(Activation):
    name = "identity"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return z.copy()
        if out is not z:
            np.copyto(out, z)
        return out

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        return self.forward(grad, out)


class Softmax(Activation):
    """Row-wise softmax, the output of a classifier trained with cross-entropy.

    With ``CrossEntropyLoss`` the model skips ``backward`` here and uses the fused
    gradient ``(p - y) / n``; ``backward`` is the general Jacobian-vector product
    ``a * (grad - sum(grad * a))`` per row, never a per-sample Jacobian matrix.
    """

    name = "softmax"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # Subtracting the row max keeps exp() from overflowing and changes nothing else.
        # ufunc.reduce skips the Python wrapper of ndarray.max/sum: it matters at batch 32.
        out = np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True), out=out)
        # A probability below 1e-35 is 0 for every sum it enters, but as a subnormal float it
        # would slow every operation it meets on some CPUs (and seed subnormal gradients).
        np.maximum(out, _EXP_FLOOR[out.dtype], out=out)
        np.exp(out, out=out)
        # Row sums as a product with a column of ones: 0.4 us, np.add.reduce 1.1 us here.
        out /= np.dot(out, ones(out.shape[1], out.dtype)[:, None])
        return out

    def backward(
        self, a: np.ndarray, grad: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        dot = np.einsum("ij,ij->i", grad, a)[:, None]
        return np.multiply(a, grad - dot, out=out)


# exp() of these stays 1000x above the smallest normal float, so probabilities of up to
# 1000 classes stay normal after the division by the row sum.
_EXP_FLOOR = {
    np.dtype(dtype): dtype(np.log(np.finfo(dtype).tiny) + np.log(1000.0))
    for dtype in (np.float32, np.float64)
}

SoftMax = Softmax  # the blog post's spelling

HIDDEN_ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (ReLU, LeakyReLU, Sigmoid, Tanh)
}
ACTIVATIONS: dict[str, type[Activation]] = {
    **HIDDEN_ACTIVATIONS,
    Identity.name: Identity,
    Softmax.name: Softmax,
}


def get_activation(name: str) -> Activation:
    """The activation called ``name`` (see ``ACTIVATIONS``), with default settings."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None


def activation_from_config(config: Mapping[str, Any]) -> Activation:
    """The activation ``config`` (from ``Activation.config``) describes."""
    settings = dict(config)
    name = settings.pop("name", None)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](**settings)
