"""MNIST's construction, applied to a user's picture.

MNIST's digits were size-normalized to fit a 20x20 box keeping their aspect ratio,
anti-aliased, then placed in a 28x28 field so that their centre of mass is at the
centre. On MNIST's own training images that centre is at row 14.0, column 14.0 (mean
over the images, pixel centres at integer indices; each within half a pixel of it), and
every digit reaches full ink. ``mnist_digit`` rebuilds that from a picture's ink coverage.

One step goes beyond that description: a pen much thinner or a marker much bolder than
MNIST's writers used is brought to the edge of their range (``STROKE_BAND``), because a
network trained on MNIST has seen no other stroke widths. Strokes within the range, as
80% of MNIST's are, are left alone.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from stages.images.errors import BlankImageError
from stages.images.ink import ink_coverage
from stages.images.reading import Picture, flatten_transparency, luma

BOX = 20
FIELD = 28
CENTRE = (14.0, 14.0)
#: stroke width (``stroke_width``) of the 10th and 90th percentiles of MNIST's training
#: digits: strokes outside are thickened or thinned to these
STROKE_BAND = (2.08, 3.49)
#: strokes are adjusted on the digit drawn this many times larger than the box
SUPERSAMPLE = 4
#: rows or columns at the edges of the ink holding less than this fraction of its mass,
#: together, are cropped off: stray specks of noise far from the digit
STRAY_MASS = 0.005


def crop_to_ink(coverage: np.ndarray) -> np.ndarray:
    """The smallest window of ``coverage`` ``(rows, cols)`` that holds its ink ``(h, w)``,
    less margins that hold under ``STRAY_MASS`` of the total."""
    total = float(coverage.sum())
    if total <= 0:
        raise BlankImageError("no ink found: the image is blank, or its marks are too faint")
    bounds = []
    for axis in (1, 0):  # rows, then columns
        profile = np.cumsum(coverage.sum(axis=axis, dtype=np.float64)) / total
        first = int(np.searchsorted(profile, STRAY_MASS / 2, side="right"))
        last = int(np.searchsorted(profile, 1 - STRAY_MASS / 2, side="left"))
        bounds.append((first, max(first, min(last, len(profile) - 1)) + 1))
    (top, bottom), (left, right) = bounds
    return coverage[top:bottom, left:right]


def fit_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale ``ink`` ``(h, w)`` so its longer side is ``box`` pixels, keeping the aspect ratio.

    Returns ``(h', w')`` float32 with ``max(h', w') == box``. Shrinking averages the
    area each new pixel covers (the anti-aliasing); enlarging interpolates bicubically
    (sharper than bilinear from a tiny picture; the overshoot is clipped).
    """
    rows, cols = ink.shape
    scale = box / max(rows, cols)
    size = (max(1, min(box, round(cols * scale))), max(1, min(box, round(rows * scale))))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    fitted = Image.fromarray(ink.astype(np.float32)).resize(size, resample)
    return np.clip(np.asarray(fitted, dtype=np.float32), 0.0, 1.0)


def stroke_width(digit: np.ndarray) -> float:
    """Mean stroke width of ``digit`` ``(rows, cols)`` in pixels: twice its ink area over its
    outline length (a stroke of width w and length L has area wL and outline about 2L).

    The outline is the summed gradient magnitude (central differences), so the measure
    bottoms out near 1.8 for lines one pixel wide or less.
    """
    padded = np.pad(digit.astype(np.float64), 2)
    d_rows, d_cols = np.gradient(padded)
    outline = float(np.hypot(d_rows, d_cols).sum())
    return 2 * float(padded.sum()) / outline if outline > 0 else 0.0


