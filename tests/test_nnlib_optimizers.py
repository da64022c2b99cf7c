"""Optimizer steps against independent rewrites of each formula and a hand-worked Adam case.

The references (tests/support/nnlib_reference.py) run in float64 from the textbook form;
nnlib's Adam keeps a rearranged state, so only parameter values are compared.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from support import nnlib_reference as ref
from support.models import classifier

from nnlib import SGD, Adam, AdamW
from nnlib.optimizers import Optimizer

N_STEPS = 12


def gradient_sequence(shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Changing gradients: random signs and scales from 1e-3 to 10, some exact zeros."""
    rng = np.random.default_rng(seed)
    grads = []
    for _ in range(N_STEPS):
        scale = 10.0 ** rng.uniform(-3, 1, size=shape)
        g = rng.normal(size=shape) * scale
        g[rng.random(shape) < 0.1] = 0.0
        grads.append(g)
    return grads


# name -> (nnlib optimizer factory, reference trajectory(p0, grads))
CASES: dict[str, tuple[Callable[[], Optimizer], Callable]] = {
    "sgd": (lambda: SGD(0.05), lambda p, g: ref.sgd_trajectory(p, g, 0.05)),
    "sgd-momentum": (
        lambda: SGD(0.05, momentum=0.9),
        lambda p, g: ref.sgd_trajectory(p, g, 0.05, momentum=0.9),
    ),
    "sgd-nesterov": (
        lambda: SGD(0.05, momentum=0.8, nesterov=True),
        lambda p, g: ref.sgd_trajectory(p, g, 0.05, momentum=0.8, nesterov=True),
    ),
    "sgd-weight-decay": (
        lambda: SGD(0.05, weight_decay=0.1),
        lambda p, g: ref.sgd_trajectory(p, g, 0.05, weight_decay=0.1),
    ),
    "sgd-momentum-nesterov-weight-decay": (
        lambda: SGD(0.02, momentum=0.9, nesterov=True, weight_decay=0.05),
        lambda p, g: ref.sgd_trajectory(p, g, 0.02, momentum=0.9, nesterov=True, weight_decay=0.05),
    ),
    "adam": (lambda: Adam(0.01), lambda p, g: ref.adam_trajectory(p, g, 0.01)),
    "adam-betas-eps": (
        lambda: Adam(0.03, beta1=0.5, beta2=0.9, eps=1e-3),
        lambda p, g: ref.adam_trajectory(p, g, 0.03, beta1=0.5, beta2=0.9, eps=1e-3),
    ),
    "adam-weight-decay": (
        lambda: Adam(0.01, weight_decay=0.1),
        lambda p, g: ref.adam_trajectory(p, g, 0.01, weight_decay=0.1),
    ),
    "adamw": (
        lambda: AdamW(0.01, weight_decay=0.1),
        lambda p, g: ref.adam_trajectory(p, g, 0.01, weight_decay=0.1, decoupled=True),
    ),
    "adamw-default-decay": (
        lambda: AdamW(0.01),
        lambda p, g: ref.adam_trajectory(p, g, 0.01, weight_decay=0.01, decoupled=True),
    ),
}

# float64 agrees to rounding; float32 accumulates ~1e-7 relative rounding per step over
# N_STEPS steps on O(1) parameters (and Adam divides by sqrt(v)), so 1e-5 is generous yet
# far below any formula error (those move parameters by >= 1e-4 here).
TOLERANCE = {np.float64: {"rtol": 1e-12, "atol": 1e-13}, np.float32: {"rtol": 2e-5, "atol": 2e-6}}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_optimizer_matches_reference(name: str, dtype: type) -> None:
    """Several steps on two arrays of different shapes equal the textbook trajectory."""
    make_optimizer, reference = CASES[name]
    rng = np.random.default_rng(42)
    p0 = [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=(5,)).astype(dtype)]
    grads = [gradient_sequence(p.shape, seed) for seed, p in enumerate(p0)]
    params = [p.copy() for p in p0]
    ids = [id(p) for p in params]
    optimizer = make_optimizer()
    expected = [reference(p.astype(np.float64), g) for p, g in zip(p0, grads, strict=True)]
    for t in range(N_STEPS):
        optimizer.step(params, [g[t].astype(dtype) for g in grads])
        for param, trajectory in zip(params, expected, strict=True):
            assert param.dtype == dtype
            np.testing.assert_allclose(param, trajectory[t], **TOLERANCE[dtype])
    assert [id(p) for p in params] == ids  # updated in place, never replaced
    assert optimizer.steps == N_STEPS


