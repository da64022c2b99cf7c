"""Stage 2: turn the data into normalized train/val/test arrays, written as ``.npy`` files.

Run as ``python -m stages.preprocess``. For mnist and fashion-mnist it reads
``data/raw/<dataset>/*.gz`` and splits a validation set off the training images; for
``images`` it builds every picture of the folder ``data.images`` (one sub-folder per class)
through the construction predict uses, then splits it into train, val and test. Writes to
``data/processed/``: ``{train,val,test}_images.npy`` float32 ``(n, rows * cols)``,
``{train,val,test}_labels.npy`` int64 ``(n,)`` and ``meta.json`` (dataset, construction,
class names, normalization, split sizes). Every input is checked before anything is
written; the files replace the old ones together.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from stages.cli.app import DATA_DIR, LogLevelOption, ParamsOption, new_app, run, stage_errors
from stages.cli.params import DataParams, load_params
from stages.cli.progress import progress_bar
from stages.data.errors import DataError
from stages.data.normalization import Normalization
from stages.data.processed import META_FILE, images_path, labels_path
from stages.data.raw import LabeledImages, load_raw
from stages.data.sources import IMAGE_FOLDER, get_source
from stages.data.splits import split_count, stratified_split, stratified_three_way
from stages.images.constructions import IMAGE_SHAPE, construction_of
from stages.images.folder_dataset import load_folder_dataset, warn_skipped
from stages.images.labelled_folder import LabelledFolder, check_unchanged, scan_labelled_folder
from stages.images.parallel_build import available_cores, worker_count
from stages.outputs.atomic import OutputSet

logger = logging.getLogger("stages.preprocess")

app = new_app("Build, split and normalize the data of data.dataset (IDX files or your folder).")

Splits = dict[str, LabeledImages]
#: the splits, what meta.json says of them, the file or folder the images came from, and
#: the folder of pictures read (None for IDX files)
Prepared = tuple[Splits, dict[str, Any], Path, LabelledFolder | None]


def idx_splits(raw_dir: Path, params: DataParams, source: Path) -> Prepared:
    """The train/val/test splits of a downloaded IDX dataset and what meta.json says of
    them: the training images less a stratified validation set, and the test set."""
    data_source = get_source(params.dataset)
    train, test = load_raw(raw_dir, data_source)
    val_size = split_count(params.val_size, len(train.labels))
    left = len(train.labels) - val_size
    if left < data_source.n_classes:
        raise DataError(
            f"{source}: data.val_size is {params.val_size}, which leaves {max(left, 0)} of the "
            f"{len(train.labels)} training images for training; at least "
            f"{data_source.n_classes} (one per class) must remain"
        )
    train_idx, val_idx = stratified_split(train.labels, val_size, params.split_seed)
    splits = {
        "train": LabeledImages(train.images[train_idx], train.labels[train_idx]),
        "val": LabeledImages(train.images[val_idx], train.labels[val_idx]),
        "test": test,
    }
    described = {
        "image_shape": list(test.images.shape[1:]),
        "class_names": list(data_source.class_names),
        "val_size": val_size,
    }
    return splits, described, raw_dir / data_source.name / data_source.files.train_images, None


def check_folder_place(folder: Path, outputs: tuple[Path, ...], source: Path) -> None:
    """Refuse a folder of pictures inside a folder the pipeline writes (DVC deletes those
    before it reruns their stage), or holding one."""
    place = folder.resolve()
    for output in outputs:
        written = output.resolve()
        if place == written or written in place.parents or place in written.parents:
            raise DataError(
                f"{source}: data.images is {folder}, which overlaps {output}, a folder the "
                "pipeline writes; keep your pictures in a folder of their own (not under data/)"
            )


def check_split_sizes(
    folder: LabelledFolder,
    labels: np.ndarray,
    indices: dict[str, np.ndarray],
    params: DataParams,
) -> None:
    """Refuse splits that leave a class without a training or a test picture."""
    n_classes = len(folder.class_names)
    counts = {name: np.bincount(labels[idx], minlength=n_classes) for name, idx in indices.items()}
    for label in range(n_classes):
        train, test = int(counts["train"][label]), int(counts["test"][label])
        if train and test:
            continue
        total = train + test + int(counts["val"][label])
        raise DataError(
            f"{folder.class_folder(label)}: too few pictures for the splits: data.test_size "
            f"{params.test_size} and data.val_size {params.val_size} leave this class {train} "
            f"for training and {test} for testing, of its {total}; every class needs at least "
            "one of each (add pictures of it, or change the sizes)"
        )


def folder_splits(
    params: DataParams, source: Path, outputs: tuple[Path, ...], workers: int
) -> Prepared:
    """The train/val/test splits of the folder ``data.images``, every picture built through
    the construction of the images dataset, and what meta.json says of them."""
    root = Path(params.images)
    check_folder_place(root, outputs, source)
    folder = scan_labelled_folder(root)
    warn_skipped(folder)
    n = len(folder.pictures)
    n_test = split_count(params.test_size, n)
    n_val = split_count(params.val_size, n)
    n_classes = len(folder.class_names)
    if n - n_test - n_val < n_classes:
        raise DataError(
            f"{root}: too few pictures for the splits: of its {n}, data.test_size "
            f"{params.test_size} takes {n_test} and data.val_size {params.val_size} takes "
            f"{n_val}, leaving {max(n - n_test - n_val, 0)} for training, fewer than the "
            f"{n_classes} classes"
        )
    construction = construction_of(IMAGE_FOLDER)
    processes = worker_count(n, workers)
    logger.info(
        "%s: building %d pictures of %d classes through %s's construction on %d %s",
        root,
        n,
        n_classes,
        construction,
        processes,
        "process" if processes == 1 else "processes",
    )
    started = time.perf_counter()
    with progress_bar("building pictures", total=n) as advance:
        dataset = load_folder_dataset(folder, construction, processes, advance)
    logger.info("%s: built %d pictures in %.1f s", root, n, time.perf_counter() - started)
    train, val, test = stratified_three_way(dataset.labels, n_test, n_val, params.split_seed)
    indices = {"train": train, "val": val, "test": test}
    check_split_sizes(folder, dataset.labels, indices, params)
    splits = {
        name: LabeledImages(dataset.images[idx], dataset.labels[idx])
        for name, idx in indices.items()
    }
    described = {
        "images": str(root),
        "image_shape": list(IMAGE_SHAPE),
        "class_names": list(folder.class_names),
        "val_size": n_val,
        "test_size": n_test,
        "skipped_files": len(folder.skipped),
    }
    return splits, described, root, folder


def output_paths(out_dir: Path) -> list[Path]:
    """Every file preprocess writes into ``out_dir``."""
    splits = ("train", "val", "test")
    return [
        *(images_path(out_dir, s) for s in splits),
        *(labels_path(out_dir, s) for s in splits),
        out_dir / META_FILE,
    ]


def preprocess(
    raw_dir: Path, out_dir: Path, params: DataParams, source: Path, workers: int = 1
) -> dict[str, Any]:
    """Run the stage; return the metadata written to ``out_dir/meta.json``.

    ``source`` names the params file in errors. The splits are stratified (see
    ``stages.data.splits``); standardization statistics come from the training split only.
    ``workers``: processes that build the pictures of a folder.
    """
    if params.dataset == IMAGE_FOLDER:
        prepared = folder_splits(params, source, (raw_dir, out_dir), workers)
    else:
        prepared = idx_splits(raw_dir, params, source)
    splits, described, origin, folder = prepared
    try:
        normalization = Normalization.fit(params.normalize, splits["train"].images)
    except ValueError as exc:
        raise DataError(f"{origin}: {exc}") from None
    n_classes = len(described["class_names"])
    meta = {
        "dataset": params.dataset,
        "construction": construction_of(params.dataset),
        **described,
        "normalization": normalization.to_dict(),
        "splits": {name: len(split.labels) for name, split in splits.items()},
        "class_counts": {
            name: np.bincount(split.labels, minlength=n_classes).tolist()
            for name, split in splits.items()
        },
        "val_stratified": True,
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
        if folder is not None:
            # DVC records the folder as it is once the stage ends: what was read must be it.
            check_unchanged(folder)
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
    ] = DATA_DIR,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes that build the pictures of a folder (data.dataset images); "
            "the output is the same for any number. Default: the CPUs available.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Turn the data of data.dataset into normalized train/val/test arrays.

    mnist, fashion-mnist: splits a stratified validation set of data.val_size images off
    the training set of the raw IDX files. images: builds every picture of the folder
    data.images through predict's construction, and splits stratified test (data.test_size)
    and validation (data.val_size) sets off them. The splits are seeded by data.split_seed;
    the images normalized as data.normalize says. Writes float32 images (n, rows * cols),
    int64 labels and meta.json to <out-dir>.
    """
    with stage_errors(log_level) as stage:
        data = load_params(params).data
        # A folder of pictures that overlaps the outputs is refused with its own advice below.
        reads = (params,) if data.dataset == IMAGE_FOLDER else (params, raw_dir)
        stage.claim(*output_paths(out_dir), reads=reads)
        meta = preprocess(raw_dir, out_dir, data, params, workers or available_cores())
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
