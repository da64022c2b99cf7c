"""Preallocated arrays reused from one batch to the next."""

from __future__ import annotations

import numpy as np

_SHAPES_KEPT = 4  # a training run uses one or two (the batch size and the remainder)


class BatchBuffers:
    """Arrays kept for the few batch shapes a run uses, so that a training step allocates
    nothing: ``get`` for ``(n, width)`` batches, ``shaped`` for any shape. One instance
    serves one of the two."""

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}
        self._last: np.ndarray | None = None

    def get(self, n: int, width: int, dtype: np.dtype) -> np.ndarray:
        last = self._last
        if (
            last is not None
            and last.shape[0] == n
            and last.shape[1] == width
            and last.dtype == dtype
        ):
            return last
        return self._new((n, width), dtype, zeros=False)

    def shaped(self, shape: tuple[int, ...], dtype: np.dtype, *, zeros: bool = False) -> np.ndarray:
        """An array of ``shape``; with ``zeros`` it was filled with zeros when allocated (what
        the caller writes into it later stays)."""
        last = self._last
        if last is not None and last.shape == shape and last.dtype == dtype:
            return last
        return self._new(shape, dtype, zeros=zeros)

    def _new(self, shape: tuple[int, ...], dtype: np.dtype, zeros: bool) -> np.ndarray:
        key = (shape, dtype)
        array = self._arrays.get(key)
        if array is None:
            if len(self._arrays) >= _SHAPES_KEPT:
                self._arrays.pop(next(iter(self._arrays)))
            array = self._arrays[key] = np.zeros(shape, dtype) if zeros else np.empty(shape, dtype)
        self._last = array
        return array