def test_adam_two_steps_worked_by_hand() -> None:
    """Adam(lr=0.1), p0 = 1, g1 = 0.5, g2 = -0.25, default betas and eps, against hand arithmetic.

    Step 1 (t = 1):
        m1 = 0.1 * 0.5 = 0.05            v1 = 0.001 * 0.25 = 0.00025
        m_hat = 0.05 / 0.1 = 0.5         v_hat = 0.00025 / 0.001 = 0.25, sqrt = 0.5
        step = 0.1 * 0.5 / (0.5 + 1e-8) = 0.1 / (1 + 2e-8) = 0.09999999800000004
        p1 = 1 - 0.09999999800000004 = 0.90000000199999996
    Step 2 (t = 2):
        m2 = 0.9 * 0.05 + 0.1 * (-0.25) = 0.045 - 0.025 = 0.02
        v2 = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00024975 + 0.0000625 = 0.00031225
        1 - b1^2 = 1 - 0.81 = 0.19       1 - b2^2 = 1 - 0.998001 = 0.001999
        m_hat = 0.02 / 0.19 = 0.10526315789473684
        v_hat = 0.00031225 / 0.001999 = 312.25 / 1999 = 0.15620310155077539
        sqrt(v_hat): 0.3952253807^2 = 0.15618304 + 2 * 0.3952 * 0.0000253807 + 0.0000253807^2
                   = 0.15618304 + 0.0000200609053 + 0.000000000644180 = 0.156203101549180;
                   one Newton step adds (0.15620310155077539 - 0.156203101549180) / 0.79045
                   = 2.018e-12, so sqrt(v_hat) = 0.395225380702
        step = 0.1 * 0.10526315789473684 / (0.395225380702 + 1e-8)
             = 0.010526315789473684 / 0.395225390702
             0.395225390702 * 0.02663 = 0.00790450781404 + 0.002371352344212
                                        + 0.0002371352344212 + 0.00001185676172106
                                      = 0.01052485215439426
             remainder 0.010526315789473684 - 0.01052485215439426 = 0.000001463635079424
             0.395225390702 * 3.7033e-6 = 1.46363818939e-6, 3.109966e-12 too much,
             so remainder / 0.395225390702 = 3.7033e-6 - 3.109966e-12 / 0.3952254
                                          = 3.7033e-6 - 7.8689e-12 = 3.7032921311e-6
        step = 0.02663 + 0.0000037032921311 = 0.0266337032921311
        p2 = 0.90000000199999996 - 0.0266337032921311 = 0.8733662987078689
    (Hand arithmetic carried to ~13 significant digits, hence the 1e-12 tolerance.)
    Adding eps to sqrt(v) before bias correction moves p1 by ~6e-8 and p2 by ~8e-8; putting
    eps inside the square root moves p2 by ~1.8e-10: both far outside the tolerance.
    """
    p = np.array([1.0])
    optimizer = Adam(learning_rate=0.1)
    optimizer.step([p], [np.array([0.5])])
    assert p[0] == pytest.approx(0.90000000199999996, abs=1e-15)
    optimizer.step([p], [np.array([-0.25])])
    assert p[0] == pytest.approx(0.8733662987078689, abs=1e-12)
    # and the independent rewrite agrees with the hand calculation
    trajectory = ref.adam_trajectory(np.array([1.0]), [np.array([0.5]), np.array([-0.25])], 0.1)
    assert trajectory[0][0] == pytest.approx(0.90000000199999996, abs=1e-15)
    assert trajectory[1][0] == pytest.approx(0.8733662987078689, abs=1e-12)


def test_adamw_one_step_by_hand() -> None:
    """AdamW(lr=0.1, wd=0.5), p0 = 2, g = 0.3: p = 2 * (1 - 0.05) = 1.9, then the Adam step.

    First Adam step is lr * g / (|g| + eps) = 0.1 * 0.3 / (0.3 + 1e-8) = 0.1 / (1 + 1e-8 / 0.3)
    = 0.1 * (1 - 3.3333333e-8) = 0.09999999666666678, so p1 = 1.9 - 0.0999999966666668
    = 1.8000000033333332. (Adam with L2 would instead see g = 0.3 + 0.5 * 2 = 1.3, and
    p1 = 2 - 0.1 * 1.3 / (1.3 + 1e-8) = 1.9000000007692308.)
    """
    p = np.array([2.0])
    AdamW(learning_rate=0.1, weight_decay=0.5).step([p], [np.array([0.3])])
    assert p[0] == pytest.approx(1.8000000033333332, abs=1e-14)
    q = np.array([2.0])
    Adam(learning_rate=0.1, weight_decay=0.5).step([q], [np.array([0.3])])
    assert q[0] == pytest.approx(1.9000000007692308, abs=1e-14)


