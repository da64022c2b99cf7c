"""The preprocess command on a folder of labelled pictures (``data.dataset: images``), run as a
user runs it: what it writes, that any number of workers writes the same bytes, and its
one-line refusals of bad folders, which keep the previous outputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.in_process import invoke_stage
from support.params import write_params
from support.picture_folders import write_shapes_folder
from support.stage import (
    digests,
    error_lines,
    run_stage,
    stage_command,
    stage_environment,
    temporaries,
    without_root_overrides,
)

from stages.images.mnist import mnist_digit
from stages.images.reading import read_image

OUTPUTS = sorted(
    [f"{split}_{kind}.npy" for split in ("train", "val", "test") for kind in ("images", "labels")]
    + ["meta.json"]
)
SHAPES = {"bar": 10, "corner": 10, "cross": 10, "ring": 10}


def make_project(directory: Path, counts: dict[str, int] | None = None, **data: Any) -> Path:
    """``directory`` with params.yaml (dataset images, folder ``pictures``) and the folder."""
    write_shapes_folder(directory / "pictures", counts or SHAPES)
    params = {"dataset": "images", "images": "pictures", "val_size": 0.1, "test_size": 0.2}
    write_params(directory, data={**params, **data})
    return directory


def load_outputs(out_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = {p.stem: np.load(p, allow_pickle=False) for p in sorted(out_dir.glob("*.npy"))}
    return arrays, json.loads((out_dir / "meta.json").read_text())


def preprocess(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = invoke_stage("preprocess", project, *args)
    assert result.returncode == 0, result.stderr
    return result


def test_every_picture_is_built_as_predict_builds_it_and_split_stratified(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    preprocess(project)
    out, meta = load_outputs(project / "data/processed")

    assert meta["dataset"] == "images"
    assert meta["construction"] == "mnist"
    assert meta["class_names"] == ["bar", "corner", "cross", "ring"]
    assert meta["image_shape"] == [28, 28]
    # 40 pictures: test ceil(0.2 * 40) = 8, val ceil(0.1 * 40) = 4, two and one per class
    assert meta["splits"] == {"train": 28, "val": 4, "test": 8}
    assert meta["class_counts"] == {"train": [7] * 4, "val": [1] * 4, "test": [2] * 4}
    # Each output row is the construction predict applies, of one picture, with its label.
    expected = sorted(
        (mnist_digit(read_image(path)).tobytes(), label)
        for label, name in enumerate(meta["class_names"])
        for path in sorted((project / "pictures" / name).iterdir())
    )
    written = sorted(
        (np.rint(out[f"{split}_images"][i] * 255).astype(np.uint8).tobytes(), int(label))
        for split in ("train", "val", "test")
        for i, label in enumerate(out[f"{split}_labels"])
    )
    assert written == expected
    for split in ("train", "val", "test"):
        assert out[f"{split}_images"].dtype == np.float32
        assert out[f"{split}_images"].shape == (meta["splits"][split], 784)
        assert out[f"{split}_labels"].dtype == np.int64


def test_counts_take_exactly_so_many_pictures(tmp_path: Path) -> None:
    project = make_project(tmp_path, val_size=5, test_size=7)
    preprocess(project)
    _, meta = load_outputs(project / "data/processed")
    assert meta["splits"] == {"train": 28, "val": 5, "test": 7}
    assert (meta["test_size"], meta["val_size"]) == (7, 5)


@pytest.mark.slow
def test_two_workers_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    """Above 128 pictures the construction runs on two processes; the files are the same."""
    counts = {"bar": 40, "corner": 40, "cross": 40, "ring": 40}
    project = make_project(tmp_path, counts)
    one = preprocess(project, "--workers", "1", "--out-dir", "one")
    # A program of its own: the workers' forkserver would otherwise outlive the command.
    two = run_stage("preprocess", project, "--workers", "2", "--out-dir", "two")
    assert two.returncode == 0, two.stderr
    assert "on 1 process" in one.stderr
    assert "on 2 processes" in two.stderr
    assert digests(project / "one", OUTPUTS) == digests(project / "two", OUTPUTS)
    assert None not in digests(project / "two", OUTPUTS).values()


def test_the_same_seed_splits_the_same_way_and_another_differently(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    preprocess(project, "--out-dir", "first")
    preprocess(project, "--out-dir", "again")
    write_params(
        project,
        data={"dataset": "images", "images": "pictures", "val_size": 0.1, "test_size": 0.2}
        | {"split_seed": 7},
    )
    preprocess(project, "--out-dir", "other")
    assert digests(project / "first", OUTPUTS) == digests(project / "again", OUTPUTS)
    first, _ = load_outputs(project / "first")
    other, _ = load_outputs(project / "other")
    assert not np.array_equal(first["test_images"], other["test_images"])


def test_files_that_are_not_pictures_are_skipped_and_counted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "pictures" / "README.md").write_text("my pictures\n")
    (project / "pictures" / "ring" / "notes.txt").write_text("taken on Monday\n")
    (project / "pictures" / "ring" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    result = preprocess(project)
    assert (
        "pictures: skipped 3 files that are not pictures of a class (hidden, another kind of "
        "file, or outside the class sub-folders): pictures/README.md, pictures/ring/.DS_Store, "
        "pictures/ring/notes.txt" in result.stderr
    )
    _, meta = load_outputs(project / "data/processed")
    assert meta["skipped_files"] == 3
    assert sum(meta["splits"].values()) == 40


def test_the_same_file_in_two_classes_is_named_in_a_warning(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    shutil.copy(project / "pictures/bar/003.png", project / "pictures/cross/copy.png")
    shutil.copy(project / "pictures/ring/001.png", project / "pictures/ring/again.png")
    result = preprocess(project)
    assert (
        "WARNING - pictures/bar/003.png and pictures/cross/copy.png hold the same file "
        "content, labelled 'bar' and 'cross'" in result.stderr
    )
    assert (
        "pictures: 1 pictures repeat the content of another of their class (e.g. "
        "pictures/ring/001.png = pictures/ring/again.png)" in result.stderr
    )


def unreadable(project: Path) -> None:
    (project / "pictures/cross/broken.png").write_bytes(b"not a png at all")


def two_unusable(project: Path) -> None:
    unreadable(project)
    Image.new("RGB", (60, 60), "white").save(project / "pictures/ring/blank.png")


def one_class(project: Path) -> None:
    for name in ("bar", "corner", "cross"):
        shutil.rmtree(project / "pictures" / name)


def no_pictures_in_a_class(project: Path) -> None:
    shutil.rmtree(project / "pictures/corner")
    (project / "pictures/corner").mkdir()
    (project / "pictures/corner/notes.txt").write_text("to do\n")


def empty_folder(project: Path) -> None:
    shutil.rmtree(project / "pictures")
    (project / "pictures").mkdir()


def few_per_class(project: Path) -> None:
    for name in ("corner", "cross", "ring"):
        for path in sorted((project / "pictures" / name).iterdir())[1:]:
            path.unlink()


def few_in_all(project: Path) -> None:
    shutil.rmtree(project / "pictures")
    write_shapes_folder(project / "pictures", {"bar": 2, "cross": 1})


BAD_FOLDERS = {
    "missing": (
        lambda project: shutil.rmtree(project / "pictures"),
        "error: pictures: no such folder (data.images names the folder of pictures)",
    ),
    "a file": (
        lambda project: (shutil.rmtree(project / "pictures"), (project / "pictures").touch()),
        "error: pictures: not a folder (data.images names the folder of pictures)",
    ),
    "empty": (
        empty_folder,
        "error: pictures: holds no class sub-folders; expected one sub-folder of pictures per "
        "class, named for it (e.g. pictures/cat/*.jpg)",
    ),
    "one class": (
        one_class,
        "error: pictures: holds one class sub-folder (ring); at least 2 classes are needed, "
        "one sub-folder each",
    ),
    "a class without pictures": (
        no_pictures_in_a_class,
        "error: pictures/corner: holds no pictures; every class sub-folder needs at least one "
        "(files Pillow reads: .png, .jpg, .bmp, .gif, .tif, .webp, ...)",
    ),
    "a class too small for the splits": (
        few_per_class,
        # 13 pictures: test 3 and val 2, all of bar by the largest remainders
        "error: pictures/corner: too few pictures for the splits: data.test_size 0.2 and "
        "data.val_size 0.1 leave this class 1 for training and 0 for testing, of its 1; every "
        "class needs at least one of each (add pictures of it, or change the sizes)",
    ),
    "too few pictures": (
        few_in_all,
        "error: pictures: too few pictures for the splits: of its 3, data.test_size 0.2 takes "
        "1 and data.val_size 0.1 takes 1, leaving 1 for training, fewer than the 2 classes",
    ),
    "an unreadable picture": (
        unreadable,
        "error: pictures/cross/broken.png: not an image (no format Pillow reads); fix or "
        "remove it from pictures",
    ),
    "two unusable pictures": (
        two_unusable,
        "error: pictures/cross/broken.png: not an image (no format Pillow reads); 1 more "
        "cannot be used (the warnings above name them); fix or remove it from pictures",
    ),
}


@pytest.fixture(scope="module")
def preprocessed_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose folder preprocess has built once, for tests to copy. Never write."""
    project = make_project(tmp_path_factory.mktemp("preprocessed"))
    preprocess(project)
    return project


