"""nnlib.training: training_loop, History, early stopping, divergence and determinism."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from support import nnlib_reference as ref
from support.models import classifier, small_cnn

from nnlib import (
    SGD,
    Adam,
    CrossEntropyLoss,
    Dataset,
    DenseLayer,
    EpochRecord,
    Identity,
    MeanSquaredError,
    Model,
    NonFiniteLossError,
    NotLearningError,
    ReLU,
    Softmax,
    training_loop,
)
from nnlib.schedules import CosineSchedule
from nnlib.training import chance_accuracy, chance_loss

#: the classifier of the blobs: 4 features, 16 hidden units, 3 classes
BLOBS_NET = (4, 16, 3)
CENTERS = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])


def blobs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping Gaussian classes in 4-D: learnable, but not perfectly."""
    y = rng.integers(0, 3, size=n)
    return CENTERS[y] + rng.normal(size=(n, 4)), y


# --------------------------------------------------------------------------- history


class SlowAdam(Adam):
    """Adam whose every step takes at least ``STEP_SECONDS`` more: a known cost per batch."""

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        time.sleep(STEP_SECONDS)
        super().step(params, grads)


STEP_SECONDS = 0.004


def test_history_has_one_finite_record_per_epoch() -> None:
    """Each epoch appends one EpochRecord with finite loss/accuracy, numbered from 1, and
    the seconds of that epoch's steps: at least their known cost, at most the time since
    the previous epoch ended."""
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 200)
    model = classifier(BLOBS_NET, rng=rng, optimizer=SlowAdam(1e-2))
    seen: list[tuple[EpochRecord, int]] = []
    ended = [time.perf_counter()]  # the start, then the end of each epoch

    def on_epoch_end(record: EpochRecord, epochs: int) -> None:
        seen.append((record, epochs))
        ended.append(time.perf_counter())

    history = training_loop(
        model, Dataset(x, y, rng=rng), epochs=4, batch_size=32, on_epoch_end=on_epoch_end
    )
    assert [r.epoch for r in history.epochs] == [1, 2, 3, 4]
    assert [r for r, _ in seen] == history.epochs
    assert all(total == 4 for _, total in seen)
    steps = -(-200 // 32)  # 7 batches an epoch
    for record, since in zip(history.epochs, np.diff(ended), strict=True):
        assert type(record.loss) is float  # not numpy's float64, a float subclass
        assert np.isfinite(record.loss)
        assert (record.accuracy * 200) == pytest.approx(round(record.accuracy * 200))  # k/200
        assert steps * STEP_SECONDS <= record.seconds <= since
        assert record.val_loss is None
        assert record.val_accuracy is None
    assert history.epochs[-1].loss < history.epochs[0].loss  # it learns
    assert history.epochs[-1].accuracy > 0.7
    assert not history.stopped_early
    assert history.best_epoch is None


def test_validation_figures_score_the_model_after_each_epoch() -> None:
    """val_loss/val_accuracy equal the loss and accuracy of the epoch's final weights."""
    rng = np.random.default_rng(1)
    x, y = blobs(rng, 150)
    xv, yv = blobs(rng, 60)
    model = classifier(BLOBS_NET, rng=rng, optimizer=Adam(1e-2), dtype=np.float64)
    after: list[tuple[float, float]] = []

    def score(record: EpochRecord, epochs: int) -> None:
        probs = model.predict(xv)
        after.append((ref.cross_entropy(yv, probs), float(np.mean(probs.argmax(1) == yv))))

    history = training_loop(
        model, Dataset(x, y, rng=rng), 3, 32, validation=(xv, yv), on_epoch_end=score
    )
    for record, (val_loss, val_accuracy) in zip(history.epochs, after, strict=True):
        assert record.val_loss == pytest.approx(val_loss, rel=1e-12)
        assert record.val_accuracy == val_accuracy


def test_epoch_figures_match_a_hand_written_loop() -> None:
    """training_loop = the blog post's loop (forward, loss, backward over get_batches): the
    same final weights bit for bit, and the epoch's loss/accuracy are the mean over its
    batches of each sample scored before its batch's step."""
    x, y = blobs(np.random.default_rng(2), 100)

    def run(loop: Callable[[Model, Dataset], list[tuple[float, float]]]) -> tuple:
        rng = np.random.default_rng(7)
        model = classifier(BLOBS_NET, rng=rng, optimizer=SGD(0.1, momentum=0.9), dtype=np.float64)
        figures = loop(model, Dataset(x, y, rng=rng))
        return model.get_weights(), figures

    def by_hand(model: Model, data: Dataset) -> list[tuple[float, float]]:
        figures = []
        for _ in range(3):
            losses, hits = [], []
            for xb, yb in data.get_batches(32):
                probs = model.forward(xb)
                losses.extend(-np.log(probs[np.arange(len(yb)), yb]))
                hits.extend(probs.argmax(axis=1) == yb)
                model.backward(yb, probs)
            figures.append((float(np.mean(losses)), float(np.mean(hits))))
        return figures

    def with_loop(model: Model, data: Dataset) -> list[tuple[float, float]]:
        history = training_loop(model, data, epochs=3, batch_size=32)
        return [(r.loss, r.accuracy) for r in history.epochs]

    weights_hand, figures_hand = run(by_hand)
    weights_loop, figures_loop = run(with_loop)
    np.testing.assert_array_equal(weights_loop, weights_hand)
    for (loss_loop, acc_loop), (loss_hand, acc_hand) in zip(
        figures_loop, figures_hand, strict=True
    ):
        assert loss_loop == pytest.approx(loss_hand, rel=1e-12)
        assert acc_loop == acc_hand


def test_learning_rate_argument_replaces_the_optimizers() -> None:
    """training_loop(..., learning_rate=lr) trains with lr, like the signature in the blog post
    this project follows."""
    x, y = blobs(np.random.default_rng(3), 64)

    def final_weights(opt_lr: float, loop_lr: float | None) -> np.ndarray:
        rng = np.random.default_rng(4)
        model = classifier(BLOBS_NET, rng=rng, optimizer=SGD(opt_lr), dtype=np.float64)
        training_loop(model, Dataset(x, y, rng=rng), 2, 16, learning_rate=loop_lr)
        assert model.optimizer.learning_rate == (loop_lr or opt_lr)
        return model.get_weights()

    np.testing.assert_array_equal(final_weights(0.5, 0.01), final_weights(0.01, None))
    assert not np.array_equal(final_weights(0.5, None), final_weights(0.01, None))


# --------------------------------------------------------------------------- early stopping


@pytest.mark.parametrize("use_validation", [True, False], ids=["val-loss", "train-loss"])
def test_early_stopping_restores_best_weights(use_validation: bool) -> None:
    """After 3 good epochs the learning rate is made huge (so the monitored loss gets worse);
    with patience 2 training stops 2 epochs after the best one and keeps that epoch's weights.
    """
    model, history, snapshots = sabotaged_run(epochs=30, use_validation=use_validation, patience=2)
    monitored = [r.val_loss if use_validation else r.loss for r in history.epochs]
    # an independent rewrite of the rule: stop once `patience` epochs pass without a new minimum
    best, best_epoch, waited, stop = np.inf, None, 0, None
    for epoch, value in enumerate(monitored, start=1):
        if value < best:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited == 2:
                stop = epoch
                break
    assert stop is not None, f"the sabotage did not make the loss worse: {monitored}"
    assert history.stopped_early
    assert len(history.epochs) == stop < 30
    assert history.best_epoch == best_epoch == int(np.argmin(monitored)) + 1
    np.testing.assert_array_equal(model.get_weights(), snapshots[best_epoch])
    assert not np.array_equal(model.get_weights(), snapshots[stop])


def sabotaged_run(
    epochs: int = 6, use_validation: bool = True, **kwargs: object
) -> tuple[Model, object, dict[int, np.ndarray]]:
    """The early-stopping scenario (lr 5.0 after 3 good epochs), with per-epoch snapshots."""
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 300)
    xv, yv = blobs(rng, 100)
    model = classifier(BLOBS_NET, rng=rng, optimizer=SGD(0.05))
    snapshots: dict[int, np.ndarray] = {}

    def sabotage(record: EpochRecord, epochs: int) -> None:
        snapshots[record.epoch] = model.get_weights()
        if record.epoch == 3:
            model.optimizer.learning_rate = 5.0

    history = training_loop(
        model,
        Dataset(x, y, rng=rng),
        epochs=epochs,
        batch_size=16,
        validation=(xv, yv) if use_validation else None,
        on_epoch_end=sabotage,
        **kwargs,
    )
    return model, history, snapshots


