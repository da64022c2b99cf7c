"""The default pipeline on the real MNIST, from nothing, with ``../shared/mnist`` as the mirror."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from dvc_project import SHARED_MNIST, Project

pytestmark = [pytest.mark.pipeline, pytest.mark.realdata]


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no MNIST copy at {SHARED_MNIST}")
def test_default_pipeline_on_real_mnist(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "project", SHARED_MNIST, params={})
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
