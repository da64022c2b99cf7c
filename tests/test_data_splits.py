"""stages.data.splits: the stratified validation split, and the three-way split of a folder."""

from __future__ import annotations

import numpy as np
import pytest

from stages.data.splits import (
    split_count,
    stratified_counts,
    stratified_split,
    stratified_three_way,
)


@pytest.mark.parametrize(
    ("counts", "val_size", "expected"),
    [
        # quotas 2.5, 1.5, 1.0: floors 2, 1, 1; one left, remainders tie -> lower class
        ([5, 3, 2], 5, [3, 1, 1]),
        # quotas 1.2, 2.4, 0.4 (sum 4): floors 1, 2, 0; one left -> largest remainder 0.4
        # (class 1 and 2 tie, class 1 wins)
        ([3, 6, 1], 4, [1, 3, 0]),
        ([5, 3, 2], 0, [0, 0, 0]),
        ([5, 3, 2], 10, [5, 3, 2]),
        ([1, 1, 1], 2, [1, 1, 0]),
    ],
)
def test_stratified_counts(counts: list[int], val_size: int, expected: list[int]) -> None:
    assert stratified_counts(np.array(counts), val_size).tolist() == expected


def test_stratified_counts_invariants() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = rng.integers(0, 50, size=rng.integers(1, 12))
        total = int(counts.sum())
        val_size = int(rng.integers(0, total + 1))
        got = stratified_counts(counts, val_size)
        assert got.sum() == val_size
        assert (got <= counts).all()
        assert (np.abs(got - val_size * counts / max(total, 1)) < 1).all()


def test_stratified_counts_refuses_too_many() -> None:
    with pytest.raises(ValueError, match="between 0 and 10"):
        stratified_counts(np.array([5, 5]), 11)


def test_stratified_split_partition_and_proportions() -> None:
    labels = np.repeat(np.arange(10), np.arange(10, 110, 10))  # 10, 20, ..., 100 per class
    train, val = stratified_split(labels, 55, seed=1)
    assert len(val) == 55
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert (np.diff(train) > 0).all()
    assert (np.diff(val) > 0).all()
    assert np.bincount(labels[val]).tolist() == list(range(1, 11))  # 10% of each class
    again, _ = stratified_split(labels, 55, seed=1)
    other, _ = stratified_split(labels, 55, seed=2)
    assert np.array_equal(train, again)
    assert not np.array_equal(train, other)


def test_stratified_split_empty_val() -> None:
    train, val = stratified_split(np.array([0, 1, 1, 2]), 0, seed=0)
    assert train.tolist() == [0, 1, 2, 3]
    assert val.size == 0


@pytest.mark.parametrize(
    ("size", "total", "expected"),
    [(7, 100, 7), (0, 100, 0), (0.2, 100, 20), (0.2, 41, 9), (0.01, 5, 1), (0.999, 3, 3)],
)
def test_split_count_takes_counts_as_they_are_and_rounds_fractions_up(
    size: int | float, total: int, expected: int
) -> None:
    assert split_count(size, total) == expected


def test_stratified_three_way_partitions_by_class() -> None:
    labels = np.repeat(np.arange(4), [40, 20, 20, 20])
    train, val, test = stratified_three_way(labels, 20, 10, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(100))
    assert all((np.diff(split) > 0).all() for split in (train, val, test))
    assert np.bincount(labels[test]).tolist() == [8, 4, 4, 4]
    # val: 10 of the 80 left (32, 16, 16, 16)
    assert np.bincount(labels[val]).tolist() == [4, 2, 2, 2]
    again = stratified_three_way(labels, 20, 10, seed=3)
    other = stratified_three_way(labels, 20, 10, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not np.array_equal(test, other[2])
    # the test split does not depend on the validation size
    assert np.array_equal(stratified_three_way(labels, 20, 0, seed=3)[2], test)
