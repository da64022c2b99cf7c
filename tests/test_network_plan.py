"""stages.network.plan: the network params.yaml describes, its layers' configs and shapes
planned before any weight exists, the same shapes nnlib's layers then give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.networks import STACKS, conv, dense, model_params, planned, pool

from nnlib.losses import CrossEntropyLoss
from nnlib.model import Model
from stages.network.build import build_layers
from stages.network.plan import plan_network


@pytest.mark.parametrize("name", STACKS)
def test_the_planned_shapes_are_nnlibs(tmp_path: Path, name: str) -> None:
    """The plan's arithmetic gives what the built model's layers give, layer by layer."""
    plan = planned(tmp_path, STACKS[name])
    assert plan.fits
    layers = build_layers(plan, np.random.default_rng(0), Path("params.yaml"))
    model = Model(layers, CrossEntropyLoss(), input_shape=plan.input_shape)
    assert [layer.output_shape for layer in plan.layers] == model.layer_shapes
    assert [layer.config() for layer in layers] == [layer.config for layer in plan.layers]
    assert plan.n_params == model.parameters[0].size
    assert model.input_shape == (1, 28, 28)


def test_a_flatten_comes_before_the_first_dense_entry_and_the_output_layer_last(
    tmp_path: Path,
) -> None:
    plan = planned(tmp_path, STACKS["lenet"], classes=26)
    assert [(layer.source, layer.kind) for layer in plan.layers] == [
        ("model.layers[0]", "conv2d"),
        ("model.layers[1]", "maxpool2d"),
        ("model.layers[2]", "conv2d"),
        ("model.layers[3]", "maxpool2d"),
        ("the flatten before model.layers[4]", "flatten"),
        ("model.layers[4]", "dense"),
        ("the output layer", "dense"),
    ]
    assert plan.layers[-1].config["output_size"] == 26
    assert plan.layers[-1].config["activation"] == {"name": "softmax"}
    assert plan.describe() == "1x28x28 -> 8x24x24 -> 8x12x12 -> 16x8x8 -> 16x4x4 -> 256 -> 64 -> 26"


def test_image_layers_last_get_a_flatten_before_the_output_layer(tmp_path: Path) -> None:
    plan = planned(tmp_path, [conv(4, 5), pool(2)])
    assert [layer.source for layer in plan.layers[-2:]] == [
        "the flatten before the output layer",
        "the output layer",
    ]
    assert plan.layers[-1].config["input_size"] == 4 * 12 * 12


def test_an_entry_without_activation_takes_model_activation(tmp_path: Path) -> None:
    model = model_params(
        tmp_path, layers=[conv(4, 5), dense(8, activation="sigmoid"), dense(8)], activation="tanh"
    )
    plan = plan_network(model, (28, 28), 10)
    activations = [layer.config.get("activation") for layer in plan.layers]
    assert activations == [
        {"name": "tanh"},
        None,  # the flatten
        {"name": "sigmoid"},
        {"name": "tanh"},
        {"name": "softmax"},
    ]


def test_hidden_sizes_is_the_mlp_on_rows_of_pixels(tmp_path: Path) -> None:
    plan = plan_network(model_params(tmp_path, hidden_sizes=[64, 32], dropout=0.1), (28, 28), 10)
    assert plan.input_shape == (784,)
    assert [(layer.source, layer.kind) for layer in plan.layers] == [
        ("model.hidden_sizes[0]", "dense"),
        ("the dropout after model.hidden_sizes[0]", "dropout"),
        ("model.hidden_sizes[1]", "dense"),
        ("the dropout after model.hidden_sizes[1]", "dropout"),
        ("the output layer", "dense"),
    ]
    assert plan.describe() == "784 -> 64 -> 32 -> 10"
    assert plan.label == "model.hidden_sizes [64, 32]"
    assert plan.n_params == 785 * 64 + 65 * 32 + 33 * 10


@pytest.mark.parametrize(
    ("layers", "stops_at"),
    [
        ([conv(4, 5), pool(2), conv(8, 5), pool(2), conv(8, 5), dense(8)], "model.layers[4]"),
        ([pool(29)], "model.layers[0]"),
        ([dense(8), conv(4, 3), pool(2)], "model.layers[1]"),
        ([conv(4, 3, stride=30), pool(2)], "model.layers[1]"),  # 1x1 left: no 2x2 window
    ],
    ids=["kernel-after-pools", "pool-wider-than-images", "conv-after-dense", "stride-too-long"],
)
def test_a_plan_stops_at_the_first_layer_that_cannot_take_its_input(
    tmp_path: Path, layers: list[dict[str, Any]], stops_at: str
) -> None:
    plan = planned(tmp_path, layers)
    assert not plan.fits
    assert plan.layers[-1].source == stops_at
    assert plan.layers[-1].output_shape is None
    assert all(layer.output_shape is not None for layer in plan.layers[:-1])
    assert plan.label.startswith(f"model.layers ({len(layers)} entr")
