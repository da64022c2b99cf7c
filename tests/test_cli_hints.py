"""stages.cli.hints: a failed training names the setting most likely at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.in_process import invoke_stage
from support.params import write_params
from support.stage import error_lines

from stages.cli.hints import training_hint
from stages.cli.params import load_params

QUICK = {"epochs": 3, "batch_size": 16}


@pytest.mark.parametrize(
    ("model", "train", "named"),
    [
        ({}, {"weight_decay": 1e6}, "train.weight_decay is 1e+06 (usually 0 to 0.1)"),
        ({"dropout": 0.999}, {}, "model.dropout is 0.999 (usually 0 to 0.5)"),
        (
            {
                "hidden_sizes": [],
                "layers": [
                    {"type": "conv2d", "filters": 4, "kernel": 5},
                    {"type": "dropout", "rate": 0.999},
                    {"type": "dense", "units": 16},
                ],
            },
            {},
            "model.layers[1].rate is 0.999 (usually 0 to 0.5)",
        ),
    ],
    ids=["huge-decay", "dropout-0.999", "dropout-entry-0.999"],
)
def test_a_setting_beyond_its_usual_range_is_named_before_the_learning_rate(
    workdir: Path, model: dict, train: dict, named: str
) -> None:
    write_params(workdir, model=model, train={**QUICK, **train})
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f"; but {named}" in line
    assert line.endswith(": lower it first (train.learning_rate is 0.002)")
    assert not (workdir / "models" / "model.npz").exists()


def test_usual_settings_name_the_learning_rate_alone(workdir: Path) -> None:
    write_params(workdir, train={**QUICK, "learning_rate": 1e6})
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.endswith("a smaller learning rate usually helps (train.learning_rate is 1e+06)")


@pytest.mark.parametrize(
    ("decay", "dropout", "expected"),
    [
        # Adam adds the L2 term to the gradient: from about 0.2 on it outweighs the data
        # (MNIST learns nothing), so 0.2 is named; 0.1 is within the usual range
        (0.2, 0.0, "; but train.weight_decay is 0.2 (usually 0 to 0.1): lower it first (R)"),
        (0.1, 0.0, " (R)"),
        (0.0, 0.6, "; but model.dropout is 0.6 (usually 0 to 0.5): lower it first (R)"),
        (
            0.99,
            0.999,
            "; but train.weight_decay is 0.99 (usually 0 to 0.1) and model.dropout is 0.999 "
            "(usually 0 to 0.5): lower it first (R)",
        ),
    ],
)
def test_the_hint_names_what_is_beyond_its_usual_range(
    tmp_path: Path, decay: float, dropout: float, expected: str
) -> None:
    settings = load_params(
        write_params(tmp_path, model={"dropout": dropout}, train={"weight_decay": decay})
    )
    hint = training_hint(settings.train, settings.model)
    assert hint == expected.replace("R", "train.learning_rate is 0.002")
