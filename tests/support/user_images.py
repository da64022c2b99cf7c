"""Simple drawings for the preprocessing's and predict's unit tests.

MNIST digits redrawn as users' files look are in ``tests/support/user_looks.py`` (``LOOKS``),
which the benchmark uses too; pytest puts bench/ on the path (pyproject.toml).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw


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


def box_zero(size: tuple[int, int] = (120, 90), stroke: int = 20) -> np.ndarray:
    """A '0' drawn as a box whose strokes, ``stroke`` pixels wide, run along all four edges
    of a picture of ``size``: ink 1.0 on 0.0 ``(rows, cols)``."""
    ink = np.ones(size, dtype=np.float32)
    ink[stroke:-stroke, stroke:-stroke] = 0.0
    return ink


def framed(ink: np.ndarray, margin: int = 0) -> np.ndarray:
    """``ink`` ``(rows, cols)`` cropped to its ink's bounding box, ``margin`` pixels of paper
    left around it (added where the picture has fewer): with 0, the ink touches every edge."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    tight = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.pad(tight, margin)


def shrunk(ink: np.ndarray, size: int) -> np.ndarray:
    """``ink`` ``(rows, cols)`` centred in a square and reduced to ``size`` x ``size`` pixels
    by area averaging: a tiny picture the digit fills from edge to edge."""
    side = max(ink.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    square[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    small = Image.fromarray(square).resize((size, size), Image.Resampling.BOX)
    return np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)


def enlarged(ink: np.ndarray, factor: float) -> np.ndarray:
    """``ink`` ``(rows, cols)`` enlarged ``factor`` times, bicubic: a small picture upscaled,
    blurry."""
    size = (round(ink.shape[1] * factor), round(ink.shape[0] * factor))
    big = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big, dtype=np.float32), 0.0, 1.0)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` greyscale pixels but holds none: enough
    for a reader that checks sizes before decoding (a decompression-bomb stand-in)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
