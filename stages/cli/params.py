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
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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
Sizes = Annotated[
    list[Count],
    Field(description="a list of integers >= 1 (or [] when model.layers describes the network)"),
]


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


class Conv2DEntry(_Section):
    """``nnlib.Conv2D``: ``filters`` kernels of ``kernel x kernel``, then the activation."""

    type: Literal["conv2d"]
    filters: Count
    kernel: Count
    stride: Count = 1
    padding: Natural = 0
    #: None: ``model.activation``
    activation: Activation | None = None


class MaxPool2DEntry(_Section):
    """``nnlib.MaxPool2D``: the maximum of each ``size x size`` window, ``stride`` apart."""

    type: Literal["maxpool2d"]
    size: Count
    #: None: ``size`` (windows side by side)
    stride: Count | None = None


class DenseEntry(_Section):
    """``nnlib.DenseLayer`` of ``units`` (a Flatten before it when the input is an image)."""

    type: Literal["dense"]
    units: Count
    #: None: ``model.activation``
    activation: Activation | None = None


class DropoutEntry(_Section):
    """``nnlib.Dropout``: each value zeroed with probability ``rate`` while training."""

    type: Literal["dropout"]
    rate: Fraction


LayerEntry = Conv2DEntry | MaxPool2DEntry | DenseEntry | DropoutEntry
#: each entry's ``type``, in the order errors list them
LAYER_TYPES: tuple[str, ...] = tuple(
    get_args(entry.model_fields["type"].annotation)[0] for entry in get_args(LayerEntry)
)
Layers = Annotated[
    list[Annotated[LayerEntry, Field(discriminator="type")]],
    Field(
        description="a list of layer entries, each a mapping with a type "
        f"({', '.join(LAYER_TYPES)}) and its keys (or [] when model.hidden_sizes describes the "
        "network)"
    ),
]


class ModelParams(_Section):
    """The network: an MLP of ``hidden_sizes`` (the shorthand, and the default) or the stack
    of ``layers``; exactly one of them is set, the other is ``[]`` or left out. The pipeline
    adds the Flatten before the first dense entry and the softmax output layer."""

    hidden_sizes: Sizes = Field(default_factory=list)
    layers: Layers = Field(default_factory=list)
    activation: Activation
    dropout: Fraction

    def problems(self) -> list[str]:
        """The rules between the section's keys that are broken, one line each."""
        if self.hidden_sizes and self.layers:
            entries = f"{len(self.layers)} entr{'y' if len(self.layers) == 1 else 'ies'}"
            return [
                f"model.hidden_sizes {self.hidden_sizes} and model.layers ({entries}) are both "
                "set, and the network is one or the other: set model.hidden_sizes to [] for "
                "model.layers' network (dvc exp run -S 'model.hidden_sizes=[]' -S "
                "'model.layers=[...]'), or model.layers to [] for the MLP"
            ]
        if not self.hidden_sizes and not self.layers:
            return [
                "model.hidden_sizes and model.layers are both empty: set model.hidden_sizes "
                "(the MLP's hidden layer sizes) or model.layers (a list of layer entries)"
            ]
        if self.layers and self.dropout:
            return [
                f"model.dropout is {self.dropout:g}, which puts dropout after each of "
                "model.hidden_sizes' layers; model.layers places its own: add {type: dropout, "
                f"rate: {self.dropout:g}}} entries where you want them, and set model.dropout to 0"
            ]
        return []


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
        broken = self.model.problems()
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


@dataclass(frozen=True)
class _Location:
    """Where a pydantic error location points in params.yaml."""

    #: the dotted key, list entries by index: ``model.layers[2].kernel``
    key: str
    #: the path to the value to quote: the whole list for an item of a list of numbers
    path: tuple[str | int, ...]
    #: what the key takes (``must be <description>``), if the schema says
    description: str | None
    #: the keys of the mapping that holds the key (an entry's, for its "did you mean")
    siblings: tuple[str, ...] = ()
    #: the type of the entry of model.layers that holds the key, if one does
    entry: str | None = None


