"""Atomic file replacement: a file (or a set of files) is either old or complete and new."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# mkstemp creates files readable by the owner only; give the final file the
# permissions an ordinary open() would have. Reading the umask means setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files that an interrupted ``atomic_write`` to ``path`` left behind.

    Only a process killed outright (SIGKILL, power loss) leaves any.
    """
    target = Path(path)
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success move it over ``path``.

    The data is flushed and fsynced before ``os.replace``, so a crash or an
    exception (including KeyboardInterrupt) leaves either the previous file or
    the complete new one, never a partial file; the temporary file is removed.
    The parent directory is created if needed, and temporary files that a killed
    earlier write of ``path`` left behind are deleted.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(target):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def staged_files(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder inside ``directory`` for a set of files that belong together.

    When the block succeeds, each file written into the folder is fsynced and moved over
    its namesake in ``directory``; when it fails (or is interrupted), nothing in
    ``directory`` changes. The folder is removed either way, as are folders that a killed
    earlier run left behind.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob(".staging-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".staging-", suffix=".tmp"))
    try:
        yield staging
        written = sorted(staging.iterdir())
        for path in written:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        for path in written:
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
