"""Small IDX datasets for tests: arrays, their gzip files, checksum tables, and damaged copies."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


def idx_bytes(array: np.ndarray) -> bytes:
    """The uncompressed IDX encoding of a uint8 array (type code 0x08)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def gz(data: bytes) -> bytes:
    """Deterministic gzip (fixed mtime), so equal payloads give equal files."""
    return gzip.compress(data, mtime=0)


def make_arrays(
    n_train: int = 20, n_test: int = 10, shape: tuple[int, int] = (28, 28), seed: int = 0
) -> dict[str, np.ndarray]:
    """Random uint8 images and labels where every split holds all 10 digits (n >= 10)."""
    rng = np.random.default_rng(seed)

    def labels(n: int) -> np.ndarray:
        return rng.permutation(np.arange(n) % 10).astype(np.uint8)

    return {
        TRAIN_IMAGES: rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
        TRAIN_LABELS: labels(n_train),
        TEST_IMAGES: rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8),
        TEST_LABELS: labels(n_test),
    }


def gz_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """File name -> the bytes of its ``.gz`` file."""
    return {name: gz(idx_bytes(array)) for name, array in arrays.items()}


def checksum_table(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """File name -> SHA-256 of the decompressed IDX bytes, as the downloader checks."""
    return {name: hashlib.sha256(idx_bytes(array)).hexdigest() for name, array in arrays.items()}


def write_checksums(directory: Path, dataset: str, table: dict[str, str]) -> Path:
    """Write ``directory/<dataset>.sha256`` in ``sha256sum`` format; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{digest}  {name}\n" for name, digest in table.items())
    (directory / f"{dataset}.sha256").write_text(lines, encoding="utf-8")
    return directory


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    """Write each ``name: bytes`` into ``directory`` (created); return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


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
