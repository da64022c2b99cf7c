"""Users' pictures through a construction and a model a batch at a time: however many files
there are, memory holds one batch of pictures and inputs, and the model still sees many
inputs per call."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

import numpy as np

from stages.images.files import Entry

#: inputs constructed, then classified, together
BATCH_SIZE = 256

T = TypeVar("T")
#: one entry, its 28x28 uint8 image or the line saying why it has none, and the
#: model's probabilities ``(n_classes,)`` for the image (None with an error)
Outcome = tuple[Entry, np.ndarray | str, np.ndarray | None]


def in_batches(items: Iterable[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), in order."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def classified(
    entries: Iterable[Entry],
    construct: Callable[[Sequence[Entry]], Sequence[np.ndarray | str]],
    classify: Callable[[np.ndarray], np.ndarray],
    size: int = BATCH_SIZE,
) -> Iterator[Outcome]:
    """Each entry with its image (or error) and probabilities, in order, ``size`` at a time:
    ``construct`` turns a batch of entries into images or error lines, ``classify`` a
    stack of images ``(n, 28, 28)`` into probabilities ``(n, n_classes)``."""
    for batch in in_batches(entries, size):
        outcomes = construct(batch)
        images = [outcome for outcome in outcomes if isinstance(outcome, np.ndarray)]
        probabilities = iter(classify(np.stack(images)) if images else ())
        for entry, outcome in zip(batch, outcomes, strict=True):
            yield entry, outcome, next(probabilities) if isinstance(outcome, np.ndarray) else None
