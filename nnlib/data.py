"""In-memory datasets and their shuffled mini-batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class Dataset:
    """Samples ``X`` ``(n, n_features)`` with targets ``y`` ``(n,)`` or ``(n, k)``.

    ``get_batches`` reshuffles with ``rng`` on every call (one call per epoch).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator | None = None,
        shuffle: bool = True,
    ) -> None:
        X, y = np.asarray(X), np.asarray(y)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
        self.X, self.y = X, y
        self.rng = rng if rng is not None else np.random.default_rng()
        self.shuffle = shuffle

    def __len__(self) -> int:
        return len(self.X)

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
        n = len(self.X)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            yield self.X.take(rows, axis=0), self.y.take(rows, axis=0)
