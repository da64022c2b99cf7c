"""Training speed, side by side in one run: nnlib, scikit-learn, PyTorch and the floor.

All train the same network (ReLU, softmax + cross-entropy, Adam 1e-3 constant, no L2) on the
same float32 MNIST arrays (all 60,000 training images), in alternating rounds so that
machine noise hits all alike. Each epoch is timed on its own: epoch 1 (warm-up, and before
any subnormal floats can build up) is reported apart from the steady state, the median of
the later epochs. Two networks:

- the blog post's 784-64-32-10 at batch 32, one BLAS thread: its cost is call overhead and
  memory passes. Its floor is what no MLP of this shape can avoid per batch: gathering the
  batch, the two 32x784x64 products (the first layer forward and its weight gradient) and
  Adam's ten passes over the 52,650 parameters, back to back with no other work.
- a wide 784-800-10 at batch 128, with one and with two BLAS threads: its cost is
  arithmetic. Its floor is every product of forward and backward (at the machine's
  large-matrix rate), the gather and Adam's ten passes.

    python bench/bench_speed.py [--epochs 20] [--rounds 3] [--wide-epochs 5] [--wide-rounds 2]
"""

from __future__ import annotations

import itertools
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


@dataclass(frozen=True)
class Net:
    """A network to time: hidden layer sizes, batch size, and whether its floor counts every
    product or only the first layer's two (where the rest is overhead, not arithmetic)."""

    hidden: tuple[int, ...]
    batch: int
    floor_has_every_product: bool

    @property
    def sizes(self) -> tuple[int, ...]:
        return (784, *self.hidden, 10)

    @property
    def label(self) -> str:
        return f"{'-'.join(map(str, self.sizes))}, batch {self.batch}"


SEED_NET = Net((64, 32), BATCH, floor_has_every_product=False)
WIDE_NET = Net((800,), 128, floor_has_every_product=True)


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


def seed_model(rng: np.random.Generator, net: Net = SEED_NET) -> Model:
    sizes = net.sizes
    layers = [
        DenseLayer(n_in, n_out, ReLU() if i < len(sizes) - 2 else Softmax(), rng=rng)
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
    ]
    return Model(layers=layers, loss=CrossEntropyLoss(), optimizer=Adam(learning_rate=1e-3))


def run_nnlib(data: Data, net: Net, epochs: int, seed: int, threads: int) -> Run:
    X, y, X_test, y_test = data
    rng = np.random.default_rng(seed)
    model = seed_model(rng, net)
    history = training_loop(model, Dataset(X, y, rng), epochs=epochs, batch_size=net.batch)
    seconds = [record.seconds for record in history.epochs]
    return Run(seconds, accuracy(y_test, model.predict(X_test)))


