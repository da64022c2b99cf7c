"""nnlib.activations: each function and its backward against the textbook formula."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from support import nnlib_reference as ref

from nnlib import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from nnlib.activations import Activation


@pytest.mark.parametrize(
    ("activation", "reference"),
    [
        (ReLU(), ref.relu),
        (LeakyReLU(0.2), lambda z: ref.leaky_relu(z, 0.2)),
        (Sigmoid(), ref.sigmoid),
        (Tanh(), ref.tanh),
        (Identity(), ref.identity),
        (Softmax(), ref.softmax),
    ],
    ids=lambda a: type(a).__name__ if isinstance(a, Activation) else "",
)
def test_activation_forward_and_backward(
    activation: Activation, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    """forward equals the textbook formula; backward(a, g) equals the Jacobian-vector product."""
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # away from kinks
    a = activation.forward(z.copy())
    np.testing.assert_allclose(a, reference(z), rtol=1e-13, atol=1e-15)
    g = rng.normal(size=z.shape)
    # directional finite difference per row: d/dz <g, f(z)> at z, i.e. J^T g
    numeric = ref.numerical_gradient(lambda: float(np.sum(g * reference(z))), z, 1e-6)
    np.testing.assert_allclose(activation.backward(a, g), numeric, rtol=1e-7, atol=1e-9)


def test_activations_do_not_overflow() -> None:
    """Sigmoid and Softmax stay finite at extreme inputs; softmax probabilities never subnormal."""
    for dtype in (np.float32, np.float64):
        z = np.array([[-1000.0, 0.0, 1000.0]], dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            s = Sigmoid().forward(z.copy())
            p = Softmax().forward(z.copy())
        np.testing.assert_array_equal(s, np.array([[0.0, 0.5, 1.0]], dtype=dtype))
        assert p[0, 2] == 1.0
        # Vanishing probabilities stay normal floats (never subnormal), and negligible.
        info = np.finfo(dtype)
        assert (p[0, :2] >= info.tiny).all()
        assert (p[0, :2] < info.tiny * 1e4).all()
