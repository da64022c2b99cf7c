"""Which construction turns a user's picture into a model input: each dataset's own, and
MNIST's for a folder of labelled pictures (``data.dataset: images``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from stages.data.normalization import NORMALIZATIONS, Normalization
from stages.data.sources import DATA_SOURCES, IMAGE_FOLDER
from stages.images.errors import ImageError
from stages.images.fashion import fashion_item
from stages.images.mnist import mnist_digit
from stages.images.reading import Picture

#: construction name (as saved in the model file) -> picture -> uint8 image (28, 28); each
#: is named for the dataset whose images it rebuilds
CONSTRUCTIONS: dict[str, Callable[[Picture], np.ndarray]] = {
    "mnist": mnist_digit,
    "fashion-mnist": fashion_item,
}
#: the construction a folder of labelled pictures is built with, in training and in predict
FOLDER_CONSTRUCTION = "mnist"
IMAGE_SHAPE = (28, 28)


def construction_of(dataset: str) -> str:
    """The name of the construction of ``dataset``'s images (``data.dataset``)."""
    if dataset == IMAGE_FOLDER:
        return FOLDER_CONSTRUCTION
    if dataset in DATA_SOURCES and dataset in CONSTRUCTIONS:
        return dataset
    raise ImageError(f"no image construction for dataset {dataset!r}")


def construction_for(name: str | None) -> Callable[[Picture], np.ndarray]:
    """The construction called ``name`` (``CONSTRUCTIONS``, named for their datasets);
    ImageError if there is none."""
    try:
        return CONSTRUCTIONS[str(name)]
    except KeyError:
        known = ", ".join(CONSTRUCTIONS)
        raise ImageError(f"no image construction for dataset {name!r} (known: {known})") from None


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
