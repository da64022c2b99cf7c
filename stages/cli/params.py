"""params.yaml: its schema, read and validated as a whole before any work starts.

The schema is pydantic models that refuse unknown keys at every level, so a key that would
do nothing (a typo, a key from another project) stops the stage instead. Each field's type
says what it accepts and, in its description, how an error states it (``must be <text>``);
names that nnlib defines are ``Literal`` types, kept equal to nnlib's registries by a test,
so the data stages never import nnlib. Rules between fields live in one model validator.

Every problem of a file is reported, one line each naming the file (or command-line option)
and the key, with a "did you mean" where one fits; values are quoted as short previews. The
file is read by ``stages.cli.yaml_loader``, which refuses duplicate keys and bounds aliases.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from stages.cli.errors import ParamsError, UsageError, preview
from stages.cli.yaml_loader import read_yaml_mapping
from stages.data.normalization import NORMALIZATIONS
from stages.data.sources import DATASETS

# PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as a string; ``dvc exp run -S``
# writes such numbers, so reals may arrive as text.
_REAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _real(value: Any) -> Any:
    """A number for a float field: ints, floats and numeric text, never a bool."""
    if isinstance(value, str) and _REAL_TEXT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# The constrained types of the schema; each says, in its description, what it expects.
Real = Annotated[float, BeforeValidator(_real), Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, description="an integer >= 1")]
Natural = Annotated[int, Field(ge=0, description="an integer >= 0")]
PositiveReal = Annotated[Real, Field(gt=0, description="a number > 0")]
NonNegativeReal = Annotated[Real, Field(ge=0, description="a number >= 0")]
Fraction = Annotated[Real, Field(ge=0, lt=1, description="a number >= 0 and < 1")]
Switch = Annotated[bool, Field(description="true or false")]
Sizes = Annotated[list[Count], Field(min_length=1, description="a non-empty list of integers >= 1")]


def _split_size(minimum: int) -> PlainValidator:
    """A split's size: a count (an integer >= ``minimum``) or a fraction (0 < x < 1)."""

    def check(value: Any) -> int | float:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        number = _real(value) if not isinstance(value, (int, bool)) else None
        if isinstance(number, float) and 0 < number < 1:
            return number
        raise ValueError("not a count or a fraction")

    return PlainValidator(check)


def _split_size_type(minimum: int) -> Any:
    text = f"a count (an integer >= {minimum}) or a fraction (a number > 0 and < 1)"
    return Annotated[int | float, _split_size(minimum), Field(description=text)]


SplitSize = _split_size_type(0)
TestSize = _split_size_type(1)
FolderPath = Annotated[str, Field(min_length=1, description="the path of a folder")]

# Names nnlib defines, written out so that validation needs no nnlib import;
# tests/test_cli_params.py keeps each equal to nnlib's registry.
Dataset = Literal[DATASETS]
Normalize = Literal[NORMALIZATIONS]
Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh"]  # nnlib HIDDEN_ACTIVATIONS
Optimizer = Literal["sgd", "adam", "adamw"]  # nnlib OPTIMIZERS
Schedule = Literal["constant", "cosine"]  # nnlib SCHEDULES
Monitor = Literal["val_loss", "val_accuracy", "loss", "accuracy"]  # nnlib MONITORS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(_Section):
    dataset: Dataset
    images: FolderPath
    val_size: SplitSize
    test_size: TestSize
    split_seed: Natural
    normalize: Normalize


class ModelParams(_Section):
    hidden_sizes: Sizes
    activation: Activation
    dropout: Fraction


Degrees = Annotated[Real, Field(ge=0, le=180, description="a number of degrees in [0, 180]")]
# Past these a picture shrinks to a few pixels (scale) or slants past 45 degrees (shear); the
# strengths in pixels are bounded by the pictures' size where train knows it
# (stages.augment.distortions.PIXEL_LIMITS).
ScaleRange = Annotated[Real, Field(ge=0, le=0.5, description="a number in [0, 0.5]")]
Slant = Annotated[Real, Field(ge=0, le=1, description="a number in [0, 1] (45 degrees)")]
Pixels = Annotated[Real, Field(ge=0, description="a number of pixels >= 0")]


class AugmentParams(_Section):
    """One dataset's distortions of its training images each epoch
    (``stages.augment.distortions.Strengths``); ``none`` is every strength 0, no augmentation."""

    rotation: Degrees
    scale: ScaleRange
    shear: Slant
    shift: Pixels
    elastic_alpha: Pixels
    elastic_sigma: Pixels
    mirror: Switch

    @model_validator(mode="before")
    @classmethod
    def _none_is_off(cls, value: Any) -> Any:
        if value == "none":
            return {name: False if name == "mirror" else 0.0 for name in cls.model_fields}
        if not isinstance(value, dict):
            raise ValueError("not a mapping")  # reported with the field's description
        return value


