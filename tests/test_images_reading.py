"""Reading users' image files: formats, modes, transparency, EXIF orientation, bounds."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.user_images import png_header_only

from stages.images.errors import ImageError
from stages.images.reading import (
    MAX_PIXELS,
    WORKING_SIZE,
    flatten_transparency,
    luma,
    read_image,
)


def halves(width: int = 64, height: int = 48) -> np.ndarray:
    """RGB uint8: the left half dark (30), the right half light (220)."""
    pixels = np.full((height, width, 3), 220, dtype=np.uint8)
    pixels[:, : width // 2] = 30
    return pixels


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".gif", ".tiff", ".webp"])
def test_every_common_format_reads_as_rgb_pixels(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"image{suffix}"
    Image.fromarray(halves()).save(path)
    picture = read_image(path)
    assert picture.rgb.shape == (48, 64, 3)
    assert picture.rgb.dtype == np.float32
    assert picture.alpha is None
    # lossy formats blur the edge between the halves; away from it the levels hold
    assert np.allclose(picture.rgb[:, :24], 30, atol=8)
    assert np.allclose(picture.rgb[:, 40:], 220, atol=8)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "I;16"])
def test_every_mode_reads_on_the_0_255_scale(mode: str, tmp_path: Path) -> None:
    grey = Image.fromarray(halves()).convert("L")
    if mode == "I;16":  # a 16-bit greyscale PNG: 65535 is white
        image = Image.fromarray((np.asarray(grey, dtype=np.uint16) * 257).astype(np.uint16))
    else:
        image = grey.convert(mode, dither=Image.Dither.NONE)
    suffix = ".tiff" if mode == "CMYK" else ".png"
    image.save(tmp_path / f"image{suffix}")
    picture = read_image(tmp_path / f"image{suffix}")
    grey_read = luma(picture.rgb)
    dark, light = (0, 255) if mode == "1" else (30, 220)
    assert np.allclose(grey_read[:, :24], dark, atol=3)
    assert np.allclose(grey_read[:, 40:], light, atol=3)


def test_alpha_is_returned_for_transparent_files(tmp_path: Path) -> None:
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[5:15, 10:20] = (0, 0, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    picture = read_image(tmp_path / "rgba.png")
    assert picture.alpha is not None
    assert np.array_equal(picture.alpha > 0.5, rgba[..., 3] > 0)

    palette = Image.fromarray(rgba[..., 3]).convert("P")
    palette.save(tmp_path / "palette.png", transparency=0)  # index 0 (black) transparent
    picture = read_image(tmp_path / "palette.png")
    assert picture.alpha is not None
    assert np.array_equal(picture.alpha > 0.5, rgba[..., 3] > 0)


def test_only_the_first_frame_of_an_animation_is_read(tmp_path: Path) -> None:
    frames = [Image.new("L", (20, 20), level) for level in (10, 200, 120)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert np.allclose(read_image(tmp_path / "anim.gif").rgb, 10)


def test_an_opaque_alpha_channel_is_dropped(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8), (10, 20, 30, 255)).save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").alpha is None


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_turns_photos_upright(orientation: int, tmp_path: Path) -> None:
    upright = np.full((40, 60), 255, dtype=np.uint8)
    upright[:10, :15] = 0  # a dark mark in the top left corner
    undo = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
            8: Image.Transpose.ROTATE_270}[orientation]  # fmt: skip
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(upright).transpose(undo).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    grey = luma(read_image(tmp_path / "photo.jpg").rgb)
    assert grey.shape == (40, 60)
    assert grey[:10, :15].mean() < 40
    assert grey[10:, 15:].mean() > 215


def test_large_images_are_reduced_to_the_working_size(tmp_path: Path) -> None:
    pixels = np.full((1500, 3600), 255, dtype=np.uint8)
    pixels[:, :1800] = 0
    Image.fromarray(pixels).save(tmp_path / "big.png")
    picture = read_image(tmp_path / "big.png")
    assert picture.rgb.shape == (667, WORKING_SIZE, 3)
    assert abs(float(luma(picture.rgb).mean()) - 127.5) < 1


@pytest.mark.parametrize(
    ("width", "height"),
    [(10_000, 10_000), (30_000, 30_000)],  # above the limit, and above twice the limit
)
def test_decompression_bombs_are_refused_before_decoding(
    width: int, height: int, tmp_path: Path
) -> None:
    assert width * height > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(width, height))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match=r"^image too large"):
            read_image(path)
    assert caught == []  # Pillow's warning became the error, it did not leak


def test_the_limit_holds_when_pillows_own_check_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # as some libraries set it
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30_000, 30_000))
    with pytest.raises(ImageError, match=r"^image too large \(30000x30000 pixels"):
        read_image(path)


def test_an_image_at_the_limit_is_not_a_bomb(tmp_path: Path) -> None:
    """Only the size decides: a header just under the limit passes the check (and then
    fails to decode, as it holds no pixel data)."""
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(9_000, 9_000))
    with pytest.raises(ImageError, match=r"^cannot decode the image"):
        read_image(path)


def test_unreadable_files_give_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(halves(400, 300)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    expected = {
        "notes.png": "not an image",
        "empty.png": "empty file",
        "truncated.png": "cannot decode the image",
        "missing.png": "No such file",
        ".": "is a directory",
    }
    for name, message in expected.items():
        with pytest.raises(ImageError) as caught:
            read_image(tmp_path / name)
        assert message in str(caught.value)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif", ".webp"])
def test_a_files_bytes_read_as_the_file_does(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"image{suffix}"
    pixels = np.zeros((48, 64, 4), dtype=np.uint8)
    pixels[10:30, 20:40] = (200, 40, 40, 255)  # transparent around an opaque square
    Image.fromarray(pixels).convert("RGBA" if suffix != ".jpg" else "RGB").save(path)
    from_path, from_bytes = read_image(path), read_image(path.read_bytes())
    assert np.array_equal(from_bytes.rgb, from_path.rgb)
    assert (from_bytes.alpha is None) == (from_path.alpha is None)
    if from_path.alpha is not None:
        assert np.array_equal(from_bytes.alpha, from_path.alpha)


def test_bytes_are_refused_as_files_are(tmp_path: Path) -> None:
    Image.fromarray(halves(400, 300)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    expected = {
        b"": "empty file, not an image",
        b"not an image\n": "not an image (no format Pillow reads)",
        data[: len(data) // 2]: "cannot decode the image",
        png_header_only(30_000, 30_000): "image too large",
    }
    for body, message in expected.items():
        with pytest.raises(ImageError) as caught:
            read_image(body)
        assert str(caught.value).startswith(message)
        assert "\n" not in str(caught.value)


def test_transparent_areas_become_the_background() -> None:
    rgb = np.zeros((10, 10, 3), dtype=np.float32)
    alpha = np.zeros((10, 10), dtype=np.float32)
    alpha[4:6] = 1.0  # a dark bar, the rest transparent
    assert flatten_transparency(rgb, alpha)[0, 0].tolist() == [255, 255, 255]
    assert flatten_transparency(rgb, alpha)[5, 5].tolist() == [0, 0, 0]
    light = flatten_transparency(rgb + 250, alpha)  # light ink: a black background
    assert light[0, 0].tolist() == [0, 0, 0]
    assert light[5, 5].tolist() == [250, 250, 250]

    paper = np.full((10, 10, 3), 200, dtype=np.float32)
    paper[5, 2:8] = 20  # ink on grey paper, a transparent margin around the paper
    alpha = np.zeros((10, 10), dtype=np.float32)
    alpha[1:9, 1:9] = 1.0
    flat = flatten_transparency(paper, alpha)
    assert flat[0, 0].tolist() == [200, 200, 200]
    assert flat[5, 4].tolist() == [20, 20, 20]
    assert flatten_transparency(paper, None) is paper


@pytest.mark.parametrize("ink", [(20, 20, 90), (250, 250, 240)], ids=["dark ink", "light ink"])
def test_ink_covering_most_of_a_transparent_canvas_is_still_the_ink(ink: tuple) -> None:
    """A digit drawn on a transparent canvas and cropped close: the opaque pixels, one
    colour, are the ink however much of the canvas they cover."""
    rgb = np.zeros((10, 10, 3), dtype=np.float32) + np.array(ink, dtype=np.float32)
    alpha = np.zeros((10, 10), dtype=np.float32)
    alpha[:, :7] = 1.0  # 70% of the canvas
    alpha[:, 7] = 0.5  # an anti-aliased edge
    flat = flatten_transparency(rgb, alpha)
    background = 255.0 if luma(np.array([ink], dtype=np.float32))[0] < 128 else 0.0
    assert flat[0, 0].tolist() == list(ink)
    assert flat[0, 9].tolist() == [background] * 3
    assert np.allclose(flat[0, 7], (np.array(ink) + background) / 2)
