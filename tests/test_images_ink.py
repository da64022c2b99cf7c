"""From grey levels to ink coverage: polarity, the paper's level, the contrast stretch."""

from __future__ import annotations

import numpy as np
import pytest
from support.user_images import box_zero, enlarged, framed, ring_digit, seven_digit, shrunk

from stages.images.errors import BlankImageError
from stages.images.ink import MIN_CONTRAST, ink_coverage, stretch
from stages.images.levels import two_class_threshold
from stages.images.paper import background_surface, distinct_classes
from stages.images.polarity import ink_is_dark

#: digits cropped to their ink, so they touch every edge; the markers' ink is half the
#: frame or more
TIGHT_DIGITS = {
    "ring": framed(ring_digit()),
    "seven": framed(seven_digit()),
    "marker ring": framed(ring_digit(width=40)),
    "marker seven": framed(seven_digit(width=40)),
}


def on_paper(ink: np.ndarray, paper: float | np.ndarray = 230.0, darkness: float = 0.8,
             noise: float = 0.0, seed: int = 0) -> np.ndarray:  # fmt: skip
    """Grey levels of ``ink`` coverage written in dark ink on paper of level ``paper``."""
    rng = np.random.default_rng(seed)
    grey = paper * (1 - darkness * ink) + rng.normal(0, noise, ink.shape)
    return np.clip(grey, 0, 255).astype(np.float32)


