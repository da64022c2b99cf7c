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
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from stages.cli.app import LogLevelOption, ParamsOption, new_app, run, stage_errors
from stages.cli.params import DataParams, load_params
from stages.data.errors import DataError
from stages.data.normalization import Normalization
from stages.data.processed import META_FILE, images_path, labels_path
from stages.data.raw import LabeledImages, load_raw
from stages.data.sources import get_source
from stages.data.splits import stratified_split
from stages.outputs.atomic import OutputSet

logger = logging.getLogger("stages.preprocess")

app = new_app("Parse, split and normalize the raw IDX files of data.dataset.")


def output_paths(out_dir: Path) -> list[Path]:
    """Every file preprocess writes into ``out_dir``."""
    splits = ("train", "val", "test")
    return [
        *(images_path(out_dir, s) for s in splits),
        *(labels_path(out_dir, s) for s in splits),
        out_dir / META_FILE,
    ]


def preprocess(raw_dir: Path, out_dir: Path, params: DataParams, source: Path) -> dict[str, Any]:
    """Run the stage; return the metadata written to ``out_dir/meta.json``.

    ``source`` names the params file in errors. The validation split is stratified
    (see ``stages.data.splits.stratified_counts``); standardization statistics come from
    the training split only.
    """
    data_source = get_source(params.dataset)
    train, test = load_raw(raw_dir, data_source)
    left = len(train.labels) - params.val_size
    if left < data_source.n_classes:
        raise DataError(
            f"{source}: data.val_size is {params.val_size}, which leaves {max(left, 0)} of the "
            f"{len(train.labels)} training images for training; at least "
            f"{data_source.n_classes} (one per class) must remain"
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
        raise DataError(
            f"{raw_dir / data_source.name / data_source.files.train_images}: {exc}"
        ) from None
    meta = {
        "dataset": data_source.name,
        "image_shape": list(test.images.shape[1:]),
        "class_names": list(data_source.class_names),
        "normalization": normalization.to_dict(),
        "splits": {name: len(split.labels) for name, split in splits.items()},
        "class_counts": {
            name: np.bincount(split.labels, minlength=data_source.n_classes).tolist()
            for name, split in splits.items()
        },
        "val_stratified": True,
        "val_size": params.val_size,
        "split_seed": params.split_seed,
    }
    # All checks passed. Normalize one split at a time (one float32 copy in memory); the
    # files replace the old ones together, so a failure midway changes nothing.
    with OutputSet() as outputs:
        for name, split in splits.items():
            with outputs.open(images_path(out_dir, name)) as handle:
                np.save(handle, normalization.apply(split.images))
            with outputs.open(labels_path(out_dir, name)) as handle:
                np.save(handle, split.labels.astype(np.int64))
        with outputs.open(out_dir / META_FILE, "w") as handle:
            handle.write(json.dumps(meta, indent=2, allow_nan=False) + "\n")
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
    with stage_errors(log_level) as stage:
        data = load_params(params).data
        stage.claim(*output_paths(out_dir))
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
