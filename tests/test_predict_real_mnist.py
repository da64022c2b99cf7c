"""The MNIST construction on the real MNIST: test digits redrawn as users' files look
must read as their original 28x28 arrays do, and the command must agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.in_process import invoke_stage
from support.user_looks import LOOKS

from nnlib import Model
from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES
from stages.images.constructions import normalize
from stages.images.mnist import CENTRE, STROKE_BAND, centre_of_mass, mnist_digit, stroke_width
from stages.images.reading import read_image

pytestmark = pytest.mark.realdata

N_DIGITS = 500
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> dict[str, np.ndarray]:
    return {
        "train_images": read_idx(mnist_dir / IDX_FILES.train_images),
        "train_labels": read_idx(mnist_dir / IDX_FILES.train_labels),
        "test_images": read_idx(mnist_dir / IDX_FILES.test_images)[:N_DIGITS],
        "test_labels": read_idx(mnist_dir / IDX_FILES.test_labels)[:N_DIGITS],
    }


def predicted(model: Model, images: np.ndarray) -> np.ndarray:
    return model.predict(normalize(images, model.metadata["normalization"])).argmax(axis=1)


@pytest.mark.parametrize("look", list(LOOKS))
def test_redrawn_test_digits_read_as_the_original_arrays(
    look: str, mnist: dict[str, np.ndarray], real_model: Path, tmp_path: Path
) -> None:
    model = Model.load(real_model)
    original = predicted(model, mnist["test_images"])
    assert (original == mnist["test_labels"]).mean() > 0.95  # the model itself is sound

    rng = np.random.default_rng(list(LOOKS).index(look))
    make = LOOKS[look]
    seen = np.stack(
        [mnist_digit(read_image(make(d, rng, tmp_path / "digit"))) for d in mnist["test_images"]]
    )
    agreement = float((predicted(model, seen) == original).mean())
    print(f"{look}: agreement {agreement:.3f} over {N_DIGITS} digits")
    assert agreement >= MIN_AGREEMENT, f"{look}: {agreement:.3f}"


def test_constructed_digits_look_like_mnist(mnist: dict[str, np.ndarray], tmp_path: Path) -> None:
    """Full ink, a 20-pixel box, centre of mass at MNIST's centre, MNIST's stroke widths."""
    rng = np.random.default_rng(0)
    seen = [
        mnist_digit(read_image(LOOKS["JPEG"](d, rng, tmp_path / "digit")))
        for d in mnist["test_images"][:100]
    ]
    for image in seen:
        assert image.max() == 255
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)
        assert np.allclose(centre_of_mass(image), CENTRE, atol=0.5 + 1e-9)
    widths = [stroke_width(image) for image in seen]
    assert STROKE_BAND[0] - 0.1 <= np.median(widths) <= STROKE_BAND[1]


def test_the_centre_and_stroke_band_are_mnists_own(mnist: dict[str, np.ndarray]) -> None:
    """The constants the construction uses, measured again on the training images."""
    images = mnist["train_images"][:10_000]
    centres = np.array([centre_of_mass(image) for image in images])
    assert np.allclose(centres.mean(axis=0), CENTRE, atol=0.05)
    assert np.abs(centres - CENTRE).max() <= 0.5 + 1e-9
    widths = np.array([stroke_width(image) for image in images])
    assert np.allclose(np.percentile(widths, [10, 90]), STROKE_BAND, atol=0.03)


def test_the_command_predicts_what_the_model_reads(
    mnist: dict[str, np.ndarray], real_model: Path, tmp_path: Path
) -> None:
    """A folder of users' files through ``python -m stages.predict --json``."""
    folder = tmp_path / "digits"
    folder.mkdir()
    rng = np.random.default_rng(1)
    looks = list(LOOKS.values())
    files = [
        looks[i % len(looks)](digit, rng, folder / f"digit{i:02d}")
        for i, digit in enumerate(mnist["test_images"][:30])
    ]
    result = invoke_stage("predict", tmp_path, "digits", "--model", str(real_model), "--json")
    assert result.returncode == 0, result.stderr
    answers = {Path(item["file"]).name: item for item in json.loads(result.stdout)}
    assert sorted(answers) == sorted(f.name for f in files)

    model = Model.load(real_model)
    expected = predicted(model, np.stack([mnist_digit(read_image(f)) for f in files]))
    got = np.array([int(answers[f.name]["prediction"]) for f in files])
    assert np.array_equal(got, expected)
    assert (got == mnist["test_labels"][:30]).mean() >= 0.9