def _none_for_every_dataset(value: Any) -> Any:
    """``train.augment: none`` switches augmentation off whatever the dataset."""
    return dict.fromkeys(DATASETS, "none") if value == "none" else value


DatasetAugment = Annotated[
    AugmentParams,
    Field(description=f"none or a mapping of {', '.join(AugmentParams.model_fields)}"),
]
# Each dataset its own strengths: distortions that suit digits (rotation, elastic) are wrong
# for garments, so train reads the entry of data.dataset.
Augment = Annotated[
    dict[Dataset, DatasetAugment],
    BeforeValidator(_none_for_every_dataset),
    Field(
        description=f"none, or for each dataset ({', '.join(DATASETS)}) none or a mapping of "
        f"{', '.join(AugmentParams.model_fields)}"
    ),
]


class TrainParams(_Section):
    epochs: Count
    batch_size: Count
    learning_rate: PositiveReal
    lr_schedule: Schedule
    optimizer: Optimizer
    seed: Natural
    weight_decay: NonNegativeReal
    momentum: Fraction
    patience: Natural
    monitor: Monitor
    restore_best: Switch
    augment: Augment

    def augment_for(self, dataset: str) -> AugmentParams:
        """The distortions of ``dataset``'s training images (its entry, checked to exist)."""
        return self.augment[dataset]

    @property
    def watches_monitor(self) -> bool:
        """Whether ``monitor`` decides anything: early stopping or the best epoch's weights."""
        return self.patience > 0 or self.restore_best


class Params(_Section):
    data: DataParams
    model: ModelParams
    train: TrainParams

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        """Rules between sections, checked once every key is valid on its own; each broken
        rule is one line naming the keys and the fix."""
        broken = []
        if (
            self.data.val_size == 0
            and self.train.monitor.startswith("val_")
            and self.train.watches_monitor
        ):
            broken.append(
                f"train.monitor is {self.train.monitor}, which needs a validation split, but "
                "data.val_size is 0 (no split); set train.monitor to "
                f"{self.train.monitor.removeprefix('val_')}, or data.val_size above 0"
            )
        if self.data.dataset not in self.train.augment:
            broken.append(
                f"train.augment has no entry for {self.data.dataset} (data.dataset); add "
                f"{self.data.dataset}: none, or its strengths"
            )
        if broken:
            raise ValueError("\n".join(broken))
        return self


def _keys_below(annotation: Any, prefix: str) -> Iterator[str]:
    """The dotted keys below ``prefix`` in a schema type: a section's fields, a mapping's
    keys (``Literal`` names), and theirs in turn; inner keys as well as leaves."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is dict:
        names, value = get_args(annotation)
        children = [(f"{prefix}.{name}", value) for name in get_args(names)]
    else:
        fields = getattr(annotation, "model_fields", None) or {}
        children = [
            (f"{prefix}.{name}" if prefix else name, field.annotation)
            for name, field in fields.items()
        ]
    for key, child in children:
        if "." in key:  # the sections themselves are not keys
            yield key
        yield from _keys_below(child, key)


def known_keys() -> list[str]:
    """Every key of the schema, dotted: ``data.dataset``, ..., ``train.augment``,
    ``train.augment.mnist``, ``train.augment.mnist.shift``, ..."""
    return list(_keys_below(Params, ""))


def did_you_mean(key: str) -> str:
    """`` (did you mean train.batch_size?)`` for an unknown dotted ``key``, or ``""``."""
    known = known_keys()
    section, _, leaf = key.rpartition(".")
    same_section = [k for k in known if k.startswith(f"{section}.")] if section else []
    leaves = {k.rpartition(".")[2]: k for k in known}
    for candidates in (same_section, known):
        names = {k.rpartition(".")[2]: k for k in candidates}
        close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.75)
        if close:
            return f" (did you mean {names[close[0]]}?)"
    if leaf in leaves:
        return f" (did you mean {leaves[leaf]}?)"
    return ""


def _closest_name(value: Any, names: tuple[str, ...]) -> str:
    """`` (did you mean relu?)`` for a mistyped name, or ``""``."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value.lower(), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _field_description(loc: tuple[str, ...]) -> str | None:
    model: Any = Params
    description = None
    for part in loc:
        if get_origin(model) is dict:  # a mapping's key: its value's type describes the rest
            model = get_args(model)[1]
            if get_origin(model) is Annotated:
                model, *extras = get_args(model)
                descriptions = [getattr(extra, "description", None) for extra in extras]
                description = next((d for d in descriptions if d), description)
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        field = fields[part]
        model = field.annotation
        description = field.description
        if description is None and get_origin(model) is Literal:
            description = f"one of {', '.join(get_args(model))}"
    return description


