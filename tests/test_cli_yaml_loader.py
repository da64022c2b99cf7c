"""stages.cli.yaml_loader: a params file's duplicate keys and alias bombs, refused at once,
directly and through the train command."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from support import REPO
from support.in_process import invoke_stage
from support.params import alias_bomb, project_params
from support.processed import write_processed
from support.stage import error_lines, run_measured

from stages.cli.yaml_loader import MAX_VALUES, YamlProblem, check_nodes, parse_yaml


def test_the_expanded_size_is_counted_without_expanding() -> None:
    text = alias_bomb(1)
    assert parse_yaml(text)["model"]["hidden_sizes"][0] == [1] * 10
    counted = check_nodes(yaml.compose(text))
    assert counted > 2 * (1 + 10 * 11)  # both uses of the 111 values of level 1


def test_a_bomb_is_refused_while_counting() -> None:
    started = time.process_time()
    with pytest.raises(YamlProblem, match=f"expand to more than {MAX_VALUES:,}"):
        parse_yaml(alias_bomb(9))  # a billion values
    assert time.process_time() - started < 0.5


def test_nesting_deeper_than_the_parser_takes_is_one_line() -> None:
    with pytest.raises(YamlProblem, match="nested too deeply"):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000)


def test_train_refuses_an_alias_bomb_at_once_in_one_short_line(tmp_path: Path) -> None:
    """7 levels: 10 million values, 34 MB when printed. Refused in under 2 s and 200 MB, at
    the first list that stands for more than the limit (line 4, 1,111 values)."""
    bomb = alias_bomb(7)
    (tmp_path / "params.yaml").write_text(bomb)
    assert len(bomb) < len((REPO / "params.yaml").read_text()) + 1000  # a few lines more
    write_processed(tmp_path / "data" / "processed", {"train": 40, "val": 10, "test": 10})
    result = run_measured("train", tmp_path, timeout=60)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: params.yaml: the values at line 4 expand to more than {MAX_VALUES:,} "
        "(aliases repeat what they point to); write the values out"
    ]
    assert result.cpu_seconds < 2.0  # CPU time: the machine may be busy with other work
    assert result.peak_bytes < 200e6
    assert not (tmp_path / "models").exists()


def test_train_refuses_a_key_given_twice(tmp_path: Path) -> None:
    """``epochs: 40`` then ``epochs: 1``: PyYAML alone takes the last, silently."""
    text = (REPO / "params.yaml").read_text()
    epochs = f"  epochs: {project_params()['train']['epochs']}"
    (tmp_path / "params.yaml").write_text(text.replace(f"{epochs}\n", f"{epochs}\n  epochs: 1\n"))
    line = text.splitlines().index(epochs) + 1
    write_processed(tmp_path / "data" / "processed", {"train": 40, "val": 10, "test": 10})
    result = invoke_stage("train", tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: params.yaml: key train.epochs is given twice (lines {line} and {line + 1}); "
        "keep one"
    ]
