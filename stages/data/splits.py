"""The stratified validation split: pure functions of the labels and a seed."""

from __future__ import annotations

import numpy as np


def stratified_counts(class_counts: np.ndarray, val_size: int) -> np.ndarray:
    """How many samples of each class go to validation, ``(n_classes,)`` int64.

    Class ``k`` with ``c_k`` of ``N`` samples gets the quota ``val_size * c_k / N``. Each
    class first gets the floor of its quota; the ``val_size - sum(floors)`` samples left
    go one each to the classes with the largest remainders, ties to the lower class index
    (the largest-remainder method, in exact integer arithmetic). The counts sum to
    ``val_size`` and never exceed ``c_k``.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    total = int(counts.sum())
    if not 0 <= val_size <= total:
        raise ValueError(f"val_size must be between 0 and {total}, got {val_size}")
    if total == 0:
        return np.zeros_like(counts)
    floors, remainders = np.divmod(counts * val_size, total)
    left = val_size - int(floors.sum())
    # stable sort on -remainder: equal remainders keep ascending class order
    order = np.argsort(-remainders, kind="stable")
    floors[order[:left]] += 1
    return floors


def stratified_split(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` into ``labels`` ``(n,)``; each sorted ascending.

    ``val`` holds ``val_size`` samples, per class as ``stratified_counts`` says, drawn
    uniformly within each class by ``numpy.random.default_rng(seed)`` (classes in
    ascending order, one permutation each), so the same labels and seed give the same split.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    per_class = stratified_counts(counts, val_size)
    rng = np.random.default_rng(seed)
    picked = [
        rng.permutation(np.flatnonzero(labels == label))[:take]
        for label, take in zip(classes, per_class, strict=True)
    ]
    val = np.sort(np.concatenate([np.empty(0, dtype=np.intp), *picked]))
    is_train = np.ones(len(labels), dtype=bool)
    is_train[val] = False
    return np.flatnonzero(is_train), val