def _value_at(raw: Mapping[str, Any], loc: tuple[str, ...], fallback: Any) -> Any:
    """The value the user wrote at ``loc`` (a whole list rather than one of its items)."""
    value: Any = raw
    for part in loc:
        if not isinstance(value, Mapping) or part not in value:
            return fallback
        value = value[part]
    return value


def _message(
    error: Mapping[str, Any], source: Path, labels: Mapping[str, str], raw: Mapping[str, Any]
) -> str:
    """One line for one pydantic error: file or option, key, expectation, value."""
    loc = _key_path(error["loc"])
    key = ".".join(loc)
    where = labels.get(key, f"{source}: {key}" if key else str(source))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key {key}{did_you_mean(key)}"
    if "[key]" in error["loc"]:  # a key of train.augment, whose keys are the datasets
        parent = ".".join(loc[:-1])
        datasets = ", ".join(get_args(Dataset))
        return f"{source}: unknown key {key}: {parent} takes one entry per dataset ({datasets})"
    if kind == "missing":
        return f"{source}: section '{key}' is missing" if len(loc) == 1 else f"{where} is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        expected = _field_description(loc)
        if expected is not None:
            return f"{where} must be {expected}, got {preview(error['input'])}"
        return f"{where}: expected a mapping of keys, got {preview(error['input'])}"
    if not loc and kind == "value_error":  # the cross-field rules
        return "\n".join(f"{source}: {line}" for line in str(error["ctx"]["error"]).splitlines())
    value = _value_at(raw, loc, error["input"])
    expected = _field_description(loc)
    if expected is None:
        text = error["msg"][0].lower() + error["msg"][1:]
        return f"{where}: {text}, got {preview(value)}"
    hint = ""
    if kind == "literal_error":
        hint = _closest_name(value, tuple(expected.removeprefix("one of ").split(", ")))
    return f"{where} must be {expected}, got {preview(value)}{hint}"


def _key_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The params keys of a pydantic error location (list indices and pydantic's marker of
    a mapping's key left out)."""
    return tuple(part for part in loc if isinstance(part, str) and part != "[key]")


def _per_key(errors: list[Any]) -> Iterator[Any]:
    """The first error of each key: a list with many bad items is one line, not one each."""
    seen = set()
    for error in errors:
        key = _key_path(error["loc"])
        if key not in seen:
            seen.add(key)
            yield error


def read_params_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; ParamsError (one line) if it is missing, not YAML, has
    a key twice or aliases that expand too far."""
    return read_yaml_mapping(path, ParamsError)


def load_params(path: Path, overrides: Mapping[str, tuple[Any, str]] | None = None) -> Params:
    """Read and validate the whole of ``path``; ParamsError lists every problem, one per line.

    ``overrides`` maps a dotted key to ``(value, option name)``: a command-line value that
    replaces the file's (unless it is None) and is named by its option in errors. A bad
    option value is a UsageError (exit code 2), reported before anything else.
    """
    raw = read_params_file(path)
    labels: dict[str, str] = {}
    for key, (value, option) in (overrides or {}).items():
        if value is None:
            continue
        section, _, leaf = key.partition(".")
        if isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], leaf: value}
            labels[key] = option
    return validate_params(raw, path, labels)


def validate_params(
    raw: Mapping[str, Any], source: Path, labels: Mapping[str, str] | None = None
) -> Params:
    """``raw`` (params.yaml's content) checked against the schema; ParamsError lists every
    problem, one per line naming ``source`` and the key (or, for a key in ``labels``, the
    command-line option that set it: then a UsageError)."""
    labels = labels or {}
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errors = list(_per_key(exc.errors(include_url=False)))
        lines = [_message(error, source, labels, raw) for error in errors]
        typed = [line for line in lines if line.startswith("--")]
        if typed:
            raise UsageError("\n".join(typed)) from None
        raise ParamsError("\n".join(lines)) from None


def with_available_monitor(
    params: Params, has_validation: bool, source: Path, data_dir: Path
) -> TrainParams:
    """``params.train``, its monitor replaced by the training split's figure when there is no
    validation split and ``data.val_size`` is 0 (the monitor then decides nothing, as the
    schema's rule ensures). Data without a validation split that params expect is refused."""
    train = params.train
    if has_validation or not train.monitor.startswith("val_"):
        return train
    if params.data.val_size > 0 or train.watches_monitor:
        raise ParamsError(
            f"{source}: train.monitor is {train.monitor}, but {data_dir} has no validation "
            f"split although data.val_size is {params.data.val_size}; rerun "
            "`python -m stages.preprocess`, or monitor loss or accuracy instead"
        )
    return train.model_copy(update={"monitor": train.monitor.removeprefix("val_")})
