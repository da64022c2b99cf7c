"""Statistics of a picture's grey levels that the ink and paper steps share: the two-class
split, the darkest common level, and a noise spread that ink cannot inflate."""

from __future__ import annotations

import math

import numpy as np

#: the width in grey levels of the histogram bins ``lowest_common_level`` reads, and how
#: high a peak of theirs must be (a fraction of the highest) to count
MODE_BIN = 4.0
PEAK_SHARE = 0.25
#: statistics of a larger picture are taken on about this many of its pixels (``sample``)
SAMPLE_PIXELS = 2**18


def two_class_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` (any shape): the level that splits them into the two
    classes of least summed variance, from a 256-bin histogram over their range. Values
    within one grey level of each other are one class: their maximum is returned."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1.0:
        return high
    width = (high - low) / 256
    # the bin of each value, as np.histogram's (the top one closed), far faster
    bins = ((values - low) * np.float32(1 / width)).astype(np.intp, copy=False).reshape(-1)
    counts = np.bincount(np.minimum(bins, 255), minlength=256)
    edges = low + width * np.arange(257)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts, dtype=np.float64)
    mass = np.cumsum(counts * centres)
    total_weight, total_mass = weight[-1], mass[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mass * weight - mass * total_weight) ** 2 / (
            weight * (total_weight - weight)
        )
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def lowest_common_level(values: np.ndarray) -> float:
    """The darkest of the common levels of ``values`` (any shape, 0-255 scale): the lowest
    peak of their histogram (``MODE_BIN`` grey levels a bin, lightly smoothed) at least
    ``PEAK_SHARE`` as high as the highest; the median of the values in its bin. With the
    ink bright, that is the paper's level, however many levels blurred ink spreads over."""
    low, high = float(values.min()), float(values.max())
    bins = max(1, int(np.ceil((high - low) / MODE_BIN)))
    counts, edges = np.histogram(values, bins=bins, range=(low, low + bins * MODE_BIN))
    smooth = np.convolve(np.pad(counts.astype(np.float64), 1), [0.25, 0.5, 0.25], mode="valid")
    padded = np.pad(smooth, 1, constant_values=-1.0)
    peaks = (smooth >= padded[:-2]) & (smooth >= padded[2:])
    peak = int(np.flatnonzero(peaks & (smooth >= PEAK_SHARE * smooth.max()))[0])
    return float(np.median(values[(values >= edges[peak]) & (values <= edges[peak + 1])]))


def spread_below(residual: np.ndarray) -> float:
    """Robust standard deviation of the paper's noise in ``residual`` (any shape, 0 = the
    paper's level, ink bright): measured on the values at or below 0, which ink never
    makes (it only adds brightness), so it holds however much of the picture is ink.
    0 when there are none (a perfectly flat background)."""
    below = residual[residual <= 0]
    return 1.4826 * float(np.median(-below)) if below.size else 0.0


def sample(picture: np.ndarray, limit: int = SAMPLE_PIXELS) -> np.ndarray:
    """About ``limit`` pixels of ``picture`` ``(rows, cols)``, evenly spread, as a 1-D view;
    all of them when it has no more. Every k-th pixel in reading order, k prime to the
    width, so that successive rows are sampled at shifted columns and a thin vertical
    line is not missed."""
    flat = picture.reshape(-1)
    step = max(1, math.ceil(flat.size / limit))
    while step > 1 and math.gcd(step, picture.shape[-1]) != 1:
        step += 1
    return flat[::step]
