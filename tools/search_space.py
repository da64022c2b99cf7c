"""The search space file (``search.yaml``): which params.yaml keys a study's trials set, over
which ranges, and the Optuna sampler and pruner that choose and stop them.

The file is checked as a whole before any trial runs: its own shape (pydantic models that
refuse unknown keys), then every key against params.yaml (only keys that file has, nested
ones spelled with dots) and every bound and choice against the params schema the stages
use, so a value train would refuse is refused here, in one line naming the key.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

# PyYAML reads ``1e-3`` (no dot) as text, as in params.yaml: accept numeric text for bounds.
_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class SpaceError(Exception):
    """The search space file cannot be used; the message is one line naming the key."""


def _number(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return float(value)
    return value


Number = Annotated[int | float, BeforeValidator(_number), Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Range(_Strict):
    """A number in ``[low, high]``: integers when both bounds are integers."""

    low: Number
    high: Number
    log: bool = False
    step: Number | None = None

    @property
    def is_integer(self) -> bool:
        bounds = (self.low, self.high, self.step if self.step is not None else 1)
        return all(isinstance(bound, int) and not isinstance(bound, bool) for bound in bounds)

    def problem(self) -> str | None:
        """What is wrong with the range, or None."""
        if self.low >= self.high:
            return f"low ({self.low}) must be below high ({self.high})"
        if self.log and self.low <= 0:
            return f"a log range needs low > 0, got {self.low}"
        if self.log and self.step is not None:
            return "a range is either log or stepped, not both"
        if self.step is not None and self.step <= 0:
            return f"step must be > 0, got {self.step}"
        return None


class Choices(_Strict):
    """One of a list of values: numbers, text, true/false, null or lists of these; or, for
    a key that names a mapping of params.yaml (``model``), mappings of some of its keys,
    each choice setting its keys together (``{hidden_sizes: [], layers: [...]}``)."""

    choices: Annotated[list[Any], Field(min_length=1)]

    @property
    def sets_keys(self) -> bool:
        """Whether each choice is a mapping of keys set together."""
        return isinstance(self.choices[0], dict)

    def problem(self) -> str | None:
        labels = [choice_label(choice) for choice in self.choices]
        if len(set(labels)) < len(labels):
            return "choices must differ from each other"
        mappings = [isinstance(choice, dict) for choice in self.choices]
        if any(mappings) and not all(mappings):
            return "choices are all mappings of keys set together, or none is"
        if any(isinstance(choice, dict) and not choice for choice in self.choices):
            return "a mapping choice names at least one key"
        return None

    def keys_below(self, key: str) -> list[str]:
        """The dotted keys the mapping choices of ``key`` set, in order of first mention."""
        below: dict[str, None] = {}
        for choice in self.choices if self.sets_keys else []:
            below.update(dict.fromkeys(f"{key}.{name}" for name in choice))
        return list(below)


def _dimension_kind(value: Any) -> str:
    """A mapping with ``choices`` (or a Choices, when serializing) is a Choices."""
    is_choices = isinstance(value, Choices) or (isinstance(value, Mapping) and "choices" in value)
    return "choices" if is_choices else "range"


Dimension = Annotated[
    Annotated[Range, Tag("range")] | Annotated[Choices, Tag("choices")],
    Discriminator(_dimension_kind),
]


class OptunaClass(BaseModel):
    """An Optuna sampler or pruner: its class name and keyword arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SeededSampler(OptunaClass):
    seed: Annotated[int, Field(ge=0)]


