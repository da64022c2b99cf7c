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
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stages.cli.progress import progress_bar
from stages.data.checksums import CHUNK_SIZE, BadPayload, GzipDigest, verify_file
from stages.data.errors import DataError
from stages.data.mirrors import Mirror
from stages.outputs.atomic import atomic_write, stale_temporaries

logger = logging.getLogger(__name__)

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
    ``backoff * 2**k`` seconds before retry ``k + 1``; ``timeout`` per connect or read."""

    retries: int = 3
    timeout: float = 30.0
    backoff: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return self.backoff * 2**retry


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
        try:
            while chunk := _read_chunk(stream, timeout):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
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


def human_size(n_bytes: int) -> str:
    """``9719438`` -> ``'9.7 MB'`` (decimal units)."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{n_bytes} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _remove_stale_temp_files(directory: Path, names: list[str]) -> None:
    # A killed run (SIGKILL, power loss) can leave atomic_write's temporary files behind.
    for name in names:
        for stale in stale_temporaries(directory / name):
            logger.info("removing %s, left over by an interrupted run", stale)
            stale.unlink(missing_ok=True)


@dataclass(frozen=True)
class Summary:
    downloaded: list[str]
    present: list[str]


def download_files(
    checksums: Mapping[str, str],
    mirrors: list[Mirror],
    target_dir: Path,
    policy: RetryPolicy,
) -> Summary:
    """Make ``target_dir`` hold every file of ``checksums`` (name -> decompressed SHA-256).

    A present file that verifies is kept; one that does not is deleted, then fetched.
    Every file is attempted even after one fails; DataError at the end names each
    file that no mirror could give, on one line.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(target_dir, list(checksums))
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
            got = fetch_file(name, expected, mirrors, target, policy, unreachable)
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
        raise DataError(" | ".join(str(error) for error in errors))
    return Summary(downloaded, present)
