"""Images as users' files look: MNIST-style digits redrawn as scans and photos, and
simple drawings for the preprocessing's unit tests."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nnlib import DenseLayer, Model, ReLU, Softmax
from nnlib.losses import CrossEntropyLoss

SCALE_NORMALIZATION = {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0}


def enlarge(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 28x28 uint8 digit (ink 255) scaled up 2-4x, smoothly, as a greyscale image."""
    size = round(28 * rng.uniform(2.0, 4.0))
    return Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)


def off_centre(image: Image.Image, rng: np.random.Generator, fill: int = 0) -> Image.Image:
    """``image`` pasted at a random place on a canvas 1.4-2.6 times its size."""
    width, height = image.size
    canvas_w = int(width * rng.uniform(1.6, 2.6))
    canvas_h = int(height * rng.uniform(1.4, 2.4))
    canvas = Image.new(image.mode, (canvas_w, canvas_h), fill)
    x, y = rng.integers(0, canvas_w - width + 1), rng.integers(0, canvas_h - height + 1)
    canvas.paste(image, (int(x), int(y)))
    return canvas


def coverage(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] ``(rows, cols)`` of ``digit`` enlarged and moved off-centre."""
    return np.asarray(off_centre(enlarge(digit, rng), rng), dtype=np.float64) / 255


def _rgb(grey: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")


def scaled(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    path = stem.with_suffix(".png")
    enlarge(digit, rng).save(path)
    return path


def moved_off_centre(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    path = stem.with_suffix(".png")
    off_centre(enlarge(digit, rng), rng).save(path)
    return path


def dark_on_white_rgb(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    path = stem.with_suffix(".png")
    _rgb(255 - 255 * coverage(digit, rng)).save(path)
    return path


def grey_noisy_paper(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Light grey, slightly yellow paper lit unevenly, ink darkening it, sensor noise."""
    ink = coverage(digit, rng)
    rows, cols = np.mgrid[0 : ink.shape[0], 0 : ink.shape[1]]
    paper = 195 + 30 * cols / ink.shape[1] - 20 * rows / ink.shape[0]
    grey = paper * (1 - 0.8 * ink) + rng.normal(0, 6, ink.shape)
    rgb = np.stack([grey, grey * 0.98, grey * 0.93], axis=-1)
    path = stem.with_suffix(".png")
    Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8)).save(path, compress_level=1)
    return path


def jpeg(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    path = stem.with_suffix(".jpg")
    _rgb(232 - 200 * coverage(digit, rng)).save(path, quality=75)
    return path


def jpeg_rotated_by_exif(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """A phone photo held sideways: pixels stored rotated, EXIF orientation 6 to undo it."""
    upright = _rgb(232 - 200 * coverage(digit, rng))
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = stem.with_suffix(".jpg")
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=75, exif=exif)
    return path


def transparent_png(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Dark blue ink whose opacity is the ink coverage, on a transparent canvas."""
    ink = coverage(digit, rng)
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = (20, 20, 90)
    rgba[..., 3] = np.rint(ink * 255)
    path = stem.with_suffix(".png")
    Image.fromarray(rgba).save(path)
    return path


LOOKS: dict[str, Callable[[np.ndarray, np.random.Generator, Path], Path]] = {
    "scaled 2-4x": scaled,
    "off-centre on a larger canvas": moved_off_centre,
    "dark ink on white RGB": dark_on_white_rgb,
    "light grey noisy paper": grey_noisy_paper,
    "JPEG": jpeg,
    "JPEG turned by EXIF": jpeg_rotated_by_exif,
    "transparent PNG": transparent_png,
}


def ring_digit(
    size: tuple[int, int] = (300, 400),
    box: tuple[int, int, int, int] = (60, 40, 160, 220),
    width: int = 18,
) -> np.ndarray:
    """A '0'-like ellipse outline of ``width`` pixels, ink 1.0 on 0.0 ``(rows, cols)``."""
    image = Image.new("L", (size[1], size[0]), 0)
    ImageDraw.Draw(image).ellipse(box, outline=255, width=width)
    return np.asarray(image, dtype=np.float32) / 255


def seven_digit(
    size: tuple[int, int] = (300, 400),
    origin: tuple[int, int] = (80, 150),
    height: int = 160,
    width: int = 16,
) -> np.ndarray:
    """A '7'-like stroke (bar and diagonal): most mass near its top, ink 1.0 on 0.0."""
    image = Image.new("L", (size[1], size[0]), 0)
    top, left = origin
    draw = ImageDraw.Draw(image)
    draw.line(
        [(left, top), (left + height * 0.6, top), (left + height * 0.2, top + height)],
        fill=255,
        width=width,
        joint="curve",
    )
    return np.asarray(image, dtype=np.float32) / 255


def random_model(
    dataset: str = "mnist",
    normalization: dict | None = None,
    class_names: list[str] | None = None,
    seed: int = 0,
) -> Model:
    """A 784-16-10 model with random weights and the metadata predict reads."""
    rng = np.random.default_rng(seed)
    model = Model(
        [DenseLayer(784, 16, ReLU(), rng=rng), DenseLayer(16, 10, Softmax(), rng=rng)],
        loss=CrossEntropyLoss(),
    )
    model.normalization = dict(normalization or SCALE_NORMALIZATION)
    model.class_names = class_names or [str(k) for k in range(10)]
    model.dataset = dataset
    model.image_shape = [28, 28]
    return model


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` greyscale pixels but holds none: enough
    for a reader that checks sizes before decoding (a decompression-bomb stand-in)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
