"""The datasets the pipeline knows: their files, public mirrors, class names and checksums.

Checksums are SHA-256 digests of the *decompressed* IDX bytes, because mirrors and
distributions re-compress the ``.gz`` files (see ``../shared/mnist/README.md``). They live in
``stages/checksums/<dataset>.sha256``, one ``<sha256>  <file name>`` line per file, the format
``sha256sum`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stages.cli import StageError

CHECKSUM_DIR = Path(__file__).resolve().parent / "checksums"

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

_LINE = re.compile(r"(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>\S.*)")


@dataclass(frozen=True)
class Dataset:
    """One dataset in the IDX format: where to get its four files and what its labels mean."""

    name: str
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    files: tuple[str, ...] = FILES

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist",  # the PyTorch team's
            "https://storage.googleapis.com/cvdf-datasets/mnist",  # Google's
        ),
        class_names=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": Dataset(
        name="fashion-mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",),  # its authors'
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``; StageError if there is none."""
    try:
        return DATASETS[name]
    except KeyError:
        raise StageError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None


def parse_checksums(text: str, source: str) -> dict[str, str]:
    """Parse ``sha256sum``-style lines into ``{file name: lowercase hex digest}``.

    Blank lines and ``#`` comments are skipped. A name without ``.gz`` (as in a
    ``SHA256SUMS-uncompressed`` list) means the ``.gz`` file holding those bytes.
    """
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise StageError(
                f"{source}:{number}: expected '<sha256 hex>  <file name>', got {line!r}"
            )
        name = match["name"].strip()
        if not name.endswith(".gz"):
            name += ".gz"
        table[name] = match["digest"].lower()
    return table


def read_checksums(dataset: Dataset, directory: Path = CHECKSUM_DIR) -> dict[str, str]:
    """The recorded decompressed SHA-256 of each of ``dataset``'s files, from ``directory``.

    Raises StageError if the table is missing, malformed or lacks one of the files.
    """
    path = Path(directory) / f"{dataset.name}.sha256"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StageError(f"{path}: no checksum table for dataset {dataset.name!r}") from None
    except OSError as exc:
        raise StageError(f"{path}: cannot read the checksum table ({exc.strerror})") from None
    table = parse_checksums(text, str(path))
    missing = [name for name in dataset.files if name not in table]
    if missing:
        raise StageError(f"{path}: no checksum for {', '.join(missing)}")
    return {name: table[name] for name in dataset.files}
