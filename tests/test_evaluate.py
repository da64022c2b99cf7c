"""The evaluate command, run as a user runs it, on small processed data and a model trained
by the train command."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.in_process import invoke_stage
from support.model_files import HUGE_BYTES
from support.networks import conv, dense, pool
from support.params import write_params
from support.processed import CLASS_NAMES
from support.stage import (
    digests,
    error_lines,
    run_measured,
    run_stage,
    stage_environment,
    temporaries,
)

from nnlib.model import Model
from stages.data.processed import META_FILE, images_path, labels_path, load_split
from stages.images.contact_sheet import contact_sheet
from stages.outputs.history import read_live_folder

OUTPUTS = (
    "metrics.json",
    "reports/confusion.csv",
    "reports/per_class_accuracy.csv",
    "reports/misclassified.png",
)


def test_train_then_evaluate_write_model_history_metrics_and_plots(workdir: Path) -> None:
    trained = invoke_stage("train", workdir)
    assert trained.returncode == 0, trained.stderr
    assert "Epoch 3/3, Loss: " in trained.stderr
    assert "Avg Accuracy: " in trained.stderr
    assert "Val Accuracy: " in trained.stderr
    assert [row["epoch"] for row in read_live_folder(workdir / "dvclive")] == [1, 2, 3]

    evaluated = invoke_stage("evaluate", workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((workdir / "metrics.json").read_text())
    for split in ("test", "train"):
        scores = metrics[split]
        assert scores["accuracy"] > 0.9  # the blobs are easy to tell apart
        assert set(scores) == {"accuracy", "loss", "f1_macro"}  # fits 120 columns in dvc
        for key in ("loss", "f1_macro"):
            assert isinstance(scores[key], float)
        assert "per_class_accuracy" not in scores  # a plot file, not 20 metric columns
    with (workdir / "reports" / "per_class_accuracy.csv").open() as handle:
        per_class = list(csv.DictReader(handle))
    assert [row["class"] for row in per_class] == [c for c in CLASS_NAMES for _ in range(2)]
    assert [row["split"] for row in per_class] == ["test", "train"] * len(CLASS_NAMES)
    for split in ("test", "train"):
        recalls = [float(row["accuracy"]) for row in per_class if row["split"] == split]
        # Every split here is class-balanced, so the mean recall is the accuracy.
        assert sum(recalls) / len(recalls) == pytest.approx(metrics[split]["accuracy"], abs=1e-5)
    rows = (workdir / "reports" / "confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted"
    assert len(rows) == 1 + 60
    with Image.open(workdir / "reports" / "misclassified.png") as image:
        assert image.format == "PNG"


def test_a_cnn_trained_by_train_is_scored_as_an_mlp_is(workdir: Path) -> None:
    """model.layers: evaluate reads the convolutional model from its file alone (no params)
    and scores it on the rows of the processed data, as it scores an MLP."""
    layers = [conv(4, 5), pool(2), dense(16)]
    train = {"epochs": 3, "batch_size": 16, "learning_rate": 0.01}
    write_params(workdir, model={"hidden_sizes": [], "layers": layers}, train=train)
    trained = invoke_stage("train", workdir)
    assert trained.returncode == 0, trained.stderr
    (workdir / "params.yaml").unlink()  # evaluate reads none
    evaluated = invoke_stage("evaluate", workdir)
    assert evaluated.returncode == 0, evaluated.stderr

    model = Model.load(workdir / "models" / "model.npz")
    assert model.layers[0].kind == "conv2d"
    metrics = json.loads((workdir / "metrics.json").read_text())
    for split in ("test", "train"):
        X, y = load_split(workdir / "data" / "processed", split, len(CLASS_NAMES))
        assert X.shape[1:] == (784,)
        right = float(np.mean(model.predict(X).argmax(axis=1) == y))
        assert metrics[split]["accuracy"] == pytest.approx(right, abs=1e-6)
    assert metrics["test"]["accuracy"] > 0.9  # the blobs are easy to tell apart
    rows = (workdir / "reports" / "confusion.csv").read_text().splitlines()
    assert len(rows) == 1 + 60


def test_the_plot_files_show_the_models_own_answers(evaluated: Path) -> None:
    """A model one epoch into training gets about a third of the test digits wrong: the
    confusion rows are its answers, each class's accuracy is counted from them (and from its
    answers on the training split), and the sheet shows the digits it got wrong."""
    model = Model.load(evaluated / "models" / "model.npz")
    processed = evaluated / "data" / "processed"
    answers = {}
    for split in ("test", "train"):
        X, y = load_split(processed, split, len(CLASS_NAMES))
        answers[split] = (X, y, model.predict(X).argmax(axis=1))
    with (evaluated / "reports" / "confusion.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    _, y_test, predicted = answers["test"]
    assert rows == [
        {"actual": CLASS_NAMES[t], "predicted": CLASS_NAMES[p]}
        for t, p in zip(y_test, predicted, strict=True)
    ]
    wrong = int((predicted != y_test).sum())
    assert 0 < wrong < len(y_test) / 2  # else the checks below would say little

    with (evaluated / "reports" / "per_class_accuracy.csv").open() as handle:
        per_class = list(csv.DictReader(handle))
    assert [(row["class"], row["split"]) for row in per_class] == [
        (name, split) for name in CLASS_NAMES for split in ("test", "train")
    ]
    for split, (_, y, guesses) in answers.items():
        right = [float(np.mean(guesses[y == k] == k)) for k in range(len(CLASS_NAMES))]
        shown = [float(row["accuracy"]) for row in per_class if row["split"] == split]
        assert shown == pytest.approx(right, abs=1e-6)

    # all of them (fewer than the sheet's 50), in test order, captioned true -> predicted
    missed = np.flatnonzero(predicted != y_test)
    captions = [f"{CLASS_NAMES[y_test[i]]}->{CLASS_NAMES[predicted[i]]}" for i in missed]
    title = f"First {wrong} of {wrong} misclassified test images: true -> predicted"
    sheet = contact_sheet(answers["test"][0][missed], captions, (28, 28), title)
    with Image.open(evaluated / "reports" / "misclassified.png") as image:
        assert image.format == "PNG"
        assert np.array_equal(np.asarray(image), np.asarray(sheet))


def test_evaluate_without_a_model_names_the_file(workdir: Path) -> None:
    result = invoke_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("error: models/model.npz: ")
    assert "No such file" in line
    assert not (workdir / "metrics.json").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file, not a model"),
        (b"data:\n  dataset: mnist\n", "not an .npz model file"),
        (b"PK\x03\x04 not really a zip", "truncated or corrupt model file"),
        (b"\x80\x04\x95 a pickle", "a pickle file, which is refused"),
    ],
)
def test_evaluate_refuses_a_corrupt_model(workdir: Path, content: bytes, reason: str) -> None:
    (workdir / "metrics.json").write_text('{"previous": true}\n')
    (workdir / "models").mkdir()
    (workdir / "models" / "model.npz").write_bytes(content)
    result = invoke_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("error: models/model.npz: ")
    assert reason in line
    assert (workdir / "metrics.json").read_text() == '{"previous": true}\n'


def test_evaluate_refuses_data_normalized_unlike_the_model(workdir: Path) -> None:
    assert invoke_stage("train", workdir, "--epochs", "1").returncode == 0
    meta_path = workdir / "data" / "processed" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["normalization"] = {"method": "standardize", "mean": 0.13, "std": 0.31}
    meta_path.write_text(json.dumps(meta))
    result = invoke_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "expects inputs normalized as" in line
    assert "retrain" in line


def test_evaluate_checks_meta_before_writing_anything(trained: Path) -> None:
    meta_path = trained / "data" / "processed" / META_FILE
    meta = json.loads(meta_path.read_text())
    del meta["image_shape"]
    meta_path.write_text(json.dumps(meta))
    result = invoke_stage("evaluate", trained)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert str(meta_path.relative_to(trained)) in line
    assert "image_shape" in line
    assert not (trained / "reports" / "confusion.csv").exists()
    assert not (trained / "metrics.json").exists()


@pytest.fixture(scope="module")
def evaluated_once(trained_once: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``evaluated`` copies, made once per module. Never write."""
    root = tmp_path_factory.mktemp("evaluated")
    shutil.copytree(trained_once, root, symlinks=True, dirs_exist_ok=True)
    result = invoke_stage("evaluate", root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def evaluated(evaluated_once: Path, tmp_path: Path) -> Path:
    """The ``trained`` directory after ``python -m stages.evaluate``: every output exists."""
    shutil.copytree(evaluated_once, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path


def strict_json(text: str) -> object:
    """``text`` parsed as strict JSON: NaN and Infinity are errors, as in every other parser."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def drop_test_samples(directory: Path, n: int) -> None:
    """Remove the last ``n`` test samples, so that a new evaluation writes other files."""
    processed = directory / "data" / "processed"
    for path in (images_path(processed, "test"), labels_path(processed, "test")):
        np.save(path, np.load(path)[:-n])


def test_a_nan_test_pixel_is_refused_naming_the_file(evaluated: Path) -> None:
    path = images_path(evaluated / "data" / "processed", "test")
    images = np.load(path)
    images[3, 100] = np.nan
    np.save(path, images)
    before = digests(evaluated, OUTPUTS)
    result = invoke_stage("evaluate", evaluated)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: data/processed/test_images.npy: image 3 holds NaN or infinite values; "
        "run `python -m stages.preprocess` first"
    ]
    assert digests(evaluated, OUTPUTS) == before
    strict_json((evaluated / "metrics.json").read_text())


def test_pixels_far_outside_the_normalization_write_no_metrics(evaluated: Path) -> None:
    """Pixels near float32's largest value are finite, but no pixel 0-255 normalized as
    meta.json says: one line naming the images, and metrics.json stays strict JSON."""
    path = images_path(evaluated / "data" / "processed", "test")
    images = np.load(path)
    images[:] = 3e38
    np.save(path, images)
    before = digests(evaluated, OUTPUTS)
    result = invoke_stage("evaluate", evaluated)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: data/processed/test_images.npy: its values are not pixels 0-255 normalized as "
        "data/processed/meta.json says (pixel / 255); was meta.json edited? run `python -m "
        "stages.preprocess` first"
    ]
    assert digests(evaluated, OUTPUTS) == before
    strict_json((evaluated / "metrics.json").read_text())


def test_a_model_whose_outputs_overflow_writes_no_metrics(evaluated: Path) -> None:
    """Finite weights so large that the outputs are not finite: one line, and metrics.json
    stays strict JSON (no NaN)."""
    model_path = evaluated / "models" / "model.npz"
    model = Model.load(model_path)
    model.set_weights(model.get_weights() * np.float32(1e30))
    model.save(model_path)
    before = digests(evaluated, OUTPUTS)
    result = invoke_stage("evaluate", evaluated)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith("error: data/processed/test_images.npy: the model's ")
    assert "not finite" in line
    assert digests(evaluated, OUTPUTS) == before
    strict_json((evaluated / "metrics.json").read_text())


def test_written_metrics_are_strict_json_with_plain_floats(evaluated: Path) -> None:
    metrics = strict_json((evaluated / "metrics.json").read_text())
    assert isinstance(metrics, dict)
    for scores in metrics.values():
        values = list(scores.values())
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)


def test_a_folder_where_an_output_goes_is_refused_before_any_work(evaluated: Path) -> None:
    """misclassified.png is a folder now: refused before scoring, every output kept."""
    drop_test_samples(evaluated, 5)
    sheet = evaluated / "reports" / "misclassified.png"
    previous = sheet.read_bytes()
    sheet.unlink()
    sheet.mkdir()
    (sheet / "previous.png").write_bytes(previous)
    kept = (OUTPUTS[0], OUTPUTS[1])
    before = digests(evaluated, kept)
    result = invoke_stage("evaluate", evaluated)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: reports/misclassified.png: is a directory, expected a file path"
    ]
    assert "accuracy" not in result.stderr  # nothing was scored
    assert digests(evaluated, kept) == before
    assert [p.name for p in sheet.iterdir()] == ["previous.png"]
    assert temporaries(evaluated) == []


def test_a_full_disk_while_writing_replaces_no_output(evaluated: Path) -> None:
    """confusion.csv still fits, misclassified.png no longer does: nothing is replaced."""
    drop_test_samples(evaluated, 5)
    limit = 4096
    sizes = {name: (evaluated / name).stat().st_size for name in OUTPUTS}
    assert sizes["reports/misclassified.png"] > limit > sizes["reports/confusion.csv"]
    before = digests(evaluated, OUTPUTS)
    result = run_stage("evaluate", evaluated, max_file_size=limit)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: reports/misclassified.png: cannot write (File too large)"
    ]
    assert digests(evaluated, OUTPUTS) == before
    assert temporaries(evaluated) == []


HOLD_AN_OUTPUT = """
import sys
from pathlib import Path
from stages.outputs.atomic import OutputSet
from stages.outputs.folders import locked_folders
with locked_folders(Path(sys.argv[1])), OutputSet() as outputs:
    with outputs.open(sys.argv[1], "w") as handle:
        handle.write("{}")
        handle.flush()
        print("writing", flush=True)
        sys.stdin.readline()
"""


def test_a_second_writer_of_an_output_is_refused_at_once(evaluated: Path) -> None:
    """Another process is writing metrics.json: evaluate is refused before any work, naming
    that process; the other's file is left alone and completes."""
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_AN_OUTPUT, "metrics.json"],
        cwd=evaluated,
        env=stage_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdin is not None
        assert writer.stdout.readline() == "writing\n"
        (live,) = (name for name in temporaries(evaluated) if name.endswith(".tmp"))
        held = temporaries(evaluated)
        assert held == [live]
        before = digests(evaluated, OUTPUTS)
        drop_test_samples(evaluated, 5)
        result = invoke_stage("evaluate", evaluated)
        assert result.returncode == 1
        assert error_lines(result) == [
            f"error: metrics.json: another run (pid {writer.pid}) is writing outputs into the "
            "same folder; wait for that run to end or stop it, then run again"
        ]
        assert "accuracy" not in result.stderr
        assert temporaries(evaluated) == held
        assert digests(evaluated, OUTPUTS) == before
        writer.stdin.write("\n")
        writer.stdin.close()
        assert writer.wait(timeout=30) == 0
    finally:
        writer.kill()
        writer.wait()
    assert (evaluated / "metrics.json").read_text() == "{}"
    assert temporaries(evaluated) == []


@pytest.mark.slow
def test_a_model_with_a_huge_member_is_refused_without_reading_it(
    evaluated: Path, huge_member_model: Callable[[bool], Path]
) -> None:
    """A 0.5 MB model.npz whose first weights decompress to 512 MiB: one line, the previous
    metrics and plots kept, and the command's own peak memory far below the member."""
    shutil.copyfile(huge_member_model(False), evaluated / "models" / "model.npz")
    before = digests(evaluated, OUTPUTS)
    result = run_measured("evaluate", evaluated)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: models/model.npz: layer0_weights is float32[16384, 8192], the architecture "
        "needs float32[784, 16]"
    ]
    assert digests(evaluated, OUTPUTS) == before
    assert result.peak_bytes < HUGE_BYTES / 4
