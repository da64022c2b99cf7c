"""stages.images.parallel_build: many files built in their order, each with its fingerprint or the
reason it has no image."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from support.picture_folders import shape_ink
from support.user_looks import dark_on_white

from stages.images.mnist import mnist_digit
from stages.images.parallel_build import build_files, worker_count
from stages.images.reading import read_image


def test_build_files_keeps_the_order_and_names_each_failure(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good = dark_on_white(shape_ink("ellipse", rng), rng, tmp_path / "good")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    missing = tmp_path / "gone.png"
    copy = tmp_path / "copy.png"
    shutil.copy(good, copy)

    results = build_files([good, broken, missing, copy], "mnist", workers=4)
    assert [result.error for result in results] == [
        None,
        "not an image (no format Pillow reads)",
        "No such file or directory",
        None,
    ]
    assert results[0].digest == hashlib.sha256(good.read_bytes()).hexdigest()
    assert results[3].digest == results[0].digest
    assert np.array_equal(results[0].pixels, mnist_digit(read_image(good)))
    assert np.array_equal(results[3].pixels, results[0].pixels)


def test_a_few_files_are_built_in_this_process() -> None:
    assert worker_count(10, 2) == 1
    assert worker_count(127, 2) == 1
    assert worker_count(128, 2) == 2
    assert worker_count(10_000, 2) == 2
    assert worker_count(10_000, 1) == 1
