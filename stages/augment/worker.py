"""A process that distorts the next epoch's images while this one trains.

A process rather than a thread: the training loop at small batches is mostly short Python
calls that hold the GIL, so a thread's NumPy calls (a few dozen per chunk of images) would
queue for it (``bench/bench_augment.py`` times a thread beside this worker). A process has
its own interpreter and runs on the other core. It shares memory with the trainer (``RawArray``s:
the padded source images and two output buffers) and takes requests ``(epoch, buffer)``
through a pipe, answering each with the epoch once the buffer is filled.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from stages.augment.distortions import Distorter
from stages.cli.errors import StageError

#: "spawn": a fresh interpreter, safe whatever threads the trainer runs (fork is not)
CONTEXT = multiprocessing.get_context("spawn")
#: seconds a worker asked to stop may take before it is terminated
STOP_TIMEOUT = 1.0


def shared_array(shape: tuple[int, ...]) -> tuple[Any, np.ndarray]:
    """A float32 array of ``shape`` in memory a worker can map: ``(raw, array view)``.
    StageError naming where that memory lives when it cannot be had (a full disk there)."""
    size = max(1, int(np.prod(shape)) * 4)
    try:
        raw = CONTEXT.RawArray("b", size)
    except OSError as exc:  # its file (in /dev/shm, else the temporary folder) is not named
        where = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        raise StageError(
            f"{where}: cannot hold the {size / 1e6:.0f} MB the distortion worker shares with "
            f"training ({exc.strerror}); free space there, or switch augmentation off "
            "(train.augment.<dataset>: none)"
        ) from exc
    return raw, np.frombuffer(raw, dtype=np.float32, count=int(np.prod(shape))).reshape(shape)


def distort_epoch(
    distorter: Distorter, padded: np.ndarray, seed: int, epoch: int, out: np.ndarray
) -> None:
    """Epoch ``epoch``'s images into ``out``: its random numbers come from ``[seed, epoch]``
    alone, so any process computes the same bytes for it."""
    draw = distorter.draw(np.random.default_rng([seed, epoch]), len(padded))
    distorter.apply(padded, draw, out)


def _serve(
    connection: Connection,
    distorter: Distorter,
    seed: int,
    padded_raw: Any,
    padded_shape: tuple[int, ...],
    outputs_raw: Sequence[Any],
    output_shape: tuple[int, ...],
) -> None:
    """The worker's loop: fill buffers on request until told to stop or the trainer is gone."""
    # Ctrl-C reaches the whole process group; the trainer decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (already ignored since it started)
    padded = np.frombuffer(padded_raw, np.float32, int(np.prod(padded_shape))).reshape(padded_shape)
    count = int(np.prod(output_shape))
    outputs = [np.frombuffer(raw, np.float32, count).reshape(output_shape) for raw in outputs_raw]
    with contextlib.suppress(EOFError, OSError):  # the trainer's end closed: it is gone
        while (request := connection.recv()) is not None:
            epoch, slot = request
            distort_epoch(distorter, padded, seed, epoch, outputs[slot])
            connection.send(epoch)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in the block (main thread only: elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class BackgroundWorker:
    """One worker process serving ``distort_epoch`` requests into shared buffers."""

    def __init__(
        self,
        distorter: Distorter,
        seed: int,
        padded: tuple[Any, np.ndarray],
        outputs: Sequence[tuple[Any, np.ndarray]],
    ) -> None:
        self._connection, child = CONTEXT.Pipe()
        self._process = CONTEXT.Process(
            target=_serve,
            args=(
                child,
                distorter,
                seed,
                padded[0],
                padded[1].shape,
                [raw for raw, _ in outputs],
                outputs[0][1].shape,
            ),
            name="augment-worker",
            daemon=True,
        )
        try:
            with _sigint_ignored():  # inherited: a Ctrl-C while it starts up would kill it
                self._process.start()
        finally:
            child.close()
        #: the request the worker is busy with: (epoch, buffer)
        self.pending: tuple[int, int] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def request(self, epoch: int, slot: int) -> bool:
        """Ask for ``epoch`` in buffer ``slot``; False if the worker is gone."""
        try:
            self._connection.send((epoch, slot))
        except OSError:
            return False
        self.pending = (epoch, slot)
        return True

    def wait(self) -> bool:
        """Wait for the pending request; False if the worker died before finishing it."""
        if self.pending is None:
            return True
        try:
            done = self._connection.recv()
        except (EOFError, OSError):
            return False
        if done != self.pending[0]:
            raise RuntimeError(f"the worker answered epoch {done}, not {self.pending[0]}")
        self.pending = None
        return True

    def stop(self) -> int | None:
        """End the process: at once if it is busy, else when it has read the stop request.
        Returns its exit code."""
        if self._process.is_alive() and self.pending is None:
            with contextlib.suppress(OSError):
                self._connection.send(None)
            self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        code = self._process.exitcode
        self._connection.close()
        self._process.close()
        return code
