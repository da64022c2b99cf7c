"""nnlib.schedules: each step's learning rate against the formula."""

from __future__ import annotations

import itertools
import math

import pytest

from nnlib.schedules import SCHEDULES, ConstantSchedule, CosineSchedule, make_schedule


def cosine(step: int, total: int, base: float, low: float) -> float:
    """The textbook cosine annealing rate of update ``step`` (0-based) of ``total``."""
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * step / total))


@pytest.mark.parametrize(("total", "floor"), [(1000, 0.01), (37, 0.0), (5, 0.5)])
def test_cosine_at_the_first_middle_and_last_step(total: int, floor: float) -> None:
    schedule = CosineSchedule(total, floor=floor)
    base = 3e-3
    assert schedule.rate(0, base) == base  # the first update uses the base rate itself
    middle = total // 2
    assert schedule.rate(middle, base) == pytest.approx(
        cosine(middle, total, base, floor * base), rel=1e-15
    )
    if total % 2 == 0:  # halfway exactly: the mean of the base rate and the floor
        assert schedule.rate(middle, base) == pytest.approx((base + floor * base) / 2, rel=1e-15)
    last = total - 1
    assert schedule.rate(last, base) == pytest.approx(
        cosine(last, total, base, floor * base), rel=1e-15
    )
    assert floor * base < schedule.rate(last, base) < schedule.rate(last - 1, base)


def test_cosine_decreases_every_step_and_then_holds_the_floor() -> None:
    schedule = CosineSchedule(100, floor=0.01)
    rates = [schedule.rate(step, 1.0) for step in range(100)]
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert schedule.rate(100, 1.0) == schedule.rate(5000, 1.0) == pytest.approx(0.01)


def test_constant_is_the_base_rate_everywhere() -> None:
    schedule = ConstantSchedule()
    assert {schedule.rate(step, 0.02) for step in (0, 1, 10**6)} == {0.02}


def test_schedules_are_built_by_name_for_a_run() -> None:
    assert set(SCHEDULES) == {"constant", "cosine"}
    built = make_schedule("cosine", 123)
    assert isinstance(built, CosineSchedule)
    assert built.total_steps == 123
    assert isinstance(make_schedule("constant", 123), ConstantSchedule)
    with pytest.raises(ValueError, match="unknown schedule 'step'; known: constant, cosine"):
        make_schedule("step", 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total_steps": 0}, "total_steps must be a positive integer"),
        ({"total_steps": True}, "total_steps must be a positive integer"),
        ({"total_steps": 10, "floor": 1.5}, "floor must be in"),
        ({"total_steps": 10, "floor": -0.1}, "floor must be in"),
    ],
)
def test_bad_cosine_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CosineSchedule(**kwargs)
