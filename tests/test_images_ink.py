"""From grey levels to ink coverage: polarity, the paper's level, the contrast stretch."""

from __future__ import annotations

import numpy as np
import pytest
from support.user_images import ring_digit, seven_digit

from stages.images.errors import BlankImageError
from stages.images.ink import background_surface, ink_coverage, ink_is_dark, stretch


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
