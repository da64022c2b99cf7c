"""nnlib.data: the Dataset and its shuffled mini-batches."""

from __future__ import annotations

import numpy as np
import pytest

from nnlib import Dataset


def test_batches_cover_every_sample_once_and_keep_last_partial_batch() -> None:
    """10 samples in batches of 4: sizes 4, 4, 2; every row exactly once; x and y stay paired."""
    x = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    y = np.arange(10) * 10
    data = Dataset(x, y, rng=np.random.default_rng(0))
    batches = list(data.get_batches(4))
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]
    rows = np.concatenate([xb[:, 0] for xb, _ in batches]).astype(int)
    assert sorted(rows) == list(range(10))
    for xb, yb in batches:
        np.testing.assert_array_equal(yb, xb[:, 0] * 10)
        assert xb.dtype == np.float32
        assert xb.shape[1] == 3
    assert [len(xb) for xb, _ in data.get_batches(10)] == [10]
    assert [len(xb) for xb, _ in data.get_batches(64)] == [10]
    assert [len(xb) for xb, _ in data.get_batches(1)] == [1] * 10


def test_batches_reshuffle_each_epoch_and_replay_from_the_generator() -> None:
    """Each get_batches call draws a new order; the same seed replays the same orders."""

    def orders(seed: int, epochs: int = 4) -> list[list[int]]:
        data = Dataset(np.arange(50.0)[:, None], np.arange(50), rng=np.random.default_rng(seed))
        return [list(np.concatenate([yb for _, yb in data.get_batches(8)])) for _ in range(epochs)]

    first = orders(3)
    assert all(sorted(order) == list(range(50)) for order in first)
    assert len({tuple(order) for order in first}) == 4  # all four epochs differ
    assert first[0] != list(range(50))  # actually shuffled
    assert orders(3) == first  # reproducible
    assert orders(4) != first


def test_no_shuffle_keeps_order_and_onehot_targets_batch() -> None:
    y = np.eye(3)[[0, 1, 2, 0, 1]]
    data = Dataset(np.arange(5.0)[:, None], y, shuffle=False)
    batches = list(data.get_batches(2))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)
    assert [xb[:, 0].tolist() for xb, _ in batches] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
def test_bad_batch_sizes_are_refused(batch_size: object) -> None:
    data = Dataset(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        next(data.get_batches(batch_size))


def test_dataset_refuses_mismatched_lengths_and_non_2d_x() -> None:
    with pytest.raises(ValueError, match="samples"):
        Dataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        Dataset(np.zeros(4), np.zeros(4))


def test_epoch_inputs_replace_x_each_epoch_and_keep_targets() -> None:
    """Epoch k batches ``epoch_inputs(k)`` (here X + 100 k) with the same targets and order."""
    X = np.arange(6.0)[:, None]
    y = np.arange(6)
    calls: list[int] = []

    def shifted(epoch: int) -> np.ndarray:
        calls.append(epoch)
        return X + 100 * epoch

    data = Dataset(X, y, rng=np.random.default_rng(0), epoch_inputs=shifted)
    plain = Dataset(X, y, rng=np.random.default_rng(0))
    for epoch in range(3):
        batches = list(data.get_batches(4))
        reference = list(plain.get_batches(4))
        for (xb, yb), (xr, yr) in zip(batches, reference, strict=True):
            np.testing.assert_array_equal(yb, yr)
            np.testing.assert_array_equal(xb, xr + 100 * epoch)
    assert calls == [0, 1, 2]
    assert len(data) == 6


def test_epoch_inputs_of_another_shape_are_refused() -> None:
    data = Dataset(np.zeros((4, 2)), np.zeros(4), epoch_inputs=lambda epoch: np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"epoch 0 inputs have shape \(4, 3\)"):
        next(data.get_batches(2))


def test_image_batches_keep_their_shape_and_pair_with_their_targets() -> None:
    """(n, C, H, W) samples batch as whole images; an epoch's replacement inputs too."""
    x = np.arange(7, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 3, 4), np.float32)
    y = np.arange(7)
    data = Dataset(x, y, rng=np.random.default_rng(0), epoch_inputs=lambda epoch: x + 100 * epoch)
    for epoch in range(2):
        batches = list(data.get_batches(3))
        assert [xb.shape for xb, _ in batches] == [(3, 2, 3, 4), (3, 2, 3, 4), (1, 2, 3, 4)]
        for xb, yb in batches:
            np.testing.assert_array_equal(xb, x[yb] + 100 * epoch)
    with pytest.raises(ValueError, match="inputs have shape"):
        Dataset(x, y, epoch_inputs=lambda epoch: x.reshape(7, -1)).get_batches(3).__next__()
