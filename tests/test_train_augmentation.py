"""The train command with train.augment on: byte-identical reruns, validation never
distorted, its background worker ended on every way out, its params checked."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.in_process import invoke_stage
from support.params import project_params, write_params
from support.processed import write_processed
from support.processes import exited
from support.stage import error_lines, run_stage, stage_command, stage_environment

from nnlib import Model
from stages.augment.distortions import Strengths
from stages.augment.epochs import describe
from stages.data.processed import load_split
from stages.outputs.history import read_live_folder

STRENGTHS = {
    "rotation": 12,
    "scale": 0.1,
    "shear": 0.15,
    "shift": 2,
    "elastic_alpha": 15,
    "elastic_sigma": 4,
    "mirror": False,
}
QUICK = {"epochs": 3, "batch_size": 16, "learning_rate": 0.01}
WORKER = re.compile(r"in a background process \(pid (\d+)\)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Processed data whose classes survive distortions (squares 4 pixels wide) and params
    with the distortions on: 300 train, 60 val, 30 test images."""
    sizes = {"train": 300, "val": 60, "test": 30}
    write_processed(tmp_path / "data" / "processed", sizes, block=4)
    write_params(tmp_path, train={**QUICK, "augment": {"mnist": STRENGTHS}})
    return tmp_path


def worker_pid(stderr: str) -> int:
    """The worker's process id, from a run's log."""
    found = WORKER.search(stderr)
    assert found, stderr
    return int(found.group(1))


def history(root: Path) -> list[dict[str, Any]]:
    return read_live_folder(root / "dvclive")


@pytest.mark.slow
def test_the_project_params_switch_augmentation_on_in_the_background(project: Path) -> None:
    """params.yaml's own strengths (the ones the tests' params switch off) are used as is."""
    strengths = project_params()["train"]["augment"]["mnist"]
    write_params(project, train={**QUICK, "augment": {"mnist": strengths}})
    result = run_stage("train", project)
    assert result.returncode == 0, result.stderr
    described = describe(Strengths(**strengths))
    assert (
        f"Distorting the training images afresh every epoch ({described}), "
        "in a background process (pid "
    ) in result.stderr
    assert exited(worker_pid(result.stderr))


@pytest.mark.slow
def test_reruns_give_the_same_model_bytes_and_augmentation_changes_them(project: Path) -> None:
    model = project / "models" / "model.npz"
    assert run_stage("train", project).returncode == 0
    first = model.read_bytes()
    assert run_stage("train", project).returncode == 0
    assert model.read_bytes() == first
    write_params(project, train=QUICK)  # augment: none
    assert run_stage("train", project).returncode == 0
    assert model.read_bytes() != first