def run_sklearn(data: Data, net: Net, epochs: int, seed: int, threads: int) -> Run:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, X_test, y_test = data
    clf = MLPClassifier(
        hidden_layer_sizes=net.hidden,
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=net.batch,
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


def run_torch(data: Data, net: Net, epochs: int, seed: int, threads: int) -> Run:
    """The same network and loop in PyTorch CPU eager mode."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    X, y, X_test, y_test = (torch.from_numpy(a) for a in data)
    modules: list[torch.nn.Module] = []
    for n_in, n_out in itertools.pairwise(net.sizes):
        modules += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*modules[:-1])  # no ReLU after the output layer
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), net.batch):
            rows = order[start : start + net.batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[rows]), y[rows])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    with torch.no_grad():
        test_accuracy = float((model(X_test).argmax(dim=1) == y_test).float().mean())
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


def run_floor(data: Data, net: Net, epochs: int, seed: int, threads: int) -> Run:
    """Per batch: the gather, the products the floor counts (the first layer's forward and
    weight gradient, or every product of forward and backward) and Adam's ten passes."""
    X = data[0]
    rng = np.random.default_rng(seed)
    shapes = list(itertools.pairwise(net.sizes))
    n_params = sum((n_in + 1) * n_out for n_in, n_out in shapes)
    params = rng.standard_normal(n_params, dtype=np.float32) * np.float32(0.05)
    grads = rng.standard_normal(n_params, dtype=np.float32) * np.float32(0.01)
    m, v, scratch = np.zeros_like(params), np.zeros_like(params), np.empty_like(params)
    weights, weight_grads, offset = [], [], 0
    for n_in, n_out in shapes:
        weights.append(params[offset : offset + n_in * n_out].reshape(n_in, n_out))
        weight_grads.append(grads[offset : offset + n_in * n_out].reshape(n_in, n_out))
        offset += (n_in + 1) * n_out
    if not net.floor_has_every_product:
        weights, weight_grads = weights[:1], weight_grads[:1]
    x = np.empty((net.batch, 784), np.float32)
    outputs = [np.empty((net.batch, w.shape[1]), np.float32) for w in weights]
    deltas = [rng.standard_normal(out.shape, dtype=np.float32) for out in outputs]
    inputs = [x, *outputs[:-1]]
    input_grads = [np.empty_like(h) for h in inputs]
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = rng.permutation(len(X))
        for start in range(0, len(X) - net.batch + 1, net.batch):
            X.take(order[start : start + net.batch], axis=0, out=x)
            for h, w, out in zip(inputs, weights, outputs, strict=True):
                np.dot(h, w, out=out)
            for i in range(len(weights) - 1, -1, -1):
                np.dot(inputs[i].T, deltas[i], out=weight_grads[i])
                if i:  # no layer needs the input's gradient
                    np.dot(deltas[i], weights[i].T, out=input_grads[i])
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


def compare(
    data: Data, net: Net, epochs: int, rounds: int, seed: int, threads: int
) -> dict[str, object]:
    """Every implementation on ``net`` with ``threads`` BLAS threads, ``rounds`` alternating
    rounds of ``epochs`` epochs: the table, the ratios, printed and returned."""
    runners: dict[str, Callable[[Data, Net, int, int, int], Run]] = {
        "nnlib": run_nnlib,
        "scikit-learn": run_sklearn,
    }
    if torch_available():
        runners["pytorch"] = run_torch
    runners["floor"] = run_floor
    print(f"\n{net.label}: {epochs} epochs per run, {rounds} alternating rounds of")
    print(f"{', '.join(runners)}; {threads} BLAS thread{'s' * (threads > 1)} each")
    results: dict[str, list[Run]] = {name: [] for name in runners}
    with threadpool_limits(limits=threads, user_api="blas"):
        for round_ in range(rounds):
            for name, runner in runners.items():
                run = runner(data, net, epochs, seed + round_, threads)
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
    print("| implementation | epoch 1 (s) | later epochs, median (s) | range (s) | test accuracy |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        low, high = row["steady_range"]
        acc = f"{row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else "-"
        print(
            f"| {name} | {row['epoch1_seconds']:.3f} | {row['steady_seconds']:.3f} "
            f"| {low:.3f}-{high:.3f} | {acc} |"
        )
    for name, ratio in ratios.items():
        print(f"{name.replace('_', ' ')}: {ratio:.2f}x")
    return {
        "network": list(net.sizes),
        "batch": net.batch,
        "threads": threads,
        "epochs": epochs,
        "rounds": rounds,
        "implementations": table,
        "ratios": ratios,
    }


def main(
    epochs: Annotated[int, typer.Option(min=2, help="Epochs per run (1 warm-up + steady).")] = 20,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds of every run.")] = 3,
    wide_epochs: Annotated[int, typer.Option(min=2, help="Epochs per run, wide net.")] = 5,
    wide_rounds: Annotated[int, typer.Option(min=1, help="Rounds, wide net.")] = 2,
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
    seed_net = compare(data, SEED_NET, epochs, rounds, seed, threads=1)
    memory = nnlib_training_memory_mb(data, seed)
    print(f"nnlib allocates {memory:.1f} MB while training, beyond the loaded data (tracemalloc)")
    wide = {
        f"{threads}_threads": compare(data, WIDE_NET, wide_epochs, wide_rounds, seed, threads)
        for threads in (1, 2)
    }
    command = (
        f"python bench/bench_speed.py --epochs {epochs} --rounds {rounds} "
        f"--wide-epochs {wide_epochs} --wide-rounds {wide_rounds}"
    )
    report = {
        **run_description(command),
        "seed_net": {**seed_net, "nnlib_training_memory_mb": memory},
        "wide_net": wide,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
