"""Pixel normalization: fitted on the training split, saved with the model, applied to any image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NORMALIZATIONS = ("scale", "standardize")
PIXEL_MAX = 255.0
_STATS_ROWS = 4096  # images per chunk when counting pixel values


def pixel_mean_std(images: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation of ``images / 255``, in float64.

    ``images``: uint8, any shape. Computed exactly from a histogram of the 256 pixel
    values, chunk by chunk, so no float copy of the array is made.
    """
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    flat = images.reshape(len(images), -1) if images.ndim else images.reshape(1, 1)
    histogram = np.zeros(256, dtype=np.int64)
    for start in range(0, len(flat), _STATS_ROWS):
        histogram += np.bincount(flat[start : start + _STATS_ROWS].ravel(), minlength=256)
    n = int(histogram.sum())
    if n == 0:
        raise ValueError("cannot compute statistics of zero pixels")
    values = np.arange(256, dtype=np.float64) / PIXEL_MAX
    mean = float(histogram @ values) / n
    var = float(histogram @ (values - mean) ** 2) / n
    return mean, float(np.sqrt(var))


@dataclass(frozen=True)
class Normalization:
    """``x = (pixel / divisor - mean) / std``, computed in float32.

    ``scale`` is the case ``mean = 0, std = 1``; ``standardize`` uses the scalar mean and
    standard deviation of the training split's ``pixel / 255``.
    """

    method: str
    mean: float = 0.0
    std: float = 1.0
    divisor: float = PIXEL_MAX

    @classmethod
    def fit(cls, method: str, train_images: np.ndarray) -> Normalization:
        """The normalization ``method`` with statistics of ``train_images`` (uint8) if needed."""
        if method == "scale":
            return cls("scale")
        if method == "standardize":
            mean, std = pixel_mean_std(train_images)
            if std == 0.0:
                raise ValueError("cannot standardize: every training pixel has the same value")
            return cls("standardize", mean=mean, std=std)
        raise ValueError(f"unknown normalization {method!r} (known: {', '.join(NORMALIZATIONS)})")

    def apply(self, images: np.ndarray) -> np.ndarray:
        """``images`` ``(n, rows, cols)`` uint8 -> float32 ``(n, rows * cols)``, normalized."""
        # an explicit width: reshape cannot infer -1 for an empty split (data.val_size 0)
        out = images.reshape(len(images), int(np.prod(images.shape[1:]))).astype(np.float32)
        out /= np.float32(self.divisor)
        if self.method != "scale":
            out -= np.float32(self.mean)
            out /= np.float32(self.std)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "divisor": self.divisor, "mean": self.mean, "std": self.std}
