"""Getting the verified files of a data source from a list of mirrors.

Each file is streamed into a temporary file beside its target while its gzip stream is
decompressed on the fly and hashed; only a file whose decompressed SHA-256 matches the
recorded one replaces the target. Failures are sorted into three kinds:

- transient (5xx, 408, 429, refused or reset connections, timeouts, a body shorter than its
  Content-Length): the same URL is retried after ``backoff * 2**k`` seconds, ``retries`` times;
- permanent (404 and other 4xx, a missing local file, bad or truncated gzip, checksum
  mismatch): the next mirror is tried at once;
- a mirror that never answered (no HTTP response after all retries) is marked unreachable
  and not tried again for the remaining files.

Input is bounded: redirects are followed only to http(s) URLs, a download stops as soon
as it exceeds the file's known size (compressed, or decompressed), and each attempt has an
overall deadline from that size and a minimum rate (``stages.data.deadlines``; a response
without a length must keep that rate as it goes): a mirror too slow for it is given up, and
the next one tried.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stages.cli.progress import progress_bar
from stages.data.checksums import CHUNK_SIZE, BadPayload, GzipDigest, verify_file
from stages.data.deadlines import Deadline, DeadlinePassed
from stages.data.errors import DataError
from stages.data.mirrors import MIRROR_ENV, Mirror
from stages.outputs.atomic import atomic_write

logger = logging.getLogger(__name__)

USER_AGENT = "mnist-numpy-dvc (python urllib)"
#: bytes per second below which a download is given up (beyond its timeout)
MIN_RATE = 20_000.0


def compressed_limit(size: int) -> int:
    """The most bytes a gzip file of ``size`` decompressed bytes can take: stored (not
    compressed) deflate blocks add 5 bytes per 64 kB, the gzip header and trailer 18."""
    return size + 5 * (size // 65_535 + 1) + 1024


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

    mirror: str
    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


class FetchError(DataError):
    """No mirror gave valid data for a file."""

    def __init__(self, name: str, failures: list[MirrorFailure]):
        tried = "; ".join(str(failure) for failure in failures) or "no mirrors given"
        super().__init__(f"could not get {name} from any mirror: {tried}")
        self.name = name
        self.failures = failures


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one URL: ``retries`` after the first attempt, waiting
    ``backoff * 2**k`` seconds before retry ``k + 1``; ``timeout`` per connect or read, and
    ``timeout + size / min_rate`` seconds for a whole attempt (``min_rate`` in bytes/s)."""

    retries: int = 3
    timeout: float = 30.0
    backoff: float = 1.0
    min_rate: float = MIN_RATE
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return self.backoff * 2**retry


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) URLs only (urllib's own handler also follows ftp://)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme
        if scheme not in ("http", "https"):
            raise AttemptFailed(f"redirected to {newurl}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpRedirectsOnly)


def _open_url(url: str, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if urllib.parse.urlsplit(exc.url).scheme not in ("http", "https"):
            # urllib refuses a redirect to file:// (and others) itself, as this HTTP error
            raise AttemptFailed(f"redirected to {exc.url}, which is not an http(s) URL") from None
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
    # read1: what has arrived, at most one read of the socket; read() would wait for a
    # whole chunk, which a slow sender could spread over hours, each byte in time.
    try:
        return stream.read1(CHUNK_SIZE)
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


def download_once(
    mirror: Mirror,
    name: str,
    target: Path,
    expected: str,
    timeout: float,
    size: int | None = None,
    min_rate: float = MIN_RATE,
) -> int:
    """Stream ``name`` from ``mirror`` into ``target`` if it verifies; return its size in bytes.

    ``size``, the file's known decompressed size, bounds what is read, and with ``min_rate``
    (bytes/s) how long the attempt may take. Raises AttemptFailed; ``target`` is then
    untouched and no temporary file remains.
    """
    limit = compressed_limit(size) if size is not None else None
    deadline = Deadline(timeout, min_rate, limit)
    try:
        with deadline.enforced():
            return _stream_into(mirror, name, target, expected, timeout, size, deadline)
    except DeadlinePassed:
        pass
    if deadline.paced is not None:
        raise AttemptFailed(
            f"too slow: no length announced, and {deadline.paced} bytes in "
            f"{deadline.elapsed():.3g} s, below {min_rate / 1000:g} kB/s (--min-rate) once "
            "--timeout had passed"
        )
    raise AttemptFailed(
        f"too slow: not done within {deadline.seconds:.3g} s, the time at "
        f"{min_rate / 1000:g} kB/s (--min-rate) plus --timeout"
    )


def _stream_into(
    mirror: Mirror,
    name: str,
    target: Path,
    expected: str,
    timeout: float,
    size: int | None,
    deadline: Deadline,
) -> int:
    """``download_once`` within ``deadline``, stretched to the announced length."""
    limit = compressed_limit(size) if size is not None else None
    with ExitStack() as stack:
        stream, length = _open_source(mirror, name, timeout)
        stack.enter_context(stream)
        if limit is not None and length is not None and length > limit:
            raise AttemptFailed(f"announces {length} bytes, more than this file can take")
        if length is not None:
            deadline.resize(length)
        else:  # nothing to base a deadline on but what arrives
            deadline.keep_pace(0)
        out = stack.enter_context(atomic_write(target, "wb"))
        advance = stack.enter_context(progress_bar(name, length, in_bytes=True))
        digest = GzipDigest(limit=size)
        received = 0
        try:
            while chunk := _read_chunk(stream, timeout):
                received += len(chunk)
                if limit is not None and received > limit:
                    raise AttemptFailed(f"sent more than the {limit} bytes this file can take")
                if length is None:
                    deadline.keep_pace(received)
                if deadline.passed():
                    raise DeadlinePassed
                out.write(chunk)
                digest.update(chunk)
                advance(len(chunk))
            if length is not None and received < length:
                raise AttemptFailed(
                    f"connection dropped after {received} of {length} bytes", transient=True
                )
            digest.check(expected)
        except BadPayload as exc:
            raise AttemptFailed(str(exc)) from None
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
    size: int | None = None,
) -> Fetched:
    """Get ``name`` from the first mirror that serves it intact, into ``target``.

    Mirrors in ``unreachable`` are skipped, and mirrors that give no response at all
    are added to it, so a caller fetching several files asks a dead host only once.
    ``size`` is the file's decompressed size, if known. Raises FetchError listing, per
    mirror, why it failed.
    """
    if unreachable is None:
        unreachable = set()
    failures: list[MirrorFailure] = []
    for mirror in mirrors:
        location = mirror.location(name)
        if mirror in unreachable:
            failures.append(
                MirrorFailure(mirror.prefix, location, "not tried, unreachable for an earlier file")
            )
            continue
        for attempt in range(policy.retries + 1):
            start = time.perf_counter()
            try:
                got = download_once(
                    mirror, name, target, expected, policy.timeout, size, policy.min_rate
                )
            except AttemptFailed as exc:
                if exc.transient and attempt < policy.retries:
                    delay = policy.delay(attempt)
                    logger.info(
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
                logger.debug("%s: %s", location, reason)
                failures.append(MirrorFailure(mirror.prefix, location, reason))
                if exc.unreachable:
                    unreachable.add(mirror)
                break
            return Fetched(location, got, time.perf_counter() - start)
    raise FetchError(name, failures)


def human_size(n_bytes: int) -> str:
    """``9719438`` -> ``'9.7 MB'`` (decimal units)."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{n_bytes} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


@dataclass(frozen=True)
class Summary:
    downloaded: list[str]
    present: list[str]


def download_files(
    checksums: Mapping[str, str],
    mirrors: list[Mirror],
    target_dir: Path,
    policy: RetryPolicy,
    sizes: Mapping[str, int] | None = None,
) -> Summary:
    """Make ``target_dir`` hold every file of ``checksums`` (name -> decompressed SHA-256).

    ``sizes`` (name -> decompressed bytes) bounds each download.
    A present file that verifies is kept; one that does not is deleted, then fetched.
    Every file is attempted even after one fails; DataError at the end names each
    file that no mirror could give, on one line.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    unreachable: set[Mirror] = set()
    downloaded: list[str] = []
    present: list[str] = []
    errors: list[FetchError] = []
    for name, expected in checksums.items():
        target = target_dir / name
        if target.exists():
            problem = verify_file(target, expected)
            if problem is None:
                logger.info("%s is present and verified, not fetched again", target)
                present.append(name)
                continue
            logger.warning(
                "%s is present but fails verification (%s); replacing it", target, problem
            )
            target.unlink()
        try:
            size = (sizes or {}).get(name)
            got = fetch_file(name, expected, mirrors, target, policy, unreachable, size)
        except FetchError as exc:
            errors.append(exc)
            continue
        logger.info(
            "downloaded %s (%s) from %s in %.1f s",
            name,
            human_size(got.size),
            got.location,
            got.seconds,
        )
        downloaded.append(name)
    if errors:
        raise DataError(failure_summary(errors, len(checksums)))
    return Summary(downloaded, present)


def failure_summary(errors: list[FetchError], n_files: int) -> str:
    """One short line: how many files failed, each mirror's first reason, what to do.

    Every attempt is logged at DEBUG level; this line only says what went wrong where.
    """
    reasons: dict[str, list[str]] = {}
    for error in errors:
        for failure in error.failures:
            if failure.reason.startswith("not tried"):
                continue
            seen = reasons.setdefault(failure.mirror, [])
            kind = failure.reason.split(" (")[0]  # e.g. "checksum mismatch", "HTTP 404"
            if all(reason.split(" (")[0] != kind for reason in seen):
                seen.append(failure.reason)
    per_mirror = "; ".join(
        f"{mirror}: {found[0]}" + (f" (and {len(found) - 1} other problems)" if found[1:] else "")
        for mirror, found in reasons.items()
    )
    return (
        f"could not get {len(errors)} of {n_files} files ({per_mirror or 'no mirror given'}); "
        f"give another mirror with --mirror or {MIRROR_ENV} (a folder or URL holding the .gz "
        "files), --log-level DEBUG shows every attempt"
    )
