"""The model of the blog post this project follows, on the real MNIST files (from the folder
MNIST_MIRROR names): 3 epochs must reach >= 96% test accuracy."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import numpy as np
import pytest
from support.models import seed_net

from nnlib import (
    Dataset,
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


def test_seed_model_reaches_96_percent_in_3_epochs(mnist_arrays: Mapping[str, np.ndarray]) -> None:
    """784-64-32-10 ReLU/Softmax, cross-entropy, Adam 1e-3, batch 32, 3 epochs: >= 0.96."""
    scale = np.float32(255)
    x_train = mnist_arrays[IDX_FILES.train_images].reshape(-1, 784).astype(np.float32) / scale
    x_test = mnist_arrays[IDX_FILES.test_images].reshape(-1, 784).astype(np.float32) / scale
    y_train = mnist_arrays[IDX_FILES.train_labels]
    y_test = mnist_arrays[IDX_FILES.test_labels]

    rng = np.random.default_rng(0)
    model = seed_net(rng, learning_rate=1e-3)
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
