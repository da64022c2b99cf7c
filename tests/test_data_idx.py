"""The IDX parser against IDX bytes written independently (tests/support/idx.py)."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from support.idx import IDX_TYPE_CODES, idx_bytes

from stages.data.errors import IDXFormatError
from stages.data.idx import parse_idx, read_idx
from stages.data.sources import IDX_FILES


def sample_array(type_code: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values spanning each type's range, including extremes and negatives."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(IDX_TYPE_CODES[type_code])
    if dtype.kind == "f":
        values = rng.normal(0, 1e3, size=shape)
        flat = values.reshape(-1)
        flat[:3] = [np.finfo(dtype).max, -np.finfo(dtype).tiny, -0.0][: flat.size]
        return values.astype(dtype.newbyteorder("="))
    info = np.iinfo(dtype)
    values = rng.integers(info.min, info.max, size=shape, endpoint=True)
    flat = values.reshape(-1)
    flat[:2] = [info.min, info.max][: flat.size]
    return values.astype(dtype.newbyteorder("="))


def test_round_trip_mnist_like_images_and_labels(tmp_path: Path) -> None:
    """uint8 images (n, rows, cols) and labels (n,) come back exactly, plain and gzipped."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(17, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=17, dtype=np.uint8)
    for name, array, ndim_byte in (
        ("images-idx3-ubyte", images, 3),
        ("labels-idx1-ubyte", labels, 1),
    ):
        data = idx_bytes(array, 0x08)
        assert data[:4] == bytes([0, 0, 8, ndim_byte])
        (tmp_path / name).write_bytes(data)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
        for path in (tmp_path / name, tmp_path / f"{name}.gz"):
            parsed = read_idx(path)
            assert parsed.dtype == np.uint8
            assert parsed.shape == array.shape
            np.testing.assert_array_equal(parsed, array)
        np.testing.assert_array_equal(parse_idx(data), array)


def test_known_header_bytes() -> None:
    """A literal MNIST-style header: magic 0x00000801, count 3, then three label bytes."""
    data = b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x07\x02\x01"
    parsed = parse_idx(data)
    np.testing.assert_array_equal(parsed, np.array([7, 2, 1], dtype=np.uint8))


@pytest.mark.parametrize("type_code", list(IDX_TYPE_CODES), ids=lambda c: f"0x{c:02X}")
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (2, 1, 2, 3)], ids=str)
def test_every_type_code_round_trips(type_code: int, shape: tuple[int, ...]) -> None:
    """Each IDX element type is read big-endian and returned in native byte order."""
    array = sample_array(type_code, shape)
    parsed = parse_idx(idx_bytes(array, type_code))
    assert parsed.dtype == array.dtype
    assert parsed.dtype.isnative
    assert parsed.shape == shape
    np.testing.assert_array_equal(parsed, array)
    assert parsed.flags.writeable  # a copy, not a read-only view of the bytes


def test_big_endian_interpretation_by_hand() -> None:
    """0x0B (int16): bytes 01 02 are 258 and FF FE are -2, whatever the machine's byte order."""
    data = b"\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\xff\xfe"
    np.testing.assert_array_equal(parse_idx(data), np.array([258, -2], dtype=np.int16))


def test_accepts_bytearray_and_memoryview() -> None:
    data = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)
    for buffer in (bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(parse_idx(buffer), np.arange(6).reshape(2, 3))


def test_zero_length_dimension_is_an_empty_array() -> None:
    """A dimension of size 0 is consistent with zero data bytes (not an error)."""
    parsed = parse_idx(bytes([0, 0, 8, 2]) + (0).to_bytes(4, "big") + (28).to_bytes(4, "big"))
    assert parsed.shape == (0, 28)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08)

