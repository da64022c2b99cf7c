"""The training images distorted afresh for every epoch, for ``Dataset(epoch_inputs=...)``.

Epoch ``e`` draws its random numbers from ``np.random.default_rng([seed, e])``, where
``seed`` is one number drawn from the run's Generator when augmentation is set up (and
nothing is drawn when it is off). So an epoch's images are the same bytes whoever computes
them: the background worker, which prepares epoch ``e + 1`` while epoch ``e`` trains, or
this process, which computes epoch 0 while the worker starts and takes over if the worker
cannot run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from stages.augment.distortions import Distorter, Strengths, pad_images, padded_shape
from stages.augment.worker import BackgroundWorker, distort_epoch, shared_array
from stages.data.normalization import Normalization

logger = logging.getLogger(__name__)


def blank_value(normalization: Mapping[str, Any]) -> float:
    """The value of a blank (0) pixel under ``normalization`` (``Normalization.to_dict()``)."""
    blank = Normalization(**normalization).apply(np.zeros((1, 1, 1), np.uint8))
    return float(blank[0, 0])


class EpochDistortions:
    """``epoch -> images`` ``(n, rows * cols)`` float32: ``images`` distorted by ``strengths``.

    The array returned for one epoch is read-only and is overwritten after the next call:
    copy it to keep it. With ``background``, a worker process prepares epoch ``e + 1``
    (if ``e + 1 < epochs``) while the caller trains on epoch ``e``. Call ``close`` (or use
    it as a context manager) to end the worker.
    """

    def __init__(
        self,
        images: np.ndarray,
        image_shape: tuple[int, int],
        strengths: Strengths,
        blank: float,
        seed: int,
        *,
        epochs: int | None = None,
        background: bool = True,
    ) -> None:
        self.distorter = Distorter(image_shape, strengths)
        self.seed = seed
        self.epochs = epochs
        shape = self.distorter.image_shape
        self._padded = shared_array((len(images), *padded_shape(shape)))
        pad_images(images, shape, blank, out=self._padded[1])
        self._outputs = [shared_array(images.shape) for _ in range(2)]
        self._worker: BackgroundWorker | None = None
        if background and (epochs is None or epochs > 1):  # else nothing to prepare
            try:
                self._worker = BackgroundWorker(self.distorter, seed, self._padded, self._outputs)
            except OSError as exc:
                logger.warning("cannot start the augmentation worker (%s): distorting here", exc)
            else:
                self._request(1)

    @property
    def background(self) -> bool:
        """Whether a worker process is preparing epochs."""
        return self._worker is not None

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id, while there is one."""
        return None if self._worker is None else self._worker.pid

    def __call__(self, epoch: int) -> np.ndarray:
        slot = self._take(epoch)
        if slot is None:
            slot = self._free_slot()
            self._compute(epoch, slot)
        if self._worker is not None and self._worker.pending is None:
            self._request(epoch + 1, 1 - slot)
        view = self._outputs[slot][1].view()
        view.flags.writeable = False
        return view

    def _take(self, epoch: int) -> int | None:
        """The buffer holding ``epoch`` once the worker has filled it; None if the worker is
        not preparing it (or died doing so)."""
        if self._worker is None or self._worker.pending is None:
            return None
        pending, slot = self._worker.pending
        if pending == epoch:
            return slot if self._finish() else None
        if pending != epoch + 1:
            self._finish()  # a request nobody will read: let it end before reusing buffers
        return None

    def _free_slot(self) -> int:
        """A buffer the worker is not writing."""
        if self._worker is None or self._worker.pending is None:
            return 0
        return 1 - self._worker.pending[1]

    def _compute(self, epoch: int, slot: int) -> None:
        distort_epoch(self.distorter, self._padded[1], self.seed, epoch, self._outputs[slot][1])

    def _request(self, epoch: int, slot: int = 1) -> None:
        if self._worker is None or (self.epochs is not None and epoch >= self.epochs):
            return
        if not self._worker.request(epoch, slot):
            self._lose_worker()

    def _finish(self) -> bool:
        """Wait for the worker's pending epoch; False (and no worker) if it died."""
        assert self._worker is not None
        if self._worker.wait():
            return True
        self._lose_worker()
        return False

    def _lose_worker(self) -> None:
        assert self._worker is not None
        code = self._worker.stop()
        self._worker = None
        logger.warning(
            "the augmentation worker stopped (exit code %s): distorting in this process from "
            "now on, the same images, more slowly",
            code,
        )

    def close(self) -> None:
        """End the worker process, if any (at once if it is busy)."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> EpochDistortions:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def training_distortions(
    strengths: Strengths,
    images: np.ndarray,
    meta: Mapping[str, Any],
    rng: np.random.Generator,
    epochs: int,
) -> Iterator[EpochDistortions | None]:
    """The ``epoch_inputs`` of a training run: None when ``strengths`` change nothing (then
    nothing is drawn from ``rng``), else distortions of ``images`` ``(n, rows * cols)``
    with one seed drawn from ``rng``, prepared in the background, ended on leaving."""
    if not strengths.active:
        yield None
        return
    seed = int(rng.integers(2**63))
    shape = tuple(meta["image_shape"])
    blank = blank_value(meta["normalization"])
    with EpochDistortions(images, shape, strengths, blank, seed, epochs=epochs) as distortions:
        logger.info(
            "Distorting the training images afresh every epoch (%s), %s",
            describe(strengths),
            f"in a background process (pid {distortions.worker_pid})"
            if distortions.background
            else "in this process",
        )
        yield distortions


def describe(strengths: Strengths) -> str:
    """``rotation 12 degrees, scale 0.1, ...``: the distortions ``strengths`` switches on."""
    parts = [
        f"rotation {strengths.rotation:g} degrees" if strengths.rotation else "",
        f"scale {strengths.scale:g}" if strengths.scale else "",
        f"shear {strengths.shear:g}" if strengths.shear else "",
        f"shift {strengths.shift:g} px" if strengths.shift else "",
        f"elastic alpha {strengths.elastic_alpha:g} sigma {strengths.elastic_sigma:g}"
        if strengths.elastic_alpha
        else "",
        "mirror" if strengths.mirror else "",
    ]
    return ", ".join(part for part in parts if part)
