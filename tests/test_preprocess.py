"""The preprocess command, run as a user runs it: checks on the raw files, the split and the
normalization it writes, and its one-line errors. Its raw files are the small generated dataset."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.idx import gz, gz_files, idx_bytes, link_files, truncated, write_files
from support.in_process import invoke_stage
from support.params import write_params
from support.stage import (
    digests,
    error_lines,
    stage_command,
    stage_environment,
    temporaries,
)

from stages.data.sources import IDX_FILES
from stages.data.splits import stratified_split

OUTPUTS = sorted(
    [f"{split}_{kind}.npy" for split in ("train", "val", "test") for kind in ("images", "labels")]
    + ["meta.json"]
)


def make_project(
    directory: Path,
    arrays: Mapping[str, np.ndarray],
    files: Mapping[str, bytes] | None = None,
    **data: Any,
) -> Path:
    """``directory`` with params.yaml and ``data/raw/mnist/`` holding the given files."""
    write_params(directory, data={"dataset": "mnist", "val_size": 10, "split_seed": 3, **data})
    write_files(directory / "data/raw/mnist", files if files is not None else gz_files(arrays))
    return directory


def load_outputs(out_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (by file stem) and the meta.json that preprocess wrote into ``out_dir``."""
    arrays = {p.stem: np.load(p, allow_pickle=False) for p in sorted(out_dir.glob("*.npy"))}
    return arrays, json.loads((out_dir / "meta.json").read_text())


