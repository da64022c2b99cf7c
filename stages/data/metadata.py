"""What processed data (``meta.json``) and a trained model say about their images: the schema
both are checked against where they are read.

The fields: ``dataset`` (a known data source, or ``images``: a user's folder), ``class_names``
(its names, in label order), ``image_shape`` (rows, cols), ``normalization`` (``scale`` or
``standardize``, with its divisor, mean and std) and ``construction``, the name of the
construction that turns a picture into one of these images (absent before it was recorded:
then the dataset's own, which has the dataset's name). A hand-edited file that breaks the
schema is refused with one line per problem, naming the file and the field, never trained on
or predicted with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stages.cli.errors import preview
from stages.data.errors import DataError
from stages.data.normalization import PIXEL_MAX
from stages.data.sources import DATA_SOURCES, DATASETS

#: the rows and columns of every image of an MNIST-format data source
MNIST_FORMAT_SHAPE = (28, 28)

# What preprocess writes: pixels 0-255 divided by 255, and for standardize the mean and
# standard deviation of such values (in [0, 1] and at most 0.5). Anything else was edited.
Divisor = Annotated[float, Field(ge=PIXEL_MAX, le=PIXEL_MAX)]
PixelMean = Annotated[float, Field(ge=0, le=1)]
PixelStd = Annotated[float, Field(gt=0, le=0.5)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Strict):
    """``x = pixel / divisor``."""

    method: Literal["scale"]
    divisor: Divisor = PIXEL_MAX
    # not used by scale; kept so that every normalization has all four
    mean: Annotated[float, Field(ge=0, le=0)] = 0.0
    std: Annotated[float, Field(ge=1, le=1)] = 1.0


class Standardize(_Strict):
    """``x = (pixel / divisor - mean) / std``."""

    method: Literal["standardize"]
    divisor: Divisor = PIXEL_MAX
    mean: PixelMean
    std: PixelStd


class ImageMetadata(BaseModel):
    """The fields every reader relies on; other keys (split sizes, counts) pass through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    dataset: Literal[DATASETS]
    class_names: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2)]
    image_shape: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    normalization: Annotated[Scale | Standardize, Field(discriminator="method")]
    construction: Annotated[str | None, Field(min_length=1)] = None

    @property
    def construction_name(self) -> str:
        """The construction that builds this data's images from a picture."""
        return self.construction or self.dataset

    @model_validator(mode="after")
    def _fits_the_dataset(self) -> ImageMetadata:
        if self.image_shape != MNIST_FORMAT_SHAPE:
            raise ValueError(
                f"image_shape must be {list(MNIST_FORMAT_SHAPE)} for {self.dataset}, "
                f"got {list(self.image_shape)}"
            )
        if self.dataset not in DATA_SOURCES:  # a user's folder: its sub-folders' names
            if len(set(self.class_names)) != len(self.class_names):
                raise ValueError("class_names holds a name twice")
            return self
        source = DATA_SOURCES[self.dataset]
        if len(self.class_names) != source.n_classes:
            raise ValueError(
                f"class_names holds {len(self.class_names)} names, but {self.dataset} has "
                f"{source.n_classes} classes"
            )
        pairs = zip(self.class_names, source.class_names, strict=True)
        for label, (name, expected) in enumerate(pairs):
            if name != expected:
                raise ValueError(
                    f"class_names[{label}] is {preview(name)}, but {self.dataset}'s class "
                    f"{label} is {expected!r}"
                )
        return self

    def normalization_dict(self) -> dict[str, Any]:
        """The normalization with every field filled in, as models and ``normalize`` take it."""
        return self.normalization.model_dump()


_DISCRIMINATED = ("scale", "standardize")


def _line(error: Mapping[str, Any], source: str) -> str:
    parts = [str(part) for part in error["loc"]]
    key = ".".join(p for p in parts if not p.isdigit() and p not in _DISCRIMINATED)
    if error["type"] == "value_error" and not error["loc"]:
        return f"{source}: {error['ctx']['error']}"
    if error["type"] == "missing":
        return f"{source}: has no {key!r} entry"
    if error["type"] == "extra_forbidden":
        return f"{source}: unknown entry {key}"
    if error["type"] == "literal_error":
        expected = error["ctx"]["expected"]
        return f"{source}: {key} must be {expected}, got {preview(error['input'])}"
    if error["type"] in ("model_attributes_type", "dict_type"):
        return f"{source}: {key} must be a mapping, got {preview(error['input'])}"
    text = error["msg"][0].lower() + error["msg"][1:]
    return f"{source}: {key}: {text}, got {preview(error['input'])}"


def validate_metadata(mapping: object, source: str) -> ImageMetadata:
    """``mapping`` (meta.json's content, or a model's metadata) checked; DataError with one
    line per problem, each starting with ``source`` (the file it came from)."""
    if not isinstance(mapping, Mapping):
        raise DataError(f"{source}: expected a mapping of fields, got {type(mapping).__name__}")
    try:
        return ImageMetadata.model_validate(dict(mapping))
    except ValidationError as exc:
        seen: set[str] = set()
        lines = []
        for error in exc.errors(include_url=False):
            line = _line(error, source)
            top = str(error["loc"][0]) if error["loc"] else ""
            if top not in seen:  # one line per field: a bad list is one line
                seen.add(top)
                lines.append(line)
        raise DataError("\n".join(lines)) from None