def test_restore_best_without_patience_runs_all_epochs_and_keeps_best() -> None:
    """restore_best=True, patience=0: every epoch runs, the best val_loss epoch's weights stay."""
    model, history, snapshots = sabotaged_run(restore_best=True)
    losses = [r.val_loss for r in history.epochs]
    best = int(np.argmin(losses)) + 1
    assert len(history.epochs) == 6
    assert not history.stopped_early
    assert best < 6, f"the sabotage did not make val_loss worse: {losses}"
    assert history.best_epoch == best
    np.testing.assert_array_equal(model.get_weights(), snapshots[best])


def test_restore_best_false_keeps_last_weights_despite_patience() -> None:
    """patience with restore_best=False stops early but keeps the last epoch's weights."""
    model, history, snapshots = sabotaged_run(patience=2, restore_best=False)
    assert history.stopped_early
    last = history.epochs[-1].epoch
    assert history.best_epoch is not None
    assert history.best_epoch < last
    np.testing.assert_array_equal(model.get_weights(), snapshots[last])


def test_monitor_val_accuracy_picks_highest_accuracy() -> None:
    """monitor='val_accuracy' treats higher as better: the first epoch of maximal accuracy."""
    model, history, snapshots = sabotaged_run(monitor="val_accuracy", restore_best=True)
    accuracies = [r.val_accuracy for r in history.epochs]
    best = int(np.argmax(accuracies)) + 1
    assert best < 6, f"the sabotage did not lower val_accuracy: {accuracies}"
    assert history.best_epoch == best
    np.testing.assert_array_equal(model.get_weights(), snapshots[best])


