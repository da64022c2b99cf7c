"""Your own folder of labelled pictures through the real ``dvc`` in a temporary git repository:
MNIST test digits redrawn as users' files (tracked with ``dvc add``, as a large folder is),
and capital letters rendered from fonts (26 classes, a small folder kept in git)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.dvc_project import Project
from support.picture_folders import write_letters_folder, write_shapes_folder
from support.stage import digests, error_lines, temporaries
from support.user_looks import build_example_folder

from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES

pytestmark = pytest.mark.pipeline

#: the digits' sub-folders: sorted, "eight" is class 0 and "zero" class 9
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGITS_COUNT, NEW_COUNT = 2000, 100
FOLDER_PARAMS = {"dataset": "images", "val_size": 0.1, "test_size": 0.2}


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def shown_test_accuracy(project: Project) -> float:
    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    return shown[""]["data"]["metrics.json"]["data"]["test"]["accuracy"]


def predict_json(project: Project, folder: str) -> dict[str, str]:
    """``python -m stages.predict <folder> --json`` in the project: file (its path in the
    folder) -> predicted class."""
    result = project.run("python", "-m", "stages.predict", folder, "--json")
    return {
        Path(entry["file"]).relative_to(folder).as_posix(): entry["prediction"]
        for entry in json.loads(result.stdout)
    }


@pytest.mark.realdata
def test_mnist_digits_as_users_files_through_dvc(tmp_path: Path, mnist_dir: Path) -> None:
    """2,000 MNIST test digits as scans, photos and PNGs, one word-named sub-folder per digit,
    ``dvc add``-ed: ``dvc repro`` trains on them, predict names new pictures by the folder's
    classes, and one more picture makes DVC rerun preprocess and train."""
    project = Project.create(tmp_path / "project", mnist_dir, {"data": FOLDER_PARAMS})
    project.set_param("data", "images", "digits")
    build_example_folder(mnist_dir, project.root / "digits", DIGITS_COUNT, names=WORDS)
    project.dvc("add", "digits")
    project.commit("my pictures, tracked by DVC")

    repro = project.dvc("repro")
    assert ran_stages(repro.stdout) == {"download", "preprocess", "train", "evaluate"}
    meta = json.loads((project.root / "data/processed/meta.json").read_text())
    assert meta["class_names"] == sorted(WORDS)
    assert meta["splits"] == {"train": 1400, "val": 200, "test": 400}
    accuracy = shown_test_accuracy(project)
    print(f"{DIGITS_COUNT} MNIST test digits as users' files: test accuracy {accuracy}")
    assert accuracy >= 0.85
    project.commit("first run")
    assert json.loads(project.dvc("status", "--json").stdout) == {}

    # New pictures (digits the folder does not hold) get the folder's class names.
    build_example_folder(mnist_dir, project.root / "new", NEW_COUNT, start=5000)
    truth = read_idx(mnist_dir / IDX_FILES.test_labels)[5000 : 5000 + NEW_COUNT]
    predicted = predict_json(project, "new")
    assert set(predicted.values()) <= set(WORDS)
    assert len(predicted) == NEW_COUNT
    index = {name: int(Path(name).stem) - 5000 for name in predicted}
    hits = sum(predicted[name] == WORDS[truth[index[name]]] for name in predicted)
    print(f"predict on {NEW_COUNT} new pictures: {hits} right")
    assert hits / NEW_COUNT >= 0.8

    # One more picture: the folder changed, so preprocess and then train rerun.
    picture = sorted((project.root / "new" / "7").iterdir())[0]
    picture.rename(project.root / "digits" / "seven" / f"added{picture.suffix}")
    status = json.loads(project.dvc("status", "--json").stdout)
    assert set(status) == {"digits.dvc", "preprocess"}
    assert "digits" in json.dumps(status["preprocess"])
    again = project.dvc("repro")  # updates digits.dvc too: no `dvc add` needed first
    assert {"preprocess", "train", "evaluate"} <= ran_stages(again.stdout)
    meta = json.loads((project.root / "data/processed/meta.json").read_text())
    assert sum(meta["splits"].values()) == DIGITS_COUNT + 1
    assert json.loads(project.dvc("status", "--json").stdout) == {}


def test_letters_from_fonts_through_dvc(tmp_path: Path) -> None:
    """26 classes A-Z rendered from the installed fonts, the folder committed to git:
    ``dvc repro`` trains and evaluates with the letters as class names, predict answers in
    letters, and adding a picture makes ``dvc status`` name preprocess."""
    project = Project.create(tmp_path / "project", tmp_path, {"data": FOLDER_PARAMS})
    project.set_param("data", "images", "letters")
    names = write_letters_folder(project.root / "letters", per_letter=16)
    project.commit("letters")
    project.dvc("repro")
    project.commit("first run")

    accuracy = shown_test_accuracy(project)
    print(f"26 letters from fonts, 16 pictures each: test accuracy {accuracy}")
    assert accuracy >= 0.6  # chance is 1/26
    with (project.root / "reports/per_class_accuracy.csv").open() as handle:
        classes = [row["class"] for row in csv.DictReader(handle) if row["split"] == "test"]
    assert classes == list(string.ascii_uppercase)
    with (project.root / "reports/confusion.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 26 * 16 // 5 + 1  # ceil(0.2 * 416) = 84
    assert {row["actual"] for row in rows} == set(names)

    write_letters_folder(project.root / "more", per_letter=1, seed=1)
    predicted = predict_json(project, "more")
    assert sorted(predicted) == [f"{letter}/000.png" for letter in names]
    assert set(predicted.values()) <= set(names)
    hits = sum(name[0] == letter for name, letter in predicted.items())
    print(f"predict on 26 new letters: {hits} right")
    assert hits >= 13

    (project.root / "more" / "Q" / "000.png").rename(project.root / "letters" / "Q" / "new.png")
    status = json.loads(project.dvc("status", "--json").stdout)
    assert set(status) == {"preprocess"}
    assert "letters" in json.dumps(status["preprocess"])


def test_letters_with_a_cnn_through_dvc_exp_run(tmp_path: Path) -> None:
    """Your own folder with model.layers: ``dvc exp run`` trains a convolutional network
    with an output per letter, evaluate scores it, and predict answers in letters with it."""
    project = Project.create(tmp_path / "project", tmp_path, {"data": FOLDER_PARAMS})
    project.set_param("data", "images", "letters")
    names = write_letters_folder(project.root / "letters", per_letter=16)
    project.commit("letters")
    layers = (
        "[{type: conv2d, filters: 8, kernel: 5}, {type: maxpool2d, size: 2}, "
        "{type: dense, units: 64}]"
    )
    project.dvc("exp", "run", "-S", "model.hidden_sizes=[]", "-S", f"model.layers={layers}")

    described = json.loads(str(np.load(project.root / "models" / "model.npz")["meta"]))
    assert described["layers"][0]["kind"] == "conv2d"
    assert described["layers"][-1]["output_size"] == 26
    assert described["metadata"]["class_names"] == names
    accuracy = shown_test_accuracy(project)
    print(f"26 letters from fonts, 16 pictures each, a small CNN: test accuracy {accuracy}")
    assert accuracy >= 0.6  # chance is 1/26

    write_letters_folder(project.root / "more", per_letter=1, seed=1)
    predicted = predict_json(project, "more")
    assert sorted(predicted) == [f"{letter}/000.png" for letter in names]
    hits = sum(name[0] == letter for name, letter in predicted.items())
    print(f"predict on 26 new letters with the CNN: {hits} right")
    assert hits >= 13


# enough validation pictures for train's check that the model beats chance to conclude
SMALL = {"data": {**FOLDER_PARAMS, "val_size": 0.25}, "train": {"epochs": 5, "batch_size": 8}}
PROCESSED = [
    f"data/processed/{split}_{kind}.npy"
    for split in ("train", "val", "test")
    for kind in ("images", "labels")
]


def test_a_bad_folder_under_repro_is_one_line_and_keeps_every_output(tmp_path: Path) -> None:
    """After a good run, the folder loses all classes but one: preprocess refuses it in one
    line, DVC records nothing, the model and metrics stay as they were, and the processed
    data (which DVC removes before it reruns the stage) comes back from the cache."""
    project = Project.create(tmp_path / "project", tmp_path, SMALL)
    project.set_param("data", "images", "shapes")
    write_shapes_folder(project.root / "shapes", {"bar": 15, "cross": 15, "ring": 15})
    project.commit("shapes")
    project.dvc("repro")
    project.commit("first run")
    recorded = ["models/model.npz", "metrics.json", "dvc.lock"]
    before = digests(project.root, recorded)
    processed = digests(project.root, PROCESSED)

    for name in ("bar", "cross"):
        shutil.rmtree(project.root / "shapes" / name)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: shapes: holds one class sub-folder (ring); at least 2 classes are needed, one "
        "sub-folder each"
    ]
    assert ran_stages(result.stdout) == {"preprocess"}
    assert digests(project.root, recorded) == before
    assert temporaries(project.root) == []
    project.dvc("checkout", "preprocess")
    assert digests(project.root, PROCESSED) == processed


def test_a_folder_that_is_not_there_stops_dvc_before_the_stage(tmp_path: Path) -> None:
    """data.images names no folder: DVC itself refuses to run preprocess without its
    dependency, naming it."""
    project = Project.create(tmp_path / "project", tmp_path, {"data": FOLDER_PARAMS})
    project.set_param("data", "images", "nowhere")
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert "nowhere" in result.stderr
    assert "preprocess" not in ran_stages(result.stdout)
    assert not (project.root / "data/processed").exists()


def test_a_dvc_added_folder_travels_through_the_remote(tmp_path: Path) -> None:
    """The folder, tracked with ``dvc add``, goes to a DVC remote with the outputs; a fresh
    clone pulls the pictures and the results, and ``dvc repro`` runs nothing."""
    project = Project.create(tmp_path / "first", tmp_path, SMALL)
    project.set_param("data", "images", "shapes")
    files = write_shapes_folder(project.root / "shapes", {"bar": 15, "cross": 15, "ring": 15})
    project.dvc("add", "shapes")
    project.dvc("remote", "add", "-d", "storage", str(tmp_path / "storage"))
    project.commit("shapes, tracked by DVC; a remote")
    project.dvc("repro")
    project.commit("first run")
    project.dvc("push")

    project.run("git", "clone", "--quiet", str(project.root), str(tmp_path / "second"))
    second = Project(tmp_path / "second", tmp_path)
    assert not (second.root / "shapes").exists()
    second.dvc("pull")
    relative = [path.relative_to(project.root) for path in files]
    assert digests(second.root, map(str, relative)) == digests(project.root, map(str, relative))
    assert json.loads(second.dvc("status", "--json").stdout) == {}
    assert ran_stages(second.dvc("repro").stdout) == set()
    models = digests(second.root, ["models/model.npz"])
    assert models == digests(project.root, ["models/model.npz"])


def test_special_files_dvc_ignores_are_skipped_by_preprocess(tmp_path: Path) -> None:
    """DVC itself waits for ever hashing a folder that holds a FIFO or a link to /dev/zero
    (docs/own-images.md says so); listed in ``.dvcignore`` it goes on, and preprocess, which
    reads the folder as it is, skips them with its warning instead of opening them."""
    project = Project.create(tmp_path / "project", tmp_path, SMALL)
    project.set_param("data", "images", "shapes")
    write_shapes_folder(project.root / "shapes", {"bar": 15, "cross": 15, "ring": 15})
    with (project.root / ".dvcignore").open("a", encoding="utf-8") as ignore:
        ignore.write("shapes/ring/f.png\nshapes/ring/z.png\n")
    project.commit("shapes")
    os.mkfifo(project.root / "shapes/ring/f.png")
    (project.root / "shapes/ring/z.png").symlink_to("/dev/zero")
    result = project.dvc("repro", "preprocess", timeout=60)
    assert "skipped 2 files that are not pictures of a class" in result.stderr
    meta = json.loads((project.root / "data/processed/meta.json").read_text())
    assert meta["skipped_files"] == 2
    assert sum(meta["splits"].values()) == 45


def test_a_picture_added_while_preprocess_runs_is_not_recorded_as_trained_on(
    tmp_path: Path,
) -> None:
    """DVC records the folder as it is once the stage ends. A picture added while preprocess
    builds the others would be in ``dvc.lock`` and not in the data, and ``dvc status`` would
    say all is up to date: preprocess refuses instead, DVC records nothing, and the next
    ``dvc repro`` trains on every picture."""
    project = Project.create(tmp_path / "project", tmp_path, SMALL)
    project.set_param("data", "images", "shapes")
    write_shapes_folder(project.root / "shapes", {"bar": 500, "cross": 500, "ring": 500})
    project.commit("shapes")
    repro = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "preprocess"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert repro.stderr is not None
    for line in repro.stderr:
        if "building 1500 pictures" in line:
            break
    shutil.copy(project.root / "shapes/ring/000.png", project.root / "shapes/ring/new.png")
    stderr = repro.stderr.read()
    assert repro.wait(timeout=300) != 0
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: shapes: the folder changed while preprocess read it (shapes/ring/new.png "
        "added); nothing was written: run again once it holds still"
    ]
    status = json.loads(project.dvc("status", "--json", "preprocess").stdout)
    assert "preprocess" in status  # not recorded as done
    project.dvc("repro", "preprocess")
    meta = json.loads((project.root / "data/processed/meta.json").read_text())
    assert sum(meta["splits"].values()) == 1501
    assert json.loads(project.dvc("status", "--json", "preprocess").stdout) == {}
