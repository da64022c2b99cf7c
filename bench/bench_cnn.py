"""CNN training speed, side by side in one run: nnlib, PyTorch CPU eager and the floor.

Both train the same network (same layers, Adam 1e-3, softmax + cross-entropy) with the same
loop on the same float32 MNIST images, ``(n, 1, 28, 28)`` batches of 128 drawn from a fresh
permutation, one BLAS thread each (threadpoolctl for NumPy, ``torch.set_num_threads(1)``),
in alternating rounds so that machine noise hits all alike. Each training step is timed
on its own; the first ``--warmup`` steps of a round are left out, the rest's median is the
round's steady state, and the median over rounds is reported.

The floor is what no im2col implementation of the network can avoid: the products of every
layer (forward, weight gradient and, above the first layer, input gradient), the shapes
nnlib multiplies, run back to back with nothing between, timed in the same rounds: the
network's product FLOPs at this machine's single-thread rate for those shapes. The rate of
one large square product is measured too, for scale.

The network is ``--layers``, entries as the pipeline's ``model.layers`` takes them (a
Flatten before the first dense entry and the softmax output layer for the ten classes are
added, as the pipeline adds them); by default the LeNet-like net below.

    python bench/bench_cnn.py [--steps 60] [--warmup 10] [--rounds 3] [--batch 128]
        [--layers JSON] [--json bench/cnn.json]
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from bench_speed import load_mnist
from results import run_description
from threadpoolctl import threadpool_limits

from nnlib import (
    Adam,
    Conv2D,
    CrossEntropyLoss,
    DenseLayer,
    Dropout,
    Flatten,
    MaxPool2D,
    Model,
    Softmax,
    get_activation,
)
from nnlib.layers import Layer
from stages.data.sources import MNIST_FORMAT_SIZES

#: conv 32 5x5 -> relu -> max-pool 2 -> conv 64 5x5 -> relu -> max-pool 2 -> (flatten) ->
#: dense 128 relu -> (dense 10 softmax)
DEFAULT_LAYERS: list[dict[str, Any]] = [
    {"type": "conv2d", "filters": 32, "kernel": 5, "activation": "relu"},
    {"type": "maxpool2d", "size": 2},
    {"type": "conv2d", "filters": 64, "kernel": 5, "activation": "relu"},
    {"type": "maxpool2d", "size": 2},
    {"type": "dense", "units": 128, "activation": "relu"},
]
IMAGE_SHAPE = (1, 28, 28)
CLASSES = 10
Data = tuple[np.ndarray, np.ndarray]


def nnlib_layers(
    entries: Sequence[dict[str, Any]], rng: np.random.Generator, classes: int = CLASSES
) -> list[Layer]:
    """nnlib layers for ``entries`` on ``IMAGE_SHAPE`` images, a Flatten before the first
    dense entry and the softmax output layer added."""
    layers: list[Layer] = []
    shape: tuple[int, ...] = IMAGE_SHAPE

    def add(layer: Layer) -> None:
        nonlocal shape
        layers.append(layer)
        shape = layer.output_shape(shape)

    for entry in entries:
        kind = entry["type"]
        if kind == "conv2d":
            add(
                Conv2D(
                    shape[0],
                    entry["filters"],
                    entry["kernel"],
                    stride=entry.get("stride", 1),
                    padding=entry.get("padding", 0),
                    activation_function=get_activation(entry.get("activation", "relu")),
                    rng=rng,
                )
            )
        elif kind == "maxpool2d":
            add(MaxPool2D(entry["size"]))
        elif kind == "dropout":
            add(Dropout(entry["rate"], rng=rng))
        elif kind == "dense":
            if len(shape) > 1:
                add(Flatten())
            activation = get_activation(entry.get("activation", "relu"))
            add(DenseLayer(shape[0], entry["units"], activation, rng=rng))
        else:
            raise typer.BadParameter(f"unknown layer type {kind!r} in --layers")
    if len(shape) > 1:
        add(Flatten())
    add(DenseLayer(shape[0], classes, Softmax(), rng=rng))
    return layers


def torch_modules(layers: Sequence[Layer]) -> list[Any]:
    """The torch modules computing what nnlib's ``layers`` compute (the softmax of the output
    layer is in torch's cross-entropy)."""
    import torch

    activations = {
        "relu": torch.nn.ReLU,
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "identity": torch.nn.Identity,
        "softmax": torch.nn.Identity,
    }
    modules: list[Any] = []
    for layer in layers:
        if isinstance(layer, Conv2D):
            modules.append(
                torch.nn.Conv2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel_size,
                    stride=layer.stride,
                    padding=layer.padding,
                )
            )
        elif isinstance(layer, MaxPool2D):
            modules.append(torch.nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif isinstance(layer, Dropout):
            modules.append(torch.nn.Dropout(layer.rate))
        elif isinstance(layer, Flatten):
            modules.append(torch.nn.Flatten())
        elif isinstance(layer, DenseLayer):
            modules.append(torch.nn.Linear(layer.input_size, layer.output_size))
        if hasattr(layer, "activation"):
            modules.append(activations[layer.activation.name]())
    return modules


@dataclass(frozen=True)
class Product:
    """One matrix product of a training step: ``(m, k) @ (k, n)``, and which one it is."""

    layer: int
    role: str  # "forward", "weight gradient" or "input gradient"
    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def products(layers: Sequence[Layer], batch: int) -> list[Product]:
    """Every product of one training step, as nnlib computes it (im2col for convolutions);
    no input gradient below the first layer with parameters."""
    found: list[Product] = []
    shape: tuple[int, ...] = IMAGE_SHAPE
    first = True
    for i, layer in enumerate(layers):
        out = layer.output_shape(shape)
        if isinstance(layer, Conv2D):
            m, k, n = batch * out[1] * out[2], layer.kernel_size**2 * shape[0], out[0]
        elif isinstance(layer, DenseLayer):
            m, k, n = batch, layer.input_size, layer.output_size
        else:
            shape = out
            continue
        found.append(Product(i, "forward", m, k, n))
        found.append(Product(i, "weight gradient", k, m, n))
        if not first:
            found.append(Product(i, "input gradient", m, n, k))
        first, shape = False, out
    return found


@dataclass
class Run:
    """One round of one implementation: the seconds of each timed step."""

    step_seconds: list[float]

    @property
    def steady(self) -> float:
        return statistics.median(self.step_seconds)


def batches(data: Data, batch: int, rng: np.random.Generator) -> Callable[[], Data]:
    """``next_batch()``: the rows of a fresh permutation, ``batch`` at a time, as an epoch
    draws them (a new permutation when one is used up)."""
    X, y = data
    order = rng.permutation(len(X))
    position = 0

    def next_batch() -> Data:
        nonlocal order, position
        if position + batch > len(X):
            order, position = rng.permutation(len(X)), 0
        rows = order[position : position + batch]
        position += batch
        return X.take(rows, axis=0), y.take(rows, axis=0)

    return next_batch


def run_nnlib(
    data: Data, entries: list[dict], batch: int, steps: int, warmup: int, seed: int
) -> Run:
    rng = np.random.default_rng(seed)
    model = Model(
        nnlib_layers(entries, rng),
        CrossEntropyLoss(),
        Adam(learning_rate=1e-3),
        input_shape=IMAGE_SHAPE,
    )
    next_batch = batches(data, batch, rng)
    seconds = []
    for _ in range(warmup + steps):
        started = time.perf_counter()
        xb, yb = next_batch()
        model.fit_batch(xb, yb)
        seconds.append(time.perf_counter() - started)
    model.optimizer.flush_subnormals()
    return Run(seconds[warmup:])


def run_torch(
    data: Data, entries: list[dict], batch: int, steps: int, warmup: int, seed: int
) -> Run:
    """The same network and loop in PyTorch CPU eager mode, one thread."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    layers = nnlib_layers(entries, np.random.default_rng(seed))
    model = torch.nn.Sequential(*torch_modules(layers))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, y = (torch.from_numpy(a) for a in data)
    generator = torch.Generator().manual_seed(seed)
    order, position = torch.randperm(len(X), generator=generator), 0
    seconds = []
    for _ in range(warmup + steps):
        started = time.perf_counter()
        if position + batch > len(X):
            order, position = torch.randperm(len(X), generator=generator), 0
        rows = order[position : position + batch]
        position += batch
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[rows]), y[rows])
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    return Run(seconds[warmup:])


def run_floor(
    data: Data, entries: list[dict], batch: int, steps: int, warmup: int, seed: int
) -> Run:
    """The step's products back to back, in float32, into preallocated arrays."""
    rng = np.random.default_rng(seed)
    layers = nnlib_layers(entries, rng)
    operands = []
    for product in products(layers, batch):
        a = rng.standard_normal((product.m, product.k), dtype=np.float32)
        b = rng.standard_normal((product.k, product.n), dtype=np.float32)
        if product.role == "weight gradient":  # columns.T @ grad, as nnlib multiplies
            a = np.ascontiguousarray(a.T).T
        elif product.role == "input gradient":  # grad @ kernel.T
            b = np.ascontiguousarray(b.T).T
        operands.append((a, b, np.empty((product.m, product.n), np.float32)))
    seconds = []
    for _ in range(warmup + steps):
        started = time.perf_counter()
        for a, b, out in operands:
            np.dot(a, b, out=out)
        seconds.append(time.perf_counter() - started)
    return Run(seconds[warmup:])


def square_product_gflops(size: int = 2048, repeats: int = 3) -> float:
    """The rate of a large float32 product on this thread: the machine's best, for scale."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty((size, size), np.float32)
    np.dot(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        np.dot(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def summary(runs: list[Run], batch: int, n_train: int) -> dict[str, Any]:
    steadies = [run.steady for run in runs]
    step = statistics.median(steadies)
    return {
        "step_ms": step * 1e3,
        "step_ms_range": [min(steadies) * 1e3, max(steadies) * 1e3],
        "epoch_seconds": step * math.ceil(n_train / batch),
        "rounds": [asdict(run) for run in runs],
    }


def main(
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per round.")] = 60,
    warmup: Annotated[int, typer.Option(min=1, help="Steps left out first each round.")] = 10,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds.")] = 3,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 128,
    layers: Annotated[
        str | None,
        typer.Option(help="The network as model.layers entries, JSON. Default: LeNet-like."),
    ] = None,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the four MNIST .gz files. Default: $MNIST_MIRROR."),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/cnn.json"
    ),
    seed: int = 0,
) -> None:
    entries = json.loads(layers) if layers else DEFAULT_LAYERS
    folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
    if not all((folder / name).is_file() for name in MNIST_FORMAT_SIZES):
        raise typer.BadParameter(f"{folder}: not a folder with the four MNIST .gz files")
    X, y, _, _ = load_mnist(folder)
    data = (X.reshape(len(X), *IMAGE_SHAPE), y)
    network = nnlib_layers(entries, np.random.default_rng(seed))
    step_products = products(network, batch)
    flops = sum(product.flops for product in step_products)
    runners: dict[str, Callable[..., Run]] = {"nnlib": run_nnlib}
    if torch_available():
        runners["pytorch"] = run_torch
    runners["floor"] = run_floor
    print(f"{' -> '.join(map(repr, network))}")
    print(f"batch {batch}, 1 BLAS thread, {rounds} alternating rounds of {', '.join(runners)}:")
    print(f"{warmup} warm-up steps then {steps} timed steps each")
    results: dict[str, list[Run]] = {name: [] for name in runners}
    with threadpool_limits(limits=1, user_api="blas"):
        peak = square_product_gflops()
        for round_ in range(rounds):
            for name, runner in runners.items():
                run = runner(data, entries, batch, steps, warmup, seed + round_)
                results[name].append(run)
                print(f"round {round_ + 1} {name:8s} {run.steady * 1e3:7.2f} ms per step")
    table = {name: summary(runs, batch, len(X)) for name, runs in results.items()}
    floor_ms = table["floor"]["step_ms"]
    ratios = {"nnlib_over_floor": table["nnlib"]["step_ms"] / floor_ms}
    if "pytorch" in table:
        ratios["nnlib_over_pytorch"] = table["nnlib"]["step_ms"] / table["pytorch"]["step_ms"]
        ratios["pytorch_over_floor"] = table["pytorch"]["step_ms"] / floor_ms
    print("| implementation | ms per step, median | range over rounds | s per epoch of 60,000 |")
    print("|---|---|---|---|")
    for name, row in table.items():
        low, high = row["step_ms_range"]
        print(
            f"| {name} | {row['step_ms']:.2f} | {low:.2f}-{high:.2f} | {row['epoch_seconds']:.1f} |"
        )
    print(
        f"products: {flops / 1e9:.2f} GFLOP per step, {flops / floor_ms / 1e6:.0f} GFLOPS back to "
        f"back; one 2048^3 product: {peak:.0f} GFLOPS ({flops / peak / 1e6:.2f} ms at that rate)"
    )
    for name, ratio in ratios.items():
        print(f"{name.replace('_', ' ')}: {ratio:.2f}x")
    command = (
        f"python bench/bench_cnn.py --steps {steps} --warmup {warmup} --rounds {rounds} "
        f"--batch {batch}" + (f" --layers '{layers}'" if layers else "")
    )
    report = {
        **run_description(command),
        "network": {"layers": entries, "input_shape": list(IMAGE_SHAPE), "classes": CLASSES},
        "batch": batch,
        "threads": 1,
        "steps": steps,
        "warmup": warmup,
        "rounds": rounds,
        "products": {
            "gflop_per_step": flops / 1e9,
            "floor_gflops": flops / floor_ms / 1e6,
            "square_product_gflops": peak,
            "ms_at_square_product_rate": flops / peak / 1e6,
            "shapes": [asdict(product) for product in step_products],
        },
        "implementations": table,
        "ratios": ratios,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
