"""stages.cli.hints: a failed training names the setting most likely at fault."""

from __future__ import annotations

from pathlib import Path

from support.in_process import invoke_stage
from support.params import write_params
from support.stage import error_lines


def test_a_huge_weight_decay_is_named_not_the_learning_rate(workdir: Path) -> None:
    write_params(workdir, train={"epochs": 3, "batch_size": 16, "weight_decay": 1e6})
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.endswith(
        "; but train.weight_decay is 1e+06, far beyond the usual 0 to 0.1: lower it first "
        "(train.learning_rate is 0.002)"
    )
    assert not (workdir / "models" / "model.npz").exists()