@pytest.mark.parametrize(
    ("kwargs", "with_validation", "regression"),
    [
        ({"monitor": "bogus"}, True, False),
        ({"monitor": "val_loss", "patience": 1}, False, False),
        ({"monitor": "accuracy", "patience": 1}, True, True),
    ],
    ids=["unknown", "val-without-validation", "accuracy-of-regression"],
)
def test_bad_monitors_are_refused(kwargs: dict, with_validation: bool, regression: bool) -> None:
    rng = np.random.default_rng(0)
    x, labels = blobs(rng, 20)
    if regression:
        model = Model([DenseLayer(4, 1, Identity(), rng=rng)], MeanSquaredError(), SGD(0.1))
        y = rng.normal(size=(20, 1))
    else:
        model, y = classifier(BLOBS_NET, rng=rng, optimizer=SGD(0.1)), labels
    validation = (x, y) if with_validation else None
    with pytest.raises(ValueError, match="monitor"):
        training_loop(model, Dataset(x, y, rng=rng), 1, 8, validation=validation, **kwargs)


def test_patience_without_a_worse_epoch_runs_all_epochs() -> None:
    """With a steadily improving loss, patience never triggers and the last weights are kept."""
    rng = np.random.default_rng(5)
    x, y = blobs(rng, 200)
    model = classifier(BLOBS_NET, rng=rng, optimizer=SGD(0.02), dtype=np.float64)
    history = training_loop(model, Dataset(x, y, rng=rng), 3, 200, patience=1)
    losses = [r.loss for r in history.epochs]
    assert losses == sorted(losses, reverse=True)
    assert len(history.epochs) == 3
    assert not history.stopped_early
    assert history.best_epoch == 3


# --------------------------------------------------------------------------- divergence