def test_validation_is_scored_on_the_stored_images(project: Path) -> None:
    """The last epoch's val_loss is the saved model's loss on val_images.npy as stored."""
    result = run_stage("train", project)
    assert result.returncode == 0, result.stderr
    model = Model.load(project / "models" / "model.npz")
    x_val, y_val = load_split(project / "data" / "processed", "val", 10)
    loss = model.compute_loss(y_val, model.predict(x_val))
    assert float(history(project)[-1]["val_loss"]) == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_commands_that_score_images_load_no_augmentation_code(tmp_path: Path, command: str) -> None:
    code = (
        f"import sys, stages.{command}\n"
        "print(sorted(m for m in sys.modules if m.startswith('stages.augment')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=stage_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_run_that_fails_ends_the_worker(project: Path) -> None:
    write_params(
        project,
        train={**QUICK, "augment": {"mnist": STRENGTHS}, "optimizer": "sgd", "learning_rate": 1e12},
    )
    result = run_stage("train", project)
    assert result.returncode == 1
    assert "training diverged in epoch 1/3" in error_lines(result)[0]
    assert exited(worker_pid(result.stderr))


def start_long_run(root: Path) -> tuple[subprocess.Popen[str], int]:
    """``python -m stages.train`` for 100000 epochs, once epoch 2 is done: (process, worker pid)."""
    process = subprocess.Popen(
        stage_command("train", "--epochs", "100000"),
        cwd=root,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen, deadline = "", time.monotonic() + 60
    for line in process.stderr:
        seen += line
        if "Epoch 2/100000" in line or time.monotonic() > deadline:
            break
    return process, worker_pid(seen)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [(signal.SIGINT, 130, "error: interrupted"), (signal.SIGTERM, 143, "error: terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_an_interrupted_run_ends_the_worker(
    project: Path, signum: int, code: int, message: str
) -> None:
    process, pid = start_long_run(project)
    process.send_signal(signum)
    assert process.stderr is not None
    rest = process.stderr.read()
    assert process.wait(timeout=30) == code
    assert message in rest
    assert "Traceback" not in rest  # nor from the worker
    assert exited(pid)
    assert not (project / "models" / "model.npz").exists()


@pytest.mark.slow
def test_ctrl_c_on_the_process_group_leaves_one_error_line(project: Path) -> None:
    """A terminal's Ctrl-C reaches the worker too: it ignores it, the trainer stops it."""
    process = subprocess.Popen(
        stage_command("train", "--epochs", "100000"),
        cwd=project,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    seen = ""
    for line in process.stderr:
        seen += line
        if "Epoch 2/100000" in line:
            break
    pid = worker_pid(seen)
    os.killpg(process.pid, signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=30) == 130
    assert [line for line in rest.splitlines() if "error" in line.lower()] == ["error: interrupted"]
    assert "Traceback" not in rest
    assert exited(pid)


@pytest.mark.slow
def test_a_killed_trainer_leaves_no_worker_behind(project: Path) -> None:
    """SIGKILL gives the trainer no chance to clean up: the worker notices and ends."""
    process, pid = start_long_run(project)
    process.kill()
    process.wait(timeout=30)
    assert exited(pid, timeout=15)


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        (
            {"mnist": {**STRENGTHS, "rotation": -5}},
            "train.augment.mnist.rotation must be a number of degrees in",
        ),
        (
            {"mnist": {**STRENGTHS, "scale": 1}},
            "train.augment.mnist.scale must be a number in [0, 0.5], got 1",
        ),
        (
            {"mnist": {**STRENGTHS, "shear": 1e300}},
            "train.augment.mnist.shear must be a number in [0, 1] (45 degrees), got 1e+300",
        ),
        (
            {"mnist": {**STRENGTHS, "mirror": "yes"}},
            "train.augment.mnist.mirror must be true or false, got 'yes'",
        ),
        (
            {"mnist": {**STRENGTHS, "rotaton": 5}},
            "unknown key train.augment.mnist.rotaton (did you mean train.augment.mnist.rotation?)",
        ),
        (
            {"mnist": "off"},
            "train.augment.mnist must be none or a mapping of rotation, scale, shear, shift",
        ),
        ("off", "train.augment must be none, or for each dataset (mnist, fashion-mnist, images)"),
        (
            {"fashion-mnist": "none"},
            "train.augment has no entry for mnist (data.dataset); add mnist: none, or its "
            "strengths",
        ),
        (
            STRENGTHS,
            "unknown key train.augment.rotation: train.augment takes one entry per dataset "
            "(mnist, fashion-mnist, images)",
        ),
    ],
    ids=[
        "negative",
        "scale-1",
        "shear-1e300",
        "mirror-text",
        "typo",
        "off",
        "all-off",
        "no-entry",
        "flat",
    ],
)
def test_bad_strengths_are_one_line_before_any_work(
    tmp_path: Path, augment: object, message: str
) -> None:
    write_params(tmp_path, train={"augment": augment})
    result = invoke_stage("train", tmp_path)
    assert result.returncode == 1
    lines = error_lines(result)
    assert lines[0].startswith(f"error: params.yaml: {message}")
    assert len(lines) == (len(STRENGTHS) if augment is STRENGTHS else 1)  # a line per key
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("name", "value", "limit"),
    [
        ("shift", 1e9, "0.25 times the 28-pixel side of the pictures (7)"),
        ("shift", 7.5, "0.25 times the 28-pixel side of the pictures (7)"),
        ("elastic_sigma", 1e6, "1 times the 28-pixel side of the pictures (28)"),
        ("elastic_alpha", 1e8, "2 times the 28-pixel side of the pictures (56)"),
    ],
)
def test_strengths_in_pixels_are_bounded_by_the_pictures_side(
    project: Path, name: str, value: float, limit: str
) -> None:
    """A shift of 1e9 pixels trained on blank pictures; an elastic sigma of 1e6 took 5.8 GB
    and 1e8 ended in MemoryError: refused before any work, in one line."""
    write_params(project, train={**QUICK, "augment": {"mnist": {**STRENGTHS, name: value}}})
    result = invoke_stage("train", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: params.yaml: train.augment.mnist.{name} is {value:g} pixels, more than "
        f"{limit}; choose at most that"
    ]
    assert "Starting training" not in result.stderr
    assert not (project / "models").exists()


def test_the_largest_strengths_are_accepted(project: Path) -> None:
    """At every bound at once, the run starts training."""
    largest = {"rotation": 180, "scale": 0.5, "shear": 1, "shift": 7, "elastic_alpha": 56}
    write_params(
        project,
        train={
            **QUICK,
            "epochs": 1,
            "augment": {"mnist": {**STRENGTHS, **largest, "elastic_sigma": 28}},
        },
    )
    result = invoke_stage("train", project)
    assert "Starting training" in result.stderr
    assert "Epoch 1/1" in result.stderr, result.stderr[-2000:]


def test_every_missing_strength_is_a_line(tmp_path: Path) -> None:
    write_params(tmp_path, train={"augment": {"mnist": {"rotation": 5}}})
    result = invoke_stage("train", tmp_path)
    assert result.returncode == 1
    missing = [key for key in STRENGTHS if key != "rotation"]
    assert error_lines(result) == [
        f"error: params.yaml: train.augment.mnist.{key} is missing" for key in missing
    ]


def test_strengths_of_zero_are_no_augmentation(project: Path) -> None:
    """Every strength 0 is the same run as ``none``: no worker, the same model bytes."""
    zero = dict.fromkeys(STRENGTHS, 0) | {"mirror": False}
    write_params(project, train={**QUICK, "augment": {"mnist": zero}})
    result = run_stage("train", project)
    assert result.returncode == 0, result.stderr
    assert "Distorting" not in result.stderr
    assert not WORKER.search(result.stderr)
    with_zeros = (project / "models" / "model.npz").read_bytes()
    write_params(project, train=QUICK)
    assert run_stage("train", project).returncode == 0
    assert (project / "models" / "model.npz").read_bytes() == with_zeros
    assert np.isfinite([float(row["val_loss"]) for row in history(project)]).all()


def test_no_room_for_the_workers_shared_memory_is_one_line(project: Path) -> None:
    """Its memory is a file in /dev/shm (or the temporary folder) that Python does not name:
    the line says where, how much, and what to do."""
    result = run_stage("train", project, max_file_size=1000)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert re.fullmatch(
        r"error: (/dev/shm|/\S+): cannot hold the \d+ MB the distortion worker shares with "
        r"training \(File too large\); free space there, or switch augmentation off "
        r"\(train\.augment\.<dataset>: none\)",
        line,
    ), line
