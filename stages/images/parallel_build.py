"""Many picture files through one construction, on every core, in a fixed order.

Each file is read (``read_image``), built (``construction_for(name)``) and fingerprinted by
the SHA-256 of its bytes on its own, so the result of a file does not depend on which
process built it or when: the list comes back in the order of the files given, the same
byte for byte whatever the number of workers.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.images.constructions import construction_for
from stages.images.errors import ImageError
from stages.images.reading import open_regular, read_image

logger = logging.getLogger(__name__)

#: fewer files than this are built in this process: starting workers costs more
MIN_FILES_PER_WORKER = 64
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Built:
    """One file: the SHA-256 of its bytes, and its image ``(28, 28)`` uint8 or the one line
    saying why it has none."""

    digest: str
    pixels: np.ndarray | None = None
    error: str | None = None


def available_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def file_digest(path: Path) -> str:
    """SHA-256 of the bytes of ``path``, hex (read in chunks: any size); ImageError when it
    is not a regular file (never opened: ``open_regular``)."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_file(path: Path, construction: str) -> Built:
    """Fingerprint and build one file; a file that cannot be used gets its reason."""
    try:
        digest = file_digest(path)
    except ImageError as exc:
        return Built("", error=str(exc))
    except OSError as exc:
        return Built("", error=exc.strerror or str(exc))
    try:
        return Built(digest, pixels=construction_for(construction)(read_image(path)))
    except ImageError as exc:
        return Built(digest, error=str(exc))
    except Exception as exc:  # a bug shown on one file must still name that file
        logger.debug("%s failed", path, exc_info=True)
        return Built(digest, error=f"unexpected {type(exc).__name__}: {exc}")


def worker_count(n_files: int, workers: int) -> int:
    """The processes ``build_files`` uses for ``n_files`` files and up to ``workers``."""
    return max(1, min(workers, n_files // MIN_FILES_PER_WORKER))


def _worker_signals() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the work and reports it once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def build_files(
    paths: Sequence[Path],
    construction: str,
    workers: int,
    advance: Callable[[int], None] | None = None,
) -> list[Built]:
    """``build_file`` of each of ``paths``, in their order, on up to ``workers`` processes
    (fewer for a few files); ``advance(n)`` after each ``n`` files done."""
    build = functools.partial(build_file, construction=construction)
    workers = worker_count(len(paths), workers)
    if workers == 1:
        results = []
        for path in paths:
            results.append(build(path))
            if advance is not None:
                advance(1)
        return results
    chunk = max(1, min(256, len(paths) // (8 * workers)))
    # forkserver: workers start from a clean process, not a fork of one holding threads
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_signals)
    results = []
    try:
        for result in pool.map(build, paths, chunksize=chunk):
            results.append(result)
            if advance is not None:
                advance(1)
    except BrokenProcessPool:
        raise ImageError("a process building the pictures died (out of memory?)") from None
    finally:
        # on Ctrl-C or an error, only the chunks already started are waited for
        pool.shutdown(wait=True, cancel_futures=True)
    return results
