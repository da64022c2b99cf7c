"""Getting one verified file from a list of mirrors.

A mirror is an ``http://``, ``https://`` or ``file://`` URL prefix, or a local directory.
Each file is streamed into a temporary file beside its target while its gzip stream is
decompressed on the fly and hashed; only a file whose decompressed SHA-256 matches the
recorded one replaces the target. Failures are sorted into three kinds:

- transient (5xx, 408, 429, refused or reset connections, timeouts, a body shorter than its
  Content-Length): the same URL is retried after ``backoff * 2**k`` seconds, ``retries`` times;
- permanent (404 and other 4xx, a missing local file, bad or truncated gzip, checksum
  mismatch): the next mirror is tried at once;
- a mirror that never answered (no HTTP response after all retries) is marked unreachable
  and not tried again for the remaining files.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nnlib.atomicfile import atomic_write
from stages.cli import StageError
from stages.progress import progress_bar

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
# Bound on the decompressed bytes produced per call, so a hostile gzip cannot fill memory.
_MAX_INFLATE = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_URL_SCHEMES = ("http", "https", "file")
USER_AGENT = "mnist-numpy-dvc (python urllib)"


class AttemptFailed(Exception):
    """One attempt at one URL failed; the message is the reason shown to the user.

    ``transient``: retrying the same URL may help. ``unreachable``: no response at all.
    """

    def __init__(self, reason: str, *, transient: bool = False, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.unreachable = unreachable


@dataclass(frozen=True)
class MirrorFailure:
    """Why one mirror could not give one file."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


class FetchError(StageError):
    """No mirror gave valid data for a file."""

    def __init__(self, name: str, failures: list[MirrorFailure]):
        tried = "; ".join(str(failure) for failure in failures) or "no mirrors given"
        super().__init__(f"could not get {name} from any mirror: {tried}")
        self.name = name
        self.failures = failures


@dataclass(frozen=True)
class Mirror:
    """Where to fetch from: a URL prefix (``http``, ``https``, ``file``) or a directory."""

    prefix: str

    @property
    def is_url(self) -> bool:
        return urllib.parse.urlsplit(self.prefix).scheme in _URL_SCHEMES

    def location(self, name: str) -> str:
        """The URL (or path) of file ``name`` on this mirror, without doubled slashes."""
        if self.is_url:
            return f"{self.prefix.rstrip('/')}/{name}"
        return str(Path(self.prefix) / name)

    def local_path(self, name: str) -> Path | None:
        """The local file behind ``name`` for ``file://`` and directory mirrors, else None."""
        split = urllib.parse.urlsplit(self.prefix)
        if split.scheme == "file":
            return Path(urllib.request.url2pathname(split.path)) / name
        if self.is_url:
            return None
        return Path(self.prefix) / name


