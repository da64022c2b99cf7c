"""stages.outputs.folders: one writer per output folder, and what killed writers left there
removed by the next one; directly and through the train command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.in_process import invoke_stage
from support.stage import digests, error_lines, stage_environment, temporaries

from stages.outputs.errors import OutputConflict, OutputsBusy
from stages.outputs.folders import locked_folders

HOLD = """
import sys
from pathlib import Path
from stages.outputs.folders import locked_folders
with locked_folders(*map(Path, sys.argv[1:])):
    print("held", flush=True)
    sys.stdin.readline()
"""

# Writes one file of a set, then waits to be killed (SIGKILL: no clean-up runs).
KILLED_WHILE_WRITING = """
import sys, time
from stages.outputs.atomic import OutputSet
with OutputSet() as outputs, outputs.open(sys.argv[1], "w") as handle:
    handle.write("partial"); handle.flush(); print("writing", flush=True)
    time.sleep(60)
"""


def hold(*targets: Path) -> subprocess.Popen[str]:
    """Another process holding the folders of ``targets`` until its stdin gets a line."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, *map(str, targets)],
        env=stage_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def test_a_held_folder_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    models, reports = tmp_path / "models", tmp_path / "reports"
    holder = hold(reports / "history.csv")
    try:
        with pytest.raises(OutputsBusy) as caught, locked_folders(models / "m.npz", reports / "h"):
            pass
        assert str(caught.value) == (
            f"{reports / 'h'}: another run (pid {holder.pid}) is writing outputs into the same "
            "folder; wait for that run to end or stop it, then run again"
        )
        with locked_folders(models / "m.npz"):  # what the refused one had taken, let go
            pass
    finally:
        release(holder)
    with locked_folders(models / "m.npz", reports / "h"):
        assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "reports"]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no lock file anywhere


def test_a_killed_holders_lock_is_free_at_once(tmp_path: Path) -> None:
    holder = hold(tmp_path / "model.npz")
    holder.kill()
    holder.wait()
    with locked_folders(tmp_path / "model.npz"):
        pass


def test_one_file_named_as_two_outputs_is_a_conflict(tmp_path: Path) -> None:
    same = (tmp_path / "model.npz", tmp_path / "sub" / ".." / "model.npz")
    with (
        pytest.raises(OutputConflict, match=r"model\.npz and .*model\.npz are the same file"),
        locked_folders(*same),
    ):
        pass
    assert OutputConflict.exit_code == 2


def test_the_next_holder_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    target = tmp_path / "history.csv"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_WRITING, str(target)],
        env=stage_environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == "writing\n"
    writer.kill()
    writer.wait()
    (tmp_path / ".notes.txt.tmp").write_text("not ours")  # a name of another program's
    assert len(temporaries(tmp_path)) == 2
    with locked_folders(target):
        assert temporaries(tmp_path) == [".notes.txt.tmp"]


OUTPUTS = ("models/model.npz", "dvclive/metrics.json")
EPOCHS = 400


@pytest.mark.slow
def test_a_second_train_is_refused_at_once_and_the_first_run_ends_whole(
    trained: Path,
) -> None:
    # 40,000 steps of one image: seconds of training
    first = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "--epochs", str(EPOCHS), "--batch-size", "1"],
        cwd=trained,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        for line in first.stderr:  # its folders are locked before training starts
            if "Starting training" in line:
                break
        second = invoke_stage("train", trained, "--epochs", "1")
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 1
        assert error_lines(second) == [
            f"error: dvclive/metrics.json: another run (pid {first.pid}) is writing outputs into "
            "the same folder; wait for that run to end or stop it, then run again"
        ]
        assert "Epoch" not in second.stderr
        first.stderr.read()
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
        first.wait()
    metrics = (trained / "dvclive" / "metrics.json").read_text()
    assert f'"step": {EPOCHS}' in metrics  # the first run's history, beside its model
    model_epochs = invoke_stage("evaluate", trained)
    assert model_epochs.returncode == 0, model_epochs.stderr
    assert temporaries(trained) == []


def test_one_file_as_model_and_live_metrics_is_a_usage_error_before_training(
    trained: Path,
) -> None:
    before = digests(trained, OUTPUTS)
    result = invoke_stage("train", trained, "--model", "dvclive/metrics.json")
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: dvclive/metrics.json and dvclive/metrics.json are the same file; give each "
        "output its own path"
    ]
    assert "Epoch" not in result.stderr
    assert digests(trained, OUTPUTS) == before
