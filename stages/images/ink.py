"""From a photo or scan in grey levels to ink coverage: polarity, paper, contrast.

``ink_coverage`` returns, for every pixel, how much of it is covered by ink (0 = paper,
1 = solid ink): MNIST's source digits were bilevel (ink or paper), and its grey levels
are only the fraction of each pixel the ink covered. The steps, each its own function:

1. ``ink_is_dark``: the paper is what the border of the picture mostly shows; when it is
   lighter than the ink the picture is inverted so that ink is bright.
2. ``background_surface``: the paper's level is fitted as a smooth surface (a quadratic
   in x and y, robust to the ink), so shading and uneven lighting are removed; the ink's
   contrast is taken relative to the paper's brightness.
3. ``stretch``: the noise floor (a multiple of the paper's noise, measured) becomes 0 and
   solid ink becomes 1.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from stages.images.errors import BlankImageError

#: the border ring that shows the paper: this fraction of each side (at least one pixel)
BORDER_FRACTION = 1 / 16
#: the surface is fitted on the picture reduced to at most this many pixels a side
FIT_SIZE = 48
#: ink is what stands this many noise standard deviations above the paper ...
NOISE_SIGMAS = 4.0
#: ... and at least this much (a fraction of the paper's brightness) above it
MIN_CONTRAST = 0.08
#: the fraction of the ink pixels (darkest first) taken as solid ink
SOLID_INK_QUANTILE = 0.9
#: fewer ink pixels than this fraction of the picture (or 4) means the image is blank
MIN_INK_FRACTION = 2e-4


def border_level(grey: np.ndarray) -> float:
    """Median of the border ring of ``grey`` ``(rows, cols)``: the paper's level."""
    rows, cols = grey.shape
    ring = max(1, round(min(rows, cols) * BORDER_FRACTION))
    mask = np.ones(grey.shape, dtype=bool)
    mask[ring : rows - ring, ring : cols - ring] = False
    return float(np.median(grey[mask]))


def ink_is_dark(grey: np.ndarray) -> bool:
    """True when ``grey`` ``(rows, cols)`` shows dark ink on lighter paper.

    The paper is the border's level; the ink is on the side where pixels depart from
    it most, by the sum of squared departures (squares let the few, strong departures
    of a thin pen line outweigh the many small ones of noise and shading).
    """
    departure = grey.astype(np.float64) - border_level(grey)
    darker = float(np.square(np.minimum(departure, 0)).sum())
    lighter = float(np.square(np.maximum(departure, 0)).sum())
    return darker > lighter


def _fit_quadratic(values: np.ndarray) -> np.ndarray:
    """Coefficients of a robust least-squares quadratic surface through ``values`` ``(h, w)``.

    Bright outliers (the ink) are dropped, iteratively, beyond 2.5 robust standard
    deviations of the residuals.
    """
    rows, cols = values.shape
    y, x = np.mgrid[0:rows, 0:cols]
    y = (2 * y - (rows - 1)) / max(rows - 1, 1)
    x = (2 * x - (cols - 1)) / max(cols - 1, 1)
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    z = values.reshape(-1).astype(np.float64)
    keep = z <= np.percentile(z, 60)  # start from the darker majority: paper, not ink
    coef = np.zeros(6)
    for _ in range(8):
        kept = design[keep]
        # the normal equations of six unknowns: far cheaper than an SVD-based lstsq
        coef = np.linalg.solve(kept.T @ kept + 1e-9 * np.eye(6), kept.T @ z[keep])
        residual = z - design @ coef
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        new_keep = residual <= 2.5 * spread + 1e-6
        if new_keep.sum() < 6 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return coef


def background_surface(bright_ink: np.ndarray) -> np.ndarray:
    """The paper's level under ``bright_ink`` ``(rows, cols)`` (ink bright, paper dark),
    as a smooth quadratic surface of the same shape, float32."""
    rows, cols = bright_ink.shape
    scale = min(1.0, FIT_SIZE / max(rows, cols))
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    small = Image.fromarray(bright_ink.astype(np.float32)).resize(size, Image.Resampling.BOX)
    coef = _fit_quadratic(np.asarray(small))
    # evaluate at full resolution, in the small grid's normalized coordinates
    y = np.linspace(-1.0, 1.0, rows, dtype=np.float32)[:, None] if rows > 1 else np.zeros((1, 1))
    x = np.linspace(-1.0, 1.0, cols, dtype=np.float32)[None, :] if cols > 1 else np.zeros((1, 1))
    c = coef.astype(np.float32)
    surface = c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * x * y + c[5] * y * y
    return np.broadcast_to(surface, (rows, cols)).astype(np.float32)


def stretch(contrast: np.ndarray) -> np.ndarray:
    """Ink contrast ``(rows, cols)`` (0 = paper) -> coverage in [0, 1].

    The noise floor becomes 0: ``NOISE_SIGMAS`` robust standard deviations of the
    picture (mostly paper), and at least ``MIN_CONTRAST``. Solid ink, the
    ``SOLID_INK_QUANTILE`` of the pixels above the floor, becomes 1.
    Raises BlankImageError when too few pixels stand above the floor.
    """
    median = float(np.median(contrast))
    noise = 1.4826 * float(np.median(np.abs(contrast - median)))
    floor = max(median + NOISE_SIGMAS * noise, MIN_CONTRAST)
    ink = contrast[contrast > floor]
    if ink.size < max(4, MIN_INK_FRACTION * contrast.size):
        raise BlankImageError("no ink found: the image is blank, or its marks are too faint")
    solid = float(np.quantile(ink, SOLID_INK_QUANTILE))
    if solid <= floor:
        solid = float(ink.max())
    return np.clip((contrast - floor) / max(solid - floor, 1e-6), 0.0, 1.0).astype(np.float32)


def ink_coverage(grey: np.ndarray) -> np.ndarray:
    """``grey`` ``(rows, cols)`` in [0, 255] -> ink coverage ``(rows, cols)`` float32 in [0, 1].

    Raises BlankImageError for a picture without ink.
    """
    grey = grey.astype(np.float32, copy=False)
    bright_ink = 255.0 - grey if ink_is_dark(grey) else grey
    paper = background_surface(bright_ink)
    # ink darkens paper in proportion to the light that falls on it: relative contrast
    headroom = np.maximum(255.0 - paper, 16.0)
    return stretch((bright_ink - paper) / headroom)