def test_scale_outputs(tmp_path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    project = make_project(tmp_path, arrays)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 0, result.stderr
    out_dir = project / "data/processed"
    assert sorted(p.name for p in out_dir.iterdir()) == OUTPUTS
    out, meta = load_outputs(out_dir)
    sizes = {"train": 30, "val": 10, "test": 10}
    for split, n in sizes.items():
        images, labels = out[f"{split}_images"], out[f"{split}_labels"]
        assert images.dtype == np.float32
        assert images.shape == (n, 784)
        assert labels.dtype == np.int64
        assert labels.shape == (n,)
        assert images.min() >= 0.0
        assert images.max() <= 1.0
        assert set(labels.tolist()) == set(range(10))  # stratified: every class in every split
    # The split is a partition of the training set that keeps each image with its label.
    pairs = {
        (bytes(img), int(lbl))
        for img, lbl in zip(
            arrays[IDX_FILES.train_images], arrays[IDX_FILES.train_labels], strict=True
        )
    }
    seen = set()
    for split in ("train", "val"):
        pixels = np.rint(out[f"{split}_images"] * 255).astype(np.uint8)
        seen |= {
            (bytes(img), int(lbl)) for img, lbl in zip(pixels, out[f"{split}_labels"], strict=True)
        }
    assert seen == pairs
    np.testing.assert_array_equal(
        out["test_images"], arrays[IDX_FILES.test_images].reshape(10, 784).astype(np.float32) / 255
    )
    np.testing.assert_array_equal(out["test_labels"], arrays[IDX_FILES.test_labels])
    assert meta["dataset"] == "mnist"
    assert meta["image_shape"] == [28, 28]
    assert meta["class_names"] == [str(d) for d in range(10)]
    assert meta["normalization"] == {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0}
    assert meta["splits"] == sizes
    assert meta["val_stratified"] is True
    assert meta["split_seed"] == 3
    assert sum(meta["class_counts"]["val"]) == 10
    assert "train 30, val 10 (stratified, seed 3), test 10" in result.stderr


def test_standardize_uses_training_split_statistics(
    tmp_path: Path, arrays: Mapping[str, np.ndarray]
) -> None:
    # Make the held-out images much brighter, so statistics that included them would show.
    project = make_project(tmp_path, arrays, normalize="standardize")
    train_idx, val_idx = stratified_split(arrays[IDX_FILES.train_labels], 10, 3)
    bright = arrays.copy()
    bright[IDX_FILES.train_images] = arrays[IDX_FILES.train_images].copy()
    bright[IDX_FILES.train_images][val_idx] = 255
    write_files(project / "data/raw/mnist", gz_files(bright))
    result = invoke_stage("preprocess", project)
    assert result.returncode == 0, result.stderr
    out, meta = load_outputs(project / "data/processed")
    train_pixels = bright[IDX_FILES.train_images][train_idx].astype(np.float64) / 255
    norm = meta["normalization"]
    assert norm["method"] == "standardize"
    assert norm["divisor"] == 255.0
    assert norm["mean"] == pytest.approx(train_pixels.mean(), rel=1e-12)
    assert norm["std"] == pytest.approx(train_pixels.std(), rel=1e-12)
    train = out["train_images"].astype(np.float64)
    assert abs(train.mean()) < 1e-5
    assert train.std() == pytest.approx(1.0, abs=1e-5)
    # new raw pixels are normalized by the recipe in meta.json
    recipe = (
        arrays[IDX_FILES.test_images].reshape(10, -1) / norm["divisor"] - norm["mean"]
    ) / norm["std"]
    np.testing.assert_allclose(out["test_images"], recipe, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["val_images"], (1 - norm["mean"]) / norm["std"], rtol=1e-6)
    assert (
        norm["mean"] < bright[IDX_FILES.train_images].mean() / 255 - 0.05
    )  # the bright val left out


def test_same_seed_same_split_other_seed_other_split(
    tmp_path: Path, arrays: Mapping[str, np.ndarray]
) -> None:
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        project = make_project(tmp_path / name, arrays, split_seed=seed)
        assert invoke_stage("preprocess", project).returncode == 0
        runs.append(np.load(project / "data/processed/val_images.npy"))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def bad_magic(data: bytes) -> bytes:
    return b"\x01\x02" + data[2:]


@pytest.mark.parametrize(
    ("broken", "damage", "expected"),
    [
        (IDX_FILES.train_images, lambda raw: gz(bad_magic(raw)), "bad magic number 0x0102"),
        (IDX_FILES.train_labels, lambda raw: gz(raw[:-3]), "truncated: header says shape (40,)"),
        (IDX_FILES.test_images, lambda raw: truncated(gz(raw)), "not a valid gzip file"),
        (IDX_FILES.test_labels, lambda raw: gz(raw + b"\0"), "trailing bytes after the data"),
    ],
)
def test_malformed_file(
    tmp_path: Path,
    arrays: Mapping[str, np.ndarray],
    broken: str,
    damage: Callable[[bytes], bytes],
    expected: str,
) -> None:
    files = gz_files(arrays)
    files[broken] = damage(idx_bytes(arrays[broken]))
    project = make_project(tmp_path, arrays, files)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert f"data/raw/mnist/{broken}" in lines[0]
    assert expected in lines[0]
    assert not (project / "data/processed").exists()


def test_counts_disagree(tmp_path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    short = dict(arrays)
    short[IDX_FILES.test_labels] = arrays[IDX_FILES.test_labels][:-1]
    project = make_project(tmp_path, short)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: data/raw/mnist/{IDX_FILES.test_images} holds 10 images but "
        f"data/raw/mnist/{IDX_FILES.test_labels} holds 9 labels"
    ]
    assert not (project / "data/processed").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {IDX_FILES.train_labels: np.full(40, 10, dtype=np.uint8)},
            f"data/raw/mnist/{IDX_FILES.train_labels}: label 10 is out of range, expected 0-9",
        ),
        (
            {IDX_FILES.test_images: np.zeros((10, 784), dtype=np.uint8)},
            f"data/raw/mnist/{IDX_FILES.test_images}: expected uint8 images of shape "
            "(n, rows, cols), got uint8 of shape (10, 784)",
        ),
        (
            {IDX_FILES.test_images: np.zeros((10, 14, 14), dtype=np.uint8)},
            f"data/raw/mnist/{IDX_FILES.test_images}: images are (14, 14), but the training images",
        ),
    ],
)
def test_inconsistent_contents(
    tmp_path: Path, arrays: Mapping[str, np.ndarray], change: dict[str, np.ndarray], expected: str
) -> None:
    project = make_project(tmp_path, {**arrays, **change})
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}")
    assert not (project / "data/processed").exists()


