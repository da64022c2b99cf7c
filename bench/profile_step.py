"""Where one nnlib training step spends its time, part by part, on the real MNIST.

Runs the training loop's own calls (batch, forward, gradients, optimizer step, and the
epoch's scores: each batch's outputs kept, scored at the epoch's end) one at a time under
a CPU clock for a few epochs of the blog post's model, and prints microseconds per step
for each part beside the same part's floor, timed in the same run: the bare batch
gather, the first layer's two 32x784x64 products and Adam's ten passes. The clock's own
cost is measured and subtracted.

    python bench/profile_step.py [--epochs 3]
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from bench_speed import BATCH, adam_passes, load_mnist, seed_model
from threadpoolctl import threadpool_limits

from nnlib.data import Dataset
from nnlib.training import _EpochScores

PARTS = ("batch", "forward", "gradients", "optimizer step", "scores")


def clock_cost() -> float:
    """Seconds one ``time.process_time()`` call takes."""
    started = time.process_time()
    for _ in range(100_000):
        time.process_time()
    return (time.process_time() - started) / 100_000


def profile_nnlib(X: np.ndarray, y: np.ndarray, epochs: int) -> dict[str, float]:
    """Microseconds per step of each part of the training step."""
    clock = time.process_time
    rng = np.random.default_rng(0)
    model = seed_model(rng)
    data = Dataset(X, y, rng)
    totals = dict.fromkeys(PARTS, 0.0)
    steps = 0
    for _ in range(epochs):
        scores = _EpochScores(len(data), model.output_size, data.y, model.dtype)
        batches = data.get_batches(BATCH)
        while True:
            t0 = clock()
            batch = next(batches, None)
            t1 = clock()
            if batch is None:
                break
            xb, yb = batch
            probs = model._forward(model._as_input(xb), training=True)
            t2 = clock()
            model.compute_gradients(yb, probs)
            t3 = clock()
            model.optimizer.step(model.parameters, model.gradients)
            t4 = clock()
            scores.add(yb, probs)
            t5 = clock()
            for part, (a, b) in zip(
                PARTS, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)), strict=True
            ):
                totals[part] += b - a
            steps += 1
        t0 = clock()
        scores.result(model.loss, classify=True)
        totals["scores"] += clock() - t0
    cost = clock_cost()
    per_step = {part: (total / steps - cost) * 1e6 for part, total in totals.items()}
    started = clock()
    for _ in range(1000):
        model.optimizer.flush_subnormals()
    per_step["(one flush)"] = (clock() - started) / 1000 * 1e6
    return per_step


def profile_floor(X: np.ndarray, steps: int) -> dict[str, float]:
    """Microseconds per step of the floor's parts: gather, the two products, Adam."""
    clock = time.process_time
    rng = np.random.default_rng(0)
    n = 52_650
    params = rng.standard_normal(n, dtype=np.float32)
    grads = rng.standard_normal(n, dtype=np.float32)
    m, v, scratch = np.zeros(n, np.float32), np.zeros(n, np.float32), np.empty(n, np.float32)
    w1, g1 = params[: 784 * 64].reshape(784, 64), grads[: 784 * 64].reshape(784, 64)
    x, h = np.empty((BATCH, 784), np.float32), np.empty((BATCH, 64), np.float32)
    d = rng.standard_normal((BATCH, 64), dtype=np.float32)
    order = rng.permutation(len(X))
    totals = {"gather": 0.0, "x @ W1": 0.0, "x.T @ d1": 0.0, "Adam, ten passes": 0.0}
    for step in range(steps):
        start = (step * BATCH) % (len(X) - BATCH)
        t0 = clock()
        X.take(order[start : start + BATCH], axis=0, out=x)
        t1 = clock()
        np.dot(x, w1, out=h)
        t2 = clock()
        np.dot(x.T, d, out=g1)
        t3 = clock()
        adam_passes(params, grads, m, v, scratch)
        t4 = clock()
        for part, (a, b) in zip(totals, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True):
            totals[part] += b - a
    cost = clock_cost()
    return {part: (total / steps - cost) * 1e6 for part, total in totals.items()}


def main(
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    mnist_dir: Annotated[Path | None, typer.Option(help="Default: $MNIST_MIRROR.")] = None,
) -> None:
    X, y, _, _ = load_mnist(mnist_dir or Path(os.environ["MNIST_MIRROR"]))
    with threadpool_limits(limits=1, user_api="blas"):
        ours = profile_nnlib(X, y, epochs)
        floor = profile_floor(X, epochs * (len(X) // BATCH))
    flush = ours.pop("(one flush)")
    print(f"nnlib training step, {epochs} epochs of batch {BATCH}, CPU microseconds per step:")
    for part, micros in ours.items():
        print(f"  {part:16s} {micros:6.1f}")
    print(f"  {'total':16s} {sum(ours.values()):6.1f}")
    print(
        f"  (the optimizer step includes zeroing tiny Adam state every 64 steps: "
        f"{flush:.1f} us a time, {flush / 64:.2f} us per step)"
    )
    print("the floor's parts, same run:")
    for part, micros in floor.items():
        print(f"  {part:16s} {micros:6.1f}")
    print(f"  {'total':16s} {sum(floor.values()):6.1f}")


if __name__ == "__main__":
    typer.run(main)
