"""stages/outputs/history.py: train logs each epoch through DVCLive as it ends (what
``dvc exp show`` and the search's pruner read while training runs), and reads it back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.in_process import invoke_stage
from support.params import write_params
from support.stage import digests, error_lines, run_stage, stage_environment

from stages.outputs.history import METRICS, metric_file, read_history, read_live_folder

EPOCH_LINE = re.compile(
    r"Epoch (\d+)/\d+, Loss: ([\d.]+), Avg Accuracy: ([\d.]+), "
    r"Val Loss: ([\d.]+), Val Accuracy: ([\d.]+), LR: ([\d.e+-]+)"
)


def test_train_logs_every_epoch_as_its_log_line_says(workdir: Path) -> None:
    result = invoke_stage("train", workdir)
    assert result.returncode == 0, result.stderr
    lines = [match.groups() for match in EPOCH_LINE.finditer(result.stderr)]
    rows = read_live_folder(workdir / "dvclive")
    assert len(rows) == len(lines) == 3
    for row, line in zip(rows, lines, strict=True):
        assert row["epoch"] == int(line[0])
        for field, shown in zip(
            ("loss", "accuracy", "val_loss", "val_accuracy"), line[1:5], strict=True
        ):
            assert f"{row[field]:.4f}" == shown, field
        assert f"{row['learning_rate']:.3g}" == line[5]
    summary = json.loads((workdir / "dvclive" / "metrics.json").read_text())
    assert summary["step"] == 3
    assert summary["val_accuracy"] == rows[-1]["val_accuracy"]
    assert not (workdir / "dvclive" / "dvc.yaml").exists()  # dvc.yaml stays hand-written


def test_a_rerun_writes_the_same_bytes(workdir: Path) -> None:
    files = ["dvclive/metrics.json", *(f"dvclive/{metric_file(m)}" for m in METRICS)]
    assert invoke_stage("train", workdir).returncode == 0
    first = digests(workdir, files)
    assert None not in first.values()
    assert invoke_stage("train", workdir).returncode == 0
    assert digests(workdir, files) == first


def test_without_a_validation_split_no_validation_figure_is_logged(workdir: Path) -> None:
    processed = workdir / "data" / "processed"
    np.save(processed / "val_images.npy", np.load(processed / "val_images.npy")[:0])
    np.save(processed / "val_labels.npy", np.load(processed / "val_labels.npy")[:0])
    write_params(
        workdir,
        data={"val_size": 0},
        train={"epochs": 3, "batch_size": 16, "learning_rate": 0.01, "monitor": "accuracy"},
    )
    result = invoke_stage("train", workdir)
    assert result.returncode == 0, result.stderr
    rows = read_live_folder(workdir / "dvclive")
    assert [row["val_accuracy"] for row in rows] == [None, None, None]
    assert not (workdir / "dvclive" / metric_file("val_accuracy")).exists()


def test_read_history_keeps_only_complete_epochs() -> None:
    files = {
        metric_file("loss"): "step\tloss\n1\t0.5\n2\t0.4\n3\t0.3",  # 3 half written
        metric_file("val_accuracy"): "step\tval_accuracy\n1\t0.9\n2\tnan\n",
        metric_file("learning_rate"): "step\tlearning_rate\n1\t0.001\n2\t0.0005\n",
    }
    rows = read_history(files.get)
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[0] == {
        "epoch": 1,
        "loss": 0.5,
        "accuracy": None,
        "val_loss": None,
        "val_accuracy": 0.9,
        "learning_rate": 0.001,
    }
    assert rows[1]["val_accuracy"] != rows[1]["val_accuracy"]  # nan, as logged
    assert read_history({}.get) == []


@pytest.mark.slow
def test_the_history_grows_while_training_runs(trained: Path) -> None:
    """Each epoch is on disk as it ends, not when training is over."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "--epochs", "400", "--batch-size", "1"],
        cwd=trained,
        env=stage_environment(),
        stderr=subprocess.DEVNULL,
    )
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            rows = read_live_folder(trained / "dvclive")
            if len(rows) >= 2:
                seen = [int(row["epoch"]) for row in rows]
                break
            time.sleep(0.05)
        assert process.poll() is None, "training ended before two epochs were seen"
    finally:
        process.kill()
        process.wait()
    assert seen[:2] == [1, 2]


def test_a_full_disk_while_logging_names_the_live_folder(workdir: Path) -> None:
    """DVCLive's writes name no file ("error: File too large" was all): the line names the
    folder, and the model is not replaced."""
    result = run_stage("train", workdir, max_file_size=100)
    assert result.returncode == 1
    assert error_lines(result) == ["error: dvclive: cannot write the history (File too large)"]
    assert not (workdir / "models" / "model.npz").exists()


def test_dvclive_opens_its_dvc_repository_through_the_method_the_stage_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history replaces DVCLive's ``_init_dvc`` (a private method) so that training opens
    no DVC repository. If a DVCLive release renamed it, the replacement would silently do
    nothing: a plain Live must still go through that method, and the stage's must not."""
    from dvclive import Live
    from stages.outputs.history import live_history

    calls: list[str] = []
    monkeypatch.setattr(Live, "_init_dvc", lambda self: calls.append("plain"))
    with Live(str(tmp_path / "plain"), dvcyaml=False, save_dvc_exp=False):
        pass
    assert calls == ["plain"]
    with live_history(tmp_path / "stage"):
        pass
    assert calls == ["plain"]
