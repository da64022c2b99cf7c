"""Training speed, side by side in one run: nnlib, scikit-learn, PyTorch and the floor.

All train the blog post's model (784-64-32-10, ReLU, softmax + cross-entropy, Adam 1e-3
constant, batch 32, no L2) on the same float32 MNIST arrays (all 60,000 training images),
with one BLAS thread each, in alternating rounds so that machine noise hits all alike.
Each epoch is timed on its own: epoch 1 (warm-up, and before any subnormal floats can
build up) is reported apart from the steady state, the median of the later epochs.

The floor is what no MLP of this shape can avoid per batch: gathering the batch, the two
32x784x64 products (the first layer forward and its weight gradient) and Adam's ten
passes over the 52,650 parameters, run back to back with no other work.

    python bench/bench_speed.py [--epochs 20] [--rounds 3] [--json bench/speed.json]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from results import run_description
from threadpoolctl import threadpool_limits

from nnlib import Adam, CrossEntropyLoss, Dataset, DenseLayer, Model, ReLU, Softmax, accuracy
from nnlib.training import training_loop
from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES, MNIST_FORMAT_SIZES

BATCH = 32
Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Run:
    """One training run: seconds of each epoch and the final test accuracy."""

    epoch_seconds: list[float]
    test_accuracy: float | None

    @property
    def first(self) -> float:
        return self.epoch_seconds[0]

    @property
    def steady(self) -> float:
        later = self.epoch_seconds[1:] or self.epoch_seconds
        return statistics.median(later)


def load_mnist(folder: Path) -> Data:
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


def run_nnlib(data: Data, epochs: int, seed: int) -> Run:
    X, y, X_test, y_test = data
    rng = np.random.default_rng(seed)
    model = seed_model(rng)
    history = training_loop(model, Dataset(X, y, rng), epochs=epochs, batch_size=BATCH)
    seconds = [record.seconds for record in history.epochs]
    return Run(seconds, accuracy(y_test, model.predict(X_test)))


def run_sklearn(data: Data, epochs: int, seed: int) -> Run:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, X_test, y_test = data
    clf = MLPClassifier(
        hidden_layer_sizes=(64, 32),
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=1e-3,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        shuffle=True,
        random_state=seed,
    )
    # MLPClassifier has no per-epoch callback; this method runs once at the end of each epoch.
    marks: list[float] = []
    end_of_epoch = clf._update_no_improvement_count

    def mark(*args: object, **kwargs: object) -> None:
        marks.append(time.perf_counter())
        end_of_epoch(*args, **kwargs)

    clf._update_no_improvement_count = mark
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    if clf.n_iter_ != epochs or len(marks) != epochs:
        raise RuntimeError(f"scikit-learn stopped after {clf.n_iter_} of {epochs} epochs")
    seconds = np.diff([started, *marks]).tolist()
    return Run(seconds, float(np.mean(clf.predict(X_test) == y_test)))


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_torch(data: Data, epochs: int, seed: int) -> Run:
    """The same network and loop in PyTorch CPU eager mode, one thread."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    X, y, X_test, y_test = (torch.from_numpy(a) for a in data)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), BATCH):
            rows = order[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(X[rows]), y[rows])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    with torch.no_grad():
        test_accuracy = float((net(X_test).argmax(dim=1) == y_test).float().mean())
    return Run(seconds, test_accuracy)


def adam_passes(
    params: np.ndarray, grads: np.ndarray, m: np.ndarray, v: np.ndarray, scratch: np.ndarray
) -> None:
    """Adam's ten passes over the parameters (constant step sizes: the cost, not the math)."""
    m *= 0.9
    m += grads
    v *= 0.999
    np.multiply(grads, grads, out=scratch)
    v += scratch
    np.sqrt(v, out=scratch)
    scratch += 1e-8
    np.divide(m, scratch, out=scratch)
    scratch *= 1e-3
    params -= scratch


