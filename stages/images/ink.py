"""From a photo or scan in grey levels to ink coverage: polarity, paper, contrast.

``ink_coverage`` returns, for every pixel, how much of it is covered by ink (0 = paper,
1 = solid ink): MNIST's source digits were bilevel (ink or paper), and its grey levels
are only the fraction of each pixel the ink covered. Nothing assumes the ink is a small
part of the picture: a digit cropped close fills half its frame or more and touches its
edges, often on a perfectly flat background (a drawing app, a thresholded scan). The
steps:

1. ``polarity.ink_is_dark``: the paper is what the border of the picture shows; when it
   is lighter than the ink the picture is inverted, so that ink is bright.
2. ``paper.background_surface``: the grey levels split in two classes (Otsu's
   threshold), and the paper's level is fitted on the darker one as a smooth surface, so
   shading and uneven lighting are removed. The ink's contrast is taken relative to the
   paper's brightness.
3. ``stretch``: the noise floor (a multiple of the paper's noise, measured below the
   paper's level, where only paper is) becomes 0 and solid ink becomes 1. Too few pixels
   above the floor: the picture is blank.
4. ``polarity.is_enclosed_blob``: when the ink comes out as a filled, stubby shape inside
   a frame, which no digit is, the border showed the ink (a "0" drawn as a box touching
   all four edges), and the picture is read the other way round.
"""

from __future__ import annotations

import numpy as np

from stages.images.errors import BlankImageError
from stages.images.levels import sample, spread_below
from stages.images.paper import background_surface, flat_paper_level
from stages.images.polarity import ink_is_dark, is_enclosed_blob

#: ink is what stands this many noise standard deviations above the paper ...
NOISE_SIGMAS = 4.0
#: ... and at least this much (a fraction of the paper's brightness) above it
MIN_CONTRAST = 0.08
#: the fraction of the ink pixels (darkest first) taken as solid ink
SOLID_INK_QUANTILE = 0.9
#: fewer ink pixels than this fraction of the picture, or than ``MIN_INK_PIXELS``,
#: means the image is blank
MIN_INK_FRACTION = 2e-4
MIN_INK_PIXELS = 4

BLANK = "no ink found: the image is blank, or its marks are too faint"


def stretch(contrast: np.ndarray) -> np.ndarray:
    """Ink contrast ``(rows, cols)`` (0 = paper) -> coverage in [0, 1].

    The noise floor becomes 0: ``NOISE_SIGMAS`` standard deviations of the paper's noise
    (``levels.spread_below``: measured below the paper, so however much of the picture
    is ink), and at least ``MIN_CONTRAST``. Solid ink, the ``SOLID_INK_QUANTILE`` of the
    pixels above the floor, becomes 1 (both measured on a ``levels.sample`` of a large
    picture). Raises BlankImageError when too few pixels stand above the floor.
    """
    some = sample(contrast)
    floor = max(NOISE_SIGMAS * spread_below(some), MIN_CONTRAST)
    above = contrast > floor
    if np.count_nonzero(above) < max(MIN_INK_PIXELS, MIN_INK_FRACTION * contrast.size):
        raise BlankImageError(BLANK)
    ink = some[some > floor]
    if ink.size == 0:  # a speck the sample passed over
        ink = contrast[above]
    solid = float(np.quantile(ink, SOLID_INK_QUANTILE))
    if solid <= floor:
        solid = float(ink.max())
    coverage = contrast - floor  # one new array, scaled and clipped in place
    coverage /= max(solid - floor, 1e-6)
    return np.clip(coverage, 0.0, 1.0, out=coverage).astype(np.float32, copy=False)


def _contrast_stretched(bright_ink: np.ndarray, paper: np.ndarray) -> np.ndarray:
    # ink darkens paper in proportion to the light that falls on it: relative contrast
    headroom = np.float32(255.0) - paper
    np.maximum(headroom, np.float32(16.0), out=headroom)
    contrast = bright_ink - paper
    contrast /= headroom
    return stretch(contrast)


def coverage_with_polarity(grey: np.ndarray, dark: bool) -> np.ndarray:
    """Ink coverage of ``grey`` ``(rows, cols)`` read with the ink ``dark`` or light.

    When the smooth paper surface leaves no ink (fitted on a picture that is mostly ink,
    with levels between paper and ink over wide areas, it can bend up to the ink's
    levels) and the paper is perfectly flat, the paper is taken as flat.
    """
    bright_ink = 255.0 - grey if dark else grey
    try:
        return _contrast_stretched(bright_ink, background_surface(bright_ink))
    except BlankImageError:
        level = flat_paper_level(bright_ink)
        if level is None:
            raise
        return _contrast_stretched(bright_ink, np.full_like(bright_ink, level))


def ink_coverage(grey: np.ndarray) -> np.ndarray:
    """``grey`` ``(rows, cols)`` in [0, 255] -> ink coverage ``(rows, cols)`` float32 in [0, 1].

    Raises BlankImageError for a picture without ink.
    """
    grey = grey.astype(np.float32, copy=False)
    dark = ink_is_dark(grey)
    coverage = coverage_with_polarity(grey, dark)
    if is_enclosed_blob(coverage):
        try:
            other = coverage_with_polarity(grey, not dark)
        except BlankImageError:
            return coverage
        if not is_enclosed_blob(other):
            return other
    return coverage