def test_labels_of_another_dtype(tmp_path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    files = gz_files(arrays)
    # an IDX file of int32 (type code 0x0C) labels
    files[IDX_FILES.train_labels] = gz(idx_bytes(arrays[IDX_FILES.train_labels], 0x0C))
    project = make_project(tmp_path, arrays, files)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert (
        f"{IDX_FILES.train_labels}: expected uint8 labels of shape (n,), got int32" in result.stderr
    )


def test_missing_raw_file(tmp_path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    files = gz_files(arrays)
    del files[IDX_FILES.test_labels]
    project = make_project(tmp_path, arrays, files)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: data/raw/mnist/{IDX_FILES.test_labels}: no such file "
        "(run `python -m stages.download` first)"
    ]


@pytest.mark.parametrize(("val_size", "left"), [(40, 0), (31, 9)])
def test_val_size_too_large(
    tmp_path: Path, arrays: Mapping[str, np.ndarray], val_size: int, left: int
) -> None:
    """Fewer training images than classes are left: refused before anything is written."""
    project = make_project(tmp_path, arrays, val_size=val_size)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: params.yaml: data.val_size is {val_size}, which leaves {left} of the 40 "
        "training images for training; at least 10 (one per class) must remain"
    ]
    assert not (project / "data/processed").exists()


def test_bad_params_are_caught_first(tmp_path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    project = make_project(tmp_path, arrays, normalize="minmax")
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: params.yaml: data.normalize must be one of scale, standardize, got 'minmax'"
    ]


def test_failure_leaves_previous_outputs_untouched(
    tmp_path: Path, arrays: Mapping[str, np.ndarray]
) -> None:
    project = make_project(tmp_path, arrays)
    assert invoke_stage("preprocess", project).returncode == 0
    out_dir = project / "data/processed"
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    files = gz_files(arrays)
    files[IDX_FILES.train_images] = gz(bad_magic(idx_bytes(arrays[IDX_FILES.train_images])))
    write_files(project / "data/raw/mnist", files)
    write_params(
        project, data={"dataset": "mnist", "val_size": 5, "split_seed": 3}
    )  # would change every split
    assert invoke_stage("preprocess", project).returncode == 1
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before


def test_a_stray_top_level_key_is_refused_with_a_hint(
    tmp_path: Path, arrays: Mapping[str, np.ndarray]
) -> None:
    project = make_project(tmp_path, arrays)
    with (project / "params.yaml").open("a", encoding="utf-8") as params:
        params.write("val_size: 10\n")
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: params.yaml: unknown key val_size (did you mean data.val_size?)"
    ]
    assert not (project / "data/processed").exists()


@pytest.mark.realdata
def test_a_val_size_that_leaves_one_training_image_is_refused(
    tmp_path: Path, mnist_dir: Path
) -> None:
    link_files(tmp_path / "data/raw/mnist", mnist_dir)
    write_params(tmp_path, data={"val_size": 59999})
    result = invoke_stage("preprocess", tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: params.yaml: data.val_size is 59999, which leaves 1 of the 60000 training "
        "images for training; at least 10 (one per class) must remain"
    ]
    assert not (tmp_path / "data/processed").exists()


@pytest.mark.realdata
def test_sigterm_while_writing_cleans_up_and_exits_143(
    tmp_path: Path, arrays: Mapping[str, np.ndarray], mnist_dir: Path
) -> None:
    """SIGTERM (what ``kill``, a CI timeout or ``dvc queue kill`` send) arrives while the
    real MNIST splits (210 MB) are being written: a message, exit 143, the previous outputs
    as they were and no temporary file left."""
    project = make_project(tmp_path, arrays)
    assert invoke_stage("preprocess", project).returncode == 0
    out_dir = project / "data/processed"
    before = digests(out_dir, OUTPUTS)
    link_files(project / "data/raw/mnist", mnist_dir)
    write_params(project)
    process = subprocess.Popen(
        stage_command("preprocess"),
        cwd=project,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    # the new files are being written (not just claimed)
    while not any(name.endswith(".tmp") for name in temporaries(out_dir)):
        assert process.poll() is None, "preprocess ended before it wrote anything"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: terminated"
    ]
    assert "Traceback" not in stderr
    assert digests(out_dir, OUTPUTS) == before
    assert temporaries(project) == []


def test_a_fraction_of_the_training_images_goes_to_validation(
    tmp_path: Path, arrays: Mapping[str, np.ndarray]
) -> None:
    """data.val_size 0.1 of the 40 training images: 4, stratified; the test set is the
    dataset's own, whatever data.test_size says."""
    project = make_project(tmp_path, arrays, val_size=0.1, test_size=0.5)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 0, result.stderr
    _, meta = load_outputs(project / "data/processed")
    assert meta["splits"] == {"train": 36, "val": 4, "test": 10}
    assert meta["val_size"] == 4
    assert meta["construction"] == "mnist"