class SearchSpace(_Strict):
    """The whole file."""

    params: Annotated[dict[str, Dimension], Field(min_length=1)]
    fixed: dict[str, Any] = Field(default_factory=dict)
    sampler: SeededSampler
    pruner: OptunaClass = OptunaClass(name="MedianPruner")

    def suggest(self, trial: Any) -> dict[str, Any]:
        """What ``trial`` draws for ``params``, then the ``fixed`` values: dotted key -> value."""
        values: dict[str, Any] = {}
        for key, dimension in self.params.items():
            if isinstance(dimension, Choices):
                labels = [choice_label(choice) for choice in dimension.choices]
                chosen = dimension.choices[labels.index(trial.suggest_categorical(key, labels))]
                values.update(keys_set(key, chosen))
            elif dimension.is_integer:
                values[key] = trial.suggest_int(
                    key, dimension.low, dimension.high, step=dimension.step or 1, log=dimension.log
                )
            else:
                values[key] = trial.suggest_float(
                    key, dimension.low, dimension.high, step=dimension.step, log=dimension.log
                )
        return {**values, **self.fixed}

    def make_sampler(self, seed_offset: int = 0) -> Any:
        """The sampler the file names, seeded with its seed plus ``seed_offset``."""
        import optuna

        arguments = {**self.sampler.arguments, "seed": self.sampler.seed + seed_offset}
        return _construct(optuna.samplers, "sampler", self.sampler.name, arguments)

    def make_pruner(self) -> Any:
        import optuna

        return _construct(optuna.pruners, "pruner", self.pruner.name, self.pruner.arguments)

    def fingerprint(self) -> str:
        """The space as canonical JSON: workers of one study must agree on it."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


def keys_set(key: str, value: Any) -> dict[str, Any]:
    """The dotted keys a value of ``key`` sets: itself, or for a mapping choice of keys set
    together, each of them."""
    if isinstance(value, dict):
        return {f"{key}.{name}": item for name, item in value.items()}
    return {key: value}


def choice_label(choice: Any) -> Any:
    """What Optuna stores for a choice: the value itself if it is a plain scalar, else its
    JSON text (Optuna's categorical values are None, bool, int, float or str)."""
    if choice is None or isinstance(choice, bool | int | float | str):
        return choice
    return json.dumps(choice)


def _construct(module: Any, what: str, name: str, arguments: Mapping[str, Any]) -> Any:
    from optuna.exceptions import ExperimentalWarning

    cls = getattr(module, name, None)
    if not inspect.isclass(cls) or name.startswith("_"):
        known = sorted(n for n in dir(module) if n[0].isupper() and not n.startswith("Base"))
        raise SpaceError(f"{what}.name: Optuna has no {what} {name!r} (it has {', '.join(known)})")
    try:
        with warnings.catch_warnings():  # e.g. TPESampler's constant_liar is "experimental"
            warnings.simplefilter("ignore", ExperimentalWarning)
            return cls(**arguments)
    except (TypeError, ValueError, ImportError) as exc:
        raise SpaceError(f"{what}: Optuna's {name} refuses {dict(arguments)}: {exc}") from None


# --- the file's own shape -------------------------------------------------------------------


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("range", "choices"))


