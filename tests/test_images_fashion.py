"""Fashion-MNIST's construction: trim, longest edge to 28 by subsampling, sharpen, extend,
negate, grey; and the backdrop made white first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from stages.images.constructions import construction_for
from stages.images.errors import BlankImageError
from stages.images.fashion import (
    SIZE,
    TRIM_TOLERANCE,
    extend,
    fashion_item,
    resize_longest_edge,
    sharpen,
    trim,
    whiten_backdrop,
)
from stages.images.reading import Picture, read_image


def garment(backdrop: tuple[int, int, int] = (255, 255, 255), size: tuple[int, int] = (400, 300),
            box: tuple[int, int, int, int] = (100, 60, 220, 340)) -> np.ndarray:  # fmt: skip
    """RGB uint8 ``(rows, cols, 3)``: a dark red T-shirt-like shape (body and sleeves) with a
    lighter stripe, ``box`` = (left, top, right, bottom) of its body, on ``backdrop``."""
    image = Image.new("RGB", (size[1], size[0]), backdrop)
    draw = ImageDraw.Draw(image)
    left, top, right, _ = box
    draw.rectangle(box, fill=(120, 20, 30))
    draw.polygon([(left, top), (left - 40, top + 50), (left, top + 70)], fill=(120, 20, 30))
    draw.polygon([(right, top), (right + 40, top + 50), (right, top + 70)], fill=(120, 20, 30))
    draw.rectangle((left, top + 100, right, top + 120), fill=(200, 170, 60))
    return np.asarray(image)


def bounds(image: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_trim_cuts_the_edges_close_to_the_corners_colour() -> None:
    rgb = np.full((100, 120, 3), 250.0, dtype=np.float32)
    rgb[20:60, 30:50] = (40, 40, 40)
    rgb[90, :] = 250 - 0.8 * TRIM_TOLERANCE * 255  # a faint line within the tolerance
    assert trim(rgb).shape == (40, 20, 3)
    rgb[95, 100] = 250 - 1.5 * TRIM_TOLERANCE * 255  # a mark beyond it is content
    assert trim(rgb).shape == (76, 71, 3)
    with pytest.raises(BlankImageError):
        trim(np.full((10, 10, 3), 200.0, dtype=np.float32))


def test_the_longest_edge_becomes_28_by_subsampling() -> None:
    stripes = np.zeros((90, 180, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: subsampling keeps pure levels, no grey
    out = resize_longest_edge(Image.fromarray(stripes))
    assert out.size == (SIZE, 14)
    assert set(np.unique(np.asarray(out))) <= {0, 255}
    tall = resize_longest_edge(Image.fromarray(np.zeros((300, 100, 3), dtype=np.uint8)))
    assert tall.size == (9, SIZE)


def test_sharpening_steepens_outlines() -> None:
    ramp = np.tile(np.linspace(0, 255, 28), (28, 1)).astype(np.uint8)
    step = np.zeros((28, 28), dtype=np.uint8)
    step[:, 14:] = 200
    soft = Image.fromarray(np.stack([step] * 3, axis=-1)).filter(ImageFilter.GaussianBlur(1))
    sharp = np.asarray(sharpen(soft), dtype=float)[:, :, 0]
    before = np.asarray(soft, dtype=float)[:, :, 0]
    assert np.abs(np.diff(sharp[14])).max() > np.abs(np.diff(before[14])).max()
    flat = Image.fromarray(np.stack([ramp] * 3, axis=-1))
    assert np.abs(np.asarray(sharpen(flat), dtype=int) - np.asarray(flat, dtype=int)).max() <= 2


def test_extend_centres_on_a_white_square() -> None:
    out = np.asarray(extend(Image.new("RGB", (SIZE, 10), (0, 0, 0))))
    assert out.shape == (SIZE, SIZE, 3)
    assert (out[9:19] == 0).all()
    assert (out[:9] == 255).all()
    assert (out[19:] == 255).all()


@pytest.mark.parametrize("backdrop", [(255, 255, 255), (205, 200, 185)], ids=["white", "grey"])
def test_a_photographed_garment_becomes_a_fashion_mnist_item(
    backdrop: tuple[int, int, int],
) -> None:
    rgb = garment(backdrop).astype(np.float32)
    item = fashion_item(Picture(rgb, None))
    assert item.shape == (SIZE, SIZE)
    assert item.dtype == np.uint8
    top, bottom, left, right = bounds(item > 10)
    assert (top, bottom) == (0, SIZE - 1)  # the longer edge (height) fills the field
    width = right - left + 1
    assert abs(width - 200 / 281 * SIZE) <= 1.5  # the aspect ratio holds (sleeves included)
    assert abs((left + right) / 2 - (SIZE - 1) / 2) <= 1  # in the centre
    assert item[:, :left].max() <= 10  # the backdrop is black, around the garment ...
    assert item[20:27, 4:6].max() <= 12  # ... and under its sleeves
    assert item[14, 14] > 150  # ... and the dark garment bright


def test_backdrops_are_made_white_and_light_on_black_is_negated_first() -> None:
    rgb = garment((205, 200, 185)).astype(np.float32)
    white = whiten_backdrop(rgb)
    assert np.allclose(white[0, 0], 255)
    negative = whiten_backdrop(255 - garment().astype(np.float32))
    assert np.allclose(negative, garment(), atol=1)
    same = fashion_item(Picture(255 - garment().astype(np.float32), None))
    assert np.array_equal(same, fashion_item(Picture(garment().astype(np.float32), None)))


def test_a_transparent_backdrop_is_white(tmp_path: Path) -> None:
    rgb = garment()
    alpha = np.where((rgb == 255).all(axis=2), 0, 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "cutout.png")
    cutout = fashion_item(read_image(tmp_path / "cutout.png"))
    assert np.array_equal(cutout, fashion_item(Picture(rgb.astype(np.float32), None)))


def test_a_fashion_model_gets_the_fashion_construction() -> None:
    assert construction_for("fashion-mnist") is fashion_item
