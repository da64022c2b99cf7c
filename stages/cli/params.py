"""Reading and validating params.yaml, section by section, before any work starts.

Every error is one line naming the file (or command-line option) and the key.
Each stage reads only the keys that its ``dvc.yaml`` entry declares.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.cli.errors import ParamsError
from stages.data.normalization import NORMALIZATIONS
from stages.data.sources import DATA_SOURCES

# PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as a string; DVC's
# ``-S`` writes such numbers, so reals may arrive as text and are parsed here.
_REAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


Check = Callable[[Any, str], Any]


def integer(minimum: int) -> Check:
    def check(value: Any, label: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ParamsError(f"{label} must be an integer >= {minimum}, got {value!r}")
        return value

    return check


def real(minimum: float, *, inclusive: bool = True, below: float | None = None) -> Check:
    bound = f"{'>=' if inclusive else '>'} {minimum:g}" + (f" and < {below:g}" if below else "")

    def check(value: Any, label: str) -> float:
        number = value
        if isinstance(value, str) and _REAL_TEXT.fullmatch(value.strip()):
            number = float(value)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ParamsError(f"{label} must be a number {bound}, got {value!r}")
        number = float(number)
        in_range = number >= minimum if inclusive else number > minimum
        if not math.isfinite(number) or not in_range or (below is not None and number >= below):
            raise ParamsError(f"{label} must be a number {bound}, got {value!r}")
        return number

    return check


def choice(options: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> Check:
    """One of ``options``, or of the names returned by calling it (looked up when used)."""

    def check(value: Any, label: str) -> str:
        allowed = options() if callable(options) else options
        if value not in allowed:
            raise ParamsError(f"{label} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def boolean(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise ParamsError(f"{label} must be true or false, got {value!r}")
    return value


def sizes(value: Any, label: str) -> tuple[int, ...]:
    """A non-empty list of positive layer sizes."""
    ok = isinstance(value, list) and value
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    if not ok:
        raise ParamsError(f"{label} must be a non-empty list of integers >= 1, got {value!r}")
    return tuple(value)


def _activation_names() -> tuple[str, ...]:
    # Imported on use, so the data stages (which never check it) don't load nnlib's model code.
    from nnlib.activations import HIDDEN_ACTIVATIONS

    return tuple(HIDDEN_ACTIVATIONS)


def _optimizer_names() -> tuple[str, ...]:
    from nnlib.optimizers import OPTIMIZERS

    return tuple(OPTIMIZERS)


def _monitor_names() -> tuple[str, ...]:
    from nnlib.training import MONITORS

    return MONITORS


SECTIONS: dict[str, dict[str, Check]] = {
    "data": {
        "dataset": choice(tuple(DATA_SOURCES)),
        "val_size": integer(0),
        "split_seed": integer(0),
        "normalize": choice(NORMALIZATIONS),
    },
    "model": {
        "hidden_sizes": sizes,
        "activation": choice(_activation_names),
    },
    "train": {
        "epochs": integer(1),
        "batch_size": integer(1),
        "learning_rate": real(0.0, inclusive=False),
        "optimizer": choice(_optimizer_names),
        "seed": integer(0),
        "weight_decay": real(0.0),
        "momentum": real(0.0, below=1.0),
        "patience": integer(0),
        "monitor": choice(_monitor_names),
        "restore_best": boolean,
    },
}


def load_params(path: Path) -> dict[str, Any]:
    """Read a params file into a mapping; one-line ParamsError if it is missing or not YAML."""
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


def read_keys(
    raw: Mapping[str, Any],
    source: Path,
    section: str,
    keys: tuple[str, ...] | None = None,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
) -> dict[str, Any]:
    """Validate ``keys`` (default: all) of ``section``; return them by name.

    ``overrides`` maps a key to ``(value, option_name)``: a command-line value that
    replaces the file's and is named by its option in errors. Unknown keys in the
    section are refused, with a suggestion, so a typo cannot silently do nothing.
    """
    specs = SECTIONS[section]
    values = raw.get(section)
    if not isinstance(values, dict):
        state = "missing" if values is None else f"not a mapping ({values!r})"
        raise ParamsError(f"{source}: section '{section}' is {state}")
    for key in values:
        if key not in specs:
            close = difflib.get_close_matches(str(key), specs, n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            raise ParamsError(f"{source}: unknown key {section}.{key}{hint}")
    overrides = overrides or {}
    result = {}
    for key in keys or tuple(specs):
        if key in overrides and overrides[key][0] is not None:
            value, label = overrides[key][0], overrides[key][1]
        elif key in values:
            value, label = values[key], f"{source}: {section}.{key}"
        else:
            raise ParamsError(f"{source}: {section}.{key} is missing")
        result[key] = specs[key](value, label)
    return result


@dataclass(frozen=True)
class DataParams:
    dataset: str
    val_size: int
    split_seed: int
    normalize: str


@dataclass(frozen=True)
class ModelParams:
    hidden_sizes: tuple[int, ...]
    activation: str


@dataclass(frozen=True)
class TrainParams:
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str
    seed: int
    weight_decay: float
    momentum: float
    patience: int
    monitor: str
    restore_best: bool


def data_params(raw: Mapping[str, Any], source: Path) -> DataParams:
    return DataParams(**read_keys(raw, source, "data"))


def model_params(raw: Mapping[str, Any], source: Path) -> ModelParams:
    return ModelParams(**read_keys(raw, source, "model"))


def train_params(
    raw: Mapping[str, Any],
    source: Path,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
) -> TrainParams:
    return TrainParams(**read_keys(raw, source, "train", overrides=overrides))