def lighting(shape: tuple[int, int]) -> np.ndarray:
    """Paper lit unevenly: 150 in one corner, 240 in the opposite one, curved."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    y, x = rows / shape[0], cols / shape[1]
    return 150 + 60 * x + 30 * y * y


def test_polarity_follows_the_paper_not_the_majority_of_levels() -> None:
    ink = ring_digit()
    assert ink_is_dark(on_paper(ink))
    assert not ink_is_dark(255 - on_paper(ink))  # chalk on a blackboard, MNIST's own look
    assert ink_is_dark(on_paper(ink, paper=lighting(ink.shape), noise=8))
    thin = ring_digit(width=2)  # a pen line: under 1% of the pixels
    assert (thin > 0.5).mean() < 0.01
    assert ink_is_dark(on_paper(thin, noise=8))
    assert not ink_is_dark(255 - on_paper(thin, noise=8))


def test_the_paper_surface_follows_uneven_lighting_and_ignores_the_ink() -> None:
    ink = seven_digit(width=30)
    paper = lighting(ink.shape)
    bright_ink = 255 - on_paper(ink, paper=paper, noise=4)
    surface = background_surface(bright_ink)
    assert surface.shape == ink.shape
    # within a few grey levels of the true paper, under the ink as well as around it
    assert np.abs(surface - (255 - paper)).max() < 6


def test_coverage_is_zero_on_paper_and_one_on_solid_ink_however_lit() -> None:
    ink = ring_digit(box=(40, 40, 360, 260), width=24)  # across the whole page
    coverage = ink_coverage(on_paper(ink, paper=lighting(ink.shape), noise=5))
    paper, solid = ink == 0, ink == 1
    assert (coverage[paper] == 0).mean() > 0.999
    assert np.median(coverage[solid]) > 0.9  # noise of 5 levels, on ink about 150 deep
    assert np.percentile(coverage[solid], 90) > 0.999
    # ink reads as ink on the dim side of the paper as on the bright side
    left, right = solid.copy(), solid.copy()
    left[:, ink.shape[1] // 2 :] = False
    right[:, : ink.shape[1] // 2] = False
    assert abs(coverage[left].mean() - coverage[right].mean()) < 0.05


def test_mnists_own_look_passes_through() -> None:
    ink = seven_digit()
    coverage = ink_coverage((255 * ink).astype(np.float32))
    assert np.array_equal(coverage > 0, ink > 0.08)
    assert coverage.max() == 1.0


def test_the_stretch_removes_the_noise_floor_and_saturates_solid_ink() -> None:
    rng = np.random.default_rng(1)
    contrast = rng.normal(0, 0.03, (200, 200))
    contrast[50:150, 90:110] += 0.6  # a bar of ink 0.6 above the paper
    coverage = stretch(contrast)
    assert coverage.min() == 0.0
    # the floor is 4 noise standard deviations: at most a rare speck of noise is left
    assert (coverage[:, :80] == 0).mean() > 0.999
    assert np.median(coverage[50:150, 90:110]) > 0.9
    assert np.percentile(coverage[50:150, 90:110], 90) > 0.999


@pytest.mark.parametrize(
    "grey",
    [
        np.full((100, 120), 240.0),
        np.full((100, 120), 0.0),
        lighting((100, 120)),
        on_paper(np.zeros((100, 120)), noise=10.0),
    ],
    ids=["white", "black", "shading only", "noise only"],
)
def test_a_picture_without_ink_is_blank(grey: np.ndarray) -> None:
    with pytest.raises(BlankImageError, match="no ink"):
        ink_coverage(grey.astype(np.float32))


def test_a_faint_but_real_mark_is_not_blank() -> None:
    ink = ring_digit()
    coverage = ink_coverage(on_paper(ink, darkness=0.15, noise=2))  # light pencil
    assert (coverage[ink == 1] > 0.5).mean() > 0.9


def flat(ink: np.ndarray, dark: bool, levels: tuple[float, float] = (0.0, 255.0)) -> np.ndarray:
    """``ink`` coverage drawn on a perfectly flat background, as a drawing app exports it:
    ink at one of ``levels`` (dark, light) and paper at the other."""
    low, high = levels
    grey = high - (high - low) * ink if dark else low + (high - low) * ink
    return grey.astype(np.float32)


def agreement(coverage: np.ndarray, ink: np.ndarray) -> float:
    """The fraction of pixels on which ``coverage`` and the true ``ink`` agree (ink or not)."""
    return float(((coverage > 0.5) == (ink > 0.5)).mean())


@pytest.mark.parametrize("dark", [True, False], ids=["black on white", "white on black"])
@pytest.mark.parametrize("name", list(TIGHT_DIGITS))
def test_ink_filling_the_frame_on_a_flat_background_is_found(name: str, dark: bool) -> None:
    ink = TIGHT_DIGITS[name]
    assert (ink > 0.5).mean() > 0.2
    assert agreement(ink_coverage(flat(ink, dark)), ink) > 0.99


@pytest.mark.parametrize("dark", [True, False], ids=["black on white", "white on black"])
@pytest.mark.parametrize("name", list(TIGHT_DIGITS))
def test_a_binarized_digit_filling_the_frame_is_found(name: str, dark: bool) -> None:
    ink = (TIGHT_DIGITS[name] >= 0.5).astype(np.float32)  # two grey levels only
    coverage = ink_coverage(flat(ink, dark))
    assert np.array_equal(coverage > 0.5, ink > 0.5)


@pytest.mark.parametrize("dark", [True, False], ids=["black on white", "white on black"])
@pytest.mark.parametrize("size", [8, 12])
def test_a_tiny_picture_filled_by_its_digit_is_found(size: int, dark: bool) -> None:
    for name in ("ring", "seven", "marker seven"):
        ink = shrunk(TIGHT_DIGITS[name], size)
        coverage = ink_coverage(flat(ink, dark))
        solid, paper = ink > 0.6, ink < 0.05
        assert (coverage[solid] > 0.4).all(), name
        assert (coverage[paper] == 0).all(), name


@pytest.mark.parametrize("dark", [True, False], ids=["black on white", "white on black"])
def test_a_small_digit_upscaled_blurry_is_found(dark: bool) -> None:
    for name in ("seven", "marker ring"):
        ink = enlarged(shrunk(TIGHT_DIGITS[name], 14), 9.0)  # blurred: many levels
        coverage = ink_coverage(flat(ink, dark))
        assert agreement(coverage, ink) > 0.97, name
        assert (coverage[ink == 0] == 0).mean() > 0.99, name


@pytest.mark.parametrize("stroke", [12, 20, 30])
@pytest.mark.parametrize("dark", [True, False], ids=["black on white", "white on black"])
def test_a_zero_drawn_as_a_box_touching_every_edge_is_a_ring(dark: bool, stroke: int) -> None:
    """The border is all ink: read as the border shows it, the hole would be a filled
    rectangle, which no digit is."""
    ink = box_zero(stroke=stroke)
    assert agreement(ink_coverage(flat(ink, dark)), ink) == 1.0


@pytest.mark.parametrize("dark", [True, False], ids=["dark marks", "light marks"])
@pytest.mark.parametrize("name", ["pen line on a page", *TIGHT_DIGITS])
def test_visible_marks_are_never_blank(name: str, dark: bool) -> None:
    """Marks a little above ``MIN_CONTRAST`` on a flat background, from a pen line on 1%
    of a page to a marker digit on 69% of its frame; the markers at 8x8 too."""
    ink = ring_digit(width=2) if name == "pen line on a page" else TIGHT_DIGITS[name]
    paper = 230.0
    contrast = 1.25 * MIN_CONTRAST * paper  # about 23 grey levels on paper at 230
    levels = (paper - contrast, paper) if dark else (255 - paper, 255 - paper + contrast)
    assert agreement(ink_coverage(flat(ink, dark, levels)), ink) > 0.99
    if name.startswith("marker"):
        tiny = shrunk(ink, 8)
        solid = tiny > 0.9  # mostly covered: still above the threshold
        assert solid.sum() >= 4
        assert (ink_coverage(flat(tiny, dark, levels))[solid] > 0).all()


def test_the_stretch_measures_the_noise_on_the_paper_when_ink_is_most_of_the_picture() -> None:
    rng = np.random.default_rng(2)
    contrast = rng.normal(0, 0.02, (200, 200))
    contrast[:, :130] += 0.7  # ink on 65% of the picture
    coverage = stretch(contrast)
    assert (coverage[:, :130] > 0.5).mean() > 0.99
    assert (coverage[:, 130:] == 0).mean() > 0.999


def test_the_paper_surface_holds_under_a_marker_digit_filling_the_frame() -> None:
    ink = TIGHT_DIGITS["marker seven"]
    paper = lighting(ink.shape) * 0.2 + 180  # 210 to 228: a photo lit a little unevenly
    bright_ink = 255 - on_paper(ink, paper=paper, noise=3)
    surface = background_surface(bright_ink)
    assert np.abs(surface - (255 - paper)).max() < 5


def test_noise_and_shading_are_one_class_paper_and_ink_two() -> None:
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:120, 0:90]
    one_class = [
        rng.normal(40, 8, (120, 90)),  # noise
        20 + 60 * cols / 90,  # even shading
        20 + 40 * cols / 90 + 20 * (rows / 120) ** 2 + rng.normal(0, 3, (120, 90)),
    ]
    for values in one_class:
        assert not distinct_classes(values, values < two_class_threshold(values))
    for ink in (TIGHT_DIGITS["seven"], shrunk(TIGHT_DIGITS["ring"], 8)):
        for blur in (1.0, 3.0):  # a digit enlarged from a small picture
            values = 255 * enlarged(shrunk(ink, 14), blur * 3)
            assert distinct_classes(values, values < two_class_threshold(values))
