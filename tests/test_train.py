"""The train command, run as a user runs it, on small processed data."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import yaml
from support import REPO
from support.idx import write_files
from support.in_process import invoke_stage
from support.networks import conv, dense, dropout, pool
from support.params import project_params, write_params
from support.processed import write_processed
from support.stage import (
    digests,
    error_lines,
    run_measured,
    run_stage,
    stage_command,
    stage_environment,
    temporaries,
)

from nnlib.model import Model
from nnlib.optimizers import OPTIMIZERS
from stages.cli.params import Optimizer as OptimizerName
from stages.cli.params import load_params
from stages.data.processed import images_path, labels_path
from stages.network.memory import available_memory
from stages.outputs.history import read_live_folder
from stages.train import build_optimizer

OUTPUTS = ("models/model.npz", "dvclive/metrics.json")


def test_options_override_params_in_both_spellings(workdir: Path) -> None:
    result = invoke_stage(
        "train",
        workdir,
        "--epochs",
        "1",
        "--batch_size",
        "8",
        "--learning_rate",
        "0.002",
        "--log_level",
        "DEBUG",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Starting training for 1 epochs with batch size 8 and learning rate 0.002" in result.stderr
    )
    assert len(read_live_folder(workdir / "dvclive")) == 1


def test_params_option_reads_another_file(workdir: Path) -> None:
    other = workdir / "other.yaml"
    other.write_text((workdir / "params.yaml").read_text().replace("epochs: 3", "epochs: 2"))
    result = invoke_stage("train", workdir, "--params", str(other))
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2" in result.stderr


def _without(params: dict, section: str, key: str) -> dict:
    del params[section][key]
    return params


BAD_PARAMS = [
    ("train", "epochs", 0, "train.epochs must be an integer >= 1, got 0"),
    ("train", "epochs", "ten", "train.epochs must be an integer >= 1, got 'ten'"),
    ("model", "hidden_sizes", [], "model.hidden_sizes and model.layers are both empty"),
    ("model", "hidden_sizes", [64, -1], "model.hidden_sizes must be a list of integers >= 1"),
    ("model", "layers", [{"type": "dense"}], "model.layers[0].units is missing"),
    ("model", "activation", "swish", "model.activation must be one of relu, leaky_relu"),
    ("train", "optimizer", "adagrad", "train.optimizer must be one of sgd, adam, adamw"),
    ("train", "learning_rate", -0.1, "train.learning_rate must be a number > 0"),
    ("train", "seed", None, "train.seed is missing"),
    ("train", "epoch", 5, "unknown key train.epoch (did you mean train.epochs?)"),
    (
        "train",
        "dropout",
        0.5,
        "params.yaml: unknown key train.dropout (did you mean model.dropout?)",
    ),
    ("model", "hidden_size", [8], "model.hidden_size (did you mean model.hidden_sizes?)"),
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

    result = invoke_stage("train", tmp_path)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert message in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()


def test_bad_option_values_give_one_line(workdir: Path) -> None:
    not_int = invoke_stage("train", workdir, "--epochs", "ten")
    assert not_int.returncode == 2
    (line,) = error_lines(not_int)
    assert line.startswith("error: Invalid value for '--epochs': ")
    assert "integer" in line
    zero = invoke_stage("train", workdir, "--epochs", "0")
    assert zero.returncode == 2  # a bad option value, whoever checks it
    assert error_lines(zero) == ["error: --epochs must be an integer >= 1, got 0"]


def test_diverging_run_stops_with_a_clear_message(workdir: Path) -> None:
    write_params(workdir, train={"optimizer": "sgd", "learning_rate": 1e12, "momentum": 0.0})
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f"training diverged in epoch 1/{project_params()['train']['epochs']}" in line
    assert line.endswith("(train.learning_rate is 1e+12)")
    assert not (workdir / "models" / "model.npz").exists()


def test_train_without_processed_data_names_the_missing_file(tmp_path: Path) -> None:
    write_params(tmp_path)
    result = invoke_stage("train", tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: data/processed/meta.json: no such file (run `python -m stages.preprocess` first)"
    ]


@pytest.mark.slow
def test_sigint_during_training_keeps_the_previous_model(workdir: Path) -> None:
    assert invoke_stage("train", workdir, "--epochs", "1").returncode == 0
    model = workdir / "models" / "model.npz"
    previous = model.read_bytes()

    process = subprocess.Popen(
        stage_command("train", "--epochs", "100000"),
        cwd=workdir,
        env=stage_environment(),
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


def test_a_pipeline_without_validation_split_runs_through(
    tmp_path: Path, files: Mapping[str, bytes]
) -> None:
    """data.val_size 0: preprocess writes empty val arrays; train monitors the training loss."""
    write_files(tmp_path / "data/raw/mnist", files)
    write_params(
        tmp_path,
        data={"val_size": 0},
        train={"epochs": 2, "batch_size": 8, "monitor": "loss"},
    )
    assert invoke_stage("preprocess", tmp_path).returncode == 0
    assert np.load(tmp_path / "data/processed/val_images.npy").shape == (0, 784)
    assert invoke_stage("train", tmp_path).returncode == 0
    assert invoke_stage("evaluate", tmp_path).returncode == 0


def test_monitoring_a_missing_validation_split_is_one_line(tmp_path: Path) -> None:
    write_processed(tmp_path / "data" / "processed", {"train": 40, "val": 0, "test": 10})
    write_params(tmp_path, train={"monitor": "val_accuracy"})
    result = invoke_stage("train", tmp_path)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "train.monitor is val_accuracy" in line


def test_labels_beyond_the_class_names_name_the_file(trained: Path) -> None:
    path = labels_path(trained / "data" / "processed", "train")
    labels = np.load(path)
    labels[0] = 12
    np.save(path, labels)
    result = invoke_stage("train", trained)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "train_labels.npy: labels 0..12 do not fit the 10 class names" in line


def test_an_unwritable_live_folder_fails_before_training(trained: Path) -> None:
    model = trained / "models" / "model.npz"
    before = model.read_bytes()
    (trained / "afile").write_text("")
    result = invoke_stage("train", trained, "--live-dir", "afile/live", "--epochs", "50")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: afile/live/metrics.json: cannot write there, afile is not a directory"
    ]
    assert "Epoch 1/" not in result.stderr
    assert model.read_bytes() == before


def test_a_params_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_bytes(b"\xff\xfe\x00garbage")
    result = invoke_stage("train", tmp_path)
    assert error_lines(result) == ["error: params.yaml: not UTF-8 text"]


@pytest.mark.parametrize("name", get_args(OptimizerName))
def test_every_optimizer_the_params_accept_is_the_one_built(tmp_path: Path, name: str) -> None:
    """Each name the schema accepts (kept equal to nnlib's registry by test_cli_params.py)
    builds its own class, never Adam."""
    path = write_params(tmp_path, train={"optimizer": name})
    params = load_params(path)
    optimizer = build_optimizer(params.train, steps_per_epoch=10)
    assert type(optimizer) is OPTIMIZERS[name]
    assert optimizer.learning_rate == params.train.learning_rate


def test_a_stray_top_level_key_is_refused_with_a_hint(workdir: Path) -> None:
    """``batch_size: 64`` at the top of params.yaml would do nothing: it is refused."""
    with (workdir / "params.yaml").open("a", encoding="utf-8") as params:
        params.write("batch_size: 64\n")
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: params.yaml: unknown key batch_size (did you mean train.batch_size?)"
    ]
    assert "Epoch 1/" not in result.stderr
    assert not (workdir / "models").exists()


@pytest.mark.parametrize(
    ("learning_rate", "shuffle_val_labels", "reason"),
    [
        # Adam at 1e6 keeps a finite loss, far above the loss before training.
        (1e6, False, "training is not learning: the training loss rose from "),
        # Labels that do not go with their images: nothing carries over to the validation
        # split, whose accuracy stays at chance.
        (0.01, True, "training did not learn: after 3 epochs the validation accuracy "),
    ],
    ids=["adam-at-1e6", "labels-unlike-images"],
)
def test_a_run_that_learns_nothing_fails_and_keeps_the_previous_model(
    trained: Path, learning_rate: float, shuffle_val_labels: bool, reason: str
) -> None:
    """The model stays the last good one; the live history shows the failed run's epochs."""
    before = digests(trained, OUTPUTS)
    if shuffle_val_labels:
        path = labels_path(trained / "data" / "processed", "val")
        np.save(path, np.random.default_rng(0).permutation(np.load(path)))
    write_params(trained, train={"epochs": 3, "batch_size": 16, "learning_rate": learning_rate})
    result = invoke_stage("train", trained)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith(f"error: {reason}")
    assert re.search(r"try another learning rate|a smaller learning rate usually helps", line)
    assert "Traceback" not in result.stderr
    after = digests(trained, OUTPUTS)
    assert after["models/model.npz"] == before["models/model.npz"]
    assert after["dvclive/metrics.json"] != before["dvclive/metrics.json"]
    assert len(read_live_folder(trained / "dvclive")) == result.stderr.count("Epoch ")
    assert temporaries(trained) == []


@pytest.mark.realdata
@pytest.mark.parametrize("learning_rate", ["1e-3", "1e-2"])
def test_healthy_runs_on_real_mnist_are_never_refused(
    tmp_path: Path, real_processed: Path, learning_rate: str
) -> None:
    """The checks that a run learns stay quiet for the usual learning rates of Adam. The rate
    is written as ``1e-3``, which YAML 1.1 (PyYAML) reads as text, as ``dvc exp run -S`` may."""
    params = write_params(
        tmp_path, train={"epochs": 3, "learning_rate": learning_rate, "lr_schedule": "constant"}
    )
    assert f"learning_rate: {learning_rate}\n" in params.read_text()
    result = invoke_stage("train", tmp_path, "--data-dir", str(real_processed))
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == []
    rows = read_live_folder(tmp_path / "dvclive")
    assert [row["learning_rate"] for row in rows] == [pytest.approx(float(learning_rate))] * 3
    assert max(float(row["val_accuracy"]) for row in rows) > 0.9


def test_a_full_disk_while_saving_keeps_the_previous_model(trained: Path) -> None:
    """The history (1 kB) still fits, the model (200 kB) no longer does: it is not replaced."""
    limit = 64 * 1024
    assert (trained / OUTPUTS[0]).stat().st_size > limit > (trained / OUTPUTS[1]).stat().st_size
    before = digests(trained, OUTPUTS)
    result = run_stage("train", trained, "--epochs", "2", max_file_size=limit)
    assert result.returncode == 1
    assert "Epoch 2/2" in result.stderr  # it failed while saving, not before
    assert error_lines(result) == ["error: models/model.npz: cannot write (File too large)"]
    assert digests(trained, OUTPUTS)["models/model.npz"] == before["models/model.npz"]
    assert temporaries(trained) == []


@pytest.mark.parametrize(("split", "value"), [("train", np.nan), ("val", np.inf)])
def test_non_finite_pixels_are_refused_naming_the_file(
    trained: Path, split: str, value: float
) -> None:
    """Refused as input, before training: never reported as a run that diverged."""
    path = images_path(trained / "data" / "processed", split)
    images = np.load(path)
    images[7, 300] = value
    np.save(path, images)
    before = digests(trained, OUTPUTS)
    result = invoke_stage("train", trained)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: data/processed/{split}_images.npy: image 7 holds NaN or infinite values; "
        "run `python -m stages.preprocess` first"
    ]
    assert "diverged" not in result.stderr
    assert "Epoch 1/" not in result.stderr
    assert digests(trained, OUTPUTS) == before


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header for float32 data of ``shape``."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


