"""The stratified splits: pure functions of the labels and a seed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def split_count(size: int | float, total: int) -> int:
    """The number of samples a split of ``size`` takes of ``total``: a count as it is, a
    fraction ``0 < size < 1`` rounded up (so any fraction of a non-empty set takes one)."""
    if isinstance(size, float):
        return math.ceil(size * total)
    return size


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


def stratified_split(
    labels: np.ndarray, val_size: int, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
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


def stratified_three_way(
    labels: np.ndarray, test_size: int, val_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)`` into ``labels`` ``(n,)``, each sorted ascending.

    ``test`` takes ``test_size`` samples off all of them (``stratified_split`` seeded by
    ``[seed, 0]``), then ``val`` takes ``val_size`` of the rest (seeded by ``[seed, 1]``);
    the remainder is ``train``.
    """
    labels = np.asarray(labels)
    rest, test = stratified_split(labels, test_size, [seed, 0])
    train, val = stratified_split(labels[rest], val_size, [seed, 1])
    return rest[train], rest[val], test
