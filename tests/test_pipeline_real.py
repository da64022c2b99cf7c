"""The default pipeline on the real MNIST, from nothing, with MNIST_MIRROR as the mirror."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from support.dvc_project import Project

pytestmark = [pytest.mark.pipeline, pytest.mark.realdata]


def test_default_pipeline_on_real_mnist(tmp_path: Path, mnist_dir: Path) -> None:
    project = Project.create(tmp_path / "project", mnist_dir, params={})
    started = time.perf_counter()
    result = project.dvc("repro")
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr

    metrics = json.loads((project.root / "metrics.json").read_text())
    peak = re.search(r"Trained 20 epochs in .* peak memory (\d+) MB", output)
    assert peak, output
    print(
        f"dvc repro from nothing: {seconds:.0f} s; test accuracy {metrics['test']['accuracy']}; "
        f"train stage peak memory {peak[1]} MB"
    )
    assert metrics["test"]["accuracy"] >= 0.972
    assert int(peak[1]) < 600
