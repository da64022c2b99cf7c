"""tools/figures.py: the figures of README.md and docs/ are what bench/*.json holds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

sys.path.insert(0, str(REPO / "tools"))

import figures

MARKDOWN = [REPO / name for name in figures.FILES]


def test_every_figures_block_is_rendered_from_the_benchmarks_json() -> None:
    """A block edited by hand, or left behind by a newer benchmark run, fails here."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "figures.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_block_has_a_renderer_and_is_not_empty() -> None:
    blocks = [
        (path.name, match[2], match[3])
        for path in MARKDOWN
        for match in figures.BLOCK.finditer(path.read_text(encoding="utf-8"))
    ]
    assert {name for _, name, _ in blocks} == set(figures.RENDERERS)
    assert [(file, name) for file, name, body in blocks if not body.strip()] == []


def test_a_figure_changed_by_hand_is_caught(tmp_path: Path) -> None:
    """Rendering rewrites a retyped number back to the JSON's."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"\| (0\.9\d{3}); ", text)
    assert match, "the README states the default model's test accuracy"
    edited = text.replace(match[0], "| 0.9999; ", 1)
    assert figures.rendered(edited) == text


@pytest.mark.parametrize(
    "name",
    [
        "speed",
        "augment",
        "defaults",
        "predict_looks",
        "predict_speed",
        "own_images",
        "repro",
        "accurate",
        "search",
        "serve",
        "serve_handwriting",
    ],
)
def test_each_benchmark_records_its_command_and_commit(name: str) -> None:
    data = json.loads((REPO / "bench" / f"{name}.json").read_text(encoding="utf-8"))
    assert data["command"].startswith("python bench/")
    assert re.fullmatch(r"[0-9a-f]{40}", data["commit"])
    assert data["code_changed_since_commit"] is False
