"""A small convolutional network through the whole pipeline on the real MNIST: ``dvc repro``
with model.layers (params.yaml's other defaults, 2 epochs), then predict on photographs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from support import REPO
from support.dvc_project import Project
from support.networks import conv, dense, pool

pytestmark = [pytest.mark.pipeline, pytest.mark.realdata]

#: conv 8 and 16 filters of 5x5, each followed by a 2x2 max-pool, dense 64
LAYERS = [conv(8, 5), pool(2), conv(16, 5), pool(2), dense(64)]
PHOTOS = sorted((REPO / "docs" / "predict").glob("photo-*.jpg"))


def test_a_small_cnn_through_dvc_repro_reads_mnist_and_photos(
    tmp_path: Path, mnist_dir: Path
) -> None:
    project = Project.create(tmp_path / "project", mnist_dir, params=None)
    project.set_param("model", "hidden_sizes", [])
    project.set_param("model", "layers", LAYERS)
    project.set_param("train", "epochs", 2)
    project.commit("a small CNN")
    started = time.perf_counter()
    result = project.dvc("repro")
    seconds = time.perf_counter() - started

    metrics = json.loads((project.root / "metrics.json").read_text())
    trained = re.search(r"Trained 2 epochs in ([\d.]+) s \(([\d.]+) s/epoch", result.stderr)
    assert trained, result.stderr
    print(
        f"dvc repro with {LAYERS} for 2 epochs: {seconds:.0f} s (train {trained[1]} s, "
        f"{trained[2]} s an epoch); test accuracy {metrics['test']['accuracy']}"
    )
    assert metrics["test"]["accuracy"] >= 0.98
    described = json.loads(str(np.load(project.root / "models" / "model.npz")["meta"]))
    assert [layer["kind"] for layer in described["layers"]][:4] == [
        "conv2d",
        "maxpool2d",
        "conv2d",
        "maxpool2d",
    ]

    assert [photo.stem for photo in PHOTOS] == ["photo-3", "photo-4", "photo-7"]
    read = project.run(
        "python",
        "-m",
        "stages.predict",
        *map(str, PHOTOS),
        "--json",
        "--save-inputs",
        "seen",
    )
    answers = json.loads(read.stdout)
    assert [answer["prediction"] for answer in answers] == ["3", "4", "7"]
    assert sorted(p.name for p in (project.root / "seen").iterdir()) == [
        "photo-3.png",
        "photo-4.png",
        "photo-7.png",
    ]
