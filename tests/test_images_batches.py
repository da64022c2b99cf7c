"""Users' pictures constructed and classified a batch at a time, in order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stages.images.batches import classified, in_batches
from stages.images.files import Entry


def test_batches_keep_the_order_and_the_last_one_is_shorter() -> None:
    assert [len(b) for b in in_batches(range(10), 4)] == [4, 4, 2]
    assert [x for b in in_batches(range(10), 4) for x in b] == list(range(10))
    assert list(in_batches([], 4)) == []


def test_each_entry_gets_its_own_image_and_probabilities_across_batches() -> None:
    entries = [Entry(Path(f"{n}.png")) for n in range(11)]
    constructed: list[int] = []
    classified_sizes: list[int] = []

    def construct(batch: Sequence[Entry]) -> list[np.ndarray | str]:
        constructed.append(len(batch))
        # entry n becomes an image filled with n, every third one an error instead
        return [
            f"bad {e.path.stem}"
            if int(e.path.stem) % 3 == 0
            else np.full((28, 28), int(e.path.stem))
            for e in batch
        ]

    def classify(images: np.ndarray) -> np.ndarray:
        classified_sizes.append(len(images))
        return images[:, :1, 0].astype(float)  # "probabilities": the image's own number

    outcomes = list(classified(entries, construct, classify, size=4))
    assert constructed == [4, 4, 3]
    assert classified_sizes == [2, 3, 2]  # the errors (0, 3, 6, 9) are not classified
    assert [entry for entry, _, _ in outcomes] == entries
    for n, (_, image, probabilities) in enumerate(outcomes):
        if n % 3 == 0:
            assert image == f"bad {n}"
            assert probabilities is None
        else:
            assert (image == n).all()
            assert probabilities.tolist() == [n]
