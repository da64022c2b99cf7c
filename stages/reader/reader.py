"""``Reader``: the one path from a picture to what the model reads in it.

A picture is read, turned into the 28x28 image the model's training images were built
as (the construction the model file names), normalized as the model was trained, and
classified alone: a batch of one, so that the probabilities of a picture do not depend on
which pictures were read with it (matrix products over different batch sizes round
differently in the last bits). ``python -m stages.predict`` calls ``read`` for each file
and ``python -m stages.serve`` for each request's body.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from nnlib.model import Model
from stages.cli.errors import StageError
from stages.data.errors import DataError
from stages.data.metadata import ImageMetadata
from stages.data.model_metadata import describe_model
from stages.images.constructions import construction_for, normalize
from stages.images.errors import ImageError
from stages.images.files import Entry
from stages.images.reading import Picture, read_image
from stages.outputs.predictions import Result, top_k

logger = logging.getLogger("stages.reader")

#: the 28x28 uint8 image the model saw, or the one line saying why a picture has none
Seen = np.ndarray | str
#: one entry, what was seen of it, and the model's probabilities ``(n_classes,)`` for the
#: image (None with an error)
Outcome = tuple[Entry, Seen, np.ndarray | None]


def load_model(path: Path) -> tuple[Model, ImageMetadata]:
    """The model at ``path`` and its metadata, checked (``stages.data.model_metadata``): it
    takes 28x28 images and names each of its outputs. StageError (one line) otherwise."""
    if not path.is_file():
        raise StageError(f"{path}: no model file there; train one first (dvc repro)")
    model = Model.load(path)
    try:
        described = describe_model(model, path)
        construction_for(described.construction_name)
    except DataError as exc:
        raise StageError(str(exc)) from None
    except ImageError as exc:
        raise StageError(f"{path}: {exc}; retrain it (dvc repro)") from None
    return model, described


class Reader:
    """A trained model with what it needs to read a picture: its construction, its
    normalization and its class names. Safe to share between threads."""

    def __init__(self, model: Model, described: ImageMetadata) -> None:
        self.model = model
        self.described = described
        self.construct: Callable[[Picture], np.ndarray] = construction_for(
            described.construction_name
        )
        self._normalization = described.normalization_dict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> Reader:
        """The reader of the model file at ``path`` (``load_model``'s checks and errors)."""
        return cls(*load_model(path))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.described.class_names)

    def seen(self, source: str | os.PathLike[str] | bytes) -> Seen:
        """The 28x28 uint8 image the model sees in the picture ``source`` (a path, or the
        file's bytes), or the one line saying why there is none."""
        try:
            return self.construct(read_image(source))
        except ImageError as exc:
            return str(exc)
        except OSError as exc:
            return f"cannot read ({exc.strerror or exc})"
        except Exception as exc:  # a bug shown on this picture should not cost the others
            name = "a picture's bytes" if isinstance(source, bytes) else source
            logger.debug("%s failed", name, exc_info=True)
            return f"unexpected {type(exc).__name__}: {exc} (--log-level DEBUG traces)"

    def classify(self, image: np.ndarray) -> np.ndarray:
        """The model's probabilities ``(n_classes,)`` for one 28x28 uint8 ``image``."""
        inputs = normalize(image[None], self._normalization)
        with self._lock:  # layers may keep buffers between calls: one caller at a time
            return self.model.predict(inputs)[0]

    def read(self, source: str | os.PathLike[str] | bytes) -> tuple[Seen, np.ndarray | None]:
        """What the model sees in the picture ``source`` and its probabilities for it (None
        when the picture cannot be used)."""
        seen = self.seen(source)
        return seen, None if isinstance(seen, str) else self.classify(seen)

    def outcomes(self, entries: Iterable[Entry]) -> Iterator[Outcome]:
        """Each entry with what was seen of it and its probabilities, in order, one picture
        in memory at a time (an entry that names no file keeps its error)."""
        for entry in entries:
            if entry.error is not None:
                yield entry, entry.error, None
            else:
                yield entry, *self.read(entry.path)

    def result(self, file: str, seen: Seen, probabilities: np.ndarray | None, k: int) -> Result:
        """The result predict prints for ``file`` (and the server answers, the name aside):
        the ``k`` most probable classes, or the error."""
        if isinstance(seen, str):
            return Result(file, error=seen)
        assert probabilities is not None  # read() classifies every image it sees
        return Result(file, top_k=top_k(probabilities, self.class_names, k))
