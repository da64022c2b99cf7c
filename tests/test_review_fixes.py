"""Failures found in review: each case once crashed, misreported, or changed a file too early."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.idx import gz_files, make_arrays, write_files
from support.params import write_params
from support.processed import write_processed
from support.stage import error_lines, run_stage

from nnlib import SGD, CrossEntropyLoss, Dataset, DenseLayer, Model, Softmax, training_loop
from stages.data.processed import META_FILE, labels_path
from stages.outputs.atomic import staged_files


def test_a_pipeline_without_validation_split_runs_through(tmp_path: Path) -> None:
    """data.val_size 0: preprocess writes empty val arrays; train monitors the training loss."""
    write_files(tmp_path / "data/raw/mnist", gz_files(make_arrays(n_train=40, n_test=10)))
    write_params(
        tmp_path,
        data={"val_size": 0},
        train={"epochs": 2, "batch_size": 8, "monitor": "loss"},
    )
    assert run_stage("preprocess", tmp_path).returncode == 0
    assert np.load(tmp_path / "data/processed/val_images.npy").shape == (0, 784)
    assert run_stage("train", tmp_path).returncode == 0
    assert run_stage("evaluate", tmp_path).returncode == 0


def test_monitoring_a_missing_validation_split_is_one_line(tmp_path: Path) -> None:
    write_processed(tmp_path / "data" / "processed", {"train": 40, "val": 0, "test": 10})
    write_params(tmp_path, train={"monitor": "val_accuracy"})
    result = run_stage("train", tmp_path)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "train.monitor is val_accuracy" in line


def test_staged_files_replace_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a")

    def write_then_fail() -> None:
        with staged_files(tmp_path) as staging:
            (staging / "a.txt").write_text("new a")
            (staging / "b.txt").write_text("new b")
            raise RuntimeError("fails midway")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old a"

    (tmp_path / ".staging-left-by-a-killed-run.tmp").mkdir()
    with staged_files(tmp_path) as staging:
        (staging / "a.txt").write_text("new a")
        (staging / "b.txt").write_text("new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "new a"


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


def test_labels_beyond_the_class_names_name_the_file(trained: Path) -> None:
    path = labels_path(trained / "data" / "processed", "train")
    labels = np.load(path)
    labels[0] = 12
    np.save(path, labels)
    result = run_stage("train", trained)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "train_labels.npy: labels 0..12 do not fit the 10 class names" in line


def test_an_unwritable_history_path_fails_before_training(trained: Path) -> None:
    model = trained / "models" / "model.npz"
    before = model.read_bytes()
    (trained / "afile").write_text("")
    result = run_stage("train", trained, "--history", "afile/history.csv", "--epochs", "50")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: afile/history.csv: cannot write there, afile is not a directory"
    ]
    assert "Epoch 1/" not in result.stderr
    assert model.read_bytes() == before


def test_a_params_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_bytes(b"\xff\xfe\x00garbage")
    result = run_stage("train", tmp_path)
    assert error_lines(result) == ["error: params.yaml: not UTF-8 text"]


def test_a_mirror_with_a_bad_port_is_refused_at_once(tmp_path: Path) -> None:
    write_params(tmp_path)
    result = run_stage("download", tmp_path, "--mirror", "http://127.0.0.1:abc/")
    assert result.returncode == 1
    assert error_lines(result) == ["error: --mirror: 'http://127.0.0.1:abc/' has an invalid port"]


@pytest.mark.parametrize("learning_rate", [0.0, -0.1, float("nan")])
def test_training_loop_refuses_a_bad_learning_rate(learning_rate: float) -> None:
    rng = np.random.default_rng(0)
    model = Model([DenseLayer(4, 3, Softmax(), rng=rng)], CrossEntropyLoss(), SGD(0.1))
    data = Dataset(np.ones((6, 4), np.float32), np.arange(6) % 3, rng)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        training_loop(model, data, epochs=1, batch_size=2, learning_rate=learning_rate)
