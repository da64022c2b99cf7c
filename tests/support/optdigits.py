"""Real handwriting by writers outside MNIST, as picture files: scikit-learn's bundled copy of
UCI's optdigits (``sklearn.datasets.load_digits``: 1,797 digits written by 43 people, none of
them MNIST's writers). Shared by the tests and ``bench/serve_handwriting.py`` (bench/ puts
tests/ on its path).

Each digit is an 8x8 block count of a 32x32 bitmap (17 grey levels, 0-16). It is written out
as a scan of it would look: dark ink on white paper, enlarged 4x (bicubic) back to the
bitmap's 32x32, a greyscale PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

#: each 8x8 digit is enlarged this many times (to the 32x32 of its bitmap)
SCALE = 4
LEVELS = 16


def optdigits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits ``(n, 8, 8)`` float in [0, 16] (16: full ink) and their labels ``(n,)``."""
    digits = load_digits()
    return digits.images, digits.target


def scan(image: np.ndarray) -> Image.Image:
    """One 8x8 digit as a scan: dark ink on white, ``SCALE`` times larger, greyscale."""
    grey = np.clip(np.rint(255 - image * (255 / LEVELS)), 0, 255).astype(np.uint8)
    size = (image.shape[1] * SCALE, image.shape[0] * SCALE)
    return Image.fromarray(grey).resize(size, Image.Resampling.BICUBIC)


def write_scans(folder: Path, indices: np.ndarray | None = None) -> list[tuple[Path, int]]:
    """Write the digits (all, or those at ``indices``) into ``folder`` as PNG files named by
    index and label; returns each file with its label, in order."""
    images, labels = optdigits()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(len(images)) if indices is None else indices:
        path = folder / f"optdigit{int(i):04d}-{int(labels[i])}.png"
        scan(images[i]).save(path)
        written.append((path, int(labels[i])))
    return written


def mnist_like(image: np.ndarray) -> np.ndarray:
    """One 8x8 digit drawn as an MNIST digit: light on black, fitted into the 20x20 box at
    the centre of 28x28, uint8 (the input ``user_looks.LOOKS`` redraw)."""
    ink = Image.fromarray((image * (255 / LEVELS)).astype(np.float32))
    box = np.clip(np.asarray(ink.resize((20, 20), Image.Resampling.BICUBIC)), 0, 255)
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 4:24] = np.rint(box).astype(np.uint8)
    return digit
