"""nnlib's layers for a planned network, their weights drawn from the run's Generator in
order; a layer that cannot take what the one before gives is refused in nnlib's words,
naming the params.yaml key it comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnlib.activations import activation_from_config
from nnlib.convolution import Conv2D
from nnlib.flatten import Flatten
from nnlib.layers import DenseLayer, Dropout, Layer
from nnlib.pooling import MaxPool2D
from stages.cli.errors import ParamsError
from stages.network.plan import Plan, PlannedLayer


def _layer(config: dict[str, Any], rng: np.random.Generator) -> Layer:
    """The nnlib layer ``config`` describes, its weights (and dropout masks) from ``rng``."""
    kind = config["kind"]
    if kind == "dense":
        activation = activation_from_config(config["activation"])
        return DenseLayer(config["input_size"], config["output_size"], activation, rng=rng)
    if kind == "conv2d":
        return Conv2D(
            config["in_channels"],
            config["out_channels"],
            config["kernel_size"],
            stride=config["stride"],
            padding=config["padding"],
            activation_function=activation_from_config(config["activation"]),
            rng=rng,
        )
    if kind == "maxpool2d":
        return MaxPool2D(config["kernel_size"], config["stride"])
    if kind == "dropout":
        return Dropout(config["rate"], rng=rng)
    if kind == "flatten":
        return Flatten()
    raise ValueError(f"no layer of kind {kind!r}")


def _given(plan: Plan, index: int) -> str:
    """What layer ``index`` of ``plan`` is given: the images, or the layer before's output."""
    if index == 0:
        return "the input images" if len(plan.input_shape) > 1 else "the input"
    before = plan.layers[index - 1]
    return f"{before.source} ({before.kind})"


def build_layers(plan: Plan, rng: np.random.Generator, source: Path) -> list[Layer]:
    """The nnlib layers of ``plan``; ParamsError (one line naming ``source`` and the key, in
    nnlib's words) if one cannot take what it is given."""
    layers = []
    for index, planned in enumerate(plan.layers):
        layer = _layer(planned.config, rng)
        _check_shape(layer, planned, _given(plan, index), source)
        layers.append(layer)
    return layers


def check_layers_fit(plan: Plan, source: Path) -> None:
    """Refuse a plan with a layer that cannot take what it is given, in nnlib's words: that
    layer is built (placeholder weights; check its memory first) and says why."""
    for index, planned in enumerate(plan.layers):
        if planned.output_shape is None:
            layer = _layer(planned.config, np.random.default_rng(0))
            _check_shape(layer, planned, _given(plan, index), source)


def _check_shape(layer: Layer, planned: PlannedLayer, given: str, source: Path) -> None:
    try:
        shape = layer.output_shape(planned.input_shape)
    except ValueError as exc:
        raise ParamsError(
            f"{source}: {planned.source} ({planned.kind}) cannot take {given}, of shape "
            f"{planned.input_shape}: {exc}"
        ) from None
    if shape != planned.output_shape:  # the plan's arithmetic is nnlib's: never happens
        raise AssertionError(f"{planned.source}: nnlib gives {shape}, not {planned.output_shape}")
