"""At most so many pictures read at once, a bounded queue behind them, and 'busy' beyond."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Busy(Exception):
    """Every reader is busy and the queue is full, or the wait for a reader ran out."""


class Gate:
    """``slots`` callers at once, and ``waiting`` more waiting their turn up to ``wait``
    seconds each; any caller beyond is refused at once with ``Busy``."""

    def __init__(self, slots: int, waiting: int, wait: float) -> None:
        self.slots, self.waiting, self.wait = slots, waiting, wait
        self._free = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._inside = 0  # holding a slot or waiting for one

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; ``Busy`` if there is no room, even to wait."""
        with self._lock:
            if self._inside >= self.slots + self.waiting:
                raise Busy(
                    f"busy: {self.slots} pictures are being read and {self.waiting} more "
                    "are waiting; try again in a moment"
                )
            self._inside += 1
        try:
            if not self._free.acquire(timeout=self.wait):
                raise Busy(f"busy: no reader came free in {self.wait:g} s; try again later")
            try:
                yield
            finally:
                self._free.release()
        finally:
            with self._lock:
                self._inside -= 1
