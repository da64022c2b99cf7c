"""The default pipeline on the real MNIST, from nothing, with MNIST_MIRROR as the mirror; and
an experiment watched while it trains, as `dvc exp show` and VS Code's extension watch it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.dvc_project import Project

pytestmark = [pytest.mark.pipeline, pytest.mark.realdata]


@dataclass(frozen=True)
class Built:
    project: Project
    seconds: float
    output: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Built:
    """The project with params.yaml as it is, after its first ``dvc repro``, committed."""
    project = Project.create(tmp_path_factory.mktemp("real") / "project", mnist_dir, params=None)
    started = time.perf_counter()
    result = project.dvc("repro")
    seconds = time.perf_counter() - started
    project.commit("first run")
    return Built(project, seconds, result.stdout + result.stderr)


def test_default_pipeline_on_real_mnist(built: Built) -> None:
    project = built.project
    epochs = yaml.safe_load((project.root / "params.yaml").read_text())["train"]["epochs"]
    metrics = json.loads((project.root / "metrics.json").read_text())
    peak = re.search(rf"Trained {epochs} epochs in .* peak memory (\d+) MB", built.output)
    assert peak, built.output
    print(
        f"dvc repro from nothing: {built.seconds:.0f} s; test accuracy "
        f"{metrics['test']['accuracy']}; train stage peak memory {peak[1]} MB"
    )
    # The distorted-digit defaults' bar (docs/augmentation.md); the blog post's net reached 0.972.
    assert metrics["test"]["accuracy"] >= 0.985
    # The padded training images and two distorted copies (~3.2x the 172 MB split) plus the
    # interpreter and model: 830 MB measured; a leaked epoch buffer would pass 1 GB.
    assert int(peak[1]) < 1000


def workspace_step(shown: list[dict[str, Any]]) -> int | None:
    """The step DVCLive's metrics give the workspace row of ``dvc exp show --json``."""
    (workspace,) = (row for row in shown if row.get("rev") == "workspace")
    metrics = (workspace.get("data") or {}).get("metrics") or {}
    return ((metrics.get("dvclive/metrics.json") or {}).get("data") or {}).get("step")


def test_exp_show_sees_a_running_experiments_epochs(built: Built, tmp_path: Path) -> None:
    project = built.project
    log = tmp_path / "exp-run.log"
    with log.open("w") as output:
        running = subprocess.Popen(
            [sys.executable, "-m", "dvc", "exp", "run", "-S", "train.epochs=12"],
            cwd=project.root,
            env=project.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    steps: list[int] = []  # what exp show said while this run's training was under way
    try:
        while running.poll() is None and "Starting training for 12" not in log.read_text():
            time.sleep(0.1)  # until then, the workspace holds the first run's files
        while running.poll() is None and not any(2 <= step < 12 for step in steps):
            shown = project.dvc("exp", "show", "--json", check=False)
            if running.poll() is None and shown.returncode == 0:
                steps.append(workspace_step(json.loads(shown.stdout)) or 0)
        assert running.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        running.kill()
        running.wait()
    assert any(2 <= step < 12 for step in steps), f"steps seen while training: {steps}"
    assert "Epoch 12/12" in log.read_text()
    final = json.loads(project.dvc("exp", "show", "--json").stdout)
    assert workspace_step(final) == 12
