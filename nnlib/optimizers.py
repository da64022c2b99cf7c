"""Optimizers: ``step(params, grads)`` updates each parameter array in place.

The model owns its parameters; an optimizer only keeps per-parameter state
(momentum, moment estimates) that it creates on the first step. All arithmetic
stays in the parameters' dtype.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np


class Optimizer:
    """Base class; subclasses implement ``_new_state`` and ``_update``."""

    name: str = ""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.steps = 0
        self._state: list[dict[str, np.ndarray]] | None = None
        self._shapes: list[tuple[tuple[int, ...], np.dtype]] = []

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if not value > 0:  # also refuses NaN
            raise ValueError(f"learning_rate must be > 0, got {value}")
        self._learning_rate = float(value)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """One update of every array in ``params`` from the matching array in ``grads``."""
        if self._state is None:
            self._shapes = [(p.shape, p.dtype) for p in params]
            self._state = [self._new_state(p) for p in params]
        if len(params) != len(self._state) or len(grads) != len(params):
            raise ValueError(
                f"{type(self).__name__} was set up for {len(self._state)} parameter arrays, "
                f"got {len(params)} parameters and {len(grads)} gradients"
            )
        for param, grad, (shape, dtype) in zip(params, grads, self._shapes, strict=True):
            if param.shape != shape or grad.shape != shape or param.dtype != dtype:
                raise ValueError(
                    f"parameter/gradient shapes {param.shape}/{grad.shape} ({param.dtype}) "
                    f"differ from the first step's {shape} ({dtype})"
                )
        self.steps += 1
        for param, grad, state in zip(params, grads, self._state, strict=True):
            self._update(param, grad, state)

    def _new_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum.

    The same update as ``torch.optim.SGD`` (dampening 0): with ``d = g + wd * p``,
    ``b = d`` on the first step and ``b = momentum * b + d`` after it, then
    ``p -= lr * (d + momentum * b)`` (Nesterov) or ``p -= lr * b``.
    """

    name = "sgd"

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def _new_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        direction = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            velocity = state["velocity"]
            if self.steps == 1:
                np.copyto(velocity, direction)
            else:
                velocity *= self.momentum
                velocity += direction
            direction = direction + self.momentum * velocity if self.nesterov else velocity
        param -= self.learning_rate * direction


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1) in the form of ``torch.optim.Adam``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, and
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``: eps is added
    to the bias-corrected ``sqrt(v_hat)``. ``weight_decay`` adds ``wd * p`` to the
    gradient (L2, like torch's Adam; see AdamW for the decoupled form).

    To keep the step at ten passes over the parameters, the state holds
    ``m / (1 - b1)`` and ``v / (1 - b2)``: each then updates as ``x = beta x + g``,
    and the constants fold into two scalars of the final update.
    """

    name = "adam"

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate)
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{label} must be in [0, 1), got {beta}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def _new_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "m": np.zeros_like(param),
            "v": np.zeros_like(param),
            "scratch": np.empty_like(param),
        }

    def _l2_gradient(self, param: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        if not self.weight_decay:
            return grad
        np.multiply(param, self.weight_decay, out=scratch)
        scratch += grad
        return scratch

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        m, v, scratch = state["m"], state["v"], state["scratch"]
        b1, b2, t = self.beta1, self.beta2, self.steps
        grad = self._l2_gradient(param, grad, scratch)
        m *= b1
        m += grad  # m_t / (1 - b1)
        v *= b2
        v += np.multiply(grad, grad, out=scratch)  # v_t / (1 - b2); grad is no longer needed
        # With m_t = (1 - b1) m and v_t = (1 - b2) v, torch's update is
        # p -= [lr (1 - b1) / (bc1 c)] * m / (sqrt(v) + eps / c), c = sqrt((1 - b2) / bc2).
        bias_correction1 = 1 - b1**t
        c = ((1 - b2) / (1 - b2**t)) ** 0.5
        update = np.sqrt(v, out=scratch)
        update += self.eps / c
        np.divide(m, update, out=update)
        update *= self.learning_rate * (1 - b1) / (bias_correction1 * c)
        param -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    Each step first shrinks ``p *= 1 - lr * weight_decay``, then takes the Adam
    step on the plain gradient. Like torch, it decays every array it is given.
    """

    name = "adamw"

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, eps, weight_decay)

    def _l2_gradient(self, param: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        return grad

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        if self.weight_decay:
            param *= 1 - self.learning_rate * self.weight_decay
        super()._update(param, grad, state)


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def make_optimizer(name: str, learning_rate: float, **settings: float) -> Optimizer:
    """The optimizer registered in ``OPTIMIZERS`` as ``name``, with ``learning_rate``.

    ``settings`` (e.g. ``momentum``, ``weight_decay``) go to the optimizer where its
    constructor takes them; the others do not apply to it (momentum means nothing to Adam).
    """
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}") from None
    accepted = inspect.signature(cls).parameters
    return cls(learning_rate, **{key: value for key, value in settings.items() if key in accepted})
