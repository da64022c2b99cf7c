"""The shapes a stack of layers passes along, checked when a model is built or loaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnlib.layers import Layer, Shape


@dataclass(frozen=True)
class StackShapes:
    """The shape of one input sample and of each layer's output (no batch dimension)."""

    input_shape: Shape
    outputs: list[Shape]


def _checked_shape(input_shape: Sequence[int]) -> Shape:
    sizes = tuple(input_shape)
    if not sizes or not all(
        isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0
        for size in sizes
    ):
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}")
    return tuple(int(size) for size in sizes)


def _implied_input_shape(layers: Sequence[Layer]) -> Shape:
    """The input shape the first layers fix (looking through dropout), or ValueError."""
    for layer in layers:
        if layer.input_shape is not None:
            return layer.input_shape
        if not layer.keeps_shape:
            break
    first = layers[0]
    channels = getattr(first, "in_channels", None)
    example = f"({channels}, height, width)" if channels else "(...)"
    raise ValueError(
        f"layer 0 ({first.kind}) does not fix the shape of its input: pass the shape of "
        f"one input sample, input_shape={example}"
    )


def stack_shapes(layers: Sequence[Layer], input_shape: Sequence[int] | None = None) -> StackShapes:
    """The shapes ``layers`` pass along from inputs of ``input_shape`` (by default, the one
    the first layers fix); ValueError naming the first layer that cannot take what it is
    given, or if the last one does not give flat outputs ``(k,)``."""
    if not layers:
        raise ValueError("a model needs at least one layer")
    shape = _implied_input_shape(layers) if input_shape is None else _checked_shape(input_shape)
    outputs: list[Shape] = []
    for i, layer in enumerate(layers):
        given = "the input" if i == 0 else f"layer {i - 1} ({layers[i - 1].kind})"
        try:
            outputs.append(layer.output_shape(outputs[-1] if outputs else shape))
        except ValueError as exc:
            received = outputs[-1] if outputs else shape
            raise ValueError(
                f"layer {i} ({layer.kind}) cannot take {given}, of shape {received}: {exc}"
            ) from None
    if len(outputs[-1]) != 1:
        raise ValueError(
            f"the last layer ({layers[-1].kind}) gives outputs of shape {outputs[-1]}; a "
            "model ends in flat outputs (a Flatten, then a dense layer)"
        )
    return StackShapes(shape, outputs)
