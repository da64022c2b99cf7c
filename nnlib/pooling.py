"""MaxPool2D: the largest value of each window, torch's ``nn.MaxPool2d``.

The maximum is taken element-wise over the ``k * k`` strided views of the batch, one per
window element (no index array); backward routes each window's gradient to the element
that holds the maximum, the first one in row-major window order when several do, as torch
does: walking the window elements in that order, each takes what is left of the gradient
where it equals the maximum, and the last one takes the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlib.buffers import BatchBuffers
from nnlib.layers import Layer, Shape, check_count
from nnlib.windows import channels_first, channels_last, output_size, window_offset

#: backward routes the gradient of about this many bytes of input at a time
_SAMPLES_BYTES = 1 << 19


class MaxPool2D(Layer):
    """Max pooling over ``kernel_size x kernel_size`` windows, ``stride`` apart (default:
    ``kernel_size``, windows side by side). ``(n, C, H, W)`` -> ``(n, C, OH, OW)`` with
    ``OH = (H - kernel_size) // stride + 1``: rows and columns no window covers are left out.
    No parameters; keeps its input's dtype.
    """

    kind = "maxpool2d"

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        self.kernel_size = check_count("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else check_count("stride", stride)
        self._outputs = BatchBuffers()
        self._input_grads = BatchBuffers()
        self._equal = BatchBuffers()
        self._parts = BatchBuffers()
        # the last training-mode forward: its input (channels-last view) and output
        self._x: np.ndarray | None = None
        self._out: np.ndarray | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError("it expects images of shape (channels, height, width)")
        channels, height, width = input_shape
        k, s = self.kernel_size, self.stride
        rows, cols = output_size(height, k, s), output_size(width, k, s)
        if rows < 1 or cols < 1:
            raise ValueError(f"its {k}x{k} window does not fit in {height}x{width}")
        return (channels, rows, cols)

    def _offsets(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.kernel_size) for j in range(self.kernel_size)]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``(n, C, H, W)`` -> ``(n, C, OH, OW)`` (channels-last in memory)."""
        if x.ndim != 4:
            raise ValueError(f"maxpool2d expects batches of shape (n, C, H, W), got {x.shape}")
        x = channels_last(x)
        n, height, width, channels = x.shape
        k, s = self.kernel_size, self.stride
        rows, cols = output_size(height, k, s), output_size(width, k, s)
        shape = (n, rows, cols, channels)
        out = self._outputs.shaped(shape, x.dtype) if training else np.empty(shape, x.dtype)
        views = [window_offset(x, i, j, rows, cols, s) for i, j in self._offsets()]
        if len(views) == 1:
            np.copyto(out, views[0])
        else:
            np.maximum(views[0], views[1], out=out)
            for view in views[2:]:
                np.maximum(out, view, out=out)
        if training:
            self._x, self._out = x, out
        return channels_first(out)

    def backward(self, grad: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        x, out = self._x, self._out
        if x is None or out is None:
            raise RuntimeError("backward needs a forward pass in training mode first")
        if not input_gradient:
            return None
        left = channels_last(grad)  # what is still to route; overwritten as it goes
        height, width = x.shape[1:3]
        k, s = self.kernel_size, self.stride
        rows, cols = out.shape[1:3]
        grad_x = self._input_grads.shaped(x.shape, out.dtype)
        if not (s == k and height == k * rows and width == k * cols):
            grad_x.fill(0)  # some inputs are in no window, or in several
        equal = self._equal.shaped(out.shape, np.dtype(bool))
        part = self._parts.shaped(out.shape, out.dtype) if s < k else None
        # A few samples at a time, so that the passes over them stay in the core's cache:
        # 2 ms less a step than whole batches for 128 x 32 x 24 x 24 inputs.
        step = max(1, _SAMPLES_BYTES // (x[0].size * x.itemsize))
        for start in range(0, len(x), step):
            samples = slice(start, start + step)
            self._route(
                left[samples],
                x[samples],
                out[samples],
                grad_x[samples],
                equal[samples],
                None if part is None else part[samples],
            )
        return channels_first(grad_x)

    def _route(
        self,
        left: np.ndarray,
        x: np.ndarray,
        out: np.ndarray,
        grad_x: np.ndarray,
        equal: np.ndarray,
        part: np.ndarray | None,
    ) -> None:
        """Add each window's gradient ``left`` ``(m, OH, OW, C)`` to ``grad_x`` ``(m, H, W, C)``
        at the first element of ``x`` equal to the window's maximum ``out``; ``part`` is
        scratch space when windows overlap (None when they do not: assigned, not added)."""
        rows, cols = out.shape[1:3]
        offsets = self._offsets()
        for number, (i, j) in enumerate(offsets):
            target = window_offset(grad_x, i, j, rows, cols, self.stride)
            if number == len(offsets) - 1:  # the maximum is here wherever it was not before
                if part is None:
                    np.copyto(target, left)
                else:
                    np.add(target, left, out=target)
                return
            np.equal(window_offset(x, i, j, rows, cols, self.stride), out, out=equal)
            if part is None:
                np.multiply(left, equal, out=target)
                np.subtract(left, target, out=left)
            else:
                np.multiply(left, equal, out=part)
                np.add(target, part, out=target)
                np.subtract(left, part, out=left)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "kernel_size": self.kernel_size, "stride": self.stride}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: np.typing.DTypeLike) -> MaxPool2D:
        return cls(config["kernel_size"], config["stride"])

    def __repr__(self) -> str:
        return f"MaxPool2D(kernel_size={self.kernel_size}, stride={self.stride})"
