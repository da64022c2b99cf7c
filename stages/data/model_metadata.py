"""What a trained model's metadata means to the pipeline, and the one check of a model
against the data it is given.

nnlib saves a model's metadata mapping untouched; the pipeline puts there what train read
from ``meta.json`` (``METADATA_KEYS``): the dataset's name, the class names, the image
shape and the normalization of the inputs, and the construction that turns a picture into
an image (``CONSTRUCTION_KEY``; models made before it was recorded were built with their
dataset's own, which has its name). Evaluate and predict read it back through
``describe_model``, which refuses a model whose metadata does not fit the model itself;
evaluate then compares it with the processed data (``check_model_fits_data``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stages.data.errors import DataError
from stages.data.normalization import Normalization

METADATA_KEYS = ("dataset", "class_names", "image_shape", "normalization")
CONSTRUCTION_KEY = "construction"
_RETRAIN = "retrain it (dvc repro)"


class DescribedModel(Protocol):
    """What ``describe_model`` reads of an ``nnlib.Model``."""

    input_size: int
    output_size: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ModelDescription:
    """A model's metadata, checked: what it was trained on and how its inputs are made."""

    dataset: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    normalization: Normalization
    #: the construction of ``stages.images.constructions`` that builds its inputs
    construction: str


def model_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata train saves with a model, from the processed data's ``meta.json``."""
    metadata = {key: meta[key] for key in METADATA_KEYS}
    metadata[CONSTRUCTION_KEY] = meta.get(CONSTRUCTION_KEY, meta["dataset"])
    return metadata


def describe_model(model: DescribedModel, path: Path) -> ModelDescription:
    """``model``'s metadata, checked against the model; DataError naming ``path`` if it is
    missing or does not fit (class names for each output, an image shape of its inputs)."""
    metadata = model.metadata
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise DataError(
            f"{path}: the model does not say its {', '.join(missing)} (not made by this "
            f"pipeline's train stage); {_RETRAIN}"
        )
    dataset, names, shape = (metadata[key] for key in ("dataset", "class_names", "image_shape"))
    if not isinstance(dataset, str):
        raise DataError(f"{path}: the model's dataset is {dataset!r}, not a name; {_RETRAIN}")
    construction = metadata.get(CONSTRUCTION_KEY, dataset)
    if not isinstance(construction, str):
        raise DataError(
            f"{path}: the model's construction is {construction!r}, not a name; {_RETRAIN}"
        )
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DataError(f"{path}: the model's class names are not a list of names; {_RETRAIN}")
    if len(names) != model.output_size:
        raise DataError(
            f"{path}: the model has {len(names)} class names for {model.output_size} outputs; "
            f"{_RETRAIN}"
        )
    if (
        not isinstance(shape, list)
        or not all(type(n) is int and n > 0 for n in shape)
        or math.prod(shape) != model.input_size
    ):
        raise DataError(
            f"{path}: the model's image shape {shape!r} does not give its {model.input_size} "
            f"inputs; {_RETRAIN}"
        )
    try:
        normalization = Normalization.from_dict(metadata["normalization"])
    except ValueError as exc:
        raise DataError(
            f"{path}: the model's input normalization is unusable ({exc}); {_RETRAIN}"
        ) from None
    return ModelDescription(dataset, tuple(names), tuple(shape), normalization, construction)


def check_model_fits_data(
    description: ModelDescription, path: Path, meta: Mapping[str, Any], data_dir: Path
) -> None:
    """Refuse processed data (``meta``, from ``data_dir``'s meta.json) made differently from
    what the model at ``path`` was trained on."""
    if list(description.class_names) != list(meta["class_names"]):
        raise DataError(
            f"{path} was trained on classes {list(description.class_names)}, but {data_dir} "
            f"holds {meta['class_names']}; retrain (dvc repro)"
        )
    if (
        description.normalization.to_dict()
        != Normalization.from_dict(meta["normalization"]).to_dict()
    ):
        raise DataError(
            f"{path} expects inputs normalized as {description.normalization.to_dict()}, but "
            f"{data_dir} holds {meta['normalization']}; retrain (dvc repro)"
        )
    if list(description.image_shape) != list(meta["image_shape"]):
        raise DataError(
            f"{path} takes {list(description.image_shape)} images, but {data_dir} holds "
            f"{meta['image_shape']}; retrain (dvc repro)"
        )