@pytest.mark.parametrize("bad", BAD_FOLDERS)
def test_a_bad_folder_is_one_line_and_keeps_the_previous_outputs(
    preprocessed_once: Path, tmp_path: Path, bad: str
) -> None:
    project = tmp_path / "project"
    shutil.copytree(preprocessed_once, project, symlinks=True)
    out_dir = project / "data/processed"
    before = digests(out_dir, OUTPUTS)
    damage, expected = BAD_FOLDERS[bad]
    damage(project)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [expected]
    assert "Traceback" not in result.stderr
    assert digests(out_dir, OUTPUTS) == before
    assert temporaries(project) == []
    if bad == "two unusable pictures":
        assert (
            "WARNING - pictures/ring/blank.png: no ink found: the image is blank, or its marks "
            "are too faint" in result.stderr
        )


@pytest.mark.parametrize("place", ["data/raw", "data/raw/pictures", "data", "."])
def test_a_folder_the_pipeline_writes_is_refused(tmp_path: Path, place: str) -> None:
    """DVC deletes data/raw and data/processed before it reruns their stages: pictures there
    would be lost, and a folder holding them would change as the pipeline runs."""
    project = make_project(tmp_path, images=place)
    (project / "data/raw").mkdir(parents=True)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith(f"error: params.yaml: data.images is {place}, which overlaps data/")
    assert line.endswith("keep your pictures in a folder of their own (not under data/)")
    assert not (project / "data/processed").exists()


