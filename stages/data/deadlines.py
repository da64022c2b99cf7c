"""An overall deadline for one download: a connect-and-read timeout alone lets a mirror that
sends one byte a second hold a download for ever, since every read returns in time.

The deadline of an attempt is ``timeout + size / min_rate`` seconds from its start, where
``size`` is the most bytes the file can take (its announced length once known, else the
bound of its known decompressed size). A response that announces no length must keep pace
instead: its deadline is ``timeout + received / min_rate``, moving on with every byte that
arrives (never past that of the size bound), so a mirror that falls behind ``min_rate`` once
``timeout`` has passed is given up then, not after the time the largest possible file would
take (40 minutes for MNIST's training images at 20 kB/s). It is enforced twice: between
reads, and by a timer signal (``SIGALRM``, main thread only) that interrupts a read or a
connection left waiting, so an attempt ends at most a moment after its deadline.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator


class DeadlinePassed(Exception):
    """The attempt ran past its deadline."""


def _raise_deadline(signum: int, frame: object) -> None:
    raise DeadlinePassed


class Deadline:
    """``timeout + n_bytes / min_rate`` seconds from now; ``resize`` sets a new size,
    ``keep_pace`` makes it follow the bytes received."""

    def __init__(self, timeout: float, min_rate: float, n_bytes: int | None) -> None:
        self.start = time.monotonic()
        self.timeout = timeout
        self.min_rate = min_rate
        self.seconds: float | None = None
        #: bytes received so far, when the deadline follows them (``keep_pace``)
        self.paced: int | None = None
        self._armed = False
        self.resize(n_bytes)
        self._bound = self.seconds

    def resize(self, n_bytes: int | None) -> None:
        """Base the deadline on ``n_bytes`` (None: no deadline) and re-arm the timer."""
        self.seconds = None if n_bytes is None else self.timeout + n_bytes / self.min_rate
        if self._armed:
            self._arm()

    def keep_pace(self, received: int) -> None:
        """No length is known: the deadline is ``timeout + received / min_rate``, never past
        that of the size first given; call again as bytes arrive."""
        self.paced = received
        self.seconds = self.timeout + received / self.min_rate
        if self._bound is not None:
            self.seconds = min(self.seconds, self._bound)
        if self._armed:
            self._arm()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def passed(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.start > self.seconds

    def _arm(self) -> None:
        if self.seconds is None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        left = self.seconds - (time.monotonic() - self.start)
        signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))

    @contextlib.contextmanager
    def enforced(self) -> Iterator[Deadline]:
        """Interrupt the block with DeadlinePassed when the deadline passes (main thread;
        elsewhere only ``passed`` checks between reads)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGALRM, _raise_deadline)
        self._armed = True
        try:
            self._arm()
            yield self
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
