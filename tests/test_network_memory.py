"""stages.network.memory: what training a planned network holds, counted from its shapes,
against what nnlib allocates; a network that would not fit is refused in one line."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from support.networks import STACKS, conv, dense, dropout, model_params, planned, pool

from nnlib.losses import CrossEntropyLoss
from nnlib.model import Model
from nnlib.optimizers import Adam
from stages.cli.errors import StageError
from stages.network.build import build_layers
from stages.network.memory import check_fits_in_memory, training_memory
from stages.network.plan import Plan, plan_network

SOURCE = Path("params.yaml")


def allocated_by_training(plan: Plan, batch_size: int) -> int:
    """The peak bytes NumPy allocates (tracemalloc sees its arrays) to build the network
    of ``plan`` and take three Adam steps on one batch."""
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, 784), dtype=np.float32)
    y = np.arange(batch_size) % 10
    tracemalloc.start()
    try:
        layers = build_layers(plan, rng, SOURCE)
        model = Model(layers, CrossEntropyLoss(), Adam(1e-3), input_shape=plan.input_shape)
        for _ in range(3):
            model.fit_batch(x, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("layers", "batch_size"),
    [
        (STACKS["lenet"], 128),
        ([conv(32, 5), pool(2), conv(64, 5), pool(2), dense(128)], 64),
        ([conv(16, 3, padding=1), conv(16, 3, padding=1), pool(3, stride=2), dropout(0.25)], 32),
        (STACKS["dense-only"], 100),
    ],
    ids=["lenet", "bench-cnn", "padded-overlapping", "dense-only"],
)
def test_the_count_is_what_nnlib_allocates(tmp_path: Path, layers: list, batch_size: int) -> None:
    """Within 10% of the measured peak, the best epoch's copy left out (no training loop
    here keeps one); activations matter: the same network at another batch size differs."""
    plan = planned(tmp_path, layers)
    counted = training_memory(plan, batch_size)
    expected = counted.bytes - 4 * plan.n_params
    assert allocated_by_training(plan, batch_size) == pytest.approx(expected, rel=0.1)
    assert training_memory(plan, 2 * batch_size).activations == 2 * counted.activations


def test_the_mlps_count_is_what_nnlib_allocates(tmp_path: Path) -> None:
    plan = plan_network(model_params(tmp_path, hidden_sizes=[800], dropout=0.2), (28, 28), 10)
    counted = training_memory(plan, 128)
    expected = counted.bytes - 4 * plan.n_params
    assert allocated_by_training(plan, 128) == pytest.approx(expected, rel=0.1)


def test_a_network_that_fits_passes_and_says_what_it_needs(tmp_path: Path) -> None:
    plan = planned(tmp_path, STACKS["lenet"])
    needed = check_fits_in_memory(plan, 128, SOURCE, available=10**9)
    assert needed.parameters == plan.n_params
    assert needed.bytes < 10**9


def test_activations_alone_can_refuse_a_network(tmp_path: Path) -> None:
    """conv 64 of 3x3 with padding 20: 64 x 66 x 66 values a sample in each of its buffers,
    and 17 MB of parameters (mostly the output layer's)."""
    plan = planned(tmp_path, [conv(64, 3, padding=20), pool(2)])
    needed = training_memory(plan, 512)
    assert needed.parameter_values * 4 < 10**8 < 10**9 < needed.bytes
    with pytest.raises(StageError) as caught:
        check_fits_in_memory(plan, 512, SOURCE, available=10**9)
    (line,) = str(caught.value).splitlines()
    assert re.fullmatch(
        r"params\.yaml: model\.layers \(2 entries\) gives [\d,]+ parameters and "
        r"[\d,]+ activation values per batch of 512 \(train\.batch_size\), which need about "
        r"[\d.]+ GB to train; this machine has 1\.0 GB available",
        line,
    )


def test_a_plan_that_stops_early_is_refused_with_what_it_needs_at_least(tmp_path: Path) -> None:
    """Two convs of 100,000 filters, then one whose kernel does not fit: counted up to it,
    its own weights included (built to say why it does not fit, they must fit too)."""
    plan = planned(tmp_path, [conv(100_000, 5), conv(100_000, 5), pool(2), conv(8, 30)])
    assert not plan.fits
    parameters = (25 + 1) * 100_000 + (100_000 * 25 + 1) * 100_000 + 100_000 * 900 * 8 + 8
    assert parameters == 250_722_700_008
    with pytest.raises(StageError, match=r"gives at least 250,722,700,008 parameters and "):
        check_fits_in_memory(plan, 32, SOURCE, available=10**12)
