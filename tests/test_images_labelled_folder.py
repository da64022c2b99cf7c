"""stages.images.labelled_folder: a folder's classes and pictures, in a fixed order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from support.picture_folders import shape_ink
from support.user_looks import dark_on_white

from stages.images.labelled_folder import scan_labelled_folder


def picture(path: Path, seed: int) -> Path:
    """A drawn ring at ``path`` (its suffix kept: ``.JPG`` stays ``.JPG``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return dark_on_white(shape_ink("ellipse", rng), rng, path.with_suffix("")).rename(path)


def test_classes_are_sorted_names_and_pictures_are_found_below_them(tmp_path: Path) -> None:
    root = tmp_path / "symbols"
    files = [
        picture(root / "2" / "a.png", 0),
        picture(root / "10" / "b.JPG", 1),
        picture(root / "10" / "session 2" / "c.png", 2),
        picture(root / "10" / "a.png", 3),
    ]
    (root / "10" / "notes.txt").write_text("x")
    (root / "2" / ".hidden" / "d.png").parent.mkdir()
    shutil.copy(files[0], root / "2" / ".hidden" / "d.png")
    (root / ".git").mkdir()
    (root / "README").write_text("x")

    folder = scan_labelled_folder(root)
    assert folder.class_names == ("10", "2")  # sorted as text
    assert folder.pictures == (
        root / "10" / "a.png",
        root / "10" / "b.JPG",
        root / "10" / "session 2" / "c.png",
        root / "2" / "a.png",
    )
    assert folder.labels == (0, 0, 0, 1)
    assert folder.skipped == (
        root / ".git",
        root / "README",
        root / "10" / "notes.txt",
        root / "2" / ".hidden" / "d.png",
    )
    assert folder.class_folder(1) == root / "2"
