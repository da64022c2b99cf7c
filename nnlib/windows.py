"""Image batches: their channels-last memory layout and the windows a kernel slides over.

Image layers take and return batches of shape ``(n, C, H, W)``, as torch's do, but the
arrays they return hold each position's C channels next to each other in memory: an
``(n, H, W, C)`` array seen through a transpose (torch calls this memory format
``channels_last``). There, the im2col copy moves runs of C values, a convolution's product
writes its output in place and pooling compares whole runs of channels. Batches laid out
otherwise are taken too, read through their strides.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def channels_last(x: np.ndarray) -> np.ndarray:
    """``(n, C, H, W)`` -> the same batch as ``(n, H, W, C)``, a view."""
    return x.transpose(0, 2, 3, 1)


def channels_first(x: np.ndarray) -> np.ndarray:
    """``(n, H, W, C)`` -> the same batch as ``(n, C, H, W)``, a view."""
    return x.transpose(0, 3, 1, 2)


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Positions of a ``kernel``-wide window over ``size`` values padded by ``padding`` on
    each side, moved by ``stride``: torch's ``floor((size + 2p - k) / s) + 1``; 0 if the
    window does not fit."""
    return max(0, (size + 2 * padding - kernel) // stride + 1)


def sliding_windows(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """The ``kernel x kernel`` windows of a channels-last batch ``x`` ``(n, H, W, C)`` as a
    read-only view ``(n, OH, OW, kernel, kernel, C)``, ``stride`` apart."""
    n, height, width, channels = x.shape
    rows, cols = output_size(height, kernel, stride), output_size(width, kernel, stride)
    s_n, s_h, s_w, s_c = x.strides
    return as_strided(
        x,
        shape=(n, rows, cols, kernel, kernel, channels),
        strides=(s_n, s_h * stride, s_w * stride, s_h, s_w, s_c),
        writeable=False,
    )


def window_offset(x: np.ndarray, i: int, j: int, rows: int, cols: int, stride: int) -> np.ndarray:
    """Element ``(i, j)`` of every window of a channels-last batch ``x`` ``(n, H, W, C)``, a
    view ``(n, rows, cols, C)`` (``rows x cols`` windows, ``stride`` apart)."""
    return x[:, i : i + stride * (rows - 1) + 1 : stride, j : j + stride * (cols - 1) + 1 : stride]
