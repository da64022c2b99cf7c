"""stages.data.metadata: meta.json and a model's metadata checked where they are read; a hand
edit is one line naming the file and the field, through train and predict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.in_process import invoke_stage
from support.models import digit_model
from support.processed import CLASS_NAMES, NORMALIZATION
from support.stage import error_lines

from stages.data.errors import DataError
from stages.data.metadata import validate_metadata

GOOD = {
    "dataset": "mnist",
    "class_names": CLASS_NAMES,
    "image_shape": [28, 28],
    "normalization": NORMALIZATION,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"class_names": [*CLASS_NAMES, "10"]}, "class_names holds 11 names, but mnist has 10"),
        ({"class_names": ["0", "1", "2", "x", *CLASS_NAMES[4:]]}, "class_names[3] is 'x'"),
        ({"normalization": "scale"}, "normalization must be a mapping, got 'scale'"),
        ({"normalization": {"method": "standardize", "mean": 0.1}}, "no 'normalization.std'"),
        ({"normalization": {"method": "scale", "std": 0}}, "normalization.std: input should be"),
        ({"image_shape": [10, 10]}, "image_shape must be [28, 28] for mnist, got [10, 10]"),
        (
            {"normalization": {"method": "scale", "divisor": 1.0}},
            "normalization.divisor: input should be greater than or equal to 255, got 1.0",
        ),
        (
            {"normalization": {"method": "standardize", "mean": 33.3, "std": 78.6}},
            "normalization.mean: input should be less than or equal to 1, got 33.3",
        ),
        ({"dataset": "cifar"}, "dataset must be 'mnist', 'fashion-mnist' or 'images', got 'cifar'"),
    ],
)
def test_a_broken_field_is_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError) as caught:
        validate_metadata({**GOOD, **change}, "meta.json")
    (line,) = str(caught.value).splitlines()
    assert line.startswith("meta.json: ")
    assert message in line


def test_the_normalization_comes_back_complete() -> None:
    checked = validate_metadata({**GOOD, "normalization": {"method": "scale"}}, "meta.json")
    assert checked.normalization_dict() == NORMALIZATION


def edit_meta(workdir: Path, **changes: Any) -> None:
    path = workdir / "data" / "processed" / "meta.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"class_names": [*CLASS_NAMES, "10"]},
            "class_names holds 11 names, but mnist has 10 classes",
        ),
        ({"normalization": "scale"}, "normalization must be a mapping, got 'scale'"),
        (
            {"normalization": {"method": "scale", "divisor": 1.0}},
            "normalization.divisor: input should be greater than or equal to 255, got 1.0",
        ),
    ],
    ids=["11-names", "normalization-text", "divisor-1"],
)
def test_train_refuses_a_hand_edited_meta_json(
    workdir: Path, change: dict[str, Any], message: str
) -> None:
    edit_meta(workdir, **change)
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: data/processed/meta.json: {message}; run `python -m stages.preprocess` first"
    ]
    assert not (workdir / "models").exists()


def test_train_refuses_standardize_written_over_scaled_arrays(workdir: Path) -> None:
    """A meta.json that passes the schema but does not describe its arrays: the arrays hold
    pixel / 255, meta.json says standardized. Trained on, the model would standardize a
    user's pictures that its training images never were."""
    edit_meta(workdir, normalization={"method": "standardize", "mean": 0.1307, "std": 0.3081})
    result = invoke_stage("train", workdir)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: data/processed/train_images.npy: its values are not pixels 0-255 normalized as "
        "data/processed/meta.json says ((pixel / 255 - 0.1307) / 0.3081); was meta.json "
        "edited? run `python -m stages.preprocess` first"
    ]
    assert not (workdir / "models").exists()


def test_predict_refuses_a_model_trained_on_an_edited_divisor(tmp_path: Path) -> None:
    model = digit_model()
    model.metadata["normalization"] = {**NORMALIZATION, "divisor": 1.0}
    model.save(tmp_path / "model.npz")
    (tmp_path / "digit.png").write_bytes(b"never read")
    result = invoke_stage("predict", tmp_path, "digit.png", "--model", "model.npz")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: model.npz: normalization.divisor: input should be greater than or equal to "
        "255, got 1.0; retrain it (dvc repro)"
    ]


def test_predict_refuses_a_model_whose_metadata_is_broken(tmp_path: Path) -> None:
    model = digit_model()
    model.metadata["normalization"] = "scale"
    model.save(tmp_path / "model.npz")
    (tmp_path / "digit.png").write_bytes(b"never read")
    result = invoke_stage("predict", tmp_path, "digit.png", "--model", "model.npz")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: model.npz: normalization must be a mapping, got 'scale'; retrain it (dvc repro)"
    ]
