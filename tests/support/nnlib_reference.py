"""Independent, textbook reference implementations used to check nnlib.

Everything here is written from the formulas, in float64, without importing
nnlib, and favours obviousness over speed: the point is to disagree with
nnlib whenever nnlib is wrong. Shapes follow nnlib's conventions: batches are
``(n_samples, n_features)`` and weights ``(fan_in, fan_out)``; image batches are ``(n, C, H,
W)`` and convolution weights ``(out_channels, in_channels, k, k)``, as torch's.
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


# --------------------------------------------------------------------------- image layers


def conv2d(
    x: np.ndarray, weights: np.ndarray, biases: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Cross-correlation ``(n, C, H, W)`` -> ``(n, out_channels, OH, OW)``, one output value
    at a time: ``sum(window * kernel) + bias`` over zero-padded input."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w = np.asarray(weights, np.float64)
    c_out, _, k, _ = w.shape
    n, _, height, width = x.shape
    rows, cols = (height - k) // stride + 1, (width - k) // stride + 1
    out = np.zeros((n, c_out, rows, cols))
    for sample in range(n):
        for o in range(c_out):
            for r in range(rows):
                for c in range(cols):
                    window = x[sample, :, r * stride : r * stride + k, c * stride : c * stride + k]
                    out[sample, o, r, c] = np.sum(window * w[o]) + biases[o]
    return out


def maxpool2d(x: np.ndarray, kernel: int, stride: int | None = None) -> np.ndarray:
    """The maximum of every ``kernel x kernel`` window, ``stride`` (default ``kernel``)
    apart, rows and columns no window covers left out."""
    stride = stride or kernel
    n, channels, height, width = x.shape
    rows, cols = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    out = np.zeros((n, channels, rows, cols))
    for r in range(rows):
        for c in range(cols):
            window = x[:, :, r * stride : r * stride + kernel, c * stride : c * stride + kernel]
            out[:, :, r, c] = window.max(axis=(2, 3))
    return out


def maxpool2d_backward(
    x: np.ndarray, grad: np.ndarray, kernel: int, stride: int | None = None
) -> np.ndarray:
    """dL/dx of ``maxpool2d``: each window's gradient to its largest element, the first in
    row-major window order when several hold the maximum (added up where windows overlap)."""
    stride = stride or kernel
    grad_x = np.zeros(x.shape)
    n, channels, rows, cols = grad.shape
    for sample in range(n):
        for ch in range(channels):
            for r in range(rows):
                for c in range(cols):
                    top, left = r * stride, c * stride
                    window = x[sample, ch, top : top + kernel, left : left + kernel]
                    i, j = divmod(int(np.argmax(window)), kernel)  # argmax: the first maximum
                    grad_x[sample, ch, top + i, left + j] += grad[sample, ch, r, c]
    return grad_x


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
