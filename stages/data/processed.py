"""The processed-data layout: what preprocess writes and train and evaluate read.

``DIR/{train,val,test}_images.npy`` float32 ``(n, n_features)``,
``DIR/{train,val,test}_labels.npy`` int64 ``(n,)`` and ``DIR/meta.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from tokenize import TokenError
from typing import Any, BinaryIO

import numpy as np

from stages.data.errors import DataError
from stages.data.metadata import validate_metadata
from stages.data.normalization import PIXEL_MAX

META_FILE = "meta.json"
_RERUN = "run `python -m stages.preprocess` first"
_NPY_MAGIC = b"\x93NUMPY"


def images_path(data_dir: Path, split: str) -> Path:
    return data_dir / f"{split}_images.npy"


def labels_path(data_dir: Path, split: str) -> Path:
    return data_dir / f"{split}_labels.npy"


def _read_header(handle: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of an open ``.npy`` file, read before its data (ValueError if
    the header is not one numpy writes)."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return shape, dtype


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such file ({_RERUN})")
    corrupt = DataError(f"{path}: is truncated or corrupt, not a plain .npy array; {_RERUN}")
    with open(path, "rb") as handle:
        if handle.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise DataError(f"{path}: not a .npy array file; {_RERUN}")
        handle.seek(0)
        # numpy's parser raises more than ValueError on bytes that are no header (e.g.
        # tokenize's TokenError), and its messages suggest allow_pickle=True: never that.
        try:
            shape, dtype = _read_header(handle)
        except (ValueError, SyntaxError, TokenError, RecursionError):
            raise corrupt from None
        if dtype.hasobject:
            raise DataError(f"{path}: holds Python objects, not a plain .npy array; {_RERUN}")
        # The data must be in the file: a header alone never makes numpy allocate its shape.
        if handle.tell() + math.prod(shape) * dtype.itemsize != os.fstat(handle.fileno()).st_size:
            raise corrupt
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError):
        raise corrupt from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: not a single .npy array; {_RERUN}")
    return array


def _check_finite(images: np.ndarray, path: Path) -> None:
    """Refuse NaN or infinite pixels: one float64 sum is non-finite exactly when one is."""
    if np.isfinite(images.sum(dtype=np.float64)):
        return
    row = next(i for i in range(len(images)) if not np.isfinite(images[i]).all())
    raise DataError(f"{path}: image {row} holds NaN or infinite values; {_RERUN}")


def load_split(
    data_dir: Path, split: str, n_classes: int, normalization: Mapping[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, n_features)`` float32 and labels ``(n,)`` of one split, checked; every
    label must name one of the ``n_classes`` classes of ``meta.json``, and the images must
    be normalized as ``normalization`` (``meta.json``'s) says, if given."""
    image_file, label_file = images_path(data_dir, split), labels_path(data_dir, split)
    images, labels = _load_array(image_file), _load_array(label_file)
    if images.ndim != 2 or images.dtype != np.float32:
        raise DataError(
            f"{image_file}: expected float32 images of shape (n, n_features), "
            f"got {images.dtype} of shape {images.shape}; {_RERUN}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{label_file}: expected integer labels of shape (n,), "
            f"got {labels.dtype} of shape {labels.shape}; {_RERUN}"
        )
    _check_finite(images, image_file)
    if normalization is not None:
        check_normalized(images, normalization, image_file, data_dir / META_FILE)
    if len(images) != len(labels):
        raise DataError(
            f"{image_file} holds {len(images)} images but {label_file} {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{label_file}: labels {labels.min()}..{labels.max()} do not fit the {n_classes} "
            f"class names of {data_dir / META_FILE}; {_RERUN}"
        )
    return images, labels.astype(np.intp, copy=False)


#: images whose values ``check_normalized`` reads (from the start of a split)
NORMALIZED_SAMPLE = 2000
#: how far from a whole pixel value a value may map back (float32 rounding is far below)
PIXEL_TOLERANCE = 0.01


def check_normalized(
    images: np.ndarray, normalization: Mapping[str, Any], image_file: Path, meta_file: Path
) -> None:
    """DataError unless the first images ``(n, n_features)`` hold what ``normalization``
    (``meta.json``'s) gives whole pixel values 0-255: what preprocess wrote. A ``meta.json``
    edited by hand (another divisor, ``standardize`` over scaled arrays) would otherwise
    train a model that normalizes a user's pictures unlike its training images."""
    values = images[:NORMALIZED_SAMPLE].astype(np.float64)
    if not values.size:
        return
    pixels = (values * normalization["std"] + normalization["mean"]) * normalization["divisor"]
    whole = np.abs(pixels - np.rint(pixels)).max() <= PIXEL_TOLERANCE
    in_range = pixels.min() >= -PIXEL_TOLERANCE and pixels.max() <= PIXEL_MAX + PIXEL_TOLERANCE
    if not (whole and in_range):
        raise DataError(
            f"{image_file}: its values are not pixels 0-{PIXEL_MAX:g} normalized as "
            f"{meta_file} says ({_describe(normalization)}); was meta.json edited? {_RERUN}"
        )


def _describe(normalization: Mapping[str, Any]) -> str:
    scaled = f"pixel / {normalization['divisor']:g}"
    if normalization["method"] == "scale":
        return scaled
    return f"({scaled} - {normalization['mean']:.4g}) / {normalization['std']:.4g}"


def load_meta(data_dir: Path) -> dict[str, Any]:
    """The ``meta.json`` preprocess wrote (dataset, class names, normalization, split sizes),
    checked against ``stages.data.metadata``; its normalization has all its fields."""
    path = data_dir / META_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file ({_RERUN})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); {_RERUN}") from None
    try:
        checked = validate_metadata(meta, str(path))
    except DataError as exc:
        raise DataError("\n".join(f"{line}; {_RERUN}" for line in str(exc).splitlines())) from None
    return {**meta, "normalization": checked.normalization_dict()}