def test_sgd_momentum_two_steps_by_hand() -> None:
    """SGD(lr=0.1, momentum=0.9): p0 = 1, g1 = 1, g2 = 2.

    b1 = g1 = 1, p1 = 1 - 0.1 = 0.9; b2 = 0.9 * 1 + 2 = 2.9, p2 = 0.9 - 0.29 = 0.61.
    Nesterov: p1 = 1 - 0.1 * (1 + 0.9 * 1) = 0.81; p2 = 0.81 - 0.1 * (2 + 0.9 * 2.9) = 0.349.
    """
    p = np.array([1.0])
    opt = SGD(0.1, momentum=0.9)
    opt.step([p], [np.array([1.0])])
    assert p[0] == pytest.approx(0.9, abs=1e-15)
    opt.step([p], [np.array([2.0])])
    assert p[0] == pytest.approx(0.61, abs=1e-15)
    q = np.array([1.0])
    opt = SGD(0.1, momentum=0.9, nesterov=True)
    opt.step([q], [np.array([1.0])])
    assert q[0] == pytest.approx(0.81, abs=1e-15)
    opt.step([q], [np.array([2.0])])
    assert q[0] == pytest.approx(0.349, abs=1e-15)


@pytest.mark.parametrize("make_optimizer", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01)])
def test_optimizer_updates_model_parameters_in_place(make_optimizer: Callable) -> None:
    """model.backward changes the layers' own weights (views into the one flat vector)."""
    rng = np.random.default_rng(0)
    model = classifier([4, 5, 3], rng=rng, optimizer=make_optimizer())
    flat = model.parameters[0]
    weight_views = [layer.weights for layer in model.layers]
    before = [w.copy() for w in weight_views]
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    for _ in range(3):
        model.backward(y, model.forward(x))
    assert model.parameters[0] is flat
    for layer, view, old in zip(model.layers, weight_views, before, strict=True):
        assert np.shares_memory(layer.weights, flat)
        assert layer.weights is view
        assert not np.array_equal(view, old)


def test_adam_learning_rate_change_takes_effect() -> None:
    """Changing learning_rate between steps (as backward(lr) does in the blog post this project
    follows) scales the step."""
    grads = [np.array([0.5, -1.0]), np.array([0.2, 0.3]), np.array([-0.4, 0.1])]
    p = np.array([1.0, -1.0])
    opt = Adam(0.1)
    opt.step([p], [grads[0]])
    opt.learning_rate = 0.01
    opt.step([p], [grads[1]])
    # reference: the same three moments, with lr 0.1 on step 1 and 0.01 on step 2
    first = ref.adam_trajectory(np.array([1.0, -1.0]), grads[:1], 0.1)[0]
    m = 0.1 * grads[0]
    v = 0.001 * grads[0] ** 2
    m = 0.9 * m + 0.1 * grads[1]
    v = 0.999 * v + 0.001 * grads[1] ** 2
    second = first - 0.01 * (m / 0.19) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(p, second, rtol=1e-13)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.0),
        lambda: SGD(-1.0),
        lambda: SGD(0.1, momentum=1.0),
        lambda: SGD(0.1, nesterov=True),
        lambda: SGD(0.1, weight_decay=-1),
        lambda: Adam(0.0),
        lambda: Adam(0.1, beta1=1.0),
        lambda: Adam(0.1, beta2=-0.1),
        lambda: Adam(0.1, eps=0.0),
        lambda: AdamW(0.1, weight_decay=-0.1),
        lambda: Adam(float("nan")),
    ],
)
def test_invalid_hyperparameters_are_refused(make: Callable) -> None:
    """Out-of-range hyperparameters raise ValueError at construction."""
    with pytest.raises(ValueError, match=r"must|needs") as info:
        make()
    assert "\n" not in str(info.value)


def test_optimizer_refuses_changed_parameter_layout() -> None:
    """State created for one layout is not silently reused for another."""
    opt = Adam(0.1)
    opt.step([np.zeros(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="differ"):
        opt.step([np.zeros(4)], [np.ones(4)])
    with pytest.raises(ValueError, match="parameter arrays"):
        opt.step([np.zeros(3), np.zeros(2)], [np.ones(3), np.ones(2)])


def test_a_refused_optimizer_step_changes_nothing() -> None:
    params = [np.ones(3, np.float32), np.ones(2, np.float32)]
    optimizer = Adam(0.1)
    optimizer.step(params, [np.ones(3, np.float32), np.ones(2, np.float32)])
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match="differ from the first step"):
        optimizer.step(params, [np.ones(3, np.float32), np.ones(5, np.float32)])
    assert optimizer.steps == 1
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)
