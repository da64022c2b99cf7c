"""stages.data.checksums: the decompressed-SHA-256 digest of gzip streams, the checksum tables."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest
from support.idx import garbage, gz, truncated, write_checksums, write_files

from stages.data import checksums, sources
from stages.data.checksums import BadPayload, GzipDigest, verify_file
from stages.data.errors import DataError
from stages.data.sources import IDX_FILES


def test_gzip_digest_follows_gzip_module_rules(files: Mapping[str, bytes]) -> None:
    data = files[IDX_FILES.train_labels]
    two_members = data + data + b"\0" * 7  # concatenated members, zero padding
    digest = GzipDigest()
    for start in range(0, len(two_members), 100):
        digest.update(two_members[start : start + 100])
    assert digest.hexdigest() == hashlib.sha256(gzip.decompress(two_members)).hexdigest()


@pytest.mark.parametrize("chunk", [1, 1000, 1 << 20])
def test_gzip_digest_of_highly_compressed_data(chunk: int) -> None:
    # A few kB that inflate to MBs: output arrives in bounded pieces across many calls.
    payload = b"\0" * 3_000_017 + b"abc" * 700_000
    data = gz(payload)
    digest = GzipDigest()
    for start in range(0, len(data), chunk):
        digest.update(data[start : start + chunk])
    assert digest.size == len(payload)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (truncated(gz(b"x" * 5000)), "truncated gzip data"),
        (garbage(), "not a valid gzip file"),
        (b"", "empty file"),
        (gz(b"abc") + b"trailing junk", "not a valid gzip file"),
    ],
)
def test_gzip_digest_refuses_bad_streams(data: bytes, reason: str) -> None:
    def digest_of(data: bytes) -> str:
        digest = GzipDigest()
        digest.update(data)
        return digest.hexdigest()

    with pytest.raises(BadPayload, match=reason):
        digest_of(data)


def test_verify_file(tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str]) -> None:
    path = write_files(tmp_path, files) / IDX_FILES.train_images
    assert verify_file(path, table[IDX_FILES.train_images]) is None
    assert verify_file(path, table[IDX_FILES.train_labels]).startswith("checksum mismatch")
    assert verify_file(tmp_path / "missing.gz", table[IDX_FILES.train_images]).startswith(
        "cannot read"
    )


def test_parse_checksums_formats() -> None:
    digest = "ab" * 32
    text = f"# comment\n\n{digest}  a.gz\n{digest.upper()} *b\n"
    assert checksums.parse_checksums(text, "t") == {"a.gz": digest, "b.gz": digest}
    with pytest.raises(DataError, match=r"^t:2: expected '<sha256 hex>  <file name>'"):
        checksums.parse_checksums(f"{digest}  a.gz\nnot a line\n", "t")


def test_checksum_table_missing_an_entry(tmp_path: Path, table: Mapping[str, str]) -> None:
    write_checksums(tmp_path, "mnist", {IDX_FILES.train_images: table[IDX_FILES.train_images]})
    with pytest.raises(DataError, match=f"no checksum for {IDX_FILES.train_labels}, "):
        checksums.read_checksums(sources.get_source("mnist"), tmp_path)


def test_shipped_checksum_tables_cover_every_file() -> None:
    for dataset in sources.DATA_SOURCES.values():
        table = checksums.read_checksums(dataset)
        assert list(table) == list(dataset.files)
        assert all(len(digest) == 64 for digest in table.values())


@pytest.mark.realdata
def test_shipped_table_matches_the_published_decompressed_checksums(mnist_dir: Path) -> None:
    published = checksums.parse_checksums(
        (mnist_dir / "SHA256SUMS-uncompressed").read_text(), "SHA256SUMS-uncompressed"
    )
    assert checksums.read_checksums(sources.get_source("mnist")) == published
