"""Which construction turns a user's picture into a model input, by the model's dataset."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from stages.data.normalization import NORMALIZATIONS, Normalization
from stages.images.errors import ImageError
from stages.images.fashion import fashion_item
from stages.images.mnist import mnist_digit
from stages.images.reading import Picture

#: dataset name (as saved in the model file) -> picture -> uint8 image (28, 28)
CONSTRUCTIONS: dict[str, Callable[[Picture], np.ndarray]] = {
    "mnist": mnist_digit,
    "fashion-mnist": fashion_item,
}
IMAGE_SHAPE = (28, 28)


def construction_for(dataset: str | None) -> Callable[[Picture], np.ndarray]:
    """The construction of ``dataset``'s images; ImageError if there is none."""
    try:
        return CONSTRUCTIONS[str(dataset)]
    except KeyError:
        known = ", ".join(CONSTRUCTIONS)
        raise ImageError(
            f"no image construction for dataset {dataset!r} (known: {known})"
        ) from None


def normalize(pixels: np.ndarray, normalization: Mapping[str, Any]) -> np.ndarray:
    """``pixels`` ``(n, 28, 28)`` uint8 -> model inputs ``(n, 784)`` float32, normalized as the
    model's training data was (``normalization``: method, divisor, mean, std)."""
    try:
        rule = Normalization(**normalization)
    except TypeError as exc:
        raise ImageError(f"unusable normalization {dict(normalization)} ({exc})") from None
    if rule.method not in NORMALIZATIONS or not rule.divisor or not rule.std:
        raise ImageError(f"unusable normalization {dict(normalization)}")
    return rule.apply(pixels)
