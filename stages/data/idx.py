"""A strict parser for the IDX format that MNIST and Fashion-MNIST are published in.

An IDX file is: two zero bytes, a type code byte, a dimension-count byte, one
big-endian uint32 per dimension, then the elements in row-major, big-endian order.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from stages.data.errors import IDXFormatError

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes | bytearray | memoryview, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file.

    Returns an array of shape ``dims`` in native byte order. Raises
    IDXFormatError, naming ``name``, for a bad magic number, an unknown type
    code, a zero dimension count, or a length that disagrees with the header
    (truncated data or trailing bytes).
    """
    buf = memoryview(data).cast("B")
    if len(buf) < 4:
        raise IDXFormatError(f"{name}: too short for an IDX header ({len(buf)} bytes, need 4)")
    zero0, zero1, type_code, ndim = buf[0], buf[1], buf[2], buf[3]
    if zero0 != 0 or zero1 != 0:
        magic = int.from_bytes(buf[:4], "big")
        raise IDXFormatError(
            f"{name}: bad magic number 0x{magic:08X}, an IDX file starts with two zero bytes"
        )
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{name}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(buf) < header_size:
        raise IDXFormatError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_size} bytes, "
            f"file has {len(buf)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize  # exact: a hostile header cannot overflow it
    actual = len(buf) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing bytes after the data"
        raise IDXFormatError(
            f"{name}: {problem}: header says shape {dims} of {dtype.name} ({expected} bytes), "
            f"but {actual} bytes follow the header"
        )
    array = np.frombuffer(buf, dtype=dtype, offset=header_size).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed when its name ends in ``.gz``.

    Raises IDXFormatError naming the file for a corrupt or truncated gzip stream
    as well as for any IDX format error (see ``parse_idx``).
    """
    path = Path(path)
    if path.suffix.lower() == ".gz":
        try:
            with gzip.open(path, "rb") as stream:
                data = stream.read()
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise IDXFormatError(f"{path}: not a valid gzip file ({exc})") from exc
    else:
        data = path.read_bytes()
    return parse_idx(data, name=str(path))
