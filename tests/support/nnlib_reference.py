"""Independent, textbook reference implementations used to check nnlib.

Everything here is written from the formulas, in float64, without importing
nnlib, and favours obviousness over speed: the point is to disagree with
nnlib whenever nnlib is wrong. Shapes follow nnlib's conventions: batches are
``(n_samples, n_features)`` and weights ``(fan_in, fan_out)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# --------------------------------------------------------------------------- activations


def relu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, 0.0)


def leaky_relu(z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    return np.where(z > 0, z, slope * z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def identity(z: np.ndarray) -> np.ndarray:
    return np.array(z, copy=True)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "identity": identity,
    "softmax": softmax,
}


def mlp_forward(
    x: np.ndarray,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activations: Sequence[Callable[[np.ndarray], np.ndarray]],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations ``z`` and outputs ``a`` of every layer, in float64."""
    zs, outs = [], []
    a = np.asarray(x, dtype=np.float64)
    for w, b, f in zip(weights, biases, activations, strict=True):
        z = a @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        a = f(z)
        zs.append(z)
        outs.append(a)
    return zs, outs


# --------------------------------------------------------------------------- losses


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), n_classes))
    for row, label in enumerate(labels):
        out[row, int(label)] = 1.0
    return out


def cross_entropy(y: np.ndarray, p: np.ndarray) -> float:
    """Mean over samples of ``-sum_k y_k log p_k`` (integer labels are one-hot encoded)."""
    p = np.asarray(p, np.float64)
    y = one_hot(y, p.shape[1]) if np.ndim(y) == 1 else np.asarray(y, np.float64)
    return float(np.mean(-np.sum(y * np.log(p), axis=1)))


def mean_squared_error(y: np.ndarray, p: np.ndarray) -> float:
    """Mean over every element of ``(p - y)^2`` (torch's ``MSELoss``)."""
    p = np.asarray(p, np.float64)
    y = one_hot(y, p.shape[1]) if np.ndim(y) == 1 else np.asarray(y, np.float64)
    return float(np.mean((p - y) ** 2))


# --------------------------------------------------------------------------- finite differences


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / 2 eps`` for every entry of ``x``.

    ``x`` is perturbed in place (and restored), so ``f`` must read it.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        plus = f()
        x[index] = saved - eps
        minus = f()
        x[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


# --------------------------------------------------------------------------- optimizers


def sgd_trajectory(
    p0: np.ndarray,
    grads: Sequence[np.ndarray],
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """Parameters after each step of SGD (Sutskever momentum, torch's convention, dampening 0).

    ``d = g + wd p``; ``b_1 = d``, ``b_t = mu b_{t-1} + d``; ``p -= lr (d + mu b)`` for
    Nesterov, ``p -= lr b`` otherwise; without momentum ``p -= lr d``.
    """
    p = np.array(p0, dtype=np.float64)
    buf = None
    out = []
    for g in grads:
        d = np.asarray(g, np.float64) + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            step = d + momentum * buf if nesterov else buf
        else:
            step = d
        p = p - lr * step
        out.append(p.copy())
    return out


def adam_trajectory(
    p0: np.ndarray,
    grads: Sequence[np.ndarray],
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> list[np.ndarray]:
    """Parameters after each step of Adam in torch's form (Kingma & Ba, Algorithm 1).

    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)``.
    ``weight_decay`` is L2 (``g += wd p``) or, with ``decoupled`` (AdamW),
    ``p *= 1 - lr wd`` before the step.
    """
    p = np.array(p0, dtype=np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p.copy())
    return out
