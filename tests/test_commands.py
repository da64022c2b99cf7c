"""Each command as a program (``python -m stages.<name>``), beside the same command run by the
tests' in-process runner (``support.in_process``): the entry point works, and the runner
the other tests use answers as the program does (exit code, stdout, ``error:`` lines, the
log, the files written)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.idx import checksum_table, gz_files, write_checksums, write_files
from support.in_process import invoke_stage
from support.models import digit_model
from support.params import write_params
from support.processed import write_processed
from support.stage import digests, error_lines, run_stage
from support.user_images import seven_digit

from stages.cli.app import MAX_LINE
from stages.cli.app import error_lines as error_lines_of
from stages.data.sources import IDX_FILES

COMMANDS = ("download", "preprocess", "train", "evaluate", "predict", "serve")
# A log line's time stamp, and the figures that change from run to run (seconds, memory).
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ", re.MULTILINE)
_TIMING = re.compile(r"\d+(\.\d+)? (s|MB)\b")


def log_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines of stderr without time stamps, seconds and megabytes."""
    return _TIMING.sub("#", _STAMP.sub("", result.stderr)).splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_the_program_and_is_the_same_in_process(command: str, tmp_path: Path) -> None:
    program = run_stage(command, tmp_path, "--help")
    assert program.returncode == 0, program.stderr
    assert program.stdout.startswith(f"Usage: python -m stages.{command} [OPTIONS]")
    assert "--log-level" in program.stdout
    assert program.stderr == ""
    called = invoke_stage(command, tmp_path, "--help")
    assert (called.returncode, called.stdout, called.stderr) == (0, program.stdout, "")


def mnist_files(root: Path, arrays: Mapping[str, np.ndarray]) -> None:
    write_params(root, data={"val_size": 10})
    write_files(root / "data/raw/mnist", gz_files(arrays))


def mirror_folder(root: Path, arrays: Mapping[str, np.ndarray]) -> None:
    write_params(root)
    write_files(root / "mirror", gz_files(arrays))
    write_checksums(root / "sums", "mnist", checksum_table(arrays))


def small_processed(root: Path, arrays: Mapping[str, np.ndarray]) -> None:
    write_processed(root / "data/processed", {"train": 60, "val": 20, "test": 20})
    write_params(root, train={"epochs": 2, "batch_size": 16})


def model_and_data(root: Path, arrays: Mapping[str, np.ndarray]) -> None:
    small_processed(root, arrays)
    (root / "models").mkdir()
    digit_model().save(root / "models/model.npz")


def a_picture(root: Path, arrays: Mapping[str, np.ndarray]) -> None:
    digit_model().save(root / "model.npz")
    ink = seven_digit()
    Image.fromarray((255 - 200 * ink).astype("uint8")).save(root / "seven.png")


CASES: dict[
    str, tuple[str, Callable[[Path, Mapping[str, np.ndarray]], None], list[str], list[str]]
] = {
    # name: (command, set-up, arguments, the files it writes)
    "download from a folder": (
        "download",
        mirror_folder,
        ["--mirror", "mirror", "--checksums", "sums"],
        [f"data/raw/mnist/{name}" for name in IDX_FILES],
    ),
    "download, a malformed --mirror": ("download", mirror_folder, ["--mirror", "ftp://x/"], []),
    "preprocess": (
        "preprocess",
        mnist_files,
        [],
        ["data/processed/train_images.npy", "data/processed/val_labels.npy"],
    ),
    "preprocess, no raw files": ("preprocess", lambda root, _: write_params(root), [], []),
    "train": (
        "train",
        small_processed,
        ["--log-level", "DEBUG"],
        ["models/model.npz", "dvclive/metrics.json"],
    ),
    "train, --epochs ten": ("train", small_processed, ["--epochs", "ten"], []),
    "evaluate": (
        "evaluate",
        model_and_data,
        [],
        ["metrics.json", "reports/confusion.csv", "reports/misclassified.png"],
    ),
    "evaluate, no model": ("evaluate", small_processed, [], []),
    "predict, json": ("predict", a_picture, ["seven.png", "--model", "model.npz", "--json"], []),
    "predict, a table and a missing file": (
        "predict",
        a_picture,
        ["seven.png", "missing.png", "--model", "model.npz", "--log-level", "INFO"],
        [],
    ),
    "predict, --top-k 0": ("predict", a_picture, ["seven.png", "--top-k", "0"], []),
    # (a server that starts serves until stopped: tests/test_serve.py runs it as a program)
    "serve, no model": ("serve", lambda root, _: None, ["--port", "0"], []),
    "serve, --port 70000": ("serve", a_picture, ["--model", "model.npz", "--port", "70000"], []),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_program_and_the_in_process_runner_agree(
    case: str, tmp_path: Path, arrays: Mapping[str, np.ndarray]
) -> None:
    command, set_up, args, written = CASES[case]
    program_root, called_root = tmp_path / "program", tmp_path / "called"
    for root in (program_root, called_root):
        root.mkdir()
        set_up(root, arrays)
    program = run_stage(command, program_root, *args)
    called = invoke_stage(command, called_root, *args)
    assert called.returncode == program.returncode
    assert called.stdout == program.stdout
    assert error_lines(called) == error_lines(program)
    assert log_of(called) == log_of(program)
    assert digests(called_root, written) == digests(program_root, written)
    assert None not in digests(program_root, written).values()


def test_no_error_line_is_longer_than_its_limit() -> None:
    """A message of any length is cut to MAX_LINE characters, ``error: `` included."""
    (line,) = error_lines_of("x" * 5000)
    assert len(line) == MAX_LINE
    assert line.startswith("error: xxx")
    assert line.endswith("x...")
    assert error_lines_of("short\n\nsecond") == ["error: short", "error: second"]