@pytest.mark.parametrize(
    ("make_model", "targets"),
    [
        (lambda rng: classifier(BLOBS_NET, rng=rng, optimizer=SGD(1e6)), "labels"),
        (
            lambda rng: Model(
                [DenseLayer(4, 8, ReLU(), rng=rng), DenseLayer(8, 2, Identity(), rng=rng)],
                MeanSquaredError(),
                SGD(1e6),
            ),
            "real",
        ),
    ],
    ids=["softmax-ce", "identity-mse"],
)
def test_diverging_run_raises_non_finite_loss_error(make_model: Callable, targets: str) -> None:
    """learning_rate=1e6 makes the loss NaN/inf: a one-line NonFiniteLossError, no warnings."""
    rng = np.random.default_rng(0)
    x, labels = blobs(rng, 128)
    y = labels if targets == "labels" else rng.normal(size=(128, 2))
    model = make_model(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy overflow warnings must not leak per batch
        with pytest.raises(NonFiniteLossError) as info:
            training_loop(model, Dataset(x, y, rng=rng), epochs=5, batch_size=16)
    message = str(info.value)
    assert "\n" not in message
    assert "diverged" in message
    assert isinstance(info.value, FloatingPointError)


def test_divergence_message_says_whether_the_weights_are_finite() -> None:
    model = classifier(BLOBS_NET, rng=0, optimizer=SGD(1e30))
    X = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32) * 1e3
    data = Dataset(X, np.arange(64) % 3, np.random.default_rng(2))
    with pytest.raises(NonFiniteLossError) as info:
        training_loop(model, data, epochs=3, batch_size=8)
    message = str(info.value)
    assert "\n" not in message
    weights_finite = bool(np.isfinite(model.parameters[0]).all())
    assert ("weights are finite" in message) == weights_finite


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": 0}, {"epochs": -1}, {"epochs": 2.0}, {"epochs": True}, {"patience": -1}],
    ids=str,
)
def test_bad_loop_arguments_are_refused(kwargs: dict) -> None:
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 10)
    args = {"epochs": 1, "batch_size": 4, **kwargs}
    model = classifier(BLOBS_NET, rng=rng, optimizer=SGD(0.1))
    with pytest.raises(ValueError, match=r"epochs|patience"):
        training_loop(model, Dataset(x, y, rng=rng), **args)


def test_training_without_optimizer_is_refused() -> None:
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 10)
    model = Model([DenseLayer(4, 3, Softmax(), rng=rng)], CrossEntropyLoss())
    with pytest.raises(ValueError, match="optimizer"):
        training_loop(model, Dataset(x, y), epochs=1, batch_size=4)


@pytest.mark.parametrize("learning_rate", [0.0, -0.1, float("nan")])
def test_training_loop_refuses_a_bad_learning_rate(learning_rate: float) -> None:
    rng = np.random.default_rng(0)
    model = Model([DenseLayer(4, 3, Softmax(), rng=rng)], CrossEntropyLoss(), SGD(0.1))
    data = Dataset(np.ones((6, 4), np.float32), np.arange(6) % 3, rng)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        training_loop(model, data, epochs=1, batch_size=2, learning_rate=learning_rate)


def test_training_refuses_labels_the_model_cannot_output() -> None:
    model = classifier(BLOBS_NET, rng=0, optimizer=SGD(0.1))
    data = Dataset(np.ones((6, 4), np.float32), np.array([0, 1, 2, 3, 0, 1]))
    with pytest.raises(ValueError, match=r"class labels must be in \[0, 3\)"):
        training_loop(model, data, epochs=1, batch_size=2)


# --------------------------------------------------------------------------- determinism


def train_with_seed(seed: int, dtype: type = np.float32) -> Model:
    """One Generator drives initialization and shuffling, as params.yaml's train.seed does."""
    x, y = blobs(np.random.default_rng(100), 120)  # fixed data, independent of the seed
    rng = np.random.default_rng(seed)
    model = classifier(BLOBS_NET, rng=rng, optimizer=Adam(1e-2), dtype=dtype)
    training_loop(model, Dataset(x, y, rng=rng), epochs=2, batch_size=16)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_same_seed_gives_bit_identical_weights_and_files(tmp_path: Path, dtype: type) -> None:
    """Same seed -> identical weight bytes and identical saved files; another seed differs."""
    a, b, c = train_with_seed(42, dtype), train_with_seed(42, dtype), train_with_seed(43, dtype)
    assert a.parameters[0].tobytes() == b.parameters[0].tobytes()
    assert a.parameters[0].tobytes() != c.parameters[0].tobytes()
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    c.save(tmp_path / "c.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.npz").read_bytes() != (tmp_path / "c.npz").read_bytes()