def run_floor(data: Data, epochs: int, seed: int) -> Run:
    """Per batch: the gather, x @ W1, x.T @ d1 and Adam's ten passes, nothing else."""
    X = data[0]
    rng = np.random.default_rng(seed)
    n_params = 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10  # 52,650
    params = rng.standard_normal(n_params, dtype=np.float32) * np.float32(0.05)
    grads = rng.standard_normal(n_params, dtype=np.float32) * np.float32(0.01)
    m, v, scratch = np.zeros_like(params), np.zeros_like(params), np.empty_like(params)
    w1, g1 = params[: 784 * 64].reshape(784, 64), grads[: 784 * 64].reshape(784, 64)
    x = np.empty((BATCH, 784), np.float32)
    h = np.empty((BATCH, 64), np.float32)
    d = rng.standard_normal((BATCH, 64), dtype=np.float32)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = rng.permutation(len(X))
        for start in range(0, len(X) - BATCH + 1, BATCH):
            X.take(order[start : start + BATCH], axis=0, out=x)
            np.dot(x, w1, out=h)
            np.dot(x.T, d, out=g1)
            adam_passes(params, grads, m, v, scratch)
        seconds.append(time.perf_counter() - started)
    return Run(seconds, None)


def nnlib_training_memory_mb(data: Data, seed: int) -> float:
    """Peak memory numpy allocates while nnlib trains one epoch (tracemalloc; untimed,
    because tracing every allocation slows the loop)."""
    X, y, _, _ = data
    rng = np.random.default_rng(seed)
    tracemalloc.start()
    training_loop(seed_model(rng), Dataset(X, y, rng), epochs=1, batch_size=BATCH)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def summary(runs: list[Run]) -> dict[str, object]:
    """Medians and ranges over the rounds of one implementation."""
    firsts, steadies = [r.first for r in runs], [r.steady for r in runs]
    accuracies = [r.test_accuracy for r in runs if r.test_accuracy is not None]
    return {
        "epoch1_seconds": statistics.median(firsts),
        "steady_seconds": statistics.median(steadies),
        "steady_range": [min(steadies), max(steadies)],
        "test_accuracy": statistics.median(accuracies) if accuracies else None,
        "rounds": [asdict(r) for r in runs],
    }


def main(
    epochs: Annotated[int, typer.Option(min=2, help="Epochs per run (1 warm-up + steady).")] = 20,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds of every run.")] = 3,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the four MNIST .gz files. Default: $MNIST_MIRROR."),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/speed.json"
    ),
    seed: int = 0,
) -> None:
    folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
    if not all((folder / name).is_file() for name in MNIST_FORMAT_SIZES):
        raise typer.BadParameter(f"{folder}: not a folder with the four MNIST .gz files")
    data = load_mnist(folder)
    runners: dict[str, Callable[[Data, int, int], Run]] = {
        "nnlib": run_nnlib,
        "scikit-learn": run_sklearn,
    }
    if torch_available():
        runners["pytorch"] = run_torch
    runners["floor"] = run_floor
    print(f"MNIST {len(data[0])} training images, batch {BATCH}, {epochs} epochs per run,")
    print(f"{rounds} alternating rounds of {', '.join(runners)}; one BLAS thread each\n")

    results: dict[str, list[Run]] = {name: [] for name in runners}
    with threadpool_limits(limits=1, user_api="blas"):
        for round_ in range(rounds):
            for name, runner in runners.items():
                run = runner(data, epochs, seed + round_)
                results[name].append(run)
                print(
                    f"round {round_ + 1} {name:13s} epoch 1 {run.first:.3f} s, "
                    f"later epochs median {run.steady:.3f} s",
                    flush=True,
                )
    table = {name: summary(runs) for name, runs in results.items()}
    nnlib_steady = table["nnlib"]["steady_seconds"]
    ratios = {
        f"{name}_over_nnlib": table[name]["steady_seconds"] / nnlib_steady
        for name in runners
        if name not in ("nnlib", "floor")
    }
    ratios["nnlib_over_floor"] = nnlib_steady / table["floor"]["steady_seconds"]

    print(
        "\n| implementation | epoch 1 (s) | later epochs, median (s) | range (s) | test accuracy |"
    )
    print("|---|---|---|---|---|")
    for name, row in table.items():
        low, high = row["steady_range"]
        acc = f"{row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else "-"
        print(
            f"| {name} | {row['epoch1_seconds']:.3f} | {row['steady_seconds']:.3f} "
            f"| {low:.3f}-{high:.3f} | {acc} |"
        )
    print()
    for name, ratio in ratios.items():
        print(f"{name.replace('_', ' ')}: {ratio:.2f}x")
    memory = nnlib_training_memory_mb(data, seed)
    print(f"nnlib allocates {memory:.1f} MB while training, beyond the loaded data (tracemalloc)")

    report = {
        **run_description(f"python bench/bench_speed.py --epochs {epochs} --rounds {rounds}"),
        "epochs": epochs,
        "rounds": rounds,
        "implementations": table,
        "ratios": ratios,
        "nnlib_training_memory_mb": memory,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
