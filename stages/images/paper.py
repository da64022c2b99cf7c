"""The paper's level under the ink: a smooth surface fitted where the paper is, however much
of the picture the ink covers.

Works on a picture with the ink bright (``polarity`` decides which way round): the paper
is the darker of the two grey-level classes, and ink only ever adds brightness to it.
"""

from __future__ import annotations

import numpy as np

from stages.images.levels import lowest_common_level, two_class_threshold

#: the surface is fitted on the picture subsampled to at most this many pixels a side
FIT_SIZE = 48
#: paper within this many grey levels of the fitted surface always counts as fitting it
FIT_TOLERANCE = 1.0
#: two grey-level classes whose means are this many within-class standard deviations
#: apart are paper and ink (``distinct_classes``)
CLASS_SEPARATION = 3.6
#: how strongly the fit damps the surface's tilt and curvature (a fraction of the pixels)
SHAPE_DAMPING = 1e-3


def paper_levels(bright_ink: np.ndarray) -> np.ndarray:
    """The pixels of ``bright_ink`` ``(rows, cols)`` (ink bright) in the darker of its two
    grey-level classes, as a boolean mask of the same shape: where the paper is."""
    return bright_ink < two_class_threshold(bright_ink)


def distinct_classes(values: np.ndarray, darker: np.ndarray) -> bool:
    """True when ``values`` (any shape) split by the mask ``darker`` (same shape) are two
    distinct classes: their means at least ``CLASS_SEPARATION`` within-class standard
    deviations apart. A single class of noise or of even shading split in two by its
    middle falls short (about 2.7 and 3.5); paper and ink, even blurred, clear it."""
    low, high = values[darker], values[~darker]
    if low.size == 0 or high.size == 0:
        return False
    within = np.sqrt((low.var() * low.size + high.var() * high.size) / values.size)
    return bool(high.mean() - low.mean() >= CLASS_SEPARATION * max(float(within), 1e-6))


def _shrink(mask: np.ndarray) -> np.ndarray:
    """``mask`` ``(h, w)`` less every pixel with a neighbour (of 8) outside it (the picture's
    edge is no such neighbour: the paper goes on beyond the frame)."""
    padded = np.pad(mask, 1, mode="edge")
    rows, cols = mask.shape
    out = mask.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out &= padded[dy : dy + rows, dx : dx + cols]
    return out


def _fit_quadratic(
    values: np.ndarray, paper: np.ndarray, grow: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A robust least-squares quadratic surface through ``values`` ``(h, w)`` (ink bright),
    fitted on the pixels where ``paper`` ``(h, w)`` is true: its six coefficients and the
    pixels it ends up fitted on.

    The first fit is on the paper away from its edges (``_shrink``), where blurred or
    anti-aliased ink does not reach: pure paper, even if only part of it, extrapolates.
    Then bright outliers are dropped, iteratively, beyond 2.5 robust standard deviations
    of the residuals. With ``grow``, pixels outside ``paper`` that fit come in too (the
    other half of the noise, when the two classes are one split in two); without, the
    fit never takes them in, or it could creep up, pixel by pixel, into the ink.
    """
    rows, cols = values.shape
    y, x = np.mgrid[0:rows, 0:cols]
    y = (2 * y - (rows - 1)) / max(rows - 1, 1)
    x = (2 * x - (cols - 1)) / max(cols - 1, 1)
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    z = values.reshape(-1).astype(np.float64)
    start = _shrink(paper).reshape(-1)
    if start.sum() < 6:
        start = paper.reshape(-1)
    if start.sum() < 6:
        start = z <= np.median(z)
    allowed = np.ones_like(start) if grow else start
    keep = start
    coef = np.zeros(6)
    for _ in range(8):
        kept = design[keep]
        # the normal equations of six unknowns (far cheaper than an SVD-based lstsq), the
        # shape terms slightly damped: paper seen on one side only leaves them undetermined,
        # and then the surface stays flat rather than tilting at random
        damping = SHAPE_DAMPING * len(kept) * np.diag([0.0, 1, 1, 1, 1, 1])
        coef = np.linalg.solve(kept.T @ kept + damping + 1e-9 * np.eye(6), kept.T @ z[keep])
        residual = z - design @ coef
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        new_keep = allowed & (residual <= max(2.5 * spread, FIT_TOLERANCE))
        if new_keep.sum() < 6 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return coef, keep.reshape(rows, cols)


def _subsampled(bright_ink: np.ndarray) -> np.ndarray:
    """``bright_ink`` ``(rows, cols)`` subsampled to at most ``FIT_SIZE`` pixels a side: the
    pixel nearest each new pixel's centre (averaging would blend paper and ink into new
    levels), as float32."""
    rows, cols = bright_ink.shape
    scale = min(1.0, FIT_SIZE / max(rows, cols))
    height, width = max(1, round(rows * scale)), max(1, round(cols * scale))
    row_at = ((np.arange(height) + 0.5) * rows / height).astype(np.intp)
    col_at = ((np.arange(width) + 0.5) * cols / width).astype(np.intp)
    return bright_ink[np.ix_(row_at, col_at)].astype(np.float32)


def background_surface(bright_ink: np.ndarray) -> np.ndarray:
    """The paper's level under ``bright_ink`` ``(rows, cols)`` (ink bright, paper dark), as a
    smooth quadratic surface of the same shape, float32, so that shading and uneven
    lighting are removed.

    The fit starts from the darker of the two grey-level classes (``paper_levels``), so
    it holds however much of the picture the ink covers; when the two classes are
    distinct (``distinct_classes``: paper and ink) it stays within the darker one.
    """
    rows, cols = bright_ink.shape
    small = _subsampled(bright_ink)
    paper = paper_levels(small)
    coef, _ = _fit_quadratic(small, paper, grow=not distinct_classes(small, paper))
    # evaluate at full resolution, in the small grid's normalized coordinates
    y = np.linspace(-1.0, 1.0, rows, dtype=np.float32)[:, None] if rows > 1 else np.zeros((1, 1))
    x = np.linspace(-1.0, 1.0, cols, dtype=np.float32)[None, :] if cols > 1 else np.zeros((1, 1))
    c = coef.astype(np.float32)
    # c0 + c1 x + c2 y + c3 x^2 + c4 xy + c5 y^2, as a column plus a column times a row
    column = c[0] + c[2] * y + c[5] * y * y
    surface = column + (c[1] + c[4] * y) * x + c[3] * x * x
    return np.broadcast_to(surface, (rows, cols)).astype(np.float32)


def flat_paper_level(bright_ink: np.ndarray) -> float | None:
    """The level of a perfectly flat paper under ``bright_ink`` ``(rows, cols)`` (ink
    bright), as drawing apps and thresholded scans make: the ``lowest_common_level`` of
    the darker grey-level class, when no paper pixel lies more than ``FIT_TOLERANCE``
    below it. None for paper with noise or shading."""
    small = _subsampled(bright_ink)
    paper = small[paper_levels(small)]
    if paper.size == 0:
        return None
    level = lowest_common_level(paper)
    return level if paper.min() >= level - FIT_TOLERANCE else None
