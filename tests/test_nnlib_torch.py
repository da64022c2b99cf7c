"""nnlib against PyTorch, number for number: loss, every gradient, and optimizer trajectories.

The same initial weights are copied into ``torch.nn.Sequential(Linear, ReLU, Linear, ReLU,
Linear)`` (torch stores Linear weights as (out, in), nnlib as (in, out)); torch's
``nn.CrossEntropyLoss`` on logits is compared with nnlib's Softmax + CrossEntropyLoss.

Tolerances. In float64 both sides compute the same formulas with only summation order
differing, measured at <= 3e-16 absolute after 50 steps, so rtol 1e-10 / atol 1e-12 leaves a
large margin while any formula error (eps placement alone moves parameters by ~1e-8 here)
fails. In float32 each side rounds differently (nnlib's softmax+log vs torch's
log-softmax, nnlib's rearranged Adam state, different BLAS kernels); measured differences
after 50 steps are <= 2.4e-7 absolute on O(0.1..1) weights, so float32 uses atol 1e-5 /
rtol 1e-4 (about 40x the observed spread): it checks the float32 code path end to end,
while the float64 runs are the precise check of the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from support.models import classifier, random_biases

torch = pytest.importorskip(
    "torch", reason="torch is not installed (make setup installs a local CPU wheel if one exists)"
)

from nnlib import (  # noqa: E402
    SGD,
    Adam,
    AdamW,
    DenseLayer,
    Dropout,
    MeanSquaredError,
    Model,
)
from nnlib.optimizers import Optimizer  # noqa: E402
from nnlib.schedules import CosineSchedule, Schedule  # noqa: E402

SIZES = [6, 16, 12, 4]
TOL = {
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
}
GRAD_TOL = {
    np.float64: {"rtol": 1e-10, "atol": 1e-14},
    np.float32: {"rtol": 1e-4, "atol": 1e-6},
}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Single-threaded torch for reproducible reductions (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_dtype(dtype: type) -> torch.dtype:
    return torch.float64 if dtype == np.float64 else torch.float32


def build_pair(
    dtype: type, optimizer: Optimizer | None = None, seed: int = 0
) -> tuple[Model, torch.nn.Sequential, np.random.Generator]:
    """An nnlib model and a torch net holding the same weights (random biases too)."""
    rng = np.random.default_rng(seed)
    model = classifier(SIZES, optimizer=optimizer, rng=rng, dtype=dtype)
    random_biases(model, rng, 0.1)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 12),
        torch.nn.ReLU(),
        torch.nn.Linear(12, 4),
    ).to(torch_dtype(dtype))
    with torch.no_grad():
        for layer, linear in zip(model.layers, linears(net), strict=True):
            linear.weight.copy_(torch.from_numpy(layer.weights.T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.biases.copy()))
    return model, net, rng


def linears(net: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [module for module in net if isinstance(module, torch.nn.Linear)]


def assert_same_parameters(model: Model, net: torch.nn.Sequential, tol: dict) -> None:
    dense = [layer for layer in model.layers if isinstance(layer, DenseLayer)]
    for i, (layer, linear) in enumerate(zip(dense, linears(net), strict=True)):
        np.testing.assert_allclose(
            layer.weights, linear.weight.detach().numpy().T, err_msg=f"layer {i} weights", **tol
        )
        np.testing.assert_allclose(
            layer.biases, linear.bias.detach().numpy(), err_msg=f"layer {i} biases", **tol
        )


def data(rng: np.random.Generator, dtype: type, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(n, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], size=n)


@DTYPES
@pytest.mark.parametrize("targets", ["labels", "onehot"])
def test_loss_and_gradients_match_torch(dtype: type, targets: str) -> None:
    """One batch: the same loss, the same dL/dW and dL/db for every layer, the same dL/dx."""
    model, net, rng = build_pair(dtype)
    x, labels = data(rng, dtype, n=32)
    y = labels if targets == "labels" else np.eye(SIZES[-1], dtype=dtype)[labels]

    probs = model.forward(x)
    loss = model.compute_loss(y, probs)
    grad_x = model.compute_gradients(y, probs, input_gradient=True)

    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    loss_t = torch.nn.CrossEntropyLoss()(net(x_t), torch.from_numpy(y))
    loss_t.backward()

    assert loss == pytest.approx(loss_t.item(), rel=GRAD_TOL[dtype]["rtol"])
    np.testing.assert_allclose(
        probs, torch.softmax(net(x_t), dim=1).detach().numpy(), **GRAD_TOL[dtype]
    )
    for i, (layer, linear) in enumerate(zip(model.layers, linears(net), strict=True)):
        np.testing.assert_allclose(
            layer.grad_weights, linear.weight.grad.numpy().T, err_msg=f"dW{i}", **GRAD_TOL[dtype]
        )
        np.testing.assert_allclose(
            layer.grad_biases, linear.bias.grad.numpy(), err_msg=f"db{i}", **GRAD_TOL[dtype]
        )
    np.testing.assert_allclose(grad_x, x_t.grad.numpy(), **GRAD_TOL[dtype])


def test_mse_on_softmax_matches_torch() -> None:
    """MeanSquaredError after a Softmax (the Jacobian-vector path) matches torch's MSELoss."""
    model, net, rng = build_pair(np.float64)
    model = Model(model.layers, MeanSquaredError())  # same layers (and weights), MSE loss
    x, labels = data(rng, np.float64, n=16)
    y = np.eye(SIZES[-1])[labels]
    probs = model.forward(x)
    loss = model.compute_loss(y, probs)
    model.compute_gradients(y, probs)
    loss_t = torch.nn.MSELoss()(torch.softmax(net(torch.from_numpy(x)), dim=1), torch.from_numpy(y))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    for layer, linear in zip(model.layers, linears(net), strict=True):
        np.testing.assert_allclose(
            layer.grad_weights, linear.weight.grad.numpy().T, **TOL[np.float64]
        )
        np.testing.assert_allclose(layer.grad_biases, linear.bias.grad.numpy(), **TOL[np.float64])


