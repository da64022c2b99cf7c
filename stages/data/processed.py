"""The processed-data layout: what preprocess writes and train and evaluate read.

``DIR/{train,val,test}_images.npy`` float32 ``(n, n_features)``,
``DIR/{train,val,test}_labels.npy`` int64 ``(n,)`` and ``DIR/meta.json``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from tokenize import TokenError
from typing import Any, BinaryIO

import numpy as np

from stages.data.errors import DataError
from stages.data.metadata import validate_metadata

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


def load_split(data_dir: Path, split: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, n_features)`` float32 and labels ``(n,)`` of one split, checked; every
    label must name one of the ``n_classes`` classes of ``meta.json``."""
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
