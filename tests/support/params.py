"""The project's params.yaml, with some keys replaced, written into a scratch directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from support import REPO


def project_params() -> dict[str, Any]:
    """A fresh copy of the repository's ``params.yaml``."""
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def write_params(directory: Path, **sections: Mapping[str, Any]) -> Path:
    """Write ``directory/params.yaml``: the project's params with keys replaced per section,
    e.g. ``write_params(d, data={"val_size": 0}, train={"epochs": 2})``; return its path.

    A section the project does not have is a KeyError (a typo, not a test of unknown keys).
    Augmentation is off unless ``train`` sets ``augment``: the generated datasets are
    random pixels, whose class no distortion leaves recognizable.
    """
    params = project_params()
    params["train"]["augment"] = "none"
    for section, values in sections.items():
        params[section].update(values)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def alias_bomb(levels: int) -> str:
    """The project's params.yaml with ``model.hidden_sizes`` an alias that stands for
    ``10**levels`` integers in nested lists ("billion laughs"), in about 2 kB."""
    lines = ["bomb:", "  - &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"  - &l{level} [{refs}]")
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    body = text.replace("hidden_sizes: [64, 32]", f"hidden_sizes: *l{levels}")
    return "\n".join(lines) + "\n" + body
