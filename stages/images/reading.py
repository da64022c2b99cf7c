"""Reading a user's image file safely: any format Pillow opens, bounded in size, upright.

``read_image`` returns the pixels as float RGB plus an alpha channel when the file has
transparency; ``flatten_transparency`` puts transparent areas on the background.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from typing import IO, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stages.images.errors import ImageError
from stages.images.files import special_kind

#: Pillow's own decompression-bomb limit (about 89.5 megapixels), made explicit: a
#: larger image is refused before its pixels are decoded.
MAX_PIXELS = 89_478_485
#: Longest side the pixels are reduced to after decoding (area averaging). A digit
#: ends up 20 pixels tall, so this keeps plenty of detail and bounds the work.
WORKING_SIZE = 1600
#: pixels at least this opaque show the colours drawn; their grey levels spanning this
#: range or more means marks on a paper of their own, not ink of one colour
OPAQUE = 254 / 255
ONE_COLOUR_RANGE = 16.0
_HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass(frozen=True)
class Picture:
    """A decoded image: ``rgb`` ``(rows, cols, 3)`` float32 in [0, 255] and ``alpha``
    ``(rows, cols)`` float32 in [0, 1], or None when the file has no transparency."""

    rgb: np.ndarray
    alpha: np.ndarray | None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _refuse_kind(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise ImageError("is a directory, not an image")
    kind = special_kind(mode)
    if kind is not None:
        raise ImageError(f"not a regular file ({kind}), not an image")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file (links followed).

    Anything else is refused with ImageError before it is opened: a FIFO would wait for a
    writer for ever, a device such as /dev/zero never end. OSError where it cannot be read.
    """
    _refuse_kind(os.stat(path).st_mode)
    # Non-blocking: should the path have become a FIFO since, opening it does not wait.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _refuse_kind(os.fstat(fd).st_mode)
    except ImageError:
        os.close(fd)
        raise
    return open(fd, "rb")


def _source(source: str | os.PathLike[str] | bytes) -> IO[bytes]:
    """The picture as a binary file: the bytes given, or a regular file opened
    (``open_regular``). ImageError when it holds nothing."""
    if isinstance(source, bytes):
        opened: IO[bytes] = io.BytesIO(source)
        size = len(source)
    else:
        opened = open_regular(source)
        size = os.fstat(opened.fileno()).st_size
    if size == 0:
        opened.close()
        raise ImageError("empty file, not an image")
    return opened


def _open(source: IO[bytes]) -> Image.Image:
    """Open the image file ``source`` (a binary file) lazily (header only), refusing
    decompression bombs."""
    with warnings.catch_warnings():
        # Pillow warns between MAX_PIXELS and twice that, and raises above; refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(source)
        except UnidentifiedImageError:
            raise ImageError("not an image (no format Pillow reads)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"image too large ({_describe(exc)})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise ImageError(f"image too large ({width}x{height} pixels, the limit is {MAX_PIXELS})")
    if width == 0 or height == 0:
        image.close()
        raise ImageError(f"image has no pixels ({width}x{height})")
    return image


def _to_arrays(image: Image.Image) -> Picture:
    """``image`` (any mode) as float RGB in [0, 255] and alpha in [0, 1] or None."""
    if image.mode in _HIGH_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32)
        top = float(grey.max(initial=0.0))
        # 16-bit files scale from 65535; float files from 1 (or their own maximum).
        full = 65535.0 if image.mode.startswith("I;16") or top > 255 else 255.0
        if image.mode == "F" and top <= 1.0:
            full = 1.0
        scaled = Image.fromarray(np.clip(grey * np.float32(255.0 / full), 0, 255))
        scaled.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BOX)
        grey = np.asarray(scaled, dtype=np.float32)
        return Picture(np.repeat(grey[:, :, None], 3, axis=2), None)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    converted = image.convert("RGBA" if has_alpha else "RGB")
    converted.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BOX)
    pixels = np.asarray(converted, dtype=np.float32)
    alpha = pixels[:, :, 3] / np.float32(255) if has_alpha else None
    if alpha is not None and alpha.min() >= 1.0:
        alpha = None
    return Picture(np.ascontiguousarray(pixels[:, :, :3]), alpha)


def read_image(source: str | os.PathLike[str] | bytes) -> Picture:
    """Decode the first frame of the image file ``source`` (a path, or the file's bytes),
    turned upright by its EXIF tag.

    Raises ImageError (one line; the caller names the file) for a file that is missing,
    unreadable, not a regular file (``open_regular``), not an image, truncated or corrupt,
    or larger than ``MAX_PIXELS``.
    """
    try:
        with _source(source) as opened, _open(opened) as image:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale: far cheaper for large photos.
            image.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
            upright = ImageOps.exif_transpose(image)
            return _to_arrays(upright)
    except ImageError:
        raise
    except OSError as exc:
        if exc.filename is not None or isinstance(exc, (FileNotFoundError, PermissionError)):
            raise ImageError(exc.strerror or _describe(exc)) from None
        raise ImageError(f"cannot decode the image ({_describe(exc)})") from None
    except MemoryError:
        raise ImageError("not enough memory to decode the image") from None
    except Exception as exc:  # a malformed file can make a Pillow plugin raise anything
        raise ImageError(f"cannot decode the image ({_describe(exc)})") from None


def luma(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` ``(rows, cols, 3)`` -> grey ``(rows, cols)``: ITU-R 601-2 luma, as Pillow's "L"."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb @ weights


def flatten_transparency(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite ``rgb`` ``(rows, cols, 3)`` over a background so transparent areas are background.

    When opaque pixels cover at least half the image and hold marks on a background of
    their own (their grey levels span ``ONE_COLOUR_RANGE`` or more: paper with ink on
    it), the transparent areas take the paper's colour (the median opaque colour).
    Otherwise the opaque pixels are the ink (or the object), however much of the image
    they cover (a digit drawn on a transparent canvas and cropped close is one colour),
    and the transparent areas become white under dark ink and black under light ink.
    """
    if alpha is None:
        return rgb
    weight = alpha[:, :, None]
    opaque = alpha >= 0.5
    if opaque.mean() >= 0.5 and _holds_marks(rgb[alpha >= OPAQUE]):
        background = np.median(rgb[opaque], axis=0)
    else:
        total = float(alpha.sum())
        ink_level = float((luma(rgb) * alpha).sum() / total) if total > 0 else 0.0
        background = np.full(3, 255.0 if ink_level < 128 else 0.0)
    return rgb * weight + background.astype(np.float32) * (1 - weight)


def _holds_marks(rgb: np.ndarray) -> bool:
    """True when the colours ``rgb`` ``(n, 3)`` span ``ONE_COLOUR_RANGE`` grey levels or more
    (between their 0.5th and 99.5th percentiles): more than one colour."""
    if rgb.shape[0] == 0:
        return False
    low, high = np.percentile(luma(rgb), [0.5, 99.5])
    return bool(high - low >= ONE_COLOUR_RANGE)
