"""What a trained model's metadata means to the pipeline, and the one check of a model
against the data it is given.

nnlib saves a model's metadata mapping untouched; the pipeline puts there what train read
from ``meta.json`` (``METADATA_KEYS``): the dataset's name, the class names, the image
shape, the normalization of the inputs and the construction that turns a picture into an
image (``construction``; absent in models made before it was recorded, which were built
with their dataset's own). Evaluate and predict read it back through
``describe_model``, which checks it against the schema of ``stages.data.metadata`` and
against the model itself; evaluate then compares it with the processed data
(``check_model_fits_data``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from stages.data.errors import DataError
from stages.data.metadata import ImageMetadata, validate_metadata

METADATA_KEYS = ("dataset", "class_names", "image_shape", "normalization", "construction")
_RETRAIN = "retrain it (dvc repro)"


class DescribedModel(Protocol):
    """What ``describe_model`` reads of an ``nnlib.Model``."""

    input_shape: tuple[int, ...]
    input_size: int
    output_size: int
    metadata: dict[str, Any]


def model_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata train saves with a model, from the processed data's ``meta.json``."""
    metadata = {key: meta[key] for key in METADATA_KEYS if key in meta}
    metadata.setdefault("construction", meta["dataset"])
    return metadata


def describe_model(model: DescribedModel, path: Path) -> ImageMetadata:
    """``model``'s metadata, checked; DataError (one line per problem, naming ``path``) if it
    breaks the schema or does not fit the model (a class name per output, an image shape
    that gives its inputs: rows of its pixels for an MLP, ``(1, rows, cols)`` images for a
    model whose first layer takes images)."""
    metadata = {key: model.metadata[key] for key in METADATA_KEYS if key in model.metadata}
    try:
        described = validate_metadata(metadata, str(path))
    except DataError as exc:
        lines = str(exc).splitlines()
        raise DataError("\n".join(f"{line}; {_RETRAIN}" for line in lines)) from None
    if len(described.class_names) != model.output_size:
        raise DataError(
            f"{path}: the model has {len(described.class_names)} class names for "
            f"{model.output_size} outputs; {_RETRAIN}"
        )
    if math.prod(described.image_shape) != model.input_size:
        raise DataError(
            f"{path}: the model takes {model.input_size} inputs, not "
            f"{list(described.image_shape)} images; {_RETRAIN}"
        )
    images = (1, *described.image_shape)
    if len(model.input_shape) > 1 and tuple(model.input_shape) != images:
        raise DataError(
            f"{path}: the model takes images of shape {tuple(model.input_shape)}, not "
            f"{images} ({list(described.image_shape)} images); {_RETRAIN}"
        )
    return described


def check_model_fits_data(
    described: ImageMetadata, path: Path, meta: Mapping[str, Any], data_dir: Path
) -> None:
    """Refuse processed data (``meta``, ``data_dir``'s checked meta.json) made differently
    from what the model at ``path`` was trained on."""
    if list(described.class_names) != list(meta["class_names"]):
        raise DataError(
            f"{path} was trained on classes {list(described.class_names)}, but {data_dir} "
            f"holds {meta['class_names']}; retrain (dvc repro)"
        )
    if described.normalization_dict() != meta["normalization"]:
        raise DataError(
            f"{path} expects inputs normalized as {described.normalization_dict()}, but "
            f"{data_dir} holds {meta['normalization']}; retrain (dvc repro)"
        )
    if list(described.image_shape) != list(meta["image_shape"]):
        raise DataError(
            f"{path} takes {list(described.image_shape)} images, but {data_dir} holds "
            f"{meta['image_shape']}; retrain (dvc repro)"
        )
