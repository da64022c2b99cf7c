"""model.layers entries as params.yaml writes them, a few stacks of them, and their plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.cli.params import ModelParams, load_params
from stages.network.plan import Plan, plan_network
from support.params import write_params


def conv(filters: int, kernel: int, **keys: Any) -> dict[str, Any]:
    return {"type": "conv2d", "filters": filters, "kernel": kernel, **keys}


def pool(size: int, **keys: Any) -> dict[str, Any]:
    return {"type": "maxpool2d", "size": size, **keys}


def dense(units: int, **keys: Any) -> dict[str, Any]:
    return {"type": "dense", "units": units, **keys}


def dropout(rate: float) -> dict[str, Any]:
    return {"type": "dropout", "rate": rate}


#: stacks of entries that take 28x28 images, each with something to get wrong
STACKS = {
    "lenet": [conv(8, 5), pool(2), conv(16, 5), pool(2), dense(64)],
    "padded-strided": [conv(6, 3, padding=2, stride=2), pool(3, stride=2), conv(4, 2), dense(8)],
    "overlapping-pools": [conv(4, 5), pool(3, stride=1), dropout(0.3), pool(2), dense(16)],
    "rows-left-out": [conv(3, 4, stride=3), pool(2)],  # 9x9 to 4x4: a row and column out
    "dense-only": [dense(32), dropout(0.2), dense(16)],
}


def model_params(directory: Path, **model: Any) -> ModelParams:
    """The model section of the project's params with ``model``'s keys replaced (with
    ``layers``, ``hidden_sizes`` is [] unless given), validated."""
    if "layers" in model:
        model = {"hidden_sizes": [], **model}
    return load_params(write_params(directory, model=model)).model


def planned(directory: Path, layers: list[dict[str, Any]], classes: int = 10) -> Plan:
    """The plan of ``layers`` for 28x28 images and ``classes`` classes."""
    return plan_network(model_params(directory, layers=layers), (28, 28), classes)