def test_training_does_not_touch_global_random_state() -> None:
    """No np.random global state is read or advanced (everything comes from the Generator)."""
    # reading the legacy global state is the point of this test
    before = np.random.get_state(legacy=False)["state"]  # noqa: NPY002
    train_with_seed(1)
    after = np.random.get_state(legacy=False)["state"]  # noqa: NPY002
    np.testing.assert_array_equal(after["key"], before["key"])
    assert after["pos"] == before["pos"]


# --------------------------------------------------------------------------- learning rate


def test_history_carries_each_epochs_learning_rate() -> None:
    """The record of each epoch holds the rate of its last step, as the schedule gave it."""
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 64)
    steps_per_epoch, epochs = 4, 5  # 64 samples in batches of 16
    schedule = CosineSchedule(steps_per_epoch * epochs)
    model = classifier(BLOBS_NET, rng=rng, optimizer=Adam(0.01, schedule=schedule))
    history = training_loop(model, Dataset(x, y, rng=rng), epochs=epochs, batch_size=16)
    expected = [schedule.rate(steps_per_epoch * e - 1, 0.01) for e in range(1, epochs + 1)]
    assert [r.learning_rate for r in history.epochs] == expected
    assert expected[0] > expected[-1]  # the rates really changed


# --------------------------------------------------------------------------- subnormal floats


def vanishing_feature_run(flush: bool, monkeypatch: pytest.MonkeyPatch) -> Model:
    """A model whose first feature is active for one epoch, then zero for 1,280 steps.

    Adam's first moment of that feature's weights then decays by 0.9 a step with no new
    gradient, from about 1e-3 through float32's subnormal range (below 1.2e-38) within
    some 850 steps: the data produces subnormals quickly. ``flush=False`` turns the
    optimizer's flushing off, to show they appear without it.
    """
    if not flush:
        monkeypatch.setattr(Adam, "flush_subnormals", lambda self: None)
    rng = np.random.default_rng(5)
    x, y = blobs(rng, 64)
    x = np.hstack([np.ones((64, 1)), x]).astype(np.float32)
    model = classifier([5, 8, 3], rng=rng, optimizer=Adam(0.01))
    training_loop(model, Dataset(x, y, rng=rng), epochs=1, batch_size=4)
    x[:, 0] = 0.0
    training_loop(model, Dataset(x, y, rng=rng), epochs=80, batch_size=4)
    return model


def subnormal_count(*arrays: np.ndarray) -> int:
    tiny = np.finfo(np.float32).tiny
    return sum(int(np.count_nonzero((a != 0) & (np.abs(a) < tiny))) for a in arrays)


