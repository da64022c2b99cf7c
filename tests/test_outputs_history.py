"""stages/outputs/history.py: the per-epoch lines train appends to ``$TRAIN_EPOCH_LOG`` for a
program that watches it (the search's pruner), checked against the history CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from support.in_process import invoke_stage
from support.stage import error_lines


def test_train_appends_one_json_line_per_epoch_as_the_csv_records_it(workdir: Path) -> None:
    log = workdir / "epochs.jsonl"
    log.write_text('{"earlier": "run"}\n')
    result = invoke_stage("train", workdir, env={"TRAIN_EPOCH_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0] == {"earlier": "run"}  # appended, not replaced
    with (workdir / "reports" / "train_history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(lines[1:]) == len(rows) == 3
    for line, row in zip(lines[1:], rows, strict=True):
        assert line["epoch"] == int(row["epoch"])
        assert line["epochs"] == 3
        for name, column in (
            ("loss", "train_loss"),
            ("accuracy", "train_accuracy"),
            ("val_loss", "val_loss"),
            ("val_accuracy", "val_accuracy"),
            ("learning_rate", "learning_rate"),
        ):
            assert float(f"{line[name]:.6g}") == float(row[column]), name


def test_without_the_variable_train_writes_no_epoch_lines(workdir: Path) -> None:
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    result = invoke_stage("train", workdir, env={"TRAIN_EPOCH_LOG": ""})
    assert result.returncode == 0, result.stderr
    after = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    assert set(after) - set(before) == {
        Path("models"),
        Path("models/model.npz"),
        Path("reports"),
        Path("reports/train_history.csv"),
    }


def test_an_epoch_log_that_cannot_be_opened_fails_in_one_line(workdir: Path) -> None:
    log = workdir / "no-such-folder" / "epochs.jsonl"
    result = invoke_stage("train", workdir, env={"TRAIN_EPOCH_LOG": str(log)})
    assert result.returncode == 1
    assert error_lines(result) == [f"error: {log}: No such file or directory"]
    assert not (workdir / "models" / "model.npz").exists()
