"""The network params.yaml describes, planned before anything is built: each layer's nnlib
config, the params.yaml key it comes from, and the shape of one sample in and out.

``model.hidden_sizes`` is an MLP on rows of pixels (``(784,)`` for 28 x 28 images): a dense
layer per size, each followed by dropout when ``model.dropout`` > 0. ``model.layers`` is a
stack on images ``(1, rows, cols)``: its entries in order, with a Flatten before a dense
entry that follows image layers. Both end in the softmax output layer, one unit per class.

The shapes come from the formula nnlib's image layers use (``nnlib.windows.output_size``),
so the memory a network needs is known before any of its weights exist (``memory``); the
layers nnlib then builds check themselves against the same shapes (``build``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnlib.activations import get_activation
from nnlib.layer_kinds import layer_class
from nnlib.windows import output_size
from stages.cli.params import Conv2DEntry, DenseEntry, DropoutEntry, MaxPool2DEntry, ModelParams

Shape = tuple[int, ...]


@dataclass(frozen=True)
class PlannedLayer:
    """One layer: where params.yaml asks for it, its config in nnlib's form
    (``Layer.config()``), the shape of one sample in and out (no batch dimension).
    ``output_shape`` is None when the layer cannot take ``input_shape``."""

    source: str
    config: dict[str, Any]
    input_shape: Shape
    output_shape: Shape | None

    @property
    def kind(self) -> str:
        return str(self.config["kind"])

    @property
    def n_params(self) -> int:
        """Its parameters (weights and biases), counted from its config by nnlib."""
        shapes = layer_class(self.config).parameter_shapes(self.config)
        return sum(math.prod(shape) for shape in shapes.values())


@dataclass(frozen=True)
class Plan:
    """The network for inputs of ``input_shape``, as params.yaml's ``label`` describes it
    (``model.hidden_sizes [64, 32]``, ``model.layers (5 entries)``). Its layers stop at the
    first one that cannot take its input, if one cannot."""

    label: str
    input_shape: Shape
    layers: tuple[PlannedLayer, ...]

    @property
    def fits(self) -> bool:
        """Whether every layer takes what the one before gives."""
        return all(layer.output_shape is not None for layer in self.layers)

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    def describe(self) -> str:
        """The shapes it passes along, ``784 -> 64 -> 32 -> 10`` or ``1x28x28 -> 8x24x24 ->
        ... -> 10`` (dropout, which keeps the shape, left out)."""
        shapes = [self.input_shape]
        shapes += [layer.output_shape for layer in self.layers if layer.kind != "dropout"]
        return " -> ".join("x".join(map(str, shape)) for shape in shapes if shape is not None)


class _Planner:
    """Adds layers one after the other, following the shape of one sample."""

    def __init__(self, input_shape: Shape) -> None:
        self.input_shape = input_shape
        self.shape: Shape | None = input_shape
        self.layers: list[PlannedLayer] = []

    def add(self, source: str, config: dict[str, Any], output_shape: Shape | None) -> None:
        assert self.shape is not None, "no layer after one that cannot take its input"
        self.layers.append(PlannedLayer(source, config, self.shape, output_shape))
        self.shape = output_shape

    def dense(self, source: str, units: int, activation: str) -> None:
        assert self.shape is not None, "no layer after one that cannot take its input"
        if len(self.shape) > 1:
            self.add(f"the flatten before {source}", {"kind": "flatten"}, (math.prod(self.shape),))
        assert self.shape is not None
        config = {
            "kind": "dense",
            "input_size": self.shape[0],
            "output_size": units,
            "activation": get_activation(activation).config(),
        }
        self.add(source, config, (units,))

    def dropout(self, source: str, rate: float) -> None:
        self.add(source, {"kind": "dropout", "rate": rate}, self.shape)

    def conv2d(self, source: str, entry: Conv2DEntry, activation: str) -> None:
        shape = self.shape or ()
        config = {
            "kind": "conv2d",
            "in_channels": shape[0] if len(shape) == 3 else 1,
            "out_channels": entry.filters,
            "kernel_size": entry.kernel,
            "stride": entry.stride,
            "padding": entry.padding,
            "activation": get_activation(entry.activation or activation).config(),
        }
        size = self._windows(entry.kernel, entry.stride, entry.padding)
        self.add(source, config, None if size is None else (entry.filters, *size))

    def maxpool2d(self, source: str, entry: MaxPool2DEntry) -> None:
        stride = entry.stride or entry.size
        config = {"kind": "maxpool2d", "kernel_size": entry.size, "stride": stride}
        size = self._windows(entry.size, stride, 0)
        channels = self.shape[0] if self.shape else 0
        self.add(source, config, None if size is None else (channels, *size))

    def _windows(self, kernel: int, stride: int, padding: int) -> tuple[int, int] | None:
        """The rows and columns of windows over the current images, None if it is no image
        or the window does not fit."""
        if self.shape is None or len(self.shape) != 3:
            return None
        _, height, width = self.shape
        rows = output_size(height, kernel, stride, padding)
        cols = output_size(width, kernel, stride, padding)
        return (rows, cols) if rows >= 1 and cols >= 1 else None


def plan_network(model: ModelParams, image_shape: tuple[int, int], n_classes: int) -> Plan:
    """The network ``model`` describes, for images of ``image_shape`` ``(rows, cols)`` and
    ``n_classes`` classes."""
    if model.hidden_sizes:
        planner = _Planner((math.prod(image_shape),))
        for i, units in enumerate(model.hidden_sizes):
            planner.dense(f"model.hidden_sizes[{i}]", units, model.activation)
            if model.dropout:
                planner.dropout(f"the dropout after model.hidden_sizes[{i}]", model.dropout)
        label = f"model.hidden_sizes {list(model.hidden_sizes)}"
    else:
        planner = _Planner((1, *image_shape))
        for i, entry in enumerate(model.layers):
            if planner.shape is None:
                break
            source = f"model.layers[{i}]"
            if isinstance(entry, Conv2DEntry):
                planner.conv2d(source, entry, model.activation)
            elif isinstance(entry, MaxPool2DEntry):
                planner.maxpool2d(source, entry)
            elif isinstance(entry, DenseEntry):
                planner.dense(source, entry.units, entry.activation or model.activation)
            elif isinstance(entry, DropoutEntry):
                planner.dropout(source, entry.rate)
        count = len(model.layers)
        label = f"model.layers ({count} entr{'y' if count == 1 else 'ies'})"
    if planner.shape is not None:
        planner.dense("the output layer", n_classes, "softmax")
    return Plan(label, planner.input_shape, tuple(planner.layers))
