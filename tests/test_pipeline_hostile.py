"""Hostile params and a killed dvc, through the real ``dvc repro`` in a temporary git repository
(the tiny generated dataset, seconds per run)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.dvc_project import Project, assert_last_run_comes_back
from support.params import alias_bomb
from support.processes import stage_pids, wait_for
from support.stage import digests, error_lines, temporaries
from support.tiny_pipeline import tiny_project

from stages.cli.yaml_loader import MAX_VALUES
from stages.outputs.history import read_live_folder

pytestmark = pytest.mark.pipeline

RECORDED = (
    "models/model.npz",
    "dvclive/metrics.json",
    "metrics.json",
    "reports/confusion.csv",
    "dvc.lock",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = tiny_project(tmp_path_factory.mktemp("hostile"))
    project.dvc("repro")
    project.commit("first run")
    return project


@pytest.fixture
def project(built: Project, tmp_path: Path) -> Project:
    """A private copy of the built project (repository, DVC cache and workspace)."""
    return built.copy(tmp_path / "project")


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def recorded_model_md5(project: Project) -> str:
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    (out,) = (o for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.npz")
    return out["md5"]


def test_no_validation_split_alone_runs_with_every_other_default(project: Project) -> None:
    """``data.val_size: 0``, as the README documents it: the monitor, which decides nothing
    with patience 0 and restore_best false, falls back to the training split."""
    project.set_param("data", "val_size", 0)
    result = project.dvc("repro", check=False)
    assert result.returncode == 0, result.stderr
    assert "up to date" in project.dvc("status").stdout
    rows = read_live_folder(project.root / "dvclive")
    assert {(row["val_loss"], row["val_accuracy"]) for row in rows} == {(None, None)}
    assert file_md5(project.root / "models/model.npz") == recorded_model_md5(project)


def test_a_monitor_that_needs_the_missing_split_is_refused_before_any_stage_works(
    project: Project,
) -> None:
    before = digests(project.root, RECORDED)
    project.set_param("data", "val_size", 0)
    project.set_param("train", "patience", 2)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: params.yaml: train.monitor is val_accuracy, which needs a validation split, "
        "but data.val_size is 0 (no split); set train.monitor to accuracy, or data.val_size "
        "above 0"
    ]
    assert "Running stage 'train'" not in result.stdout
    assert digests(project.root, RECORDED) == before


def test_an_alias_bomb_is_refused_by_the_first_stage_that_reads_it(project: Project) -> None:
    """dvc itself expands aliases when it compares params (seconds per thousand values);
    the stage refuses at once, in one line."""
    before = digests(project.root, RECORDED)
    text = alias_bomb(2)  # 1,111 values in its largest list
    params = project.root / "params.yaml"
    params.write_text(
        text.replace("val_size: 5000", "val_size: 10").replace("epochs: 20", "epochs: 2")
    )
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        f"error: params.yaml: the values at line 4 expand to more than {MAX_VALUES:,} "
        "(aliases repeat what they point to); write the values out"
    ]
    assert_last_run_comes_back(project, before, RECORDED)


def test_a_key_given_twice_is_refused_by_dvc_and_by_the_stages(project: Project) -> None:
    before = digests(project.root, RECORDED)
    params = project.root / "params.yaml"
    text = params.read_text()
    params.write_text(text.replace("  epochs: 2\n", "  epochs: 2\n  epochs: 1\n"))
    assert params.read_text() != text
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert "Running stage" not in result.stdout
    assert "duplicate" in (result.stdout + result.stderr).lower()
    by_hand = project.run(sys.executable, "-m", "stages.train", check=False)
    assert by_hand.returncode == 1
    (line,) = error_lines(by_hand)
    assert line.startswith("error: params.yaml: key train.epochs is given twice (lines ")
    assert digests(project.root, RECORDED) == before  # neither dvc nor train started


def test_a_train_left_running_by_a_killed_dvc_never_replaces_the_recorded_model(
    project: Project, tmp_path: Path
) -> None:
    """``kill -9`` of dvc alone: its train runs on as an orphan, which nothing will record. It
    stops at once, and a new ``dvc repro`` with other params ends with its own model on disk,
    the one ``dvc.lock`` records."""
    project.set_param("model", "hidden_sizes", [512, 512])  # about 20 s of training
    project.set_param("train", "epochs", 1000)
    log = tmp_path / "killed-dvc.log"
    with log.open("w") as output:
        dvc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro"],
            cwd=project.root,
            env=project.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Epoch 2/1000" in log.read_text(), 120, "train to start under dvc")
        (orphan,) = stage_pids(project.root, "train")
        dvc.send_signal(signal.SIGKILL)
        dvc.wait()
        project.set_param("model", "hidden_sizes", [64, 32])
        project.set_param("train", "epochs", 3)
        again = project.dvc("repro", check=False)
        wait_for(lambda: not stage_pids(project.root, "train"), 300, "the orphan to end")
    finally:
        dvc.kill()
        dvc.wait()
    assert again.returncode == 0, again.stdout + again.stderr
    assert orphan not in stage_pids(project.root, "train")
    assert file_md5(project.root / "models/model.npz") == recorded_model_md5(project)
    assert len(read_live_folder(project.root / "dvclive")) == 3
    assert (
        f"error: the dvc process that started this stage (pid {dvc.pid}) has ended; stopped, "
        "since dvc would not record the outputs"
    ) in log.read_text()
    assert "up to date" in project.dvc("status").stdout
    assert temporaries(project.root) == []


def test_a_shift_beyond_the_picture_is_refused_under_dvc_repro(project: Project) -> None:
    """``shift: 1e9`` trained on blank pictures and exited 0: refused in one line before any
    training, and the last good run comes back."""
    before = digests(project.root, RECORDED)
    strengths = {"rotation": 8, "scale": 0.1, "shear": 0.1, "shift": 1e9}
    strengths |= {"elastic_alpha": 15, "elastic_sigma": 4, "mirror": False}
    project.set_param("train", "augment", {"mnist": strengths, "fashion-mnist": "none"})
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: params.yaml: train.augment.mnist.shift is 1e+09 pixels, more than 0.25 times "
        "the 28-pixel side of the pictures (7); choose at most that"
    ]
    assert "Starting training" not in result.stderr
    assert_last_run_comes_back(project, before, RECORDED)
