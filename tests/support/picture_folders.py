"""Folders of labelled pictures, one sub-folder per class, for the images dataset's tests.

``write_shapes_folder``: small drawn shapes, a different shape per class, every picture its
own (for the preprocess command's checks). ``write_letters_folder``: capital letters A-Z
rendered from the DejaVu and Liberation fonts installed (``predict_looks.find_fonts``;
``.ci/run`` installs fonts-dejavu-core), in users' looks (``user_looks``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from support.user_looks import dark_on_white, find_fonts, grey_noisy, jpeg_photo, transparent

#: a picture of class k is shape k mod 4, drawn at a random place, size and stroke
SHAPES = ("ellipse", "cross", "bar", "corner")
LETTER_LOOKS = (dark_on_white, grey_noisy, jpeg_photo, transparent)


def shape_ink(kind: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Ink coverage ``(size, size)`` in [0, 1] of one shape, drawn with random geometry."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    left, top = rng.integers(4, 16, size=2)
    right, bottom = rng.integers(size - 16, size - 4, size=2)
    width = int(rng.integers(4, 9))
    if kind == "ellipse":
        draw.ellipse((left, top, right, bottom), outline=255, width=width)
    elif kind == "cross":
        draw.line((left, top, right, bottom), fill=255, width=width)
        draw.line((left, bottom, right, top), fill=255, width=width)
    elif kind == "bar":
        middle = int(rng.integers(top + 8, bottom - 8))
        draw.line((left, middle, right, middle), fill=255, width=width)
    else:
        draw.line((left, top, left, bottom, right, bottom), fill=255, width=width, joint="curve")
    return np.asarray(image, dtype=np.float32) / 255


def write_shapes_folder(folder: Path, counts: Mapping[str, int], seed: int = 0) -> list[Path]:
    """``folder/<class>/<i>.png`` for each class of ``counts`` (in sorted order: class k
    draws shape k mod 4) and its number of pictures; dark ink on white. Returns the files."""
    rng = np.random.default_rng(seed)
    files = []
    for label, name in enumerate(sorted(counts)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(counts[name]):
            ink = shape_ink(SHAPES[label % len(SHAPES)], rng)
            files.append(dark_on_white(ink, rng, folder / name / f"{i:03d}"))
    return files


def installed_fonts() -> list[Path]:
    """The DejaVu and Liberation font files installed; AssertionError naming the package
    to install when there are none."""
    fonts = find_fonts()
    assert fonts, "no DejaVu or Liberation fonts: install fonts-dejavu-core (.ci/run does)"
    return fonts


def letter_ink(font: ImageFont.FreeTypeFont, letter: str, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage of ``letter`` in ``font``, turned by up to 10 degrees, at a random place
    on a page 1.3-2 times its size."""
    left, top, right, bottom = font.getbbox(letter)
    glyph = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(glyph).text((4 - left, 4 - top), letter, font=font, fill=255)
    glyph = glyph.rotate(float(rng.uniform(-10, 10)), Image.Resampling.BILINEAR, expand=True)
    width, height = glyph.size
    page = Image.new("L", (int(width * rng.uniform(1.3, 2)), int(height * rng.uniform(1.3, 2))))
    x = int(rng.integers(0, page.width - width + 1))
    y = int(rng.integers(0, page.height - height + 1))
    page.paste(glyph, (x, y))
    return np.asarray(page, dtype=np.float32) / 255


def write_letters_folder(folder: Path, per_letter: int, seed: int = 0) -> list[str]:
    """``folder/A`` ... ``folder/Z``, ``per_letter`` pictures each: the letter in a font of
    ``installed_fonts`` (in turn), 40-90 px, in one of ``LETTER_LOOKS`` (in turn). Returns
    the class names."""
    fonts = installed_fonts()
    rng = np.random.default_rng(seed)
    loaded: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}
    for letter in string.ascii_uppercase:
        (folder / letter).mkdir(parents=True, exist_ok=True)
        for i in range(per_letter):
            path, size = fonts[i % len(fonts)], int(rng.integers(40, 91))
            font = loaded.setdefault((path, size), ImageFont.truetype(str(path), size))
            look = LETTER_LOOKS[i % len(LETTER_LOOKS)]
            look(letter_ink(font, letter, rng), rng, folder / letter / f"{i:03d}")
    return list(string.ascii_uppercase)
