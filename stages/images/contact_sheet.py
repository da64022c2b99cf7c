"""A PNG contact sheet of digits with their true and predicted labels (Pillow)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_SCALE = 3  # 28x28 digits drawn at 84x84
_LINE = 14  # pixels per line of text


def contact_sheet(
    images: np.ndarray,
    captions: list[str],
    image_shape: tuple[int, int],
    title: str,
    columns: int = 10,
) -> Image.Image:
    """A grid of ``images`` ``(n, rows * cols)`` with one caption below each, under ``title``.

    Each image is min-max scaled on its own (any normalization works) and drawn as
    dark strokes on white; cells widen to fit the longest caption.
    """
    rows, cols = image_shape
    font = ImageFont.load_default()
    widest = max((font.getlength(c) for c in captions), default=0)
    cell_w = max(cols * _SCALE, int(widest) + 6)
    cell_h = rows * _SCALE + _LINE
    n_rows = max(1, -(-len(images) // columns))
    width = max(columns * cell_w, int(font.getlength(title)) + 6)
    sheet = Image.new("L", (width, _LINE + 4 + n_rows * cell_h), color=255)
    draw = ImageDraw.Draw(sheet)
    draw.text((3, 1), title, fill=0, font=font)
    for i, (pixels, caption) in enumerate(zip(images, captions, strict=True)):
        low, high = float(pixels.min()), float(pixels.max())
        span = high - low if high > low else 1.0
        gray = 255 - np.round((pixels - low) / span * 255).astype(np.uint8)
        digit = Image.fromarray(gray.reshape(rows, cols))
        digit = digit.resize((cols * _SCALE, rows * _SCALE), Image.Resampling.NEAREST)
        x, y = (i % columns) * cell_w, _LINE + 4 + (i // columns) * cell_h
        sheet.paste(digit, (x + (cell_w - cols * _SCALE) // 2, y))
        draw.text((x + 3, y + rows * _SCALE + 1), caption, fill=0, font=font)
    return sheet
