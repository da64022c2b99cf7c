"""The one path from a picture to the model's answer, shared by predict and serve: a file
and its bytes read alike, each picture classified alone, and the answer is predict's object
without the file name."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.models import digit_model
from support.user_images import ring_digit, seven_digit

from stages.cli.errors import StageError
from stages.images.constructions import normalize
from stages.images.files import Entry
from stages.images.mnist import mnist_digit
from stages.images.reading import read_image
from stages.reader.reader import Reader


def write_ink(path: Path, ink: np.ndarray) -> Path:
    """``ink`` coverage ``(rows, cols)`` as dark ink on white paper, in ``path``'s format."""
    Image.fromarray(np.rint(250 - 230 * ink).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def reader(tmp_path: Path) -> Reader:
    digit_model(seed=3).save(tmp_path / "model.npz")
    return Reader.load(tmp_path / "model.npz")


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return [
        write_ink(tmp_path / "seven.png", seven_digit()),
        write_ink(tmp_path / "zero.jpg", ring_digit()),
        write_ink(tmp_path / "small.gif", seven_digit(size=(90, 70), origin=(10, 10), height=60)),
    ]


def test_a_files_bytes_are_read_as_the_file_is(reader: Reader, files: list[Path]) -> None:
    for path in files:
        seen, probabilities = reader.read(path)
        seen_bytes, probabilities_bytes = reader.read(path.read_bytes())
        assert isinstance(seen, np.ndarray)
        assert np.array_equal(seen, mnist_digit(read_image(path)))
        assert np.array_equal(seen_bytes, seen)
        assert np.array_equal(probabilities_bytes, probabilities)


def test_each_picture_is_classified_alone(reader: Reader, files: list[Path]) -> None:
    """The probabilities are the model's for a batch of one, whatever is read beside it."""
    outcomes = list(reader.outcomes([Entry(path) for path in files]))
    for path, (entry, seen, probabilities) in zip(files, outcomes, strict=True):
        assert entry.path == path
        alone = reader.model.predict(normalize(seen[None], reader.described.normalization_dict()))
        assert np.array_equal(probabilities, alone[0])
        assert np.array_equal(probabilities, reader.read(path)[1])


def test_the_answer_is_predicts_object_without_the_file(reader: Reader, files: list[Path]) -> None:
    seen, probabilities = reader.read(files[0])
    result = reader.result("seven.png", seen, probabilities, 3)
    answer = result.answer()
    assert result.to_json() == {"file": "seven.png", **answer}
    assert list(answer) == ["prediction", "confidence", "top_k"]
    assert answer["top_k"][0]["class"] == answer["prediction"]
    assert answer["prediction"] == reader.class_names[int(np.argmax(probabilities))]
    assert len(answer["top_k"]) == 3


def test_a_picture_that_cannot_be_used_answers_its_error(reader: Reader) -> None:
    seen, probabilities = reader.read(b"GIF89a but no more")
    assert probabilities is None
    assert isinstance(seen, str)
    result = reader.result("x.gif", seen, probabilities, 3)
    assert result.answer() == {"error": seen}
    blank = io.BytesIO()
    Image.new("L", (40, 40), 255).save(blank, format="PNG")
    assert reader.read(blank.getvalue()) == (
        "no ink found: the image is blank, or its marks are too faint",
        None,
    )


def test_threads_reading_at_once_get_what_one_gets_alone(reader: Reader, files: list[Path]) -> None:
    alone = [reader.read(path.read_bytes())[1] for path in files]
    together: dict[int, list[np.ndarray]] = {}

    def read_all(n: int) -> None:
        together[n] = [reader.read(path.read_bytes())[1] for path in files * 5]

    threads = [threading.Thread(target=read_all, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for results in together.values():
        for probabilities, expected in zip(results, alone * 5, strict=True):
            assert np.array_equal(probabilities, expected)


def test_a_missing_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"no model file there; train one first"):
        Reader.load(tmp_path / "nothing.npz")