def _shape_message(path: Path, error: Mapping[str, Any]) -> str:
    where = _location(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key {where}"
    if error["type"] == "missing":
        return f"{path}: {where} is missing"
    if error["type"] == "too_short" and error["loc"] == ("params",):
        return f"{path}: params: name at least one key to search"
    if error["type"] in ("model_type", "dict_type") and error["loc"][0] == "params":
        return (
            f"{path}: {where}: expected {{low: .., high: ..}} or {{choices: [..]}} "
            f"(a single value belongs under fixed), got {error['input']!r}"
        )
    return f"{path}: {where}: {error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"


def read_space(path: Path) -> SearchSpace:
    """The file at ``path``, checked for its own shape (not yet against params.yaml)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"{path}: no such search space file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise SpaceError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise SpaceError(f"{path}: expected a mapping with params, fixed, sampler and pruner")
    try:
        space = SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise SpaceError(_shape_message(path, exc.errors(include_url=False)[0])) from None
    for key, dimension in space.params.items():
        problem = dimension.problem()
        if problem:
            raise SpaceError(f"{path}: params.{key}: {problem}")
    overlap = sorted(set(space.params) & set(space.fixed))
    if overlap:
        raise SpaceError(f"{path}: {overlap[0]} is both in params and in fixed")
    return space


# --- against params.yaml and its schema -----------------------------------------------------


def with_value(document: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` whose dotted ``key`` (which exists) is ``value``."""
    result = copy.deepcopy(dict(document))
    *parents, leaf = key.split(".")
    node = result
    for part in parents:
        node = node[part]
    node[leaf] = value
    return result


def has_key(document: Mapping[str, Any], key: str, mapping: bool = False) -> bool:
    """Whether the dotted ``key`` is in ``document``: a value (a leaf), or with ``mapping``
    a mapping of keys (a section, ``train.augment.mnist``)."""
    node: Any = document
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return isinstance(node, Mapping) == mapping


def _schema_problem(document: Mapping[str, Any], params_path: Path) -> str | None:
    """Why the params schema (which knows train's names of activations, optimizers, ...)
    refuses ``document``, in a few words naming the key; None if it accepts it."""
    from stages.cli.errors import ParamsError
    from stages.cli.params import validate_params

    try:
        params = validate_params(document, params_path)
    except ParamsError as exc:
        first = str(exc).splitlines()[0]
        return first.removeprefix(f"{params_path}: ").rsplit(", got ", 1)[0]
    if params.data.val_size == 0:
        return "data.val_size must be > 0: trials are scored on the validation split"
    return None


def check_against_params(space: SearchSpace, space_path: Path, params_path: Path) -> None:
    """Refuse a key params.yaml does not have, or a bound, choice or fixed value that the
    params schema refuses (each tried on its own, with the fixed values in place)."""
    from stages.cli.params import did_you_mean, read_params_file

    document = read_params_file(params_path)
    for section, keys in (("fixed", space.fixed), ("params", space.params)):
        for key in keys:
            dimension = space.params.get(key) if section == "params" else None
            if isinstance(dimension, Choices) and dimension.sets_keys:
                _check_keys_set_together(space, key, dimension, document, space_path, params_path)
            elif not has_key(document, key):
                hint = (
                    ": it holds keys; choices of mappings of them set them together"
                    if has_key(document, key, mapping=True)
                    else did_you_mean(key)
                )
                raise SpaceError(
                    f"{space_path}: {section}: {key} is not a key of {params_path}{hint}"
                )
    base = document
    for key, value in space.fixed.items():
        base = with_value(base, key, value)
    problem = _schema_problem(base, params_path)
    if problem:
        raise SpaceError(f"{space_path}: fixed: {params_path} with these values: {problem}")
    for key, dimension in space.params.items():
        if isinstance(dimension, Choices):
            candidates = [(f"choice {choice!r}", choice) for choice in dimension.choices]
        else:
            candidates = [(f"low {dimension.low!r}", dimension.low)]
            candidates.append((f"high {dimension.high!r}", dimension.high))
        for label, value in candidates:
            keys = (
                {f"{key}.{name}": v for name, v in value.items()}
                if isinstance(value, dict)
                else {key: value}
            )
            document = base
            for dotted, v in keys.items():
                document = with_value(document, dotted, v)
            problem = _schema_problem(document, params_path)
            if problem:
                raise SpaceError(f"{space_path}: params.{key}: {label} is refused: {problem}")


def _check_keys_set_together(
    space: SearchSpace,
    key: str,
    dimension: Choices,
    document: Mapping[str, Any],
    space_path: Path,
    params_path: Path,
) -> None:
    """Refuse mapping choices for a key that is no mapping of params.yaml, naming keys it
    does not hold, or keys that params or fixed set on their own too."""
    from stages.cli.params import did_you_mean

    if not has_key(document, key, mapping=True):
        hint = "" if has_key(document, key) else did_you_mean(key)
        raise SpaceError(
            f"{space_path}: params.{key}: choices are mappings of keys, but {key} is not a "
            f"mapping of {params_path}{hint}"
        )
    for below in dimension.keys_below(key):
        if not has_key(document, below):
            raise SpaceError(
                f"{space_path}: params.{key}: {below} is not a key of {params_path}"
                f"{did_you_mean(below)}"
            )
        if below in space.params or below in space.fixed:
            raise SpaceError(
                f"{space_path}: {below} is set by the choices of params.{key} and on its own"
            )


def load_space(space_path: Path, params_path: Path) -> SearchSpace:
    """Read ``space_path`` and check it against ``params_path``; the sampler and pruner
    it names are built once, so that their arguments are checked too."""
    space = read_space(space_path)
    check_against_params(space, space_path, params_path)
    try:
        space.make_sampler()
        space.make_pruner()
    except SpaceError as exc:
        raise SpaceError(f"{space_path}: {exc}") from None
    return space


def override_value(value: Any) -> str:
    """``value`` in the override syntax of ``dvc exp run -S key=value`` (Hydra's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpaceError(f"cannot set a parameter to {value}")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    if isinstance(value, Mapping):  # an entry of a list, such as one of model.layers
        return "{" + ",".join(f"{name}:{override_value(v)}" for name, v in value.items()) + "}"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text) and text.lower() not in (
        "true",
        "false",
        "null",
    ):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def overrides(values: Mapping[str, Any]) -> list[str]:
    """``-S`` arguments that set ``values`` (dotted key -> value) for one experiment."""
    arguments = []
    for key, value in values.items():
        arguments += ["-S", f"{key}={override_value(value)}"]
    return arguments
