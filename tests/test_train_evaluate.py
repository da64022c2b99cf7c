"""The train and evaluate stage commands, run as a user runs them, on small processed data."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from stage_cli import REPO, error_lines, run_stage

from stages.data.processed import META_FILE, images_path, labels_path

N_FEATURES = 784
CLASS_NAMES = [str(k) for k in range(10)]
NORMALIZATION = {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0}


def write_processed(directory: Path, sizes: dict[str, int], seed: int = 0) -> None:
    """Processed splits as preprocess writes them: digits-like blobs, learnable per class."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, N_FEATURES), dtype=np.float32)
    directory.mkdir(parents=True)
    for split, n in sizes.items():
        labels = np.arange(n) % 10
        noise = rng.random((n, N_FEATURES), dtype=np.float32) * 0.5
        np.save(images_path(directory, split), (prototypes[labels] + noise).astype(np.float32))
        np.save(labels_path(directory, split), labels.astype(np.int64))
    meta = {
        "dataset": "mnist",
        "image_shape": [28, 28],
        "class_names": CLASS_NAMES,
        "normalization": NORMALIZATION,
        "splits": sizes,
    }
    (directory / META_FILE).write_text(json.dumps(meta))


def write_params(directory: Path, **train: object) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(train)
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_processed(tmp_path / "data" / "processed", {"train": 200, "val": 50, "test": 60})
    write_params(tmp_path, epochs=3, batch_size=16, learning_rate=0.01)
    return tmp_path


def test_train_then_evaluate_write_model_history_metrics_and_plots(workdir: Path) -> None:
    trained = run_stage("train", workdir)
    assert trained.returncode == 0, trained.stderr
    assert "Epoch 3/3, Loss: " in trained.stderr
    assert "Avg Accuracy: " in trained.stderr
    assert "Val Accuracy: " in trained.stderr
    history = (workdir / "reports" / "train_history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy"
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2", "3"]

    evaluated = run_stage("evaluate", workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((workdir / "metrics.json").read_text())
    for split in ("test", "train"):
        scores = metrics[split]
        assert scores["accuracy"] > 0.9  # the blobs are easy to tell apart
        for key in ("loss", "precision_macro", "recall_macro", "f1_macro"):
            assert isinstance(scores[key], float)
        assert "per_class_accuracy" not in scores  # a plot file, not 20 metric columns
    with (workdir / "reports" / "per_class_accuracy.csv").open() as handle:
        per_class = list(csv.DictReader(handle))
    assert [row["class"] for row in per_class] == CLASS_NAMES
    for split in ("test", "train"):
        recalls = [float(row[split]) for row in per_class]
        assert all(0.0 <= r <= 1.0 for r in recalls)
        # Every split here is class-balanced, so the mean recall is the accuracy.
        assert sum(recalls) / len(recalls) == pytest.approx(metrics[split]["accuracy"], abs=1e-5)
    rows = (workdir / "reports" / "confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted"
    assert len(rows) == 1 + 60
    with Image.open(workdir / "reports" / "misclassified.png") as image:
        assert image.format == "PNG"
        assert image.width > 0


def test_options_override_params_in_both_spellings(workdir: Path) -> None:
    result = run_stage(
        "train",
        workdir,
        "--epochs",
        "1",
        "--batch_size",
        "8",
        "--learning_rate",
        "0.05",
        "--log_level",
        "DEBUG",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Starting training for 1 epochs with batch size 8 and learning rate 0.05" in result.stderr
    )
    assert len((workdir / "reports" / "train_history.csv").read_text().splitlines()) == 2


def test_params_option_reads_another_file(workdir: Path) -> None:
    other = workdir / "other.yaml"
    other.write_text((workdir / "params.yaml").read_text().replace("epochs: 3", "epochs: 2"))
    result = run_stage("train", workdir, "--params", str(other))
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2" in result.stderr


def _without(params: dict, section: str, key: str) -> dict:
    del params[section][key]
    return params


BAD_PARAMS = [
    ("train", "epochs", 0, "train.epochs must be an integer >= 1, got 0"),
    ("train", "epochs", "ten", "train.epochs must be an integer >= 1, got 'ten'"),
    ("model", "hidden_sizes", [], "model.hidden_sizes must be a non-empty list"),
    ("model", "hidden_sizes", [64, -1], "model.hidden_sizes must be a non-empty list"),
    ("model", "activation", "swish", "model.activation must be one of relu, leaky_relu"),
    ("train", "optimizer", "adagrad", "train.optimizer must be one of sgd, adam, adamw"),
    ("train", "learning_rate", -0.1, "train.learning_rate must be a number > 0"),
    ("train", "seed", None, "train.seed is missing"),
    ("train", "epoch", 5, "unknown key train.epoch (did you mean train.epochs?)"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD_PARAMS)
def test_bad_params_stop_train_before_any_work(
    tmp_path: Path, section: str, key: str, value: object, message: str
) -> None:
    """No data exists here: a params error must come first, alone, naming the key."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if value is None:
        _without(params, section, key)
    else:
        params[section][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    result = run_stage("train", tmp_path)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert message in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()


def test_bad_option_values_give_one_line(workdir: Path) -> None:
    not_int = run_stage("train", workdir, "--epochs", "ten")
    assert not_int.returncode == 2
    (line,) = error_lines(not_int)
    assert line.startswith("error: Invalid value for '--epochs': ")
    assert "integer" in line
    zero = run_stage("train", workdir, "--epochs", "0")
    assert zero.returncode == 1
    assert error_lines(zero) == ["error: --epochs must be an integer >= 1, got 0"]


def test_diverging_run_stops_with_a_clear_message(workdir: Path) -> None:
    write_params(workdir, optimizer="sgd", learning_rate=1e12, momentum=0.0)
    result = run_stage("train", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "training diverged in epoch 1/20" in line
    assert line.endswith("(train.learning_rate is 1e+12)")
    assert not (workdir / "models" / "model.npz").exists()


def test_train_without_processed_data_names_the_missing_file(tmp_path: Path) -> None:
    write_params(tmp_path)
    result = run_stage("train", tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: data/processed/meta.json: no such file (run `python -m stages.preprocess` first)"
    ]


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


def test_sigint_during_training_keeps_the_previous_model(workdir: Path) -> None:
    assert run_stage("train", workdir, "--epochs", "1").returncode == 0
    model = workdir / "models" / "model.npz"
    previous = model.read_bytes()

    env = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "--epochs", "100000"],
        cwd=workdir,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    for line in process.stderr:  # wait until training is under way
        if "Epoch 2/100000" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=30) == 130
    assert "error: interrupted" in rest
    assert model.read_bytes() == previous
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.npz"]
