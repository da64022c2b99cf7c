"""stages.network.build: nnlib's layers for a plan, drawn from the run's Generator in order,
and a layer that cannot take its input refused in nnlib's words, naming its key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.models import dense_layers
from support.networks import STACKS, conv, dense, dropout, model_params, planned, pool

from nnlib.layers import DenseLayer, Dropout
from stages.cli.errors import ParamsError
from stages.network.build import build_layers, check_layers_fit
from stages.network.plan import plan_network

SOURCE = Path("params.yaml")


def test_the_mlp_is_the_stack_nnlib_builds_by_hand(tmp_path: Path) -> None:
    """hidden_sizes builds dense layers (and dropout) drawing from the Generator in the
    order the train stage always drew them: the same seed gives the same model as before."""
    plan = plan_network(model_params(tmp_path, hidden_sizes=[64, 32], dropout=0.1), (28, 28), 10)
    layers = build_layers(plan, np.random.default_rng(7), SOURCE)
    by_hand = dense_layers((784, 64, 32, 10), rng=7)
    dense = [layer for layer in layers if isinstance(layer, DenseLayer)]
    assert [layer.config() for layer in dense] == [layer.config() for layer in by_hand]
    for built, expected in zip(dense, by_hand, strict=True):
        assert np.array_equal(built.weights, expected.weights)
    assert [type(layer) for layer in layers] == [
        DenseLayer,
        Dropout,
        DenseLayer,
        Dropout,
        DenseLayer,
    ]


def test_a_seed_gives_the_same_cnn(tmp_path: Path) -> None:
    plan = planned(tmp_path, STACKS["lenet"])
    first, again = (build_layers(plan, np.random.default_rng(3), SOURCE) for _ in range(2))
    other = build_layers(plan, np.random.default_rng(4), SOURCE)
    assert np.array_equal(first[0].weights, again[0].weights)
    assert not np.array_equal(first[0].weights, other[0].weights)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [conv(4, 5), pool(2), conv(8, 5), pool(2), conv(8, 5), dense(8)],
            "model.layers[4] (conv2d) cannot take model.layers[3] (maxpool2d), of shape "
            "(8, 4, 4): its 5x5 kernel does not fit in 4x4 (padding 0)",
        ),
        (
            [pool(29)],
            "model.layers[0] (maxpool2d) cannot take the input images, of shape (1, 28, 28): "
            "its 29x29 window does not fit in 28x28",
        ),
        (
            [dense(8), dropout(0.5), conv(4, 3)],
            "model.layers[2] (conv2d) cannot take model.layers[1] (dropout), of shape (8,): it "
            "expects images of shape (1, height, width)",
        ),
    ],
    ids=["kernel-after-pools", "pool-wider-than-images", "conv-after-dense"],
)
def test_a_layer_that_cannot_take_its_input_is_one_line_in_nnlibs_words(
    tmp_path: Path, layers: list, message: str
) -> None:
    plan = planned(tmp_path, layers)
    with pytest.raises(ParamsError) as caught:
        check_layers_fit(plan, SOURCE)
    assert str(caught.value) == f"params.yaml: {message}"
    with pytest.raises(ParamsError) as built:
        build_layers(plan, np.random.default_rng(0), SOURCE)
    assert str(built.value) == str(caught.value)


def test_a_plan_that_fits_passes(tmp_path: Path) -> None:
    check_layers_fit(planned(tmp_path, STACKS["padded-strided"]), SOURCE)
