"""nnlib vs scikit-learn's MLPClassifier on the real MNIST, side by side in one run.

Both train the seed model (784-64-32-10, ReLU, softmax + cross-entropy, Adam 1e-3,
batch 32, no L2) on the same float32 arrays, one BLAS thread each, in alternating
repeats so that machine noise hits both alike. Prints seconds per epoch (median
over repeats), their ratio, test accuracy of both after the last epoch, and
nnlib's peak memory during training.

    python bench/bench_sklearn.py [--epochs 20] [--repeats 3] [--mnist-dir ../shared/mnist]
"""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from nnlib import Adam, CrossEntropyLoss, Dataset, DenseLayer, Model, ReLU, Softmax
from nnlib.metrics import accuracy
from nnlib.training import training_loop
from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "mnist"


@dataclass(frozen=True)
class Run:
    seconds_per_epoch: float
    test_accuracy: float


def load_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images scaled to [0, 1] as float32 ``(n, 784)``, labels as ints ``(n,)``."""

    def images(name: str) -> np.ndarray:
        raw = read_idx(folder / name)
        return (raw.reshape(len(raw), -1) / np.float32(255)).astype(np.float32)

    def labels(name: str) -> np.ndarray:
        return read_idx(folder / name).astype(np.intp)

    return (
        images(IDX_FILES.train_images),
        labels(IDX_FILES.train_labels),
        images(IDX_FILES.test_images),
        labels(IDX_FILES.test_labels),
    )


def seed_model(rng: np.random.Generator) -> Model:
    return Model(
        layers=[
            DenseLayer(784, 64, ReLU(), rng=rng),
            DenseLayer(64, 32, ReLU(), rng=rng),
            DenseLayer(32, 10, Softmax(), rng=rng),
        ],
        loss=CrossEntropyLoss(),
        optimizer=Adam(learning_rate=1e-3),
    )


def run_nnlib(data: tuple[np.ndarray, ...], epochs: int, seed: int) -> Run:
    X, y, X_test, y_test = data
    rng = np.random.default_rng(seed)
    model = seed_model(rng)
    started = time.perf_counter()
    training_loop(model, Dataset(X, y, rng), epochs=epochs, batch_size=32)
    seconds = time.perf_counter() - started
    return Run(seconds / epochs, accuracy(y_test, model.predict(X_test)))


def nnlib_peak_mb(data: tuple[np.ndarray, ...], seed: int) -> float:
    """Peak memory numpy allocates while nnlib trains one epoch (tracemalloc; untimed,
    because tracing every allocation slows the loop)."""
    X, y, _, _ = data
    rng = np.random.default_rng(seed)
    tracemalloc.start()
    training_loop(seed_model(rng), Dataset(X, y, rng), epochs=1, batch_size=32)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run_sklearn(data: tuple[np.ndarray, ...], epochs: int, seed: int) -> Run:
    X, y, X_test, y_test = data
    clf = MLPClassifier(
        hidden_layer_sizes=(64, 32),
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=32,
        learning_rate_init=1e-3,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        shuffle=True,
        random_state=seed,
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    seconds = time.perf_counter() - started
    if clf.n_iter_ != epochs:
        raise RuntimeError(f"scikit-learn stopped after {clf.n_iter_} of {epochs} epochs")
    return Run(seconds / epochs, float(np.mean(clf.predict(X_test) == y_test)))


def main(
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per training run.")] = 20,
    repeats: Annotated[int, typer.Option(min=1, help="Alternating runs of each.")] = 3,
    mnist_dir: Annotated[Path, typer.Option(help="Folder with the four MNIST .gz files.")] = (
        DEFAULT_MNIST
    ),
    seed: int = 0,
) -> None:
    data = load_mnist(mnist_dir)
    print(f"MNIST: {len(data[0])} training, {len(data[2])} test images; float32; batch 32")
    print(f"{epochs} epochs per run, {repeats} alternating repeats, BLAS limited to 1 thread\n")
    ours: list[Run] = []
    theirs: list[Run] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for repeat in range(repeats):
            ours.append(run_nnlib(data, epochs, seed + repeat))
            theirs.append(run_sklearn(data, epochs, seed + repeat))
            print(
                f"repeat {repeat + 1}: nnlib {ours[-1].seconds_per_epoch:.3f} s/epoch "
                f"(acc {ours[-1].test_accuracy:.4f}), scikit-learn "
                f"{theirs[-1].seconds_per_epoch:.3f} s/epoch (acc {theirs[-1].test_accuracy:.4f})",
                flush=True,
            )

    def median(runs: list[Run], field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs)

    ours_s, theirs_s = median(ours, "seconds_per_epoch"), median(theirs, "seconds_per_epoch")
    print()
    header = f"| implementation | s/epoch (median of {repeats}) | test accuracy, {epochs} epochs |"
    print(header)
    print("|---|---|---|")
    print(f"| nnlib, float32 | {ours_s:.3f} | {median(ours, 'test_accuracy'):.4f} |")
    print(
        f"| scikit-learn MLPClassifier, float32 | {theirs_s:.3f} "
        f"| {median(theirs, 'test_accuracy'):.4f} |"
    )
    print()
    print(f"nnlib is {theirs_s / ours_s:.2f}x faster per epoch (median over median)")
    print(
        f"nnlib peak memory while training: {nnlib_peak_mb(data, seed):.1f} MB allocated "
        f"beyond the loaded data (tracemalloc); process max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    typer.run(main)
