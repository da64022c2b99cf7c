"""The evaluate command, run as a user runs it, on small processed data and a model trained
by the train command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from support.processed import CLASS_NAMES
from support.stage import error_lines, run_stage

from stages.data.processed import META_FILE


def test_train_then_evaluate_write_model_history_metrics_and_plots(workdir: Path) -> None:
    trained = run_stage("train", workdir)
    assert trained.returncode == 0, trained.stderr
    assert "Epoch 3/3, Loss: " in trained.stderr
    assert "Avg Accuracy: " in trained.stderr
    assert "Val Accuracy: " in trained.stderr
    history = (workdir / "reports" / "train_history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate"
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2", "3"]

    evaluated = run_stage("evaluate", workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((workdir / "metrics.json").read_text())
    for split in ("test", "train"):
        scores = metrics[split]
        assert scores["accuracy"] > 0.9  # the blobs are easy to tell apart
        for key in ("loss", "precision_macro", "recall_macro", "f1_macro"):
            assert isinstance(scores[key], float)
        assert list(scores["per_class_accuracy"]) == CLASS_NAMES
    rows = (workdir / "reports" / "confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted"
    assert len(rows) == 1 + 60
    with Image.open(workdir / "reports" / "misclassified.png") as image:
        assert image.format == "PNG"
        assert image.width > 0


def test_evaluate_without_a_model_names_the_file(workdir: Path) -> None:
    result = run_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("error: models/model.npz: ")
    assert "No such file" in line
    assert not (workdir / "metrics.json").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file, not a model"),
        (b"data:\n  dataset: mnist\n", "not an .npz model file"),
        (b"PK\x03\x04 not really a zip", "truncated or corrupt model file"),
        (b"\x80\x04\x95 a pickle", "a pickle file, which is refused"),
    ],
)
def test_evaluate_refuses_a_corrupt_model(workdir: Path, content: bytes, reason: str) -> None:
    (workdir / "metrics.json").write_text('{"previous": true}\n')
    (workdir / "models").mkdir()
    (workdir / "models" / "model.npz").write_bytes(content)
    result = run_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("error: models/model.npz: ")
    assert reason in line
    assert (workdir / "metrics.json").read_text() == '{"previous": true}\n'


def test_evaluate_refuses_data_normalized_unlike_the_model(workdir: Path) -> None:
    assert run_stage("train", workdir, "--epochs", "1").returncode == 0
    meta_path = workdir / "data" / "processed" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["normalization"] = {"method": "standardize", "mean": 0.13, "std": 0.31}
    meta_path.write_text(json.dumps(meta))
    result = run_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "expects inputs normalized as" in line
    assert "retrain" in line


def test_evaluate_checks_meta_before_writing_anything(trained: Path) -> None:
    meta_path = trained / "data" / "processed" / META_FILE
    meta = json.loads(meta_path.read_text())
    del meta["image_shape"]
    meta_path.write_text(json.dumps(meta))
    result = run_stage("evaluate", trained)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert str(meta_path.relative_to(trained)) in line
    assert "image_shape" in line
    assert not (trained / "reports" / "confusion.csv").exists()
    assert not (trained / "metrics.json").exists()
