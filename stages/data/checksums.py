"""SHA-256 checksums of the *decompressed* IDX bytes, the way the pipeline verifies its data.

Mirrors and distributions re-compress the ``.gz`` files, so their own checksums differ from
mirror to mirror while the decompressed data does not. The recorded digests live in
``stages/data/sha256/<dataset>.sha256``, one ``<sha256>  <file name>`` line per file, the
format ``sha256sum`` writes.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

from stages.data.errors import DataError
from stages.data.sources import DataSource

CHECKSUM_DIR = Path(__file__).resolve().parent / "sha256"
CHUNK_SIZE = 1 << 16
# Bound on the decompressed bytes produced per call, so a hostile gzip cannot fill memory.
_MAX_INFLATE = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_LINE = re.compile(r"(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>\S.*)")


class BadPayload(DataError):
    """Bytes that are not the expected data: not gzip, cut short, or another checksum."""


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
            raise DataError(
                f"{source}:{number}: expected '<sha256 hex>  <file name>', got {line!r}"
            )
        name = match["name"].strip()
        if not name.endswith(".gz"):
            name += ".gz"
        table[name] = match["digest"].lower()
    return table


def read_checksums(source: DataSource, directory: Path = CHECKSUM_DIR) -> dict[str, str]:
    """The recorded decompressed SHA-256 of each of ``source``'s files, from ``directory``.

    Raises DataError if the table is missing, malformed or lacks one of the files.
    """
    path = Path(directory) / f"{source.name}.sha256"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no checksum table for dataset {source.name!r}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the checksum table ({exc.strerror})") from None
    table = parse_checksums(text, str(path))
    missing = [name for name in source.files if name not in table]
    if missing:
        raise DataError(f"{path}: no checksum for {', '.join(missing)}")
    return {name: table[name] for name in source.files}


class GzipDigest:
    """SHA-256 of the decompressed content of a gzip stream fed in pieces.

    Follows ``gzip.open``'s rules (what the IDX reader uses): several members are
    concatenated, zero padding after a member is ignored. Raises BadPayload for data
    that is not gzip, ends inside a member, or decompresses to more than ``limit`` bytes.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # decompressed bytes beyond this are refused at once
        self._sha = hashlib.sha256()
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._in_member = False  # bytes of an unfinished member have been seen
        self.size = 0  # decompressed bytes so far

    def update(self, data: bytes) -> None:
        while data:
            if not self._in_member:
                data = data.lstrip(b"\0")
                if not data:
                    return
                self._in_member = True
            try:
                while True:
                    out = self._inflater.decompress(data, _MAX_INFLATE)
                    self._consume(out)
                    data = self._inflater.unconsumed_tail
                    # a full output buffer may leave output pending even with no input left
                    if not data and (len(out) < _MAX_INFLATE or self._inflater.eof):
                        break
            except zlib.error as exc:
                raise BadPayload(f"not a valid gzip file ({exc})") from None
            if not self._inflater.eof:
                return
            data = self._inflater.unused_data
            self._inflater = zlib.decompressobj(_GZIP_WBITS)
            self._in_member = False

    def _consume(self, out: bytes) -> None:
        self._sha.update(out)
        self.size += len(out)
        if self.limit is not None and self.size > self.limit:
            raise BadPayload(f"decompresses to more than the {self.limit} bytes this file holds")

    def hexdigest(self) -> str:
        """The digest of everything decompressed; BadPayload if the stream is cut short."""
        if self._in_member:
            raise BadPayload(
                f"truncated gzip data (ends inside a compressed member after {self.size} "
                "decompressed bytes)"
            )
        if self.size == 0:
            raise BadPayload("empty file, not gzip data")
        return self._sha.hexdigest()

    def check(self, expected: str) -> None:
        """BadPayload unless what was fed decompresses to data with SHA-256 ``expected``."""
        actual = self.hexdigest()
        if actual != expected:
            raise BadPayload(
                f"checksum mismatch (sha256 of the decompressed data is {actual[:12]}..., "
                f"expected {expected[:12]}...)"
            )


def verify_file(path: Path, expected: str) -> str | None:
    """None if ``path`` decompresses to data with SHA-256 ``expected``, else the reason."""
    digest = GzipDigest()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
        digest.check(expected)
    except BadPayload as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    return None
