"""Optimizers: ``step(params, grads)`` updates each parameter array in place.

The model owns its parameters; an optimizer only keeps per-parameter state
(momentum, moment estimates) that it creates on the first step. All arithmetic
stays in the parameters' dtype.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence

import numpy as np

from nnlib.schedules import ConstantSchedule, Schedule


class Optimizer:
    """Base class; subclasses implement ``_new_state`` and ``_update``.

    ``learning_rate`` is the base rate; a ``schedule`` (default constant) turns it into the
    rate of each step, ``current_learning_rate``. State arrays that decay geometrically
    while their gradient is zero (momentum, Adam's moments) are named in ``_decays``:
    every few steps their entries too small to move any weight are set to zero, so they
    never sink into subnormal floats, which some CPUs compute many times slower.
    """

    name: str = ""

    def __init__(self, learning_rate: float, schedule: Schedule | None = None) -> None:
        self.learning_rate = learning_rate
        #: state array name -> the factor it is multiplied by each step
        self._decays: dict[str, float] = {}
        self.schedule = schedule if schedule is not None else ConstantSchedule()
        self.steps = 0
        #: the rate the last step used (None before the first step)
        self.last_learning_rate: float | None = None
        self._state: list[dict[str, np.ndarray]] | None = None
        self._shapes: list[tuple[tuple[int, ...], np.dtype]] = []
        # The lists of the last checked step: a model passes the same two lists every step.
        self._checked: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None

    @property
    def learning_rate(self) -> float:
        """The base rate; the schedule derives each step's rate from it."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if not value > 0:  # also refuses NaN
            raise ValueError(f"learning_rate must be > 0, got {value}")
        self._learning_rate = float(value)

    @property
    def current_learning_rate(self) -> float:
        """The rate the next step uses."""
        return self.schedule.rate(self.steps, self._learning_rate)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """One update of every array in ``params`` from the matching array in ``grads``."""
        if self._state is None:
            self._shapes = [(p.shape, p.dtype) for p in params]
            self._state = [self._new_state(p) for p in params]
            self._flush_every = _flush_interval(self._decays.values(), params[0].dtype)
        checked = self._checked
        if checked is None or params is not checked[0] or grads is not checked[1]:
            self._check_layout(params, grads)
            self._checked = (params, grads)
        rate = self.last_learning_rate = self.schedule.rate(self.steps, self._learning_rate)
        self.steps += 1
        for param, grad, state in zip(params, grads, self._state, strict=True):
            self._update(param, grad, state, rate)
        if self.steps % self._flush_every == 0:
            self.flush_subnormals()

    def _check_layout(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if len(params) != len(self._shapes) or len(grads) != len(params):
            raise ValueError(
                f"{type(self).__name__} was set up for {len(self._shapes)} parameter arrays, "
                f"got {len(params)} parameters and {len(grads)} gradients"
            )
        for param, grad, (shape, dtype) in zip(params, grads, self._shapes, strict=True):
            if param.shape != shape or grad.shape != shape or param.dtype != dtype:
                raise ValueError(
                    f"parameter/gradient shapes {param.shape}/{grad.shape} ({param.dtype}) "
                    f"differ from the first step's {shape} ({dtype})"
                )

    def flush_subnormals(self) -> None:
        """Zero the decaying state entries below ``state_floor`` (see the class docstring)."""
        for state in self._state or ():
            for name in self._decays:
                array = state[name]
                np.copyto(array, 0, where=np.abs(array) < state_floor(array.dtype))

    def _new_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], rate: float
    ) -> None:
        raise NotImplementedError


def state_floor(dtype: np.dtype) -> float:
    """Optimizer state below this is zeroed: ``tiny / eps**2`` (8e-25 in float32).

    An Adam moment that small moves a weight by less than ``lr * 1e-16`` per step (below
    the float32 resolution of any weight larger than 1e-9), so zeroing it changes no
    weight, while the margin of ``eps**-2`` keeps every entry normal between flushes.
    """
    info = np.finfo(dtype)
    return float(info.tiny / info.eps**2)


def _flush_interval(decays: Iterable[float], dtype: np.dtype, most: int = 64) -> int:
    """Steps between flushes: at most ``most``, and few enough that an entry just above
    ``state_floor`` cannot decay below the smallest normal float before the next flush."""
    info = np.finfo(dtype)
    steps = [
        int(math.log(float(info.tiny) / state_floor(dtype)) / math.log(decay))
        for decay in decays
        if 0 < decay < 1
    ]
    return max(1, min([most, *steps]))


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
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(learning_rate, schedule)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        if momentum:
            self._decays = {"velocity": momentum}

    def _new_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], rate: float
    ) -> None:
        direction = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            velocity = state["velocity"]
            if self.steps == 1:
                np.copyto(velocity, direction)
            else:
                velocity *= self.momentum
                velocity += direction
            direction = direction + self.momentum * velocity if self.nesterov else velocity
        param -= rate * direction


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
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(learning_rate, schedule)
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{label} must be in [0, 1), got {beta}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self._decays = {"m": beta1, "v": beta2}

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

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], rate: float
    ) -> None:
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
        update *= rate * (1 - b1) / (bias_correction1 * c)
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
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, eps, weight_decay, schedule)

    def _l2_gradient(self, param: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        return grad

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], rate: float
    ) -> None:
        if self.weight_decay:
            param *= 1 - rate * self.weight_decay
        super()._update(param, grad, state, rate)


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def make_optimizer(name: str, learning_rate: float, **settings: object) -> Optimizer:
    """The optimizer registered in ``OPTIMIZERS`` as ``name``, with ``learning_rate``.

    ``settings`` (e.g. ``momentum``, ``weight_decay``, ``schedule``) go to the optimizer
    where its constructor takes them; the others do not apply to it (momentum means
    nothing to Adam).
    """
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}") from None
    accepted = inspect.signature(cls).parameters
    return cls(learning_rate, **{key: value for key, value in settings.items() if key in accepted})