RANDOM = np.random.default_rng(0).bytes(4096)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (RANDOM, "not a .npy array file"),
        (b"\x93NUMPY" + RANDOM, "is truncated or corrupt"),
        (b"\x93NUMPY\x01\x00\x0c\x00{'shape': (\n" + RANDOM, "is truncated or corrupt"),
        (b"\x93NUMPY\x01\x00\xff\xff" + RANDOM * 20, "is truncated or corrupt"),
        (npy_header((10**6, 10**6)) + RANDOM, "is truncated or corrupt"),
        (npy_header((200, 784)) + RANDOM, "is truncated or corrupt"),
    ],
    ids=["random", "magic", "garbage-header", "long-header", "huge-shape", "short-data"],
)
def test_unreadable_arrays_are_one_line_that_never_suggests_pickles(
    trained: Path, content: bytes, problem: str
) -> None:
    (trained / "data" / "processed" / "train_images.npy").write_bytes(content)
    result = invoke_stage("train", trained)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: data/processed/train_images.npy: {problem}"
        + (", not a plain .npy array" if problem.startswith("is") else "")
        + "; run `python -m stages.preprocess` first"
    ]
    assert "pickle" not in result.stderr


def test_an_object_array_is_refused_as_python_objects(trained: Path) -> None:
    path = trained / "data" / "processed" / "train_images.npy"
    np.save(path, np.array([{"pixels": 1}], dtype=object), allow_pickle=True)
    result = invoke_stage("train", trained)
    assert error_lines(result) == [
        "error: data/processed/train_images.npy: holds Python objects, not a plain .npy "
        "array; run `python -m stages.preprocess` first"
    ]
    assert "allow_pickle" not in result.stderr