def parse_mirror(text: str, origin: str) -> Mirror:
    """Check a user-given mirror (``origin`` names where it came from, for the error).

    Accepts ``http(s)://host/...``, ``file:///dir`` and plain directory paths; a local
    directory must exist. Raises StageError with one line otherwise.
    """
    text = text.strip()
    split = urllib.parse.urlsplit(text)
    if split.scheme in ("http", "https"):
        if not split.hostname:
            raise StageError(f"{origin}: {text!r} has no host")
        try:
            split.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise StageError(f"{origin}: {text!r} has an invalid port") from None
        return Mirror(text)
    if split.scheme == "file":
        if split.netloc not in ("", "localhost"):
            raise StageError(f"{origin}: {text!r}: only local file:// URLs are supported")
        directory = Path(urllib.request.url2pathname(split.path))
    elif "://" in text:
        raise StageError(
            f"{origin}: unsupported mirror {text!r}; use an http://, https:// or file:// URL "
            "or a local directory"
        )
    else:
        directory = Path(text)
    if not directory.is_dir():
        raise StageError(f"{origin}: {text!r} is not a directory")
    return Mirror(text)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one URL: ``retries`` after the first attempt, waiting
    ``backoff * 2**k`` seconds before retry ``k + 1``; ``timeout`` per connect or read."""

    retries: int = 3
    timeout: float = 30.0
    backoff: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return self.backoff * 2**retry


class GzipDigest:
    """SHA-256 of the decompressed content of a gzip stream fed in pieces.

    Follows ``gzip.open``'s rules (what nnlib's IDX reader uses): several members are
    concatenated, zero padding after a member is ignored. Raises AttemptFailed for data
    that is not gzip or ends inside a member.
    """

    def __init__(self) -> None:
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
                raise AttemptFailed(f"not a valid gzip file ({exc})") from None
            if not self._inflater.eof:
                return
            data = self._inflater.unused_data
            self._inflater = zlib.decompressobj(_GZIP_WBITS)
            self._in_member = False

    def _consume(self, out: bytes) -> None:
        self._sha.update(out)
        self.size += len(out)

    def hexdigest(self) -> str:
        """The digest of everything decompressed; AttemptFailed if the stream is cut short."""
        if self._in_member:
            raise AttemptFailed(
                f"truncated gzip data (ends inside a compressed member after {self.size} "
                "decompressed bytes)"
            )
        if self.size == 0:
            raise AttemptFailed("empty file, not gzip data")
        return self._sha.hexdigest()


def _check_digest(digest: GzipDigest, expected: str) -> None:
    actual = digest.hexdigest()
    if actual != expected:
        raise AttemptFailed(
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
        _check_digest(digest, expected)
    except AttemptFailed as exc:
        return exc.reason
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    return None


def _open_url(url: str, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        transient = exc.code >= 500 or exc.code in (408, 429)
        raise AttemptFailed(f"HTTP {exc.code}", transient=transient) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        if isinstance(reason, TimeoutError):
            text = f"timed out after {timeout:g} s"
        # A name that does not resolve, or a certificate that does not verify, stays so.
        transient = not isinstance(reason, ssl.SSLCertVerificationError) and not (
            isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN
        )
        raise AttemptFailed(
            f"cannot connect ({text})", transient=transient, unreachable=True
        ) from None
    except TimeoutError:
        raise AttemptFailed(
            f"timed out after {timeout:g} s", transient=True, unreachable=True
        ) from None
    except (http.client.HTTPException, ConnectionError) as exc:
        # e.g. RemoteDisconnected: the server closed the connection without answering.
        raise AttemptFailed(f"no valid HTTP response ({exc!r})", transient=True) from None


def _read_chunk(stream: IO[bytes], timeout: float) -> bytes:
    try:
        return stream.read(CHUNK_SIZE)
    except TimeoutError:
        raise AttemptFailed(f"read timed out after {timeout:g} s", transient=True) from None
    except http.client.IncompleteRead as exc:
        raise AttemptFailed(f"connection dropped ({exc!r})", transient=True) from None
    except (ConnectionError, http.client.HTTPException) as exc:
        raise AttemptFailed(f"connection dropped ({exc!r})", transient=True) from None


def _open_source(mirror: Mirror, name: str, timeout: float) -> tuple[IO[bytes], int | None]:
    """Open ``name`` on ``mirror``; return the byte stream and its length if known."""
    path = mirror.local_path(name)
    if path is None:
        response = _open_url(mirror.location(name), timeout)
        length = response.headers.get("Content-Length")
        return response, int(length) if length and length.isdigit() else None
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the caller's ExitStack)
    except FileNotFoundError:
        raise AttemptFailed("no such file") from None
    except OSError as exc:
        raise AttemptFailed(f"cannot read ({exc.strerror})") from None
    return handle, os.fstat(handle.fileno()).st_size


def download_once(mirror: Mirror, name: str, target: Path, expected: str, timeout: float) -> int:
    """Stream ``name`` from ``mirror`` into ``target`` if it verifies; return its size in bytes.

    Raises AttemptFailed; ``target`` is then untouched and no temporary file remains.
    """
    with ExitStack() as stack:
        stream, length = _open_source(mirror, name, timeout)
        stack.enter_context(stream)
        out = stack.enter_context(atomic_write(target, "wb"))
        advance = stack.enter_context(progress_bar(name, length, in_bytes=True))
        digest = GzipDigest()
        received = 0
        while chunk := _read_chunk(stream, timeout):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            advance(len(chunk))
        if length is not None and received < length:
            raise AttemptFailed(
                f"connection dropped after {received} of {length} bytes", transient=True
            )
        _check_digest(digest, expected)
        return received


@dataclass(frozen=True)
class Fetched:
    location: str
    size: int
    seconds: float


def fetch_file(
    name: str,
    expected: str,
    mirrors: list[Mirror],
    target: Path,
    policy: RetryPolicy,
    unreachable: set[Mirror] | None = None,
) -> Fetched:
    """Get ``name`` from the first mirror that serves it intact, into ``target``.

    Mirrors in ``unreachable`` are skipped, and mirrors that give no response at all
    are added to it, so a caller fetching several files asks a dead host only once.
    Raises FetchError listing, per mirror, why it failed.
    """
    if unreachable is None:
        unreachable = set()
    failures: list[MirrorFailure] = []
    for mirror in mirrors:
        location = mirror.location(name)
        if mirror in unreachable:
            failures.append(MirrorFailure(location, "not tried, unreachable for an earlier file"))
            continue
        for attempt in range(policy.retries + 1):
            start = time.perf_counter()
            try:
                size = download_once(mirror, name, target, expected, policy.timeout)
            except AttemptFailed as exc:
                if exc.transient and attempt < policy.retries:
                    delay = policy.delay(attempt)
                    logger.warning(
                        "%s: %s; retry %d of %d in %g s",
                        location,
                        exc.reason,
                        attempt + 1,
                        policy.retries,
                        delay,
                    )
                    policy.sleep(delay)
                    continue
                reason = exc.reason if attempt == 0 else f"{exc.reason} ({attempt + 1} attempts)"
                logger.warning("%s: %s", location, reason)
                failures.append(MirrorFailure(location, reason))
                if exc.unreachable:
                    unreachable.add(mirror)
                break
            return Fetched(location, size, time.perf_counter() - start)
    raise FetchError(name, failures)
