"""Fashion-MNIST's construction, applied to a user's photo of a garment.

Fashion-MNIST's authors turned each product photo (a garment on a white backdrop) into
28x28 by: trimming the edges close to the colour of the corner pixels (within 5% of the
largest possible distance in RGB space), resizing the longest edge to 28 by subsampling
(skipping rows and columns), sharpening with a Gaussian operator of radius and standard
deviation 1.0, extending the shortest edge to 28 with the image in the centre, negating
the intensities, and converting to 8-bit grey. ``fashion_item`` does the same, after
making a user's backdrop look like theirs: light (a picture in Fashion-MNIST's own look,
light on black, is negated first) and white (divided by its colour).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from stages.images.errors import BlankImageError
from stages.images.reading import Picture, flatten_transparency, luma

SIZE = 28
#: how close to the corners' colour an edge must be to be trimmed: a fraction of the
#: largest distance in RGB space (black to white)
TRIM_TOLERANCE = 0.05
_MAX_DISTANCE = 255.0 * np.sqrt(3.0)


def corner_colour(rgb: np.ndarray) -> np.ndarray:
    """The backdrop's colour ``(3,)``: the median of the four corner pixels of ``rgb``."""
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]]
    return np.median(corners, axis=0)


def whiten_backdrop(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` ``(rows, cols, 3)`` with a light backdrop: negated if the corners are dark,
    then each channel divided by the backdrop's level so that the backdrop is white."""
    if luma(corner_colour(rgb)[None, :]).item() < 128:
        rgb = 255.0 - rgb
    backdrop = np.maximum(corner_colour(rgb), 1.0)
    return np.clip(rgb * (255.0 / backdrop), 0.0, 255.0).astype(np.float32)


def trim(rgb: np.ndarray, tolerance: float = TRIM_TOLERANCE) -> np.ndarray:
    """The smallest window of ``rgb`` ``(rows, cols, 3)`` outside which every pixel lies within
    ``tolerance`` of the corners' colour. Raises BlankImageError when every pixel does."""
    distance = np.linalg.norm(rgb - corner_colour(rgb), axis=2)
    content = distance > tolerance * _MAX_DISTANCE
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if rows.size == 0:
        raise BlankImageError("nothing found: the picture is one uniform colour")
    return rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def resize_longest_edge(image: Image.Image, size: int = SIZE) -> Image.Image:
    """``image`` with its longest edge ``size`` pixels, by subsampling (nearest pixel)."""
    width, height = image.size
    scale = size / max(width, height)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(new, Image.Resampling.NEAREST)


def sharpen(image: Image.Image) -> Image.Image:
    """Unsharp masking with a Gaussian of radius (standard deviation) 1.0: the stronger the
    local contrast, near outlines, the stronger the effect."""
    return image.filter(ImageFilter.UnsharpMask(radius=1.0, percent=100, threshold=0))


def extend(image: Image.Image, size: int = SIZE) -> Image.Image:
    """``image`` in the centre of a white ``size`` x ``size`` canvas."""
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    width, height = image.size
    canvas.paste(image, ((size - width) // 2, (size - height) // 2))
    return canvas


def fashion_item(picture: Picture) -> np.ndarray:
    """A user's photo -> the 28x28 uint8 image Fashion-MNIST's construction makes of it."""
    rgb = whiten_backdrop(flatten_transparency(picture.rgb, picture.alpha))
    trimmed = Image.fromarray(np.rint(trim(rgb)).astype(np.uint8))
    item = extend(sharpen(resize_longest_edge(trimmed)))
    negated = Image.fromarray(255 - np.asarray(item))
    return np.asarray(negated.convert("L"), dtype=np.uint8)
