"""A folder of labelled pictures as a dataset: every picture built as predict builds it.

``load_folder_dataset`` builds each picture of a scanned folder (``labelled_folder``)
through the construction named (``parallel_build``), refuses a picture that cannot be used, and
warns about the same file content under two labels, naming both files.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.data.errors import DataError
from stages.images.errors import ImageError
from stages.images.labelled_folder import LabelledFolder
from stages.images.parallel_build import Built, build_files

logger = logging.getLogger(__name__)

#: duplicates named one warning line each; more are counted in one line
DUPLICATES_NAMED = 10
EXAMPLES_NAMED = 3


@dataclass(frozen=True)
class FolderDataset:
    """The pictures of ``folder`` built: ``images`` ``(n, 28, 28)`` uint8 (ink 255) and
    ``labels`` ``(n,)`` int64, in the folder's order (classes by name, pictures by path)."""

    folder: LabelledFolder
    images: np.ndarray
    labels: np.ndarray


def warn_skipped(folder: LabelledFolder) -> None:
    """One warning line counting the files of ``folder`` that are not pictures of a class."""
    if folder.skipped:
        examples = ", ".join(str(path) for path in folder.skipped[:EXAMPLES_NAMED])
        more = ", ..." if len(folder.skipped) > EXAMPLES_NAMED else ""
        logger.warning(
            "%s: skipped %d files that are not pictures of a class (hidden, another kind of "
            "file, or outside the class sub-folders): %s%s",
            folder.root,
            len(folder.skipped),
            examples,
            more,
        )


def load_folder_dataset(
    folder: LabelledFolder,
    construction: str,
    workers: int,
    advance: Callable[[int], None] | None = None,
) -> FolderDataset:
    """Build each picture of ``folder`` (``scan_labelled_folder``) through ``construction``
    on up to ``workers`` processes, and check the result.

    DataError names the first picture that cannot be used (the others are logged as
    warnings before it).
    """
    try:
        built = build_files(folder.pictures, construction, workers, advance)
    except ImageError as exc:
        raise DataError(f"{folder.root}: {exc}") from None
    _refuse_unusable(folder, built)
    _warn_duplicates(folder, built)
    images = np.stack([result.pixels for result in built])
    return FolderDataset(folder, images, np.asarray(folder.labels, dtype=np.int64))


def _refuse_unusable(folder: LabelledFolder, built: list[Built]) -> None:
    failed = [
        (path, result.error)
        for path, result in zip(folder.pictures, built, strict=True)
        if result.error is not None
    ]
    if not failed:
        return
    for path, error in failed[1:]:
        logger.warning("%s: %s", path, error)
    path, error = failed[0]
    more = (
        f"; {len(failed) - 1} more cannot be used (the warnings above name them)"
        if len(failed) > 1
        else ""
    )
    raise DataError(f"{path}: {error}{more}; fix or remove it from {folder.root}")


def _warn_duplicates(folder: LabelledFolder, built: list[Built]) -> None:
    """Warn, naming both files, where two classes hold the same file content; count the
    copies within one class."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for index, result in enumerate(built):
        by_digest[result.digest].append(index)
    across: list[str] = []
    within: list[tuple[Path, Path]] = []
    for indices in by_digest.values():
        first = indices[0]
        seen_labels = {folder.labels[first]}
        for other in indices[1:]:
            pair = (folder.pictures[first], folder.pictures[other])
            label = folder.labels[other]
            if label in seen_labels:
                within.append(pair)
                continue
            seen_labels.add(label)
            across.append(
                f"{pair[0]} and {pair[1]} hold the same file content, labelled "
                f"{folder.class_names[folder.labels[first]]!r} and "
                f"{folder.class_names[label]!r}"
            )
    for line in across[:DUPLICATES_NAMED]:
        logger.warning("%s", line)
    if len(across) > DUPLICATES_NAMED:
        logger.warning(
            "%s: %d more files hold the content of a file of another class",
            folder.root,
            len(across) - DUPLICATES_NAMED,
        )
    if within:
        logger.warning(
            "%s: %d pictures repeat the content of another of their class (e.g. %s = %s); "
            "the copies may land in different splits",
            folder.root,
            len(within),
            *within[0],
        )
