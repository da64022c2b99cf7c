"""stages.outputs.claims and journal: one writer per output, and a commit killed between its
moves rolled back by the next run, directly and through the train command."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO
from support.in_process import invoke_stage
from support.stage import digests, error_lines, run_stage, stage_environment, temporaries

from stages.outputs.atomic import OutputSet
from stages.outputs.claims import OutputConflict, OutputsBusy, claimed
from stages.outputs.journal import journal_path

HOLD = """
import sys
from stages.outputs.claims import claimed
with claimed(*sys.argv[1:]):
    print("held", flush=True)
    sys.stdin.readline()
"""

# Moves an output set's files into place, and is killed (SIGKILL, no clean-up) right after
# the first one: the new a.txt beside the old b.txt.
KILLED_BETWEEN_MOVES = """
import os, signal, sys
from stages.outputs.atomic import OutputSet
replace = os.replace
def replace_then_die(source, destination):
    replace(source, destination)
    if os.path.basename(destination) == "a.txt":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace_then_die
with OutputSet() as outputs:
    for name in ("a.txt", "b.txt", "c.txt"):
        with outputs.open(os.path.join(sys.argv[1], name), "w") as handle:
            handle.write("new " + name)
"""

# A sitecustomize module that makes a command kill itself (SIGKILL) right after it moved a
# file named $KILL_AFTER_MOVING into place.
SITECUSTOMIZE = """
import os, signal
_replace = os.replace
def _replace_then_die(source, destination, *args, **kwargs):
    _replace(source, destination, *args, **kwargs)
    if os.path.basename(os.fspath(destination)) == os.environ.get("KILL_AFTER_MOVING"):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = _replace_then_die
"""


def hold(*targets: Path) -> subprocess.Popen[str]:
    """Another process holding ``targets`` until its stdin gets a line."""
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


def test_a_held_output_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    model, history = tmp_path / "model.npz", tmp_path / "history.csv"
    holder = hold(history)
    try:
        with pytest.raises(OutputsBusy) as caught, claimed(model, history):
            pass
        assert str(caught.value) == (
            f"{history}: another run (pid {holder.pid}) is writing it; wait for that run to "
            "end or stop it, then run again"
        )
        assert not model.with_name(".model.npz.lock").exists()  # what it had taken, let go
    finally:
        release(holder)
    with claimed(model, history):
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".history.csv.lock",
            ".model.npz.lock",
        ]
    assert list(tmp_path.iterdir()) == []


def test_a_killed_holders_claim_is_free_at_once(tmp_path: Path) -> None:
    holder = hold(tmp_path / "model.npz")
    holder.kill()
    holder.wait()
    assert (tmp_path / ".model.npz.lock").exists()  # the file stays, its lock went with it
    with claimed(tmp_path / "model.npz"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_one_file_named_as_two_outputs_is_a_conflict(tmp_path: Path) -> None:
    same = (tmp_path / "model.npz", tmp_path / "sub" / ".." / "model.npz")
    with (
        pytest.raises(OutputConflict, match=r"model\.npz and .*model\.npz are the same file"),
        claimed(*same),
    ):
        pass
    assert OutputConflict.exit_code == 2


def test_a_claim_removes_the_folders_it_made_if_nothing_was_written(tmp_path: Path) -> None:
    with claimed(tmp_path / "models" / "deep" / "model.npz"):
        assert (tmp_path / "models" / "deep").is_dir()
    assert list(tmp_path.iterdir()) == []


def kill_between_moves(directory: Path) -> None:
    (directory / "a.txt").write_text("old a.txt")
    (directory / "b.txt").write_text("old b.txt")  # c.txt is new
    writer = subprocess.run(
        [sys.executable, "-c", KILLED_BETWEEN_MOVES, str(directory)],
        env=stage_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    assert (directory / "a.txt").read_text() == "new a.txt"  # half a commit
    assert (directory / "b.txt").read_text() == "old b.txt"


def test_a_commit_killed_between_moves_is_rolled_back_by_the_next_claim(tmp_path: Path) -> None:
    kill_between_moves(tmp_path)
    assert journal_path(tmp_path / "c.txt").exists()
    with claimed(tmp_path / "c.txt"):  # any one target of the set will do
        pass
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.txt": "old a.txt",
        "b.txt": "old b.txt",
    }


def test_a_rolled_back_set_is_then_replaced_as_usual(tmp_path: Path) -> None:
    kill_between_moves(tmp_path)
    with OutputSet() as outputs, outputs.open(tmp_path / "b.txt", "w") as handle:
        handle.write("newer b.txt")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.txt": "old a.txt",
        "b.txt": "newer b.txt",
    }


OUTPUTS = ("models/model.npz", "reports/train_history.csv")


def test_train_killed_between_its_moves_is_rolled_back_by_the_next_run(
    trained: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The history is moved first: a kill after it leaves a new history beside the old model
    (and the old files' backups); the next train puts the recorded set back, leaving nothing
    behind, even when it then fails itself."""
    before = digests(trained, OUTPUTS)
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    killed = run_stage(
        "train",
        trained,
        "--epochs",
        "2",
        env={"KILL_AFTER_MOVING": "train_history.csv", "PYTHONPATH": f"{hooks}:{REPO}"},
    )
    assert killed.returncode == -signal.SIGKILL
    after_kill = digests(trained, OUTPUTS)
    assert after_kill["models/model.npz"] == before["models/model.npz"]
    assert after_kill["reports/train_history.csv"] != before["reports/train_history.csv"]

    (trained / "data" / "processed").rename(trained / "elsewhere")
    next_run = invoke_stage("train", trained)
    assert next_run.returncode == 1
    assert error_lines(next_run) == [
        "error: data/processed/meta.json: no such file (run `python -m stages.preprocess` first)"
    ]
    assert "rolled back an interrupted commit" in next_run.stderr
    assert digests(trained, OUTPUTS) == before
    assert temporaries(trained) == []


EPOCHS = 400


@pytest.mark.slow
def test_a_second_train_is_refused_at_once_and_the_first_set_stays_whole(
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
        for line in first.stderr:  # its outputs are claimed before training starts
            if "Starting training" in line:
                break
        second = invoke_stage("train", trained, "--epochs", "1")
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 1
        assert error_lines(second) == [
            f"error: models/model.npz: another run (pid {first.pid}) is writing it; wait for "
            "that run to end or stop it, then run again"
        ]
        assert "Epoch" not in second.stderr
        first.stderr.read()
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
        first.wait()
    history = (trained / "reports" / "train_history.csv").read_text().splitlines()
    assert len(history) == 1 + EPOCHS  # the first run's history, beside the first run's model
    model_epochs = invoke_stage("evaluate", trained)
    assert model_epochs.returncode == 0, model_epochs.stderr
    assert temporaries(trained) == []


def test_one_file_as_model_and_history_is_a_usage_error_before_training(trained: Path) -> None:
    before = digests(trained, OUTPUTS)
    result = invoke_stage("train", trained, "--history", "models/model.npz")
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: models/model.npz and models/model.npz are the same file; give each output its "
        "own path"
    ]
    assert "Epoch" not in result.stderr
    assert digests(trained, OUTPUTS) == before
