"""Flatten: each sample's values in one row, torch's ``nn.Flatten``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlib.buffers import BatchBuffers
from nnlib.layers import Layer, Shape
from nnlib.windows import channels_first, channels_last


class Flatten(Layer):
    """``(n, C, H, W)`` (or any ``(n, ...)``) -> ``(n, C*H*W)``, in C order: channel by
    channel, each row by row, as ``x.reshape(n, -1)`` and torch's ``nn.Flatten`` read a
    batch. No parameters; keeps its input's dtype.

    Backward hands an image batch's gradient back channels-last in memory, the layout the
    image layers below work in (``nnlib.windows``).
    """

    kind = "flatten"

    def __init__(self) -> None:
        self._outputs = BatchBuffers()
        self._input_grads = BatchBuffers()
        self._x_shape: tuple[int, ...] | None = None  # of the last training-mode forward

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        n = len(x)
        if not training or x.flags.c_contiguous:
            flat = x.reshape(n, -1)  # a view when x is C-contiguous, else a new copy
        else:
            flat = self._outputs.get(n, math.prod(x.shape[1:]), x.dtype)
            np.copyto(flat.reshape(x.shape), x)
        if training:
            self._x_shape = x.shape
        return flat

    def backward(self, grad: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        shape = self._x_shape
        if shape is None:
            raise RuntimeError("backward needs a forward pass in training mode first")
        if not input_gradient:
            return None
        if len(shape) != 4:
            return grad.reshape(shape)
        n, channels, height, width = shape
        grad_x = self._input_grads.shaped((n, height, width, channels), grad.dtype)
        np.copyto(grad_x, channels_last(grad.reshape(shape)))
        return channels_first(grad_x)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: np.typing.DTypeLike) -> Flatten:
        return cls()

    def __repr__(self) -> str:
        return "Flatten()"
