"""Processed data as preprocess writes it, built directly, for the train and evaluate tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from stages.data.processed import META_FILE, images_path, labels_path
from stages.data.sources import DATA_SOURCES

N_FEATURES = 784
CLASS_NAMES = list(DATA_SOURCES["mnist"].class_names)
NORMALIZATION = {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0}


def write_processed(
    directory: Path, sizes: Mapping[str, int], seed: int = 0, block: int = 1
) -> None:
    """Splits of ``sizes`` (split -> n) and ``meta.json`` in ``directory`` (created): noisy
    copies of one random pattern per digit, easy to learn, in preprocess's layout.

    ``block``: the pattern's squares are ``block`` pixels wide (a divisor of 28); with 4 or
    more a class stays recognizable when the images are distorted (augmentation).
    """
    rng = np.random.default_rng(seed)
    # like MNIST: mostly dark pixels, a class's own set of bright ones, some noise
    side = 28 // block
    coarse = rng.random((len(CLASS_NAMES), side, side)) < 0.2
    squares = np.ones((block, block), dtype=np.float32)
    prototypes = np.kron(coarse, squares).reshape(len(CLASS_NAMES), N_FEATURES)
    directory.mkdir(parents=True)
    for split, n in sizes.items():
        labels = np.arange(n) % len(CLASS_NAMES)
        noise = rng.random((n, N_FEATURES), dtype=np.float32) * 0.3
        # whole pixel values / 255, as preprocess writes them (train checks)
        pixels = np.rint(np.abs(prototypes[labels] - noise) * 255)
        images = (pixels.astype(np.float32) / np.float32(255)).astype(np.float32)
        np.save(images_path(directory, split), images)
        np.save(labels_path(directory, split), labels.astype(np.int64))
    meta = {
        "dataset": "mnist",
        "image_shape": [28, 28],
        "class_names": CLASS_NAMES,
        "normalization": NORMALIZATION,
        "splits": dict(sizes),
    }
    (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
