"""Learning-rate schedules: the rate an optimizer uses at each step, given its base rate.

Any optimizer takes one (``Adam(1e-3, schedule=CosineSchedule(total_steps))``); the
optimizer's ``learning_rate`` stays the base (peak) rate and ``current_learning_rate``
is what the next step uses.
"""

from __future__ import annotations

import math


class Schedule:
    """Base class: ``rate(step, base)`` is the learning rate of update number ``step`` (0-based)."""

    name: str = ""

    def rate(self, step: int, base: float) -> float:
        raise NotImplementedError

    @classmethod
    def spanning(cls, total_steps: int) -> Schedule:
        """This schedule, set up for a run of ``total_steps`` updates."""
        return cls()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConstantSchedule(Schedule):
    """The base rate at every step (the blog post's training)."""

    name = "constant"

    def rate(self, step: int, base: float) -> float:
        return base


class CosineSchedule(Schedule):
    """Cosine decay from the base rate to ``floor * base`` over ``total_steps`` updates.

    ``rate(k) = low + (base - low) * (1 + cos(pi * k / total_steps)) / 2`` with
    ``low = floor * base``, the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``
    stepped once per update; steps past ``total_steps`` keep the floor.
    """

    name = "cosine"

    def __init__(self, total_steps: int, floor: float = 0.01) -> None:
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        if not 0 <= floor <= 1:
            raise ValueError(f"floor must be in [0, 1] (a fraction of the base rate), got {floor}")
        self.total_steps = total_steps
        self.floor = floor

    def rate(self, step: int, base: float) -> float:
        low = self.floor * base
        progress = min(step, self.total_steps) / self.total_steps
        return low + (base - low) * (1 + math.cos(math.pi * progress)) / 2

    @classmethod
    def spanning(cls, total_steps: int) -> CosineSchedule:
        return cls(total_steps)

    def __repr__(self) -> str:
        return f"CosineSchedule(total_steps={self.total_steps}, floor={self.floor})"


SCHEDULES: dict[str, type[Schedule]] = {cls.name: cls for cls in (ConstantSchedule, CosineSchedule)}


def make_schedule(name: str, total_steps: int) -> Schedule:
    """The schedule registered as ``name``, spanning ``total_steps`` updates."""
    try:
        cls = SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}") from None
    return cls.spanning(total_steps)
