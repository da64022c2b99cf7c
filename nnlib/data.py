"""In-memory datasets and their shuffled mini-batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

#: ``epoch (0, 1, ...) -> inputs`` for that epoch, shaped as ``X``, rows aligned with ``y``
EpochInputs = Callable[[int], np.ndarray]


class Dataset:
    """Samples ``X`` ``(n, n_features)`` (or ``(n, C, H, W)``, any ``(n, ...)``) with
    targets ``y`` ``(n,)`` or ``(n, k)``.

    ``get_batches`` reshuffles with ``rng`` on every call (one call per epoch). With
    ``epoch_inputs``, each epoch batches the inputs it returns for that epoch instead of
    ``X`` (a fresh transformation of the samples per epoch, such as augmentation); the
    targets stay ``y``. ``X`` is still what describes the dataset (its length, its
    features).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator | None = None,
        shuffle: bool = True,
        epoch_inputs: EpochInputs | None = None,
    ) -> None:
        X, y = np.asarray(X), np.asarray(y)
        if X.ndim < 2:
            raise ValueError(
                "X must be at least 2-D, (n_samples, n_features) or (n_samples, C, H, W), "
                f"got shape {X.shape}"
            )
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
        self.X, self.y = X, y
        self.rng = rng if rng is not None else np.random.default_rng()
        self.shuffle = shuffle
        self.epoch_inputs = epoch_inputs
        #: epochs started so far (calls of ``get_batches``)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.X)

    def _inputs(self) -> np.ndarray:
        if self.epoch_inputs is None:
            return self.X
        X = self.epoch_inputs(self.epoch)
        if X.shape != self.X.shape:
            raise ValueError(f"epoch {self.epoch} inputs have shape {X.shape}, not {self.X.shape}")
        return X

    def get_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x, y)`` batches of ``batch_size`` rows covering every sample once.

        A new permutation is drawn each call; the last batch keeps the remainder.
        """
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        X = self._inputs()
        self.epoch += 1
        n = len(X)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            yield X.take(rows, axis=0), self.y.take(rows, axis=0)
