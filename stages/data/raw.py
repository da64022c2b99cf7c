"""The raw IDX files of a data source, read and checked: ``data/raw/<dataset>/*.gz``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.data.errors import DataError
from stages.data.idx import read_idx
from stages.data.sources import DataSource


@dataclass(frozen=True)
class LabeledImages:
    """``images`` ``(n, rows, cols)`` uint8 and their ``labels`` ``(n,)`` uint8."""

    images: np.ndarray
    labels: np.ndarray


def load_pair(images_path: Path, labels_path: Path, n_classes: int) -> LabeledImages:
    """Read and check one images file and its labels file; DataError naming the bad file."""
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(f"{path}: no such file (run `python -m stages.download` first)")
    images = read_idx(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (n, rows, cols), "
            f"got {images.dtype} of shape {images.shape}"
        )
    labels = read_idx(labels_path)
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{labels_path}: expected uint8 labels of shape (n,), "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(images) == 0:
        raise DataError(f"{images_path}: holds no images")
    if labels.max() >= n_classes:
        raise DataError(
            f"{labels_path}: label {int(labels.max())} is out of range, expected 0-{n_classes - 1}"
        )
    return LabeledImages(images, labels)


def load_raw(raw_dir: Path, source: DataSource) -> tuple[LabeledImages, LabeledImages]:
    """The checked ``(train, test)`` sets of ``source`` from ``raw_dir/<dataset>/``."""
    folder, files = raw_dir / source.name, source.files
    train = load_pair(folder / files.train_images, folder / files.train_labels, source.n_classes)
    test = load_pair(folder / files.test_images, folder / files.test_labels, source.n_classes)
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(
            f"{folder / files.test_images}: images are {test.images.shape[1:]}, but the "
            f"training images in {folder / files.train_images} are {train.images.shape[1:]}"
        )
    return train, test
