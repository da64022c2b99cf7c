"""params.yaml: its schema, read and validated as a whole before any work starts.

The schema is pydantic models that refuse unknown keys at every level, so a key that would
do nothing (a typo, a key from another project) stops the stage instead. Every error is one
line naming the file (or command-line option) and the key, with a "did you mean" where one
fits. Choices that nnlib defines (activations, optimizers, schedules, monitors) are checked
by the commands that use nnlib (``check_names``), so the data stages never load it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
)

from stages.cli.errors import ParamsError
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


Real = Annotated[float, BeforeValidator(_real), Field(allow_inf_nan=False)]


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


def _split_size_text(minimum: int) -> Any:
    return _describe(f"a count (an integer >= {minimum}) or a fraction (a number > 0 and < 1)")


def _describe(text: str) -> Any:
    """The expectation an error message states for a field (``must be <text>``)."""
    return Field(description=text)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(_Section):
    dataset: Annotated[Literal[DATASETS], _describe(f"one of {', '.join(DATASETS)}")]
    images: Annotated[str, Field(min_length=1), _describe("the path of a folder")]
    val_size: Annotated[int | float, _split_size(0), _split_size_text(0)]
    test_size: Annotated[int | float, _split_size(1), _split_size_text(1)]
    split_seed: Annotated[int, Field(ge=0), _describe("an integer >= 0")]
    normalize: Annotated[Literal[NORMALIZATIONS], _describe(f"one of {', '.join(NORMALIZATIONS)}")]


class ModelParams(_Section):
    hidden_sizes: Annotated[
        list[Annotated[int, Field(ge=1)]],
        Field(min_length=1),
        _describe("a non-empty list of integers >= 1"),
    ]
    activation: Annotated[str, _describe("the name of an activation")]
    dropout: Annotated[Real, Field(ge=0, lt=1), _describe("a number >= 0 and < 1")]


class TrainParams(_Section):
    epochs: Annotated[int, Field(ge=1), _describe("an integer >= 1")]
    batch_size: Annotated[int, Field(ge=1), _describe("an integer >= 1")]
    learning_rate: Annotated[Real, Field(gt=0), _describe("a number > 0")]
    lr_schedule: Annotated[str, _describe("the name of a learning-rate schedule")]
    optimizer: Annotated[str, _describe("the name of an optimizer")]
    seed: Annotated[int, Field(ge=0), _describe("an integer >= 0")]
    weight_decay: Annotated[Real, Field(ge=0), _describe("a number >= 0")]
    momentum: Annotated[Real, Field(ge=0, lt=1), _describe("a number >= 0 and < 1")]
    patience: Annotated[int, Field(ge=0), _describe("an integer >= 0")]
    monitor: Annotated[str, _describe("the name of an epoch figure")]
    restore_best: Annotated[bool, _describe("true or false")]


class Params(_Section):
    data: DataParams
    model: ModelParams
    train: TrainParams


def known_keys() -> list[str]:
    """Every key of the schema, dotted: ``data.dataset``, ..., ``train.restore_best``."""
    return [
        f"{section}.{key}"
        for section, field in Params.model_fields.items()
        for key in field.annotation.model_fields
    ]


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


def _field_description(loc: tuple[Any, ...]) -> str | None:
    model: Any = Params
    description = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            break
        description = fields[part].description
        model = fields[part].annotation
    return description


def _message(
    error: Mapping[str, Any], source: Path, labels: Mapping[str, str], raw: Mapping[str, Any]
) -> str:
    """One line for one pydantic error: file or option, key, expectation, value."""
    loc = tuple(part for part in error["loc"] if isinstance(part, str))
    key = ".".join(loc)
    where = labels.get(key, f"{source}: {key}" if key else str(source))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key {key}{did_you_mean(key)}"
    if kind == "missing":
        return f"{source}: section '{key}' is missing" if len(loc) == 1 else f"{where} is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{where}: expected a mapping of keys, got {error['input']!r}"
    expected = _field_description(loc)
    if expected is None:
        return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"
    value = error["input"]
    if len(error["loc"]) > len(loc):  # an item of a list: show the whole list
        value = raw[loc[0]][loc[1]]
    return f"{where} must be {expected}, got {value!r}"


def read_params_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; one-line ParamsError if it is missing or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not UTF-8 text") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ParamsError(f"{path}: not valid YAML{at}: {problem}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw


def load_params(path: Path, overrides: Mapping[str, tuple[Any, str]] | None = None) -> Params:
    """Read and validate the whole of ``path``.

    ``overrides`` maps a dotted key to ``(value, option name)``: a command-line value that
    replaces the file's (unless it is None) and is named by its option in errors.
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
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise ParamsError(_message(error, path, labels, raw)) from None


def check_names(params: Params, source: Path, names: Mapping[str, Iterable[str]]) -> None:
    """Refuse a value of the dotted keys in ``names`` that is not one of its allowed names."""
    for key, allowed in names.items():
        section, _, leaf = key.partition(".")
        value = getattr(getattr(params, section), leaf)
        allowed = tuple(allowed)
        if value not in allowed:
            raise ParamsError(f"{source}: {key} must be one of {', '.join(allowed)}, got {value!r}")
