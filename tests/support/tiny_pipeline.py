"""The project on a tiny generated dataset, as its own git + DVC repository, for the browser,
remote and sweep tests: the real dvc, real stages, seconds per run."""

from __future__ import annotations

from pathlib import Path

from support.dvc_project import Project
from support.idx import checksum_table, gz_files, make_arrays, write_checksums, write_files

N_TRAIN, N_TEST, N_CLASSES = 60, 20, 10
TINY_PARAMS = {
    "data": {"val_size": 10},
    "train": {"epochs": 2, "batch_size": 16, "restore_best": False},
}


def tiny_project(base: Path) -> Project:
    """``base/project``, committed and not yet run, with its mirror in ``base/mirror``."""
    arrays = make_arrays(n_train=N_TRAIN, n_test=N_TEST, seed=3)
    mirror = write_files(base / "mirror", gz_files(arrays))
    root = base / "project"
    root.mkdir(parents=True)
    project = Project.create(root, mirror, TINY_PARAMS)
    write_checksums(root / "stages" / "data" / "sha256", "mnist", checksum_table(arrays))
    project.commit("accept the tiny test dataset")
    return project