@pytest.mark.slow
def test_ctrl_c_while_building_on_two_processes_stops_them_all(tmp_path: Path) -> None:
    """Ctrl-C reaches the stage and its workers (one process group): one line, exit 130,
    no worker's traceback, no process left, nothing written."""
    # 2,400 pictures: seconds of building on two processes, well past the interrupt
    counts = {"bar": 600, "corner": 600, "cross": 600, "ring": 600}
    project = make_project(tmp_path, counts)
    process = subprocess.Popen(
        [*stage_command("preprocess"), "--workers", "2"],
        cwd=project,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "building 2400 pictures" in line:
            break
    time.sleep(0.5)  # the workers are up and building
    os.killpg(process.pid, signal.SIGINT)
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: interrupted"
    ]
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    deadline = time.monotonic() + 10
    while _group_alive(process.pid):
        assert time.monotonic() < deadline, "a worker outlived the stage"
        time.sleep(0.05)
    assert not (project / "data/processed").exists()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_special_files_in_a_class_folder_are_skipped_never_opened(tmp_path: Path) -> None:
    """A FIFO named ``f.png`` (opening it waits for a writer for ever) and ``z.png``, a link
    to /dev/zero (endless): skipped and counted like other files that are not pictures,
    never opened. A regression hangs: the run has a timeout."""
    project = make_project(tmp_path)
    os.mkfifo(project / "pictures/ring/f.png")
    (project / "pictures/ring/z.png").symlink_to("/dev/zero")
    result = run_stage("preprocess", project, timeout=30)
    assert result.returncode == 0, result.stderr
    assert (
        "pictures: skipped 2 files that are not pictures of a class (hidden, another kind of "
        "file, or outside the class sub-folders): pictures/ring/f.png, pictures/ring/z.png"
        in result.stderr
    )
    _, meta = load_outputs(project / "data/processed")
    assert meta["skipped_files"] == 2
    assert sum(meta["splits"].values()) == 40


