"""The seed model on the real MNIST files (from the folder MNIST_MIRROR names): 3 epochs must
reach >= 96% test accuracy."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import numpy as np
import pytest

from nnlib import (
    Adam,
    CrossEntropyLoss,
    Dataset,
    DenseLayer,
    Model,
    ReLU,
    Softmax,
    accuracy,
    confusion_matrix,
    training_loop,
)
from stages.data.sources import IDX_FILES

pytestmark = pytest.mark.realdata


def one_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread for the duration of the training, as the stages run it (restored after).

    At batch 32 a second thread is slower, and under load (other jobs on the 2 cores) it
    made this test several times slower. threadpoolctl comes with scikit-learn.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@pytest.fixture(scope="module")
def mnist(mnist_arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The real files by their role: ``train_images``, ``train_labels``, ``test_images`` and
    ``test_labels``."""
    return {
        "train_images": mnist_arrays[IDX_FILES.train_images],
        "train_labels": mnist_arrays[IDX_FILES.train_labels],
        "test_images": mnist_arrays[IDX_FILES.test_images],
        "test_labels": mnist_arrays[IDX_FILES.test_labels],
    }


def test_idx_files_have_mnist_shapes(mnist: dict[str, np.ndarray]) -> None:
    """The parser reads the four files into the documented shapes, dtypes and value ranges."""
    assert mnist["train_images"].shape == (60000, 28, 28)
    assert mnist["test_images"].shape == (10000, 28, 28)
    assert mnist["train_labels"].shape == (60000,)
    assert mnist["test_labels"].shape == (10000,)
    for array in mnist.values():
        assert array.dtype == np.uint8
    assert mnist["train_images"].max() == 255
    assert set(np.unique(mnist["train_labels"])) == set(range(10))
    # the well-known first training labels: 5 0 4 1 9 2 1 3 1 4
    np.testing.assert_array_equal(mnist["train_labels"][:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])


def test_seed_model_reaches_96_percent_in_3_epochs(mnist: dict[str, np.ndarray]) -> None:
    """784-64-32-10 ReLU/Softmax, cross-entropy, Adam 1e-3, batch 32, 3 epochs: >= 0.96."""
    x_train = mnist["train_images"].reshape(-1, 784).astype(np.float32) / np.float32(255)
    x_test = mnist["test_images"].reshape(-1, 784).astype(np.float32) / np.float32(255)
    y_train, y_test = mnist["train_labels"], mnist["test_labels"]
    assert x_train.dtype == np.float32
    assert x_train.min() >= 0.0
    assert x_train.max() == 1.0

    rng = np.random.default_rng(0)
    model = Model(
        layers=[
            DenseLayer(784, 64, ReLU(), rng=rng),
            DenseLayer(64, 32, ReLU(), rng=rng),
            DenseLayer(32, 10, Softmax(), rng=rng),
        ],
        loss=CrossEntropyLoss(),
        optimizer=Adam(learning_rate=1e-3),
    )
    with one_blas_thread():
        history = training_loop(model, Dataset(x_train, y_train, rng=rng), epochs=3, batch_size=32)

    assert len(history.epochs) == 3
    assert history.epochs[-1].loss < history.epochs[0].loss
    probs = model.predict(x_test)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    test_accuracy = accuracy(y_test, probs)
    assert test_accuracy >= 0.96, f"test accuracy {test_accuracy:.4f} after 3 epochs"
    counts = confusion_matrix(y_test, probs, n_classes=10)
    assert counts.sum() == 10000
    assert np.trace(counts) / 10000 == pytest.approx(test_accuracy)
