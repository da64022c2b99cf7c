"""Small IDX datasets for tests: the IDX encoding, gzip files, checksum tables, damaged copies.

The encoding is written from the format's description (magic ``0 0 <type> <ndim>``, each
dimension a big-endian uint32, then the data big-endian), independently of
``stages.data.idx``, so that the parser is checked against it. File names come from
``stages.data.sources.IDX_FILES``.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from stages.data.sources import IDX_FILES

# IDX type code -> the big-endian numpy type it stores
IDX_TYPE_CODES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The uncompressed IDX encoding of ``array`` as type ``type_code`` (uint8 by default)."""
    header = bytes([0, 0, type_code, array.ndim])
    for dim in array.shape:
        header += int(dim).to_bytes(4, "big")
    return header + np.ascontiguousarray(array, dtype=IDX_TYPE_CODES[type_code]).tobytes()


def gz(data: bytes) -> bytes:
    """Deterministic gzip (fixed mtime), so equal payloads give equal files."""
    return gzip.compress(data, mtime=0)


def make_arrays(
    n_train: int = 40, n_test: int = 10, shape: tuple[int, int] = (28, 28), seed: int = 0
) -> dict[str, np.ndarray]:
    """IDX file name -> uint8 images or labels; every split holds all 10 digits (``n >= 10``).

    Each class has its own random pattern of bright pixels and every image is its class's
    pattern plus noise, so a network learns the labels in a few steps (a pipeline refuses
    a model that stays at chance).
    """
    rng = np.random.default_rng(seed)
    patterns = rng.random((10, *shape)) < 0.3

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        noise = rng.integers(0, 96, size=(n, *shape))
        images = np.where(patterns[labels], 255 - noise, noise).astype(np.uint8)
        return images, labels

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return {
        IDX_FILES.train_images: train_images,
        IDX_FILES.train_labels: train_labels,
        IDX_FILES.test_images: test_images,
        IDX_FILES.test_labels: test_labels,
    }


def gz_files(arrays: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    """File name -> the bytes of its ``.gz`` file."""
    return {name: gz(idx_bytes(array)) for name, array in arrays.items()}


def checksum_table(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """File name -> SHA-256 of the decompressed IDX bytes, as the downloader checks."""
    return {name: hashlib.sha256(idx_bytes(array)).hexdigest() for name, array in arrays.items()}


def write_checksums(directory: Path, dataset: str, table: Mapping[str, str]) -> Path:
    """Write ``directory/<dataset>.sha256`` in ``sha256sum`` format; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{digest}  {name}\n" for name, digest in table.items())
    (directory / f"{dataset}.sha256").write_text(lines, encoding="utf-8")
    return directory


def write_files(directory: Path, files: Mapping[str, bytes]) -> Path:
    """Write each ``name: bytes`` into ``directory`` (created); return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def link_files(directory: Path, source: Path, names: Iterable[str] = IDX_FILES) -> Path:
    """Symbolic links ``directory/name`` -> ``source/name`` (``directory`` created, links
    already there replaced); return the directory. For the real MNIST files, never copied."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).unlink(missing_ok=True)
        (directory / name).symlink_to(source / name)
    return directory


def assert_verified(directory: Path, files: Mapping[str, bytes]) -> None:
    """``directory`` holds exactly ``files``, each with the same decompressed content."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(files)
    for name, data in files.items():
        assert gzip.decompress((directory / name).read_bytes()) == gzip.decompress(data)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` share of ``data`` (a gzip stream cut inside its member)."""
    return data[: max(1, int(len(data) * keep))]


def wrong_payload(gz_data: bytes) -> bytes:
    """A valid gzip file whose content differs from ``gz_data``'s by one byte."""
    payload = bytearray(gzip.decompress(gz_data))
    payload[-1] ^= 0xFF
    return gz(bytes(payload))


def garbage(length: int = 1000) -> bytes:
    """Bytes that are not gzip at all."""
    return bytes(range(256)) * (length // 256) + b"x" * (length % 256)
