"""stages.augment.distortions: each strength moves the ink as documented; zero is the
identity; pixels from outside the image are blank."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stages.augment.distortions import Distorter, Draw, Strengths, pad_images

SHAPE = (28, 28)
CENTRE = 13.5  # of a 28-pixel axis
ALL = Strengths(
    rotation=12, scale=0.1, shear=0.15, shift=2, elastic_alpha=15, elastic_sigma=4, mirror=True
)


def grid() -> tuple[np.ndarray, np.ndarray]:
    """Column (x) and row (y) index of every pixel, ``(28, 28)`` each."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return cols.astype(float), rows.astype(float)


def blob(x: float, y: float, sigma: float = 1.5) -> np.ndarray:
    """A smooth round spot of ink centred at ``(x, y)``, float32 ``(28, 28)``."""
    cols, rows = grid()
    return np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2)).astype(np.float32)


def bar(angle: float, length: float = 16, width: float = 1.0) -> np.ndarray:
    """A smooth straight stroke through the centre at ``angle`` degrees (counter-clockwise
    from horizontal as displayed), float32 ``(28, 28)``."""
    cols, rows = grid()
    dx, dy = cols - CENTRE, CENTRE - rows  # y up, as displayed
    theta = np.deg2rad(angle)
    along = dx * np.cos(theta) + dy * np.sin(theta)
    across = -dx * np.sin(theta) + dy * np.cos(theta)
    ends = np.clip(np.abs(along) - length / 2, 0, None)
    return np.exp(-(across**2 + ends**2) / (2 * width**2)).astype(np.float32)


def moments(image: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Centre of mass ``(x, y)`` and the 2x2 covariance of the ink (x right, y down)."""
    cols, rows = grid()
    mass = image.sum(dtype=np.float64)
    x, y = (image * cols).sum() / mass, (image * rows).sum() / mass
    dx, dy = cols - x, rows - y
    cov = np.array(
        [[(image * dx * dx).sum(), (image * dx * dy).sum()], [0.0, (image * dy * dy).sum()]]
    )
    cov[1, 0] = cov[0, 1]
    return float(x), float(y), cov / mass


def orientation(image: np.ndarray) -> float:
    """The direction of the ink's long axis, degrees counter-clockwise as displayed."""
    _, _, cov = moments(image)
    return float(-np.degrees(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])))


def distort(
    image: np.ndarray, blank: float = 0.0, strengths: Strengths = ALL, **draw
) -> np.ndarray:
    """``image`` ``(28, 28)`` through one chosen draw (identity except the ``draw`` fields)."""
    distorter = Distorter(SHAPE, strengths)
    chosen = dataclasses.replace(  # one image: each value wrapped in a list
        Draw.identity(1), **{k: np.asarray([v], dtype=float) for k, v in draw.items()}
    )
    padded = pad_images(image.reshape(1, -1), SHAPE, blank)
    return distorter.apply(padded, chosen).reshape(SHAPE)


