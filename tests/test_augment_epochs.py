"""stages.augment.epochs: fresh distortions every epoch, the same bytes from the background
worker as from this process, through nnlib's Dataset with the labels in place."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal

import numpy as np
import pytest
from support.processes import exited

from nnlib import Dataset
from stages.augment.distortions import Distorter, Draw, Strengths, pad_images
from stages.augment.epochs import EpochDistortions, blank_value, training_distortions
from stages.augment.worker import distort_epoch
from stages.data.normalization import Normalization

SHAPE = (28, 28)
STRENGTHS = Strengths(
    rotation=12, scale=0.1, shear=0.15, shift=2, elastic_alpha=15, elastic_sigma=4
)
META = {
    "image_shape": [28, 28],
    "normalization": {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0},
}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """300 images of a few smooth spots each, float32 ``(300, 784)``, read-only."""
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:28, 0:28]
    out = np.zeros((300, 28, 28), np.float32)
    for image in out:
        for x, y in rng.uniform(6, 22, (3, 2)):
            image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 4.0)
    out = out.reshape(300, -1)
    out.flags.writeable = False
    return out


def epochs_of(distortions: EpochDistortions, order: list[int]) -> dict[int, np.ndarray]:
    """Epoch -> a copy of its images, asked for in ``order``."""
    return {epoch: distortions(epoch).copy() for epoch in order}


def test_the_background_worker_hands_over_what_this_process_computes(images: np.ndarray) -> None:
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, seed=7, epochs=5) as background:
        assert background.background
        pid = background.worker_pid
        # in order, as training asks, then out of order, as nobody does
        from_worker = epochs_of(background, [0, 1, 2, 3, 4, 2, 0])
    assert exited(pid)
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, background=False) as here:
        assert not here.background
        assert here.worker_pid is None
        for epoch, array in from_worker.items():
            assert array.tobytes() == here(epoch).tobytes(), epoch


def test_every_epoch_is_fresh_and_a_rerun_is_identical(images: np.ndarray) -> None:
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, epochs=3) as first:
        one = epochs_of(first, [0, 1, 2])
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, epochs=3) as again:
        assert all(array.tobytes() == again(e).tobytes() for e, array in one.items())
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 8, background=False) as other:
        assert other(0).tobytes() != one[0].tobytes()
    assert one[0].tobytes() != one[1].tobytes() != one[2].tobytes()
    assert one[0].tobytes() != images.tobytes()


def test_a_single_epoch_starts_no_worker(images: np.ndarray) -> None:
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, epochs=1) as one:
        assert not one.background
        with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, epochs=2) as two:
            assert two.background
            assert one(0).tobytes() == two(0).tobytes()


def test_the_arrays_handed_over_are_read_only(images: np.ndarray) -> None:
    here = EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, background=False)
    with pytest.raises(ValueError, match="read-only"):
        here(0)[0, 0] = 1.0


def test_batches_hold_each_image_distorted_with_its_own_label(images: np.ndarray) -> None:
    """Labels 0..299 name each image's source: every batch row is that source, distorted by
    the epoch's draw for it (recomputed image by image), and not the source itself."""
    labels = np.arange(len(images))
    seed = 11
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, seed, epochs=2) as distortions:
        data = Dataset(images, labels, np.random.default_rng(0), epoch_inputs=distortions)
        batches = [list(data.get_batches(32)) for _ in range(2)]
    distorter = Distorter(SHAPE, STRENGTHS)
    padded = pad_images(images, SHAPE, 0.0)
    for epoch, epoch_batches in enumerate(batches):
        draw = distorter.draw(np.random.default_rng([seed, epoch]), len(images))
        assert sorted(np.concatenate([y for _, y in epoch_batches])) == list(labels)
        for x, y in epoch_batches:
            for row, label in zip(x, y, strict=True):
                one = dataclasses.replace(
                    draw,
                    **{
                        f.name: getattr(draw, f.name)[label : label + 1]
                        for f in dataclasses.fields(Draw)
                    },
                )
                alone = distorter.apply(padded[label : label + 1], one)[0]
                # one image alone: other matrix sizes, last bits of the coordinates differ
                np.testing.assert_allclose(row, alone, atol=1e-5)
                assert not np.array_equal(row, images[label])


def test_a_worker_that_dies_is_replaced_by_this_process(
    images: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed between epochs: the next epochs come from here, the same bytes, with a warning."""
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, epochs=4) as distortions:
        first = distortions(0).copy()
        pid = distortions.worker_pid
        os.kill(pid, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="stages.augment.epochs"):
            later = epochs_of(distortions, [1, 2, 3])
        assert not distortions.background
    assert "the augmentation worker stopped (exit code -9)" in caplog.text
    with EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, background=False) as here:
        assert first.tobytes() == here(0).tobytes()
        assert all(array.tobytes() == here(e).tobytes() for e, array in later.items())


def test_the_worker_ends_when_the_block_fails(images: np.ndarray) -> None:
    """An exception mid-epoch (the worker busy with the next one) still ends the worker."""
    pid = None
    distortions = EpochDistortions(images, SHAPE, STRENGTHS, 0.0, 7, epochs=10)
    with pytest.raises(KeyboardInterrupt), distortions:  # noqa: PT012 -- the block is the subject
        pid = distortions.worker_pid
        distortions(0)  # asks for epoch 1
        raise KeyboardInterrupt
    assert pid is not None
    assert exited(pid)


def test_augmentation_switched_off_draws_nothing_from_the_run_generator(
    images: np.ndarray,
) -> None:
    rng = np.random.default_rng(42)
    before = rng.bit_generator.state
    with training_distortions(Strengths(), images, META, rng, epochs=3) as distortions:
        assert distortions is None
    assert rng.bit_generator.state == before


def test_augmentation_draws_one_seed_from_the_run_generator(images: np.ndarray) -> None:
    rng, replay = np.random.default_rng(42), np.random.default_rng(42)
    with training_distortions(STRENGTHS, images, META, rng, epochs=1) as distortions:
        assert distortions is not None
        assert rng.bit_generator.state != replay.bit_generator.state
        seed = int(replay.integers(2**63))
        assert rng.bit_generator.state == replay.bit_generator.state
        out = np.empty_like(images)
        padded = pad_images(images, SHAPE, 0.0)
        distort_epoch(Distorter(SHAPE, STRENGTHS), padded, seed, 0, out)
        assert distortions(0).tobytes() == out.tobytes()


@pytest.mark.parametrize("method", ["scale", "standardize"])
def test_the_blank_value_is_what_preprocess_writes_for_a_blank_pixel(method: str) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    pixels[0, 0, 0] = 0
    normalization = Normalization.fit(method, pixels)
    written = normalization.apply(pixels)[0, 0]
    assert blank_value(normalization.to_dict()) == written
    assert (written == 0) == (method == "scale")


def test_blank_images_stay_blank_under_standardized_normalization(images: np.ndarray) -> None:
    """Whatever moves in from outside the frame is the blank of meta.json's normalization."""
    meta = {**META, "normalization": Normalization("standardize", mean=0.13, std=0.31).to_dict()}
    blank = np.float32(blank_value(meta["normalization"]))
    assert blank < 0
    blanks = np.full((200, 784), blank, np.float32)
    rng = np.random.default_rng(0)
    with training_distortions(STRENGTHS, blanks, meta, rng, epochs=2) as distortions:
        assert distortions is not None
        assert (distortions(0) == blank).all()
        assert (distortions(1) == blank).all()
