"""stages.outputs.folders: one writer per output folder, and what killed writers left there
removed by the next one; directly and through the train command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.in_process import invoke_stage
from support.params import write_params
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


def test_an_output_inside_what_the_command_reads_is_a_conflict(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    with (
        pytest.raises(OutputConflict, match=r"raw/a\.npy: this command reads the folder .*raw"),
        locked_folders(tmp_path / "raw" / "a.npy", reads=[tmp_path / "raw"]),
    ):
        pass
    with (
        pytest.raises(OutputConflict, match=r"m\.npz: this command reads that file"),
        locked_folders(tmp_path / "m.npz", reads=[tmp_path / "sub" / ".." / "m.npz"]),
    ):
        pass
    with locked_folders(tmp_path / "rawer" / "a.npy", reads=[tmp_path / "raw"]):
        pass  # a sibling whose name starts alike is another folder


@pytest.mark.parametrize(
    ("stage", "args", "message", "kept"),
    [
        (
            "evaluate",
            ["--metrics", "models/model.npz"],
            "models/model.npz: this command reads that file",
            "models/model.npz",
        ),
        (
            "train",
            ["--model", "data/processed/meta.json"],
            "data/processed/meta.json: this command reads the folder data/processed, which "
            "holds it",
            "data/processed/meta.json",
        ),
        (
            "train",
            ["--live-dir", "data/processed"],
            "data/processed/metrics.json: this command reads the folder data/processed, which "
            "holds it",
            "data/processed/meta.json",
        ),
        (
            "train",
            ["--live-dir", "."],
            "--live-dir .: holds 'data' and 2 more, which DVCLive did not write",
            "metrics.json",
        ),
    ],
    ids=["evaluate-metrics-over-model", "train-model-over-meta", "live-in-data", "live-in-root"],
)
def test_a_command_never_writes_over_what_it_reads(
    trained: Path, stage: str, args: list[str], message: str, kept: str
) -> None:
    (trained / "metrics.json").write_text("{}\n")  # evaluate's, beside train's outputs
    before = digests(trained, [kept, *OUTPUTS])
    result = invoke_stage(stage, trained, *args)
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert line.startswith(f"error: {message}")
    assert "Epoch" not in result.stderr
    assert digests(trained, [kept, *OUTPUTS]) == before


def test_preprocess_never_writes_among_the_raw_files(tmp_path: Path, files: dict) -> None:
    raw = tmp_path / "data" / "raw" / "mnist"
    raw.mkdir(parents=True)
    for name, data in files.items():
        (raw / name).write_bytes(data)
    write_params(tmp_path, data={"val_size": 10})
    before = sorted(p.name for p in raw.iterdir())
    result = invoke_stage("preprocess", tmp_path, "--out-dir", "data/raw/mnist")
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: data/raw/mnist/train_images.npy: this command reads the folder data/raw, "
        "which holds it; write its outputs elsewhere"
    ]
    assert sorted(p.name for p in raw.iterdir()) == before
