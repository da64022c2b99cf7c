"""Which way round a picture is: dark ink on light paper, or light ink on dark.

The paper is what the border shows (``ink_is_dark``), and when the ink comes out as
something no digit is, a filled stubby shape inside a frame (``is_enclosed_blob``), the
border showed the ink: a "0" drawn as a box touching all four edges.
"""

from __future__ import annotations

import numpy as np

from stages.images.levels import sample, two_class_threshold

#: the border ring that shows the paper: this fraction of each side (at least one pixel)
BORDER_FRACTION = 1 / 16
#: a border ring with between these fractions of its pixels in the lighter grey-level
#: class is mixed: ink fills the frame, and the corners decide
MIXED_BORDER = (0.2, 0.8)
#: the corner squares' side, a fraction of the picture's shorter side (at least one pixel)
CORNER_FRACTION = 1 / 32
#: ink that fills at least this fraction of its bounding box, ...
BLOB_FILL = 0.85
#: ... a box whose longer side is less than this many times its shorter side, is a blob
BLOB_ASPECT = 2.5


def border_ring(grey: np.ndarray) -> np.ndarray:
    """The pixels of the border ring of ``grey`` ``(rows, cols)``, ``BORDER_FRACTION`` of its
    shorter side wide (at least one pixel), in one 1-D array."""
    rows, cols = grey.shape
    ring = max(1, round(min(rows, cols) * BORDER_FRACTION))
    if 2 * ring >= min(rows, cols):
        return grey.reshape(-1)
    strips = (grey[:ring], grey[-ring:], grey[ring:-ring, :ring], grey[ring:-ring, -ring:])
    return np.concatenate([strip.reshape(-1) for strip in strips])


def border_level(grey: np.ndarray) -> float:
    """Median of the border ring of ``grey`` ``(rows, cols)``: the paper's level."""
    return float(np.median(sample(border_ring(grey))))


def corner_levels(grey: np.ndarray) -> list[float]:
    """Medians of the four corner squares of ``grey`` ``(rows, cols)``, each
    ``CORNER_FRACTION`` of the shorter side (at least one pixel)."""
    size = max(1, round(min(grey.shape) * CORNER_FRACTION))
    corners = (grey[:size, :size], grey[:size, -size:], grey[-size:, :size], grey[-size:, -size:])
    return [float(np.median(corner)) for corner in corners]


def _departs_darker(grey: np.ndarray) -> bool:
    departure = sample(grey).astype(np.float64) - border_level(grey)
    darker = float(np.square(np.minimum(departure, 0)).sum())
    lighter = float(np.square(np.maximum(departure, 0)).sum())
    return darker > lighter


def ink_is_dark(grey: np.ndarray) -> bool:
    """True when ``grey`` ``(rows, cols)`` shows dark ink on lighter paper.

    The paper is what the border shows. When the border ring is mostly one of the two
    grey-level classes (``two_class_threshold``), as it is around a digit with a margin
    and around most digits cropped close, the paper is the border's level and the ink is
    on the side where pixels depart from it most, by the sum of squared departures
    (squares let the few, strong departures of a thin pen line outweigh the many small
    ones of noise and shading). When the ink fills the frame and the border is mixed,
    the corners decide: a digit is rounded, so the corners of its bounding box show
    paper; two corners against two leave it to the departures.
    """
    threshold = two_class_threshold(sample(grey))
    light_border = float((border_ring(grey) >= threshold).mean())
    if MIXED_BORDER[0] < light_border < MIXED_BORDER[1]:
        light_corners = sum(level >= threshold for level in corner_levels(grey))
        if light_corners != 2:
            return light_corners > 2
    return _departs_darker(grey)


def is_enclosed_blob(coverage: np.ndarray) -> bool:
    """True when the ink of ``coverage`` ``(rows, cols)`` (coverage above one half) is one
    filled, stubby shape away from the picture's edges: it fills ``BLOB_FILL`` of its
    bounding box, which is less than ``BLOB_ASPECT`` times longer than wide (a "1" is
    longer) and touches no edge. No digit looks like that; the hole of a "0" drawn as a
    box touching all four edges does."""
    ink = coverage > 0.5
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return False
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    if top == 0 or left == 0 or bottom == ink.shape[0] - 1 or right == ink.shape[1] - 1:
        return False
    height, width = bottom - top + 1, right - left + 1
    fill = ink.sum() / (height * width)
    return bool(fill >= BLOB_FILL and max(height, width) < BLOB_ASPECT * min(height, width))
