"""Preallocated arrays reused from one batch to the next."""

from __future__ import annotations

import numpy as np

_SHAPES_KEPT = 4  # a training run uses one or two (the batch size and the remainder)


class BatchBuffers:
    """``(n, width)`` arrays kept for the few batch shapes a run uses, so that a training
    step allocates nothing."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[int, int, np.dtype], np.ndarray] = {}
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
        key = (n, width, dtype)
        array = self._arrays.get(key)
        if array is None:
            if len(self._arrays) >= _SHAPES_KEPT:
                self._arrays.pop(next(iter(self._arrays)))
            array = self._arrays[key] = np.empty((n, width), dtype)
        self._last = array
        return array