def _unwrapped(annotation: Any) -> tuple[Any, str | None]:
    """The type under ``Annotated`` and ``| None``, and the description found on the way."""
    description = None
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *extras = get_args(annotation)
            found = [getattr(extra, "description", None) for extra in extras]
            description = description or next((d for d in found if d), None)
        elif get_origin(annotation) in (Union, UnionType) and type(None) in get_args(annotation):
            (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        else:
            return annotation, description


def _entry_member(union: Any, tag: str) -> Any:
    """The model of a union of entries whose ``type`` is ``tag``, or None."""
    for member in get_args(union):
        if get_args(member.model_fields["type"].annotation) == (tag,):
            return member
    return None


def _locate(loc: tuple[Any, ...]) -> _Location:
    """The key, value path and expectation of a pydantic error location, walking the schema
    beside it: a mapping's keys, a list of entries' indices and their union tags."""
    annotation: Any = Params
    key, path, description = "", [], None
    siblings: tuple[str, ...] = ()
    entry = None
    for part in loc:
        annotation, found = _unwrapped(annotation)
        description = found or description
        origin = get_origin(annotation)
        if part == "[key]":
            continue
        if origin is dict:  # a mapping's key: its value's type describes the rest
            annotation, description = get_args(annotation)[1], None
        elif origin is list:
            annotation = get_args(annotation)[0]
            if get_origin(_unwrapped(annotation)[0]) in (Union, UnionType):  # an entry
                key, description = f"{key}[{part}]", None
            else:  # an item of a list of numbers: the list is the key
                break
        elif origin in (Union, UnionType):  # a union of entries, chosen by its tag
            annotation, entry = _entry_member(annotation, part), part
            continue
        else:
            fields = getattr(annotation, "model_fields", None) or {}
            siblings = tuple(fields)
            if part not in fields:
                key = f"{key}.{part}" if key else str(part)
                path.append(part)
                return _Location(key, tuple(path), None, siblings, entry)
            annotation = fields[part].annotation
            description = fields[part].description
        key = key if isinstance(part, int) else (f"{key}.{part}" if key else str(part))
        path.append(part)
    bare, found = _unwrapped(annotation)
    description = description or found
    if description is None and get_origin(bare) is Literal:
        description = f"one of {', '.join(get_args(bare))}"
    return _Location(key, tuple(path), description, siblings, entry)


def _value_at(raw: Mapping[str, Any], path: tuple[str | int, ...], fallback: Any) -> Any:
    """The value the user wrote at ``path`` (mapping keys and list indices)."""
    value: Any = raw
    for part in path:
        in_list = isinstance(part, int) and isinstance(value, list) and part < len(value)
        in_mapping = isinstance(part, str) and isinstance(value, Mapping) and part in value
        if not (in_list or in_mapping):
            return fallback
        value = value[part]
    return value


def _unknown_key_hint(at: _Location) -> str:
    """`` (did you mean ...?)`` for an unknown key; inside an entry, what the entry takes."""
    if "[" not in at.key:
        return did_you_mean(at.key)
    parent, _, leaf = at.key.rpartition(".")
    close = difflib.get_close_matches(leaf, at.siblings, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {parent}.{close[0]}?)"
    return f": a {at.entry} entry takes {', '.join(at.siblings)}"


def _message(
    error: Mapping[str, Any], source: Path, labels: Mapping[str, str], raw: Mapping[str, Any]
) -> str:
    """One line for one pydantic error: file or option, key, expectation, value."""
    at = _locate(error["loc"])
    key = at.key
    where = labels.get(key, f"{source}: {key}" if key else str(source))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key {key}{_unknown_key_hint(at)}"
    if "[key]" in error["loc"]:  # a key of train.augment, whose keys are the datasets
        parent = key.rpartition(".")[0]
        datasets = ", ".join(get_args(Dataset))
        return f"{source}: unknown key {key}: {parent} takes one entry per dataset ({datasets})"
    if kind == "union_tag_invalid":  # an entry's type
        tag = error["input"].get("type") if isinstance(error["input"], Mapping) else None
        types = ", ".join(LAYER_TYPES)
        hint = _closest_name(tag, LAYER_TYPES)
        return f"{where}.type must be one of {types}, got {preview(tag)}{hint}"
    if kind == "union_tag_not_found":
        return f"{where}.type is missing: one of {', '.join(LAYER_TYPES)}"
    if kind == "missing":
        return f"{source}: section '{key}' is missing" if "." not in key else f"{where} is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if key.endswith("]"):  # an entry of model.layers
            expected = f"a mapping with a type ({', '.join(LAYER_TYPES)}) and its keys"
            return f"{where} must be {expected}, got {preview(error['input'])}"
        if at.description is not None:
            return f"{where} must be {at.description}, got {preview(error['input'])}"
        return f"{where}: expected a mapping of keys, got {preview(error['input'])}"
    if not key and kind == "value_error":  # the cross-field rules
        return "\n".join(f"{source}: {line}" for line in str(error["ctx"]["error"]).splitlines())
    value = _value_at(raw, at.path, error["input"])
    expected = at.description
    if expected is None:
        text = error["msg"][0].lower() + error["msg"][1:]
        return f"{where}: {text}, got {preview(value)}"
    hint = ""
    if kind == "literal_error":
        hint = _closest_name(value, tuple(expected.removeprefix("one of ").split(", ")))
    return f"{where} must be {expected}, got {preview(value)}{hint}"


def _per_key(errors: list[Any]) -> Iterator[Any]:
    """The first error of each key: a list with many bad items is one line, not one each."""
    seen = set()
    for error in errors:
        key = _locate(error["loc"]).key
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
