"""Stage 2: parse the raw IDX files, split off a validation set, normalize, write ``.npy`` files.

Run as ``python -m stages.preprocess``. Reads ``data/raw/<dataset>/*.gz``; writes to
``data/processed/``: ``{train,val,test}_images.npy`` float32 ``(n, rows * cols)``,
``{train,val,test}_labels.npy`` int64 ``(n,)`` and ``meta.json`` (dataset, class names,
normalization, split sizes). Every input is checked before anything is written; each file
is written atomically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from nnlib.atomicfile import staged_files
from nnlib.idx import read_idx
from stages.cli import LogLevelOption, ParamsOption, StageError, new_app, run, stage_errors
from stages.datasets import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Dataset,
    get_dataset,
)
from stages.params import DataParams, data_params, load_params
from stages.processed import META_FILE, images_path, labels_path
from stages.splits import Normalization, stratified_split

logger = logging.getLogger("stages.preprocess")

app = new_app("Parse, split and normalize the raw IDX files of data.dataset.")


@dataclass(frozen=True)
class LabeledImages:
    """``images`` ``(n, rows, cols)`` uint8 and their ``labels`` ``(n,)`` uint8."""

    images: np.ndarray
    labels: np.ndarray


def load_pair(images_path: Path, labels_path: Path, n_classes: int) -> LabeledImages:
    """Read and check one images file and its labels file; StageError naming the bad file."""
    for path in (images_path, labels_path):
        if not path.is_file():
            raise StageError(f"{path}: no such file (run `python -m stages.download` first)")
    images = read_idx(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise StageError(
            f"{images_path}: expected uint8 images of shape (n, rows, cols), "
            f"got {images.dtype} of shape {images.shape}"
        )
    labels = read_idx(labels_path)
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise StageError(
            f"{labels_path}: expected uint8 labels of shape (n,), "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise StageError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(images) == 0:
        raise StageError(f"{images_path}: holds no images")
    if labels.max() >= n_classes:
        raise StageError(
            f"{labels_path}: label {int(labels.max())} is out of range, expected 0-{n_classes - 1}"
        )
    return LabeledImages(images, labels)


def load_raw(raw_dir: Path, dataset: Dataset) -> tuple[LabeledImages, LabeledImages]:
    """The checked ``(train, test)`` sets of ``dataset`` from ``raw_dir/<dataset>/``."""
    folder = raw_dir / dataset.name
    train = load_pair(folder / TRAIN_IMAGES, folder / TRAIN_LABELS, dataset.n_classes)
    test = load_pair(folder / TEST_IMAGES, folder / TEST_LABELS, dataset.n_classes)
    if train.images.shape[1:] != test.images.shape[1:]:
        raise StageError(
            f"{folder / TEST_IMAGES}: images are {test.images.shape[1:]}, but the training "
            f"images in {folder / TRAIN_IMAGES} are {train.images.shape[1:]}"
        )
    return train, test


def preprocess(raw_dir: Path, out_dir: Path, params: DataParams, source: Path) -> dict[str, Any]:
    """Run the stage; return the metadata written to ``out_dir/meta.json``.

    ``source`` names the params file in errors. The validation split is stratified
    (see ``stages.splits.stratified_counts``); standardization statistics come from
    the training split only.
    """
    dataset = get_dataset(params.dataset)
    train, test = load_raw(raw_dir, dataset)
    if params.val_size >= len(train.labels):
        raise StageError(
            f"{source}: data.val_size is {params.val_size}, but there are only "
            f"{len(train.labels)} training images; it must be smaller"
        )
    train_idx, val_idx = stratified_split(train.labels, params.val_size, params.split_seed)
    splits = {
        "train": LabeledImages(train.images[train_idx], train.labels[train_idx]),
        "val": LabeledImages(train.images[val_idx], train.labels[val_idx]),
        "test": test,
    }
    del train
    try:
        normalization = Normalization.fit(params.normalize, splits["train"].images)
    except ValueError as exc:
        raise StageError(f"{raw_dir / dataset.name / TRAIN_IMAGES}: {exc}") from None
    meta = {
        "dataset": dataset.name,
        "image_shape": list(test.images.shape[1:]),
        "class_names": list(dataset.class_names),
        "normalization": normalization.to_dict(),
        "splits": {name: len(split.labels) for name, split in splits.items()},
        "class_counts": {
            name: np.bincount(split.labels, minlength=dataset.n_classes).tolist()
            for name, split in splits.items()
        },
        "val_stratified": True,
        "val_size": params.val_size,
        "split_seed": params.split_seed,
    }
    # All checks passed. Normalize one split at a time (one float32 copy in memory); the
    # files replace the old ones together, so a failure midway changes nothing.
    with staged_files(out_dir) as staging:
        for name, split in splits.items():
            np.save(images_path(staging, name), normalization.apply(split.images))
            np.save(labels_path(staging, name), split.labels.astype(np.int64))
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


@app.command()
def main(
    params: ParamsOption = Path("params.yaml"),
    log_level: LogLevelOption = "INFO",
    raw_dir: Annotated[
        Path,
        typer.Option(
            "--raw-dir", "--raw_dir", help="Read <raw-dir>/<dataset>/*.gz.", file_okay=False
        ),
    ] = Path("data/raw"),
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir", "--out_dir", help="Write the arrays and meta.json here.", file_okay=False
        ),
    ] = Path("data/processed"),
) -> None:
    """Turn the raw IDX files of data.dataset into normalized train/val/test arrays.

    Splits a stratified validation set of data.val_size images (seeded by data.split_seed)
    off the training set, normalizes as data.normalize says, and writes float32 images
    (n, rows * cols), int64 labels and meta.json to <out-dir>.
    """
    with stage_errors(log_level):
        data = data_params(load_params(params), params)
        meta = preprocess(raw_dir, out_dir, data, params)
        sizes = meta["splits"]
        logger.info(
            "%s: wrote %s: train %d, val %d (stratified, seed %d), test %d images; %s",
            data.dataset,
            out_dir,
            sizes["train"],
            sizes["val"],
            data.split_seed,
            sizes["test"],
            _describe(meta["normalization"]),
        )


def _describe(normalization: dict[str, Any]) -> str:
    if normalization["method"] == "scale":
        return "pixels scaled to [0, 1]"
    return f"standardized with mean {normalization['mean']:.4f}, std {normalization['std']:.4f}"


if __name__ == "__main__":
    run(app)