def _disc_filter(image: np.ndarray, radius: float, thicken: bool) -> np.ndarray:
    """Grey dilation (``thicken``) or erosion of ``image`` ``(rows, cols)`` by a disc,
    on a margin of zeros wide enough for the grown ink."""
    reach = int(np.ceil(radius))
    padded = np.pad(image, 2 * reach)
    out = padded.copy()
    op = np.maximum if thicken else np.minimum
    source = np.pad(padded, reach)
    rows, cols = padded.shape
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if dy * dy + dx * dx <= radius * radius:
                op(
                    out,
                    source[reach + dy : reach + dy + rows, reach + dx : reach + dx + cols],
                    out=out,
                )
    return out


def _ink_window(image: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        return image
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_strokes(ink: np.ndarray, band: tuple[float, float] = STROKE_BAND) -> np.ndarray:
    """``ink`` ``(h, w)`` fitted into the box (``fit_box``) with its stroke width in ``band``.

    A digit whose strokes are in ``band`` is just fitted, and so is one smaller than the
    box (a tiny picture): enlarged, its strokes are as blurred as they are wide, and
    their width cannot be measured. Otherwise the ink, drawn
    ``SUPERSAMPLE`` times larger than the box, is dilated or eroded by a disc to make up
    the difference and fitted again, for a few rounds (the width is measured on the
    fitted digit, where anti-aliasing blurs thin strokes, so one round falls short).
    """
    fitted = fit_box(ink)
    if max(ink.shape) < BOX:
        return fitted
    fine = None
    for _ in range(5):
        width = stroke_width(fitted)
        low, high = band
        if low <= width <= high:
            break
        if fine is None:
            fine = fit_box(ink, BOX * SUPERSAMPLE)
        # the change of width, in box pixels, is twice the disc's radius at the fine scale
        change = (low - width) if width < low else (width - high)
        radius = max(1.0, SUPERSAMPLE * change / 2)
        adjusted = _ink_window(_disc_filter(fine, radius, thicken=width < low))
        if not adjusted.any():
            break
        fine = adjusted
        fitted = fit_box(fine)
    return fitted


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the mass centre of ``image`` ``(rows, cols)``, pixel centres at integers."""
    total = float(image.sum())
    rows = np.arange(image.shape[0], dtype=np.float64)
    cols = np.arange(image.shape[1], dtype=np.float64)
    return (
        float(image.sum(axis=1) @ rows) / total,
        float(image.sum(axis=0) @ cols) / total,
    )


def centre_by_mass(digit: np.ndarray, field: int = FIELD) -> np.ndarray:
    """Place ``digit`` ``(h, w)`` in a ``(field, field)`` zero field, shifted by whole pixels
    so its centre of mass lands within half a pixel of ``CENTRE`` (clipped at the edges)."""
    com_row, com_col = centre_of_mass(digit)
    top = round(CENTRE[0] - com_row)
    left = round(CENTRE[1] - com_col)
    out = np.zeros((field, field), dtype=np.float32)
    rows, cols = digit.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + rows, field), min(left + cols, field)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = digit[r0 - top : r1 - top, c0 - left : c1 - left]
    return out


def to_pixels(field: np.ndarray) -> np.ndarray:
    """Coverage ``(28, 28)`` -> uint8 pixels with the strongest ink at 255, as in MNIST."""
    peak = float(field.max())
    if peak <= 0:
        raise BlankImageError("no ink found: the image is blank, or its marks are too faint")
    return np.rint(field / peak * 255).astype(np.uint8)


def mnist_digit(picture: Picture, strokes: bool = True) -> np.ndarray:
    """A user's picture -> the 28x28 uint8 image MNIST's construction makes of it (ink 255).

    ``strokes=False`` leaves out the stroke-width step (``fit_strokes``): the ink is only
    fitted into the box, as MNIST's own description has it (for measuring the step).
    """
    grey = luma(flatten_transparency(picture.rgb, picture.alpha))
    ink = crop_to_ink(ink_coverage(grey))
    return to_pixels(centre_by_mass(fit_strokes(ink) if strokes else fit_box(ink)))
