"""The data sources the pipeline knows: their four IDX files, public mirrors and class names.

``DATA_SOURCES`` is the one list of the downloaded (IDX) datasets and ``DATASETS`` of every
name ``data.dataset`` in params.yaml takes: those, and ``IMAGE_FOLDER`` (a user's folder of
labelled pictures, ``data.images``); ``IDX_FILES`` the one list of the files every IDX
source publishes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from stages.data.errors import DataError


@dataclass(frozen=True)
class IdxFiles:
    """The names of the four gzip-compressed IDX files of an MNIST-format dataset."""

    train_images: str = "train-images-idx3-ubyte.gz"
    train_labels: str = "train-labels-idx1-ubyte.gz"
    test_images: str = "t10k-images-idx3-ubyte.gz"
    test_labels: str = "t10k-labels-idx1-ubyte.gz"

    def __iter__(self) -> Iterator[str]:
        return iter((self.train_images, self.train_labels, self.test_images, self.test_labels))


IDX_FILES = IdxFiles()
#: decompressed bytes of each file, the same for every 28x28, 60,000 + 10,000 image dataset
MNIST_FORMAT_SIZES: dict[str, int] = {
    IDX_FILES.train_images: 16 + 60_000 * 28 * 28,
    IDX_FILES.train_labels: 8 + 60_000,
    IDX_FILES.test_images: 16 + 10_000 * 28 * 28,
    IDX_FILES.test_labels: 8 + 10_000,
}


@dataclass(frozen=True)
class DataSource:
    """One dataset in the IDX format: where to get its files and what its labels mean."""

    name: str
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    files: IdxFiles = IDX_FILES
    #: decompressed bytes of each file: downloads stop at once beyond them
    sizes: Mapping[str, int] = field(default_factory=lambda: MNIST_FORMAT_SIZES)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


DATA_SOURCES: dict[str, DataSource] = {
    "mnist": DataSource(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist",  # the PyTorch team's
            "https://storage.googleapis.com/cvdf-datasets/mnist",  # Google's
        ),
        class_names=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": DataSource(
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


#: ``data.dataset`` of a user's folder of labelled pictures: nothing to download
IMAGE_FOLDER = "images"
DATASETS: tuple[str, ...] = (*DATA_SOURCES, IMAGE_FOLDER)


def get_source(name: str) -> DataSource:
    """The registered data source called ``name``; DataError if there is none."""
    try:
        return DATA_SOURCES[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATA_SOURCES)})") from None