def test_no_subnormal_survives_training(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as unflushed:
        model = vanishing_feature_run(flush=False, monkeypatch=unflushed)
        state = model.optimizer._state[0]
        assert subnormal_count(state["m"]) > 0, "the data no longer produces subnormals"
    model = vanishing_feature_run(flush=True, monkeypatch=monkeypatch)
    state = model.optimizer._state[0]
    assert subnormal_count(state["m"], state["v"], *model.parameters, *model.gradients) == 0


def test_flushing_leaves_the_trained_weights_bit_identical(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Zeroed state entries were too small to move any float32 weight: same bits either way."""
    flushed = vanishing_feature_run(flush=True, monkeypatch=monkeypatch).get_weights()
    with monkeypatch.context() as unflushed:
        kept = vanishing_feature_run(flush=False, monkeypatch=unflushed).get_weights()
    np.testing.assert_array_equal(flushed, kept)


# --------------------------------------------------------------------------- learning checks


def test_a_climbing_loss_is_not_learning() -> None:
    rng = np.random.default_rng(0)
    x, y = blobs(rng, 200)
    model = classifier(BLOBS_NET, rng=rng, optimizer=SGD(50.0))
    with pytest.raises(NotLearningError, match=r"loss rose from [\d.]+ before training to "):
        training_loop(model, Dataset(x, y, rng=rng), 5, 16, check_learning=True)


def test_a_model_at_chance_is_not_learning() -> None:
    """Labels unrelated to the inputs: nothing to learn, the accuracy stays at chance."""
    rng = np.random.default_rng(1)
    x, _ = blobs(rng, 300)
    y = rng.integers(0, 3, size=300)
    xv, yv = blobs(rng, 300)[0], rng.integers(0, 3, size=300)
    model = classifier(BLOBS_NET, rng=rng, optimizer=Adam(0.01))
    with pytest.raises(NotLearningError, match=r"validation accuracy 0\.[0-4]\d+ is within the"):
        training_loop(
            model, Dataset(x, y, rng=rng), 3, 16, validation=(xv, yv), check_learning=True
        )


def test_a_weak_model_on_a_small_split_whose_loss_learned_passes() -> None:
    """Nine validation samples: an accuracy of 5/9 is within chance's sampling error, but the
    loss is well below that of answering the class frequencies, so the run learned."""
    rng = np.random.default_rng(2)
    x, y = blobs(rng, 300)
    xv, yv = blobs(rng, 9)
    model = classifier(BLOBS_NET, rng=rng, optimizer=Adam(0.003))
    history = training_loop(
        model, Dataset(x, y, rng=rng), 1, 16, validation=(xv, yv), check_learning=True
    )
    last = history.epochs[-1]
    chance = chance_accuracy(yv)
    assert last.val_accuracy <= chance + 3 * np.sqrt(chance * (1 - chance) / 9)  # chance-like
    assert last.val_loss < 0.95 * chance_loss(yv)


def test_a_learning_run_passes_the_checks() -> None:
    rng = np.random.default_rng(2)
    x, y = blobs(rng, 300)
    model = classifier(BLOBS_NET, rng=rng, optimizer=Adam(0.01))
    history = training_loop(
        model, Dataset(x, y, rng=rng), 3, 16, validation=blobs(rng, 300), check_learning=True
    )
    assert history.epochs[-1].val_accuracy > 0.6


# --------------------------------------------------------------------------- image batches


def bright_halves(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 12, 12) noise with a bright 3x3 square in the left half (class 0), the right
    half (class 1), or none (class 2)."""
    x = rng.normal(0.0, 0.3, size=(n, 1, 12, 12))
    y = rng.integers(0, 3, size=n)
    for i, label in enumerate(y):
        if label < 2:
            row, col = rng.integers(0, 10), rng.integers(0, 3) + 6 * label
            x[i, 0, row : row + 3, col : col + 3] += 2.0
    return x, y


def test_training_loop_trains_a_cnn_on_image_batches() -> None:
    """A small CNN (with dropout after a conv) learns where a bright square is from
    (n, C, H, W) batches, scored on held-out images: most of them right after 8 epochs."""
    rng = np.random.default_rng(0)
    x, y = bright_halves(rng, 600)
    x_val, y_val = bright_halves(rng, 300)
    model = small_cnn(rng=rng, optimizer=Adam(1e-2), dropout=0.1)
    history = training_loop(
        model, Dataset(x, y, rng=rng), epochs=8, batch_size=32, validation=(x_val, y_val)
    )
    assert history.epochs[-1].val_accuracy > 0.95
    assert history.epochs[-1].loss < history.epochs[0].loss


def train_cnn_with_seed(seed: int) -> Model:
    rng = np.random.default_rng(seed)
    x, y = bright_halves(rng, 64)
    model = small_cnn(rng=rng, optimizer=Adam(1e-2), dropout=0.3)
    training_loop(model, Dataset(x, y, rng=rng), epochs=2, batch_size=16)
    return model


def test_a_cnn_trained_with_the_same_seed_is_byte_identical(tmp_path: Path) -> None:
    """Initialization, shuffling and dropout masks all come from the one Generator."""
    for name, seed in (("a", 42), ("b", 42), ("c", 43)):
        train_cnn_with_seed(seed).save(tmp_path / f"{name}.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.npz").read_bytes() != (tmp_path / "c.npz").read_bytes()