OPTIMIZERS: dict[str, tuple[Callable[[], Optimizer], Callable, int]] = {
    # name: (nnlib optimizer, torch optimizer factory, steps)
    "adam": (lambda: Adam(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2), 50),
    "adam-default-lr": (lambda: Adam(), lambda p: torch.optim.Adam(p), 50),
    "adam-l2": (
        lambda: Adam(1e-2, weight_decay=0.05),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.05),
        10,
    ),
    "adamw": (
        lambda: AdamW(1e-2, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
        10,
    ),
    "sgd-momentum": (
        lambda: SGD(0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        10,
    ),
    "sgd-nesterov-wd": (
        lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        10,
    ),
}


@DTYPES
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_trajectory_matches_torch(name: str, dtype: type) -> None:
    """Identical mini-batches through model.backward and torch's optimizer give the same weights."""
    make_ours, make_theirs, steps = OPTIMIZERS[name]
    model, net, rng = build_pair(dtype, make_ours())
    optimizer_t = make_theirs(net.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = data(rng, dtype)
    for _ in range(steps):
        rows = rng.choice(len(x), size=32, replace=False)
        xb, yb = x[rows], y[rows]
        probs = model.forward(xb)
        assert probs.dtype == dtype  # the float32 run computes in float32, as torch's does
        loss = model.compute_loss(yb, probs)
        model.backward(yb, probs)
        optimizer_t.zero_grad()
        loss_t = loss_fn(net(torch.from_numpy(xb)), torch.from_numpy(yb))
        loss_t.backward()
        optimizer_t.step()
        assert loss == pytest.approx(loss_t.item(), rel=TOL[dtype]["rtol"])
    assert_same_parameters(model, net, TOL[dtype])


SCHEDULED: dict[str, tuple[Callable[[Schedule], Optimizer], Callable]] = {
    # name: (nnlib optimizer on a schedule, torch optimizer factory); base rate 1e-2
    "sgd-momentum": (
        lambda s: SGD(1e-2, momentum=0.9, schedule=s),
        lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9),
    ),
    "adam": (lambda s: Adam(1e-2, schedule=s), lambda p: torch.optim.Adam(p, lr=1e-2)),
    "adamw": (
        lambda s: AdamW(1e-2, weight_decay=0.1, schedule=s),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULED))
def test_cosine_schedule_matches_torch_cosine_annealing(name: str) -> None:
    """A cosine schedule drives each optimizer as torch's CosineAnnealingLR stepped per update."""
    steps, floor = 30, 0.01
    make_ours, make_theirs = SCHEDULED[name]
    model, net, rng = build_pair(np.float64, make_ours(CosineSchedule(steps, floor=floor)))
    optimizer_t = make_theirs(net.parameters())
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer_t, T_max=steps, eta_min=floor * 1e-2
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = data(rng, np.float64)
    for _ in range(steps):
        assert model.optimizer.current_learning_rate == pytest.approx(
            optimizer_t.param_groups[0]["lr"], rel=1e-12
        )
        rows = rng.choice(len(x), size=32, replace=False)
        model.backward(y[rows], model.forward(x[rows]))
        optimizer_t.zero_grad()
        loss_fn(net(torch.from_numpy(x[rows])), torch.from_numpy(y[rows])).backward()
        optimizer_t.step()
        scheduler.step()
    assert_same_parameters(model, net, TOL[np.float64])
    # the schedule really moved the rate: from the base down towards the floor
    assert model.optimizer.current_learning_rate == pytest.approx(floor * 1e-2, rel=1e-12)


class SharedMask(torch.nn.Module):
    """Torch's inverted dropout with the mask nnlib drew: ``x * mask`` (the mask holds 0 or
    ``1 / (1 - rate)``, as ``torch.nn.Dropout`` scales what it keeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


@DTYPES
def test_training_with_dropout_matches_torch_with_the_same_masks(dtype: type) -> None:
    """Adam steps through two dropout layers: each step torch multiplies by the masks nnlib's
    Dropout drew; losses and weights agree step by step, and prediction drops nothing."""
    model, net, rng = build_pair(dtype, Adam(1e-2))
    dense = model.layers
    dropouts = [Dropout(0.3, rng=rng), Dropout(0.3, rng=rng)]
    model = Model([dense[0], dropouts[0], dense[1], dropouts[1], dense[2]], model.loss, Adam(1e-2))
    masks = [SharedMask(), SharedMask()]
    modules = list(net)
    net = torch.nn.Sequential(*modules[:2], masks[0], *modules[2:4], masks[1], modules[4])
    optimizer_t = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = data(rng, dtype)
    for _ in range(20):
        rows = rng.choice(len(x), size=32, replace=False)
        probs = model.forward(x[rows])
        loss = model.compute_loss(y[rows], probs)
        model.backward(y[rows], probs)
        for shared, dropout in zip(masks, dropouts, strict=True):
            shared.mask = torch.from_numpy(dropout.mask.copy())
        optimizer_t.zero_grad()
        loss_t = loss_fn(net(torch.from_numpy(x[rows])), torch.from_numpy(y[rows]))
        loss_t.backward()
        optimizer_t.step()
        assert loss == pytest.approx(loss_t.item(), rel=TOL[dtype]["rtol"])
    assert_same_parameters(model, net, TOL[dtype])
    for shared in masks:
        shared.mask = torch.ones(1, dtype=torch_dtype(dtype))
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(model.predict(x), expected, **TOL[dtype])