def test_zero_strengths_are_the_identity_bit_for_bit() -> None:
    """All strengths 0 draw no change; a draw of no change leaves every bit, whatever the
    strengths (standardized pixels, so the blank border is not 0)."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((300, 784), dtype=np.float32)  # 3 chunks
    padded = pad_images(images, SHAPE, blank=-0.4242)
    still = Distorter(SHAPE, Strengths())
    assert not Strengths().active
    assert still.apply(padded, still.draw(rng, 300)).tobytes() == images.tobytes()
    strong = Distorter(SHAPE, ALL)
    no_change = dataclasses.replace(Draw.identity(300), elastic=np.zeros((300, 2, 7, 7), "f4"))
    assert strong.apply(padded, no_change).tobytes() == images.tobytes()


@pytest.mark.parametrize("shift", [(3.0, -2.0), (2.5, 1.25), (-0.3, 0.7)])
def test_a_shift_moves_the_centre_of_mass_by_the_shift(shift: tuple[float, float]) -> None:
    """x right, y down, in pixels, fractions included (bilinear reads keep the mass centre)."""
    image = blob(13.0, 14.0)
    moved = distort(image, shifts=shift)
    x, y, _ = moments(moved)
    assert (x - 13.0, y - 14.0) == pytest.approx(shift, abs=1e-3)
    assert moved.sum() == pytest.approx(image.sum(), rel=1e-4)  # nothing pushed out


@pytest.mark.parametrize("angle", [30.0, -12.0, 90.0])
def test_a_rotation_turns_a_stroke_counter_clockwise_about_the_centre(angle: float) -> None:
    turned = distort(bar(0.0, width=1.5), angles=angle)
    difference = (orientation(turned) - angle + 90) % 180 - 90  # an axis: 90 is -90
    assert difference == pytest.approx(0, abs=0.1)
    x, y, _ = moments(turned)
    assert (x, y) == pytest.approx((CENTRE, CENTRE), abs=0.02)
    # and it is the stroke drawn at that angle, up to the blur of bilinear reads
    assert np.abs(turned - bar(angle, width=1.5)).max() < 0.08


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_scale_grows_the_ink_about_the_centre(factor: float) -> None:
    image = blob(CENTRE, CENTRE, sigma=3.0)
    _, _, before = moments(image)
    x, y, after = moments(distort(image, scales=factor))
    assert np.sqrt(np.diag(after) / np.diag(before)) == pytest.approx([factor] * 2, rel=0.01)
    assert (x, y) == pytest.approx((CENTRE, CENTRE), abs=1e-3)


def test_a_positive_shear_slants_upright_strokes_like_a_backslash() -> None:
    """x moves by shear times the height below the centre: the top goes left."""
    slanted = distort(bar(90.0), shears=0.25)
    cols, rows = grid()
    ink = slanted > 0.5
    slope = np.polyfit(rows[ink], cols[ink], 1)[0]  # x per pixel downwards
    assert slope == pytest.approx(0.25, abs=0.02)


def test_mirror_flips_left_right_exactly() -> None:
    image = blob(8.0, 20.0) + bar(30.0)
    flipped = distort(image, mirrored=True)
    assert flipped.tobytes() == image[:, ::-1].tobytes()


def test_pixels_from_outside_the_image_read_the_normalized_blank() -> None:
    """Standardized data: a blank pixel is -mean/std, not 0. Shifted 5 pixels any way, an
    image inked everywhere gets exactly that blank in the 5 rows or columns that moved in
    from outside, and keeps its own pixels elsewhere; moved out of the frame, it is blank."""
    blank = np.float32(-0.1307 / 0.3081)
    image = blob(CENTRE, CENTRE) + np.float32(1.5)  # no blank pixel anywhere
    for shift, outside, inside, source in [
        ((5.0, 0.0), np.s_[:, :5], np.s_[:, 5:], np.s_[:, :-5]),
        ((-5.0, 0.0), np.s_[:, -5:], np.s_[:, :-5], np.s_[:, 5:]),
        ((0.0, 5.0), np.s_[:5], np.s_[5:], np.s_[:-5]),
        ((0.0, -5.0), np.s_[-5:], np.s_[:-5], np.s_[5:]),
    ]:
        moved = distort(image, blank=float(blank), shifts=shift)
        assert (moved[outside] == blank).all(), shift
        assert moved[inside].tobytes() == np.ascontiguousarray(image[source]).tobytes(), shift
    for far in [(40.0, 3.5), (-40.0, 0.5), (0.25, 40.0), (-0.5, -40.0)]:
        assert (distort(image, blank=float(blank), shifts=far) == blank).all(), far
    shrunk = distort(image, blank=float(blank), scales=0.5, angles=45.0)
    assert shrunk[0, 0] == shrunk[-1, -1] == blank  # read from beyond the corners


def test_draws_cover_the_strengths_and_no_more() -> None:
    distorter = Distorter(SHAPE, ALL)
    draw = distorter.draw(np.random.default_rng(1), 20000)
    for values, low, high in [
        (draw.angles, -12, 12),
        (draw.scales, 0.9, 1.1),
        (draw.shears, -0.15, 0.15),
        (draw.shifts, -2, 2),
    ]:
        assert values.min() >= low
        assert values.max() <= high
        assert values.min() < low + 0.01 * (high - low)  # the whole range is used
        assert values.max() > high - 0.01 * (high - low)
    assert draw.mirrored.mean() == pytest.approx(0.5, abs=0.02)
    off = Distorter(SHAPE, dataclasses.replace(ALL, mirror=False, elastic_alpha=0))
    plain = off.draw(np.random.default_rng(1), 100)
    assert not plain.mirrored.any()
    assert plain.elastic is None


def test_the_elastic_field_has_simards_statistics() -> None:
    """alpha x Gaussian(sigma)-smoothed uniform(-1, 1) noise per pixel, as in Simard et al.
    (2003): the same displacement spread per pixel, the same correlation between pixels."""
    ndimage = pytest.importorskip("scipy.ndimage")
    alpha, sigma, n = 15.0, 4.0, 4000
    distorter = Distorter(SHAPE, Strengths(elastic_alpha=alpha, elastic_sigma=sigma))
    coefficients = distorter.draw(np.random.default_rng(2), n).elastic[:, 0]
    rows, cols = distorter.rows_basis[:, 2:], distorter.cols_basis[:, 2:]
    ours = np.einsum("rk,nkl,cl->nrc", rows, coefficients, cols)
    noise = np.random.default_rng(3).uniform(-1, 1, (n, *SHAPE))
    simard = alpha * ndimage.gaussian_filter(noise, sigma=(0, sigma, sigma), mode="reflect")

    def spread(fields: np.ndarray) -> np.ndarray:
        return fields.std(axis=0)

    def correlation(fields: np.ndarray, lag: int) -> float:
        a, b = fields[:, :, :-lag].ravel(), fields[:, :, lag:].ravel()
        return float(np.corrcoef(a, b)[0, 1])

    assert spread(ours).mean() == pytest.approx(spread(simard).mean(), rel=0.02)
    np.testing.assert_allclose(spread(ours), spread(simard), rtol=0.08)
    for lag in (1, 4, 8):
        assert correlation(ours, lag) == pytest.approx(correlation(simard, lag), abs=0.02)


def test_apply_refuses_images_and_draws_that_do_not_fit() -> None:
    distorter = Distorter(SHAPE, ALL)
    padded = pad_images(np.zeros((3, 784), np.float32), SHAPE, 0.0)
    with pytest.raises(ValueError, match="cannot distort 3"):
        distorter.apply(padded, distorter.draw(np.random.default_rng(0), 2))
    with pytest.raises(ValueError, match="do not fit 28x28"):
        distorter.apply(padded[:, 1:], distorter.draw(np.random.default_rng(0), 3))


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"scale": 1.0}, "scale must be < 1"), ({"shift": -1.0}, "shift must be >= 0")],
)
def test_impossible_strengths_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Strengths(**changes)