def test_an_unreadable_folder_inside_a_class_is_refused(
    preprocessed_once: Path, tmp_path: Path
) -> None:
    """Its pictures would be left out without a word: one line naming it, the previous
    outputs kept."""
    project = tmp_path / "project"
    shutil.copytree(preprocessed_once, project, symlinks=True)
    before = digests(project / "data/processed", OUTPUTS)
    locked = project / "pictures/ring/session 2"
    locked.mkdir()
    shutil.copy(project / "pictures/ring/000.png", locked / "a.png")
    locked.chmod(0)
    try:
        result = subprocess.run(
            [*without_root_overrides(), *stage_command("preprocess")],
            cwd=project,
            env=stage_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: pictures/ring/session 2: cannot read this folder (Permission denied); its "
        "pictures would be left out: make it readable, or move it out of pictures"
    ]
    assert digests(project / "data/processed", OUTPUTS) == before


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("caf\u00e9", "cafe\u0301"),  # é as one character (NFC) and as e + accent (NFD)
        ("A", "A "),
        ("A", "\u200bA"),  # a zero-width space
    ],
    ids=["nfc-nfd", "trailing-space", "zero-width-space"],
)
def test_class_folders_whose_names_look_the_same_are_refused(
    tmp_path: Path, first: str, second: str
) -> None:
    """Two folders a person reads as one class would silently be two."""
    project = make_project(tmp_path)
    for name in (first, second):
        shutil.copytree(project / "pictures/ring", project / "pictures" / name)
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    first, second = sorted((first, second))  # named in the order of the classes
    assert error_lines(result) == [
        f"error: pictures: the class folders {first!a} and {second!a} have names "
        "that look the same (they differ only in Unicode form, white space or invisible "
        "characters), and each would be a class of its own: rename one, or merge them"
    ]
    assert not (project / "data/processed").exists()


def test_class_names_differing_in_case_are_two_classes(tmp_path: Path) -> None:
    """``a`` and ``A`` are different letters: two classes, as asked."""
    project = make_project(tmp_path, {"a": 10, "A": 10})
    preprocess(project)
    _, meta = load_outputs(project / "data/processed")
    assert meta["class_names"] == ["A", "a"]


def test_a_class_folder_whose_name_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """Its name is the class's name, text in meta.json: refused here, with the advice that
    fixes it (train used to refuse it, advising to rerun preprocess)."""
    project = make_project(tmp_path)
    os.rename(project / "pictures/ring", os.fsdecode(bytes(project / "pictures") + b"/caf\xe9"))
    result = invoke_stage("preprocess", project)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: pictures/caf\\xe9: the class folder's name is not UTF-8 text; rename it (the "
        "name is the class's name, kept as text in meta.json and the model)"
    ]
    assert not (project / "data/processed").exists()


@pytest.mark.slow
def test_a_picture_added_while_the_folder_is_read_is_refused(tmp_path: Path) -> None:
    """DVC records the folder as it is after the stage: a picture added while the pictures
    are built would be in that record and not in the data. One line, nothing written."""
    project = make_project(tmp_path, {"bar": 400, "corner": 400, "cross": 400, "ring": 400})
    process = subprocess.Popen(
        [*stage_command("preprocess"), "--workers", "1"],
        cwd=project,
        env=stage_environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "building 1600 pictures" in line:
            break
    shutil.copy(project / "pictures/ring/000.png", project / "pictures/ring/new.png")
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: pictures: the folder changed while preprocess read it (pictures/ring/new.png "
        "added); nothing was written: run again once it holds still"
    ]
    assert not (project / "data/processed").exists()
    assert temporaries(project) == []