BAD_FILES: dict[str, tuple[bytes, str]] = {
    # name: (file bytes, a word the message must contain)
    "wrong-magic": (b"\x01\x02" + GOOD[2:], "magic"),
    "one-nonzero-magic-byte": (b"\x00\x01" + GOOD[2:], "magic"),
    "gzip-magic-in-plain-file": (gzip.compress(GOOD), "magic"),
    "unknown-type-0x0A": (GOOD[:2] + b"\x0a" + GOOD[3:], "type"),
    "unknown-type-0x07": (GOOD[:2] + b"\x07" + GOOD[3:], "type"),
    "unknown-type-0xFF": (GOOD[:2] + b"\xff" + GOOD[3:], "type"),
    "zero-dims": (b"\x00\x00\x08\x00", "zero dimensions"),
    "zero-dims-with-data": (b"\x00\x00\x08\x00" + GOOD[16:], "zero dimensions"),
    "empty": (b"", "short"),
    "header-3-bytes": (GOOD[:3], "short"),
    "truncated-header": (GOOD[:9], "header"),
    "truncated-header-last-dim": (GOOD[:15], "header"),
    "no-data": (GOOD[:16], "truncated"),
    "truncated-data": (GOOD[:-1], "truncated"),
    "trailing-bytes": (GOOD + b"\x00", "trailing"),
    "trailing-second-file": (GOOD + GOOD, "trailing"),
    "int32-data-cut-mid-element": (
        idx_bytes(np.arange(4, dtype=np.int32), 0x0C)[:-2],
        "truncated",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
def test_malformed_files_are_refused_naming_the_file(
    tmp_path: Path, name: str, compressed: bool
) -> None:
    """Each fault raises a one-line IDXFormatError (a ValueError) naming the file."""
    data, word = BAD_FILES[name]
    path = tmp_path / (f"{name}-idx.gz" if compressed else f"{name}-idx")
    path.write_bytes(gzip.compress(data) if compressed else data)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert word in message.lower()
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_parse_idx_names_the_given_source() -> None:
    with pytest.raises(IDXFormatError, match=r"^my-source: "):
        parse_idx(b"\x01\x02\x08\x01", name="my-source")


@pytest.mark.parametrize("cut", [1, 10, 20, -9, -4, -1])
def test_truncated_gzip_is_refused(tmp_path: Path, cut: int) -> None:
    """A .gz cut short (mid-stream or inside the CRC/size trailer) is an IDXFormatError."""
    data = gzip.compress(idx_bytes(np.arange(3000, dtype=np.int32), 0x0C))
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(data[:cut])
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content",
    [GOOD, b"definitely not gzip" * 3, b"\x1f\x8b\x08\x00" + b"\xff" * 30],
    ids=["raw-idx", "text", "gzip-magic-then-garbage"],
)
def test_non_gzip_bytes_in_gz_file_are_refused(tmp_path: Path, content: bytes) -> None:
    """A file named .gz that is not a gzip stream is an IDXFormatError naming it."""
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_corrupted_gzip_crc_is_refused(tmp_path: Path) -> None:
    """A flipped bit in the compressed payload fails the gzip CRC, not a silent misread."""
    data = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8), 0x08)))
    data[-8] ^= 0x01  # first byte of the CRC32 trailer
    path = tmp_path / "crc-idx1-ubyte.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(IDXFormatError, match=r"crc-idx1-ubyte\.gz"):
        read_idx(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    for name in ("absent-idx1-ubyte", "absent-idx1-ubyte.gz"):
        with pytest.raises(FileNotFoundError):
            read_idx(tmp_path / name)


def test_read_idx_decompresses_an_upper_case_gz_name(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    path = tmp_path / "LABELS.GZ"
    path.write_bytes(gzip.compress(idx_bytes(labels, 0x08)))
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.realdata
def test_idx_files_have_mnist_shapes(mnist_arrays: Mapping[str, np.ndarray]) -> None:
    """The parser reads the four real files into the documented shapes, dtypes and value ranges."""
    train_images, train_labels = (
        mnist_arrays[IDX_FILES.train_images],
        mnist_arrays[IDX_FILES.train_labels],
    )
    assert train_images.shape == (60000, 28, 28)
    assert mnist_arrays[IDX_FILES.test_images].shape == (10000, 28, 28)
    assert train_labels.shape == (60000,)
    assert mnist_arrays[IDX_FILES.test_labels].shape == (10000,)
    for array in mnist_arrays.values():
        assert array.dtype == np.uint8
    assert train_images.max() == 255
    assert set(np.unique(train_labels)) == set(range(10))
    # the well-known first training labels: 5 0 4 1 9 2 1 3 1 4
    np.testing.assert_array_equal(train_labels[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
