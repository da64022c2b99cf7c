"""MNIST's construction, step by step: crop, 20x20 fit, strokes, centre of mass, pixels,
and the model's own normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.models import digit_model
from support.user_images import (
    enlarged,
    framed,
    ring_digit,
    seven_digit,
    shrunk,
)

from nnlib.model import Model
from stages.images.constructions import construction_for, normalize
from stages.images.errors import BlankImageError, ImageError
from stages.images.mnist import (
    BOX,
    CENTRE,
    FIELD,
    STROKE_BAND,
    centre_by_mass,
    centre_of_mass,
    crop_to_ink,
    fit_box,
    fit_strokes,
    mnist_digit,
    stroke_width,
    to_pixels,
)
from stages.images.reading import Picture, read_image


def ink_bounds(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), inclusive, of the non-zero pixels."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_the_crop_holds_the_ink_and_drops_stray_specks() -> None:
    coverage = np.zeros((300, 400), dtype=np.float32)
    coverage[100:200, 150:190] = 1.0
    coverage[5, 5] = coverage[290, 390] = 0.4  # specks of noise far from the digit
    crop = crop_to_ink(coverage)
    assert crop.shape == (100, 40)
    assert (crop == 1.0).all()
    with pytest.raises(BlankImageError):
        crop_to_ink(np.zeros((10, 10), dtype=np.float32))


@pytest.mark.parametrize(
    ("shape", "fitted"),
    [((60, 30), (20, 10)), ((30, 90), (7, 20)), ((5, 10), (10, 20)), ((200, 3), (20, 1))],
)
def test_the_fit_keeps_the_aspect_ratio_in_a_20_pixel_box(
    shape: tuple[int, int], fitted: tuple[int, int]
) -> None:
    out = fit_box(np.ones(shape, dtype=np.float32))
    assert out.shape == fitted
    assert max(out.shape) == BOX
    assert np.allclose(out, 1.0)  # solid ink stays solid


def test_the_fit_anti_aliases_by_area() -> None:
    """Shrinking 3x, a one-pixel line covers a third of each new pixel."""
    ink = np.zeros((60, 60), dtype=np.float32)
    ink[:, 30] = 1.0
    out = fit_box(ink)
    assert out.shape == (20, 20)
    assert np.allclose(out[:, 10], 1 / 3, atol=1e-6)
    assert np.allclose(out.sum(), ink.sum() / 9, rtol=1e-5)  # ink is conserved


@pytest.mark.parametrize("seed", range(20))
def test_the_centre_of_mass_lands_within_half_a_pixel_of_the_centre(seed: int) -> None:
    rng = np.random.default_rng(seed)
    digit = np.zeros((20, int(rng.integers(4, 21))), dtype=np.float32)
    for _ in range(4):  # a few random blobs: the mass is nowhere near the box's centre
        top, left = rng.integers(0, 16), rng.integers(0, max(1, digit.shape[1] - 4))
        digit[top : top + 4, left : left + 4] = rng.uniform(0.3, 1.0)
    field = centre_by_mass(digit)
    assert field.shape == (FIELD, FIELD)
    assert np.isclose(field.sum(), digit.sum())  # nothing cut off
    row, col = centre_of_mass(field)
    assert abs(row - CENTRE[0]) <= 0.5
    assert abs(col - CENTRE[1]) <= 0.5


def test_a_top_heavy_digit_sits_low_as_in_mnist() -> None:
    """The centre of mass, not the box, is centred: a '7' (mass at the top) moves down."""
    fitted = fit_box(crop_to_ink(seven_digit()))
    field = centre_by_mass(fitted)
    top, bottom, _, _ = ink_bounds(field)
    assert bottom - top + 1 == BOX
    assert top > (FIELD - BOX) // 2


def test_stroke_width_measures_a_bar() -> None:
    """A w x L bar has area wL and outline 2(w + L): the measure gives wL / (w + L)
    (from 2 pixels on; central differences see a 1-pixel line's edges as half as sharp)."""
    for width in (2, 3, 5):
        bar = np.zeros((28, 28), dtype=np.float32)
        bar[4:24, 10 : 10 + width] = 1.0
        assert abs(stroke_width(bar) - width * 20 / (width + 20)) < 0.1


# the ring is 500 pixels tall: fitted into the box, a pen of p pixels is p / 25 wide
@pytest.mark.parametrize("pen", [12, 60, 150], ids=["thin pen", "mnist-like", "marker"])
def test_strokes_end_up_in_mnists_range(pen: int) -> None:
    ink = crop_to_ink(ring_digit(size=(600, 500), box=(50, 50, 330, 550), width=pen))
    plain = fit_box(ink)
    fitted = fit_strokes(ink)
    low, high = STROKE_BAND
    assert max(fitted.shape) == BOX
    assert low - 0.15 <= stroke_width(fitted) <= high + 0.15
    if low <= stroke_width(plain) <= high:
        assert np.array_equal(fitted, plain)  # within MNIST's range: left alone
    else:
        assert not np.array_equal(fitted, plain)


@pytest.mark.parametrize("pen", [12, 60], ids=["thin pen", "mnist-like"])
def test_the_stroke_width_step_can_be_left_out(pen: int) -> None:
    """``strokes=False``: the ink is only fitted into the box, whatever its strokes."""
    ink = ring_digit(size=(600, 500), box=(50, 50, 330, 550), width=pen)
    picture = Picture(np.repeat((255 - 200 * ink)[:, :, None], 3, axis=2), None)
    with_step, without = mnist_digit(picture), mnist_digit(picture, strokes=False)
    low, high = STROKE_BAND
    assert low - 0.15 <= stroke_width(with_step) <= high + 0.15
    if pen == 12:
        assert stroke_width(without) < low
    else:  # strokes already in MNIST's range: the step changes nothing
        assert np.array_equal(without, with_step)


def test_pixels_reach_full_ink() -> None:
    field = np.zeros((28, 28), dtype=np.float32)
    field[10:12, 10:20] = 0.4
    field[12, 10:20] = 0.2
    pixels = to_pixels(field)
    assert pixels.dtype == np.uint8
    assert pixels.max() == 255
    assert pixels[12, 10] == 128
    with pytest.raises(BlankImageError):
        to_pixels(np.zeros((28, 28), dtype=np.float32))


def test_a_photographed_digit_becomes_an_mnist_digit(tmp_path: Path) -> None:
    ink = seven_digit(size=(900, 1200), origin=(300, 700), height=400, width=40)
    grey = np.rint(235 - 200 * ink).astype(np.uint8)
    Image.fromarray(grey).convert("RGB").save(tmp_path / "seven.jpg", quality=85)
    pixels = mnist_digit(read_image(tmp_path / "seven.jpg"))
    assert pixels.shape == (28, 28)
    assert pixels.dtype == np.uint8
    assert pixels.max() == 255
    assert (pixels[:2] == 0).all()  # a clean black margin
    assert (pixels[:, :2] == 0).all()
    top, bottom, left, right = ink_bounds(pixels)
    assert max(bottom - top, right - left) + 1 in (BOX, BOX + 1)
    row, col = centre_of_mass(pixels.astype(np.float64))
    assert abs(row - CENTRE[0]) <= 0.5
    assert abs(col - CENTRE[1]) <= 0.5

    # the same digit as MNIST draws it (light on black) gives the same image
    Image.fromarray(255 - grey).save(tmp_path / "seven_inverted.png")
    inverted = mnist_digit(read_image(tmp_path / "seven_inverted.png"))
    assert np.abs(inverted.astype(int) - pixels.astype(int)).max() <= 40
    assert np.abs(inverted.astype(int) - pixels.astype(int)).mean() < 3


def test_inputs_are_normalized_as_the_model_file_says(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    standardize = {"method": "standardize", "divisor": 255.0, "mean": 0.13, "std": 0.31}
    digit_model(normalization=standardize).save(tmp_path / "model.npz")
    model = Model.load(tmp_path / "model.npz")
    x = normalize(pixels, model.metadata["normalization"])
    assert x.shape == (3, 784)
    assert x.dtype == np.float32
    expected = (pixels.reshape(3, 784) / 255.0 - 0.13) / 0.31
    assert np.allclose(x, expected, atol=1e-5)
    scale = normalize(pixels, {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0})
    assert np.allclose(scale, pixels.reshape(3, 784) / 255.0)

    unusable = [
        {"method": "scale", "divisor": 0.0, "mean": 0.0, "std": 1.0},
        {"method": "whiten", "divisor": 255.0, "mean": 0.0, "std": 1.0},
        {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0, "gain": 2.0},
    ]
    for bad in unusable:
        with pytest.raises(ImageError, match="normalization"):
            normalize(pixels, bad)


def test_the_model_files_dataset_picks_the_construction() -> None:
    assert construction_for("mnist") is mnist_digit
    with pytest.raises(ImageError, match="no image construction for dataset 'cifar'"):
        construction_for("cifar")


def save_as(path: Path, ink: np.ndarray, kind: str) -> Path:
    """``ink`` coverage ``(rows, cols)`` saved as a user's file of ``kind``; its path."""
    grey = np.rint(255 * ink).astype(np.uint8)
    if kind == "grey PNG, white on black":
        image = Image.fromarray(grey)
    elif kind == "RGB PNG, black on white":
        image = Image.fromarray(255 - grey).convert("RGB")
    elif kind == "1-bit PNG":
        image = Image.fromarray(ink >= 0.5)
    elif kind == "palette PNG, navy on cream":
        image = Image.fromarray((ink >= 0.5).astype(np.uint8), mode="P")
        image.putpalette([250, 245, 230, 20, 30, 90])
    elif kind == "transparent PNG":
        rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
        rgba[..., :3] = (20, 20, 90)
        rgba[..., 3] = grey
        image = Image.fromarray(rgba)
    else:  # a photo: grey ink on grey paper, JPEG
        path = path.with_suffix(".jpg")
        Image.fromarray(np.rint(225 - 190 * ink).astype(np.uint8)).save(path, quality=80)
        return path
    path = path.with_suffix(".png")
    image.save(path)
    return path


DIGITS = {
    "seven": seven_digit(),
    "ring": ring_digit(),
    "marker seven": seven_digit(width=40),
    "marker ring": ring_digit(width=40),
}
FILE_KINDS = [
    "grey PNG, white on black",
    "RGB PNG, black on white",
    "1-bit PNG",
    "palette PNG, navy on cream",
    "transparent PNG",
    "JPEG photo",
]


def read_as_with_a_margin(ink: np.ndarray, kind: str, margin: int, folder: Path) -> None:
    """``ink`` (the digit touching the edges) and ``ink`` with ``margin`` pixels of paper
    around it, each saved as a ``kind`` file, give the same 28x28 digit (to a shift of a
    pixel: a centre of mass half-way between two pixels goes either way)."""
    close = mnist_digit(read_image(save_as(folder / "close", ink, kind))).astype(int)
    spaced = mnist_digit(read_image(save_as(folder / "spaced", np.pad(ink, margin), kind)))
    shifted = [np.roll(close, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    difference = min((np.abs(s - spaced.astype(int)) for s in shifted), key=np.mean)
    assert difference.mean() < 1.0, difference.mean()
    assert (difference > 64).mean() < 0.01


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("name", list(DIGITS))
def test_a_digit_cropped_close_reads_as_with_a_margin(name: str, kind: str, tmp_path: Path) -> None:
    ink = framed(DIGITS[name])
    assert ink[[0, -1]].any(axis=1).all()  # touches the top and bottom edges
    assert ink[:, [0, -1]].any(axis=0).all()  # and the left and right ones
    read_as_with_a_margin(ink, kind, 60, tmp_path)


@pytest.mark.parametrize("kind", FILE_KINDS[:5])  # JPEG re-blocks a tiny picture
@pytest.mark.parametrize("size", [8, 12])
@pytest.mark.parametrize("name", ["seven", "ring", "marker seven"])
def test_a_tiny_picture_reads_as_with_a_margin(
    name: str, size: int, kind: str, tmp_path: Path
) -> None:
    read_as_with_a_margin(shrunk(framed(DIGITS[name]), size), kind, 8, tmp_path)


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("name", list(DIGITS))
def test_an_upscaled_blurry_picture_reads_as_with_a_margin(
    name: str, kind: str, tmp_path: Path
) -> None:
    blurry = framed(enlarged(shrunk(framed(DIGITS[name]), 14), 9.0))
    read_as_with_a_margin(blurry, kind, 40, tmp_path)