def test_a_network_too_big_for_memory_is_refused_before_allocating(workdir: Path) -> None:
    """784-100000-100000-10: 10 billion parameters, about 242 GB to train; its activations
    (400,010 values a sample) count too."""
    available = available_memory()
    if available is None or available > 242e9:
        pytest.skip("this machine could hold the network")
    write_params(workdir, model={"hidden_sizes": [100000, 100000]})
    result = run_measured("train", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert re.fullmatch(
        r"error: params\.yaml: model\.hidden_sizes \[100000, 100000\] gives 10,079,600,010 "
        r"parameters and 12,800,320 activation values per batch of 32 \(train\.batch_size\), "
        r"which need about 242\.0 GB to train; this machine has [\d.]+ GB available",
        line,
    )
    assert result.peak_bytes < 400e6  # the data and the libraries, no weights
    assert not (workdir / "models" / "model.npz").exists()


def test_a_cnn_too_big_for_memory_is_refused_before_allocating(workdir: Path) -> None:
    """Two convs of 20,000 filters: 10 billion weights in the second alone; refused before
    anything is built or any data is read."""
    available = available_memory()
    if available is None or available > 300e9:
        pytest.skip("this machine could hold the network")
    layers = [conv(20_000, 5), conv(20_000, 5), pool(2), dense(64)]
    write_params(workdir, model={"hidden_sizes": [], "layers": layers})
    result = run_measured("train", workdir, "--batch-size", "64")
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert re.fullmatch(
        r"error: params\.yaml: model\.layers \(4 entries\) gives [\d,]+ parameters and "
        r"[\d,]+ activation values per batch of 64 \(train\.batch_size\), which need about "
        r"[\d.]+ GB to train; this machine has [\d.]+ GB available",
        line,
    )
    assert result.peak_bytes < 400e6
    assert not (workdir / "models" / "model.npz").exists()


def test_a_tiny_cnn_trains_with_the_same_loop(tmp_path: Path) -> None:
    """model.layers: conv, pool, dropout, conv with padding, dense; trained as the MLP is
    (distortions, DVCLive history, the model file, a rerun byte-identical), and it learns
    the patterns (squares 4 pixels wide, which survive the distortions)."""
    write_processed(tmp_path / "data" / "processed", {"train": 300, "val": 60, "test": 30}, block=4)
    layers = [conv(4, 5), pool(2), dropout(0.1), conv(8, 3, padding=1), pool(2), dense(16)]
    augment = project_params()["train"]["augment"]
    train = {"epochs": 4, "batch_size": 16, "learning_rate": 0.01, "augment": augment}
    write_params(tmp_path, model={"hidden_sizes": [], "layers": layers}, train=train)
    workdir = tmp_path
    result = invoke_stage("train", workdir)
    assert result.returncode == 0, result.stderr
    assert "(adam, cosine schedule, 1x28x28 -> 4x24x24 -> 4x12x12 -> 8x12x12 -> 8x6x6 -> 288 " in (
        result.stderr
    )
    assert "in a background process" in result.stderr  # the distortions
    rows = read_live_folder(workdir / "dvclive")
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert rows[-1]["val_accuracy"] > 0.8  # chance is 0.1

    model = Model.load(workdir / "models" / "model.npz")
    assert model.input_shape == (1, 28, 28)
    assert [layer.kind for layer in model.layers] == [
        "conv2d",
        "maxpool2d",
        "dropout",
        "conv2d",
        "maxpool2d",
        "flatten",
        "dense",
        "dense",
    ]
    assert model.metadata["image_shape"] == [28, 28]
    again = invoke_stage("train", workdir)
    assert again.returncode == 0, again.stderr
    assert Model.load(workdir / "models" / "model.npz").get_weights().tobytes() == (
        model.get_weights().tobytes()
    )


def test_a_stack_that_cannot_take_the_images_is_refused_before_any_work(workdir: Path) -> None:
    layers = [conv(8, 5), pool(2), conv(16, 5), pool(2), conv(16, 5), dense(64)]
    write_params(workdir, model={"hidden_sizes": [], "layers": layers})
    (workdir / "data" / "processed" / "train_images.npy").write_bytes(b"never read")
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: params.yaml: model.layers[4] (conv2d) cannot take model.layers[3] (maxpool2d), "
        "of shape (16, 4, 4): its 5x5 kernel does not fit in 4x4 (padding 0)"
    ]
    assert "Traceback" not in result.stderr
    assert not (workdir / "models").exists()
