"""Augmentation speed, side by side in one run: the distortion alone, and training epochs
without it, with it prepared by the background worker, and with it computed in between.

- distortion: seconds to distort all 60,000 MNIST training images in this process, one
  core, one BLAS thread: the default strengths of params.yaml, and the affine part and the
  elastic part alone. Wall and CPU time, median of the repeats after one warm-up.
- seed net: 784-64-32-10, batch 32, Adam 1e-3, on the same images, each epoch timed (the
  wait for the epoch's images included): no augmentation; augmentation from the background
  worker, as the train stage runs it; from a thread of the training process instead (for
  comparison: it shares the GIL with the training loop); computed by the training process
  at the start of each epoch. Steady state is the median of the epochs after the
  first; the runs alternate over the rounds so that machine noise hits all alike. The
  target: an epoch with the worker costs at most 10% more than the slower of training
  alone and distortion alone.
- wide net: 784-800-10, batch 128, with one and with two BLAS threads in the trainer,
  without augmentation and with the worker (which always has one thread).

    python bench/bench_augment.py [--epochs 8] [--rounds 3] [--repeats 7] [--wide-epochs 3]
                                  [--json bench/augment.json]
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
import yaml
from bench_speed import Data, load_mnist, seed_model
from results import run_description
from threadpoolctl import threadpool_limits

from nnlib import Adam, CrossEntropyLoss, Dataset, DenseLayer, Model, ReLU, Softmax
from nnlib.training import training_loop
from stages.augment.distortions import Distorter, Strengths, pad_images
from stages.augment.epochs import EpochDistortions
from stages.augment.worker import distort_epoch
from stages.data.sources import MNIST_FORMAT_SIZES

REPO = Path(__file__).resolve().parents[1]
SHAPE = (28, 28)
MODES = ("none", "background", "thread", "foreground")


def default_strengths() -> Strengths:
    """MNIST's ``train.augment`` in the repository's params.yaml (the bench needs it on)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    augment = params["train"]["augment"]
    augment = augment if augment == "none" else augment["mnist"]
    if augment == "none":
        augment = {"rotation": 12, "scale": 0.1, "shear": 0.15, "shift": 2}
        augment |= {"elastic_alpha": 15, "elastic_sigma": 4}
    return Strengths(**augment)


def time_distortion(images: np.ndarray, strengths: Strengths, repeats: int) -> dict[str, Any]:
    """Wall and CPU seconds of ``distort_epoch`` over ``images``, ``repeats`` epochs after a
    warm-up one."""
    distorter = Distorter(SHAPE, strengths)
    padded = pad_images(images, SHAPE, 0.0)
    out = np.empty_like(images)
    walls, cpus = [], []
    for epoch in range(repeats + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        distort_epoch(distorter, padded, 1, epoch, out)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "strengths": dataclasses.asdict(strengths),
        "wall_seconds": statistics.median(walls[1:]),
        "cpu_seconds": statistics.median(cpus[1:]),
        "wall_range": [min(walls[1:]), max(walls[1:])],
        "warm_up_seconds": walls[0],
    }


class ThreadDistortions:
    """For comparison only: the next epoch distorted by a thread of the training process
    (the same images as ``EpochDistortions``), which shares the GIL with the training loop."""

    def __init__(self, images: np.ndarray, strengths: Strengths, seed: int, epochs: int) -> None:
        self.distorter = Distorter(SHAPE, strengths)
        self.padded = pad_images(images, SHAPE, 0.0)
        self.buffers = [np.empty_like(images), np.empty_like(images)]
        self.seed, self.epochs = seed, epochs
        self.thread: threading.Thread | None = None

    def _distort(self, epoch: int) -> None:
        distort_epoch(self.distorter, self.padded, self.seed, epoch, self.buffers[epoch % 2])

    def __call__(self, epoch: int) -> np.ndarray:
        if self.thread is None:
            self._distort(epoch)
        else:
            self.thread.join()
        self.thread = None
        if epoch + 1 < self.epochs:
            self.thread = threading.Thread(target=self._distort, args=(epoch + 1,))
            self.thread.start()
        return self.buffers[epoch % 2]


@contextmanager
def epoch_inputs(
    mode: str, images: np.ndarray, strengths: Strengths, epochs: int
) -> Iterator[Callable[[int], np.ndarray] | None]:
    if mode == "none":
        yield None
        return
    if mode == "thread":
        yield ThreadDistortions(images, strengths, 1, epochs)
        return
    background = mode == "background"
    with EpochDistortions(
        images, SHAPE, strengths, 0.0, seed=1, epochs=epochs, background=background
    ) as distortions:
        if background and not distortions.background:
            raise RuntimeError("the augmentation worker did not start")
        yield distortions


def wide_model(rng: np.random.Generator) -> Model:
    return Model(
        layers=[DenseLayer(784, 800, ReLU(), rng=rng), DenseLayer(800, 10, Softmax(), rng=rng)],
        loss=CrossEntropyLoss(),
        optimizer=Adam(learning_rate=1e-3),
    )


@dataclasses.dataclass
class Run:
    """One training run: wall seconds of each epoch, the trainer's CPU seconds of each
    epoch, and the worker's CPU seconds per epoch it prepared (background mode)."""

    epoch_seconds: list[float]
    trainer_cpu_seconds: list[float]
    worker_cpu_seconds: float | None = None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train_epochs(
    data: Data, mode: str, strengths: Strengths, epochs: int, batch: int, wide: bool, seed: int
) -> Run:
    """One training run, timed epoch by epoch."""
    X, y, _, _ = data
    rng = np.random.default_rng(seed)
    model = wide_model(rng) if wide else seed_model(rng)
    cpu = [time.process_time()]
    before = children_cpu()
    with epoch_inputs(mode, X, strengths, epochs) as inputs:
        dataset = Dataset(X, y, rng, epoch_inputs=inputs)
        history = training_loop(
            model,
            dataset,
            epochs=epochs,
            batch_size=batch,
            on_epoch_end=lambda record, total: cpu.append(time.process_time()),
        )
    worker = (children_cpu() - before) / (epochs - 1) if mode == "background" else None
    return Run([r.seconds for r in history.epochs], np.diff(cpu).tolist(), worker)


def steady(seconds: list[float]) -> float:
    return statistics.median(seconds[1:] or seconds)


def summary(runs: list[Run]) -> dict[str, Any]:
    """Medians over the rounds of one mode: wall and CPU seconds of the later epochs."""
    walls = [steady(run.epoch_seconds) for run in runs]
    workers = [run.worker_cpu_seconds for run in runs if run.worker_cpu_seconds is not None]
    return {
        "steady_seconds": statistics.median(walls),
        "steady_range": [min(walls), max(walls)],
        "epoch1_seconds": statistics.median(run.epoch_seconds[0] for run in runs),
        "trainer_cpu_seconds": statistics.median(steady(r.trainer_cpu_seconds) for r in runs),
        "worker_cpu_seconds": statistics.median(workers) if workers else None,
        "rounds": [dataclasses.asdict(run) for run in runs],
    }


def main(
    epochs: Annotated[int, typer.Option(min=2, help="Epochs per seed-net run.")] = 8,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds of the runs.")] = 3,
    repeats: Annotated[int, typer.Option(min=1, help="Timed distortions of 60,000.")] = 7,
    wide_epochs: Annotated[
        int, typer.Option(min=0, help="Epochs per wide-net run (0: skip the wide net).")
    ] = 3,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the four MNIST .gz files. Default: $MNIST_MIRROR."),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/augment.json"
    ),
) -> None:
    folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
    if not all((folder / name).is_file() for name in MNIST_FORMAT_SIZES):
        raise typer.BadParameter(f"{folder}: not a folder with the four MNIST .gz files")
    data = load_mnist(folder)
    images = data[0]
    strengths = default_strengths()
    load_before = os.getloadavg()
    print(f"MNIST {len(images)} training images; load average {load_before[0]:.2f}\n")

    with threadpool_limits(limits=1, user_api="blas"):
        distortion = {
            "default": time_distortion(images, strengths, repeats),
            "affine": time_distortion(
                images, dataclasses.replace(strengths, elastic_alpha=0), repeats
            ),
            "elastic": time_distortion(
                images,
                Strengths(
                    elastic_alpha=strengths.elastic_alpha or 15,
                    elastic_sigma=strengths.elastic_sigma or 4,
                ),
                repeats,
            ),
        }
        for name, row in distortion.items():
            print(
                f"distort 60,000 ({name}): {row['wall_seconds']:.3f} s wall, "
                f"{row['cpu_seconds']:.3f} s CPU (median of {repeats})",
                flush=True,
            )
        seed_runs: dict[str, list[Run]] = {mode: [] for mode in MODES}
        for round_ in range(rounds):
            for mode in MODES:
                run = train_epochs(data, mode, strengths, epochs, 32, False, round_)
                seed_runs[mode].append(run)
                worker = (
                    f", worker CPU {run.worker_cpu_seconds:.3f} s" if run.worker_cpu_seconds else ""
                )
                print(
                    f"round {round_ + 1} seed net, augmentation {mode:10s}: epoch 1 "
                    f"{run.epoch_seconds[0]:.3f} s, later epochs median "
                    f"{steady(run.epoch_seconds):.3f} s (trainer CPU "
                    f"{steady(run.trainer_cpu_seconds):.3f} s{worker})",
                    flush=True,
                )

    seed_net = {mode: summary(runs) for mode, runs in seed_runs.items()}
    distort_seconds = distortion["default"]["wall_seconds"]
    slower = max(seed_net["none"]["steady_seconds"], distort_seconds)
    overhead = seed_net["background"]["steady_seconds"] / slower - 1
    thread_overhead = seed_net["thread"]["steady_seconds"] / slower - 1

    wide: dict[str, Any] = {}
    for threads in (1, 2) if wide_epochs else ():
        with threadpool_limits(limits=threads, user_api="blas"):
            for mode in ("none", "background"):
                run = train_epochs(data, mode, strengths, wide_epochs, 128, True, 0)
                wide[f"{threads}_threads_{mode}"] = summary([run])
                print(
                    f"wide net, {threads} BLAS thread(s), augmentation {mode:10s}: later "
                    f"epochs median {steady(run.epoch_seconds):.3f} s",
                    flush=True,
                )

    print(
        "\n| seed net, batch 32 | epoch 1 (s) | later epochs, median (s) | range (s) "
        "| trainer CPU (s) | worker CPU (s) |"
    )
    print("|---|---|---|---|---|---|")
    for mode, row in seed_net.items():
        low, high = row["steady_range"]
        worker = f"{row['worker_cpu_seconds']:.3f}" if row["worker_cpu_seconds"] else ""
        print(
            f"| augmentation {mode} | {row['epoch1_seconds']:.3f} | "
            f"{row['steady_seconds']:.3f} | {low:.3f}-{high:.3f} | "
            f"{row['trainer_cpu_seconds']:.3f} | {worker} |"
        )
    cpu = distortion["default"]["cpu_seconds"]
    print(f"| distortion alone | | {distort_seconds:.3f} | | {cpu:.3f} | |")
    print(
        f"\nan epoch with the worker costs {overhead:+.1%} over the slower of training alone "
        f"and distortion alone ({slower:.3f} s), with a thread {thread_overhead:+.1%}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    report = {
        **run_description(
            f"python bench/bench_augment.py --epochs {epochs} --rounds {rounds} "
            f"--repeats {repeats} --wide-epochs {wide_epochs}"
        ),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "images": len(images),
        "distortion_seconds": distortion,
        "seed_net_batch_32": seed_net,
        "background_over_slower_of_the_two": overhead,
        "thread_over_slower_of_the_two": thread_overhead,
        "wide_net_batch_128": wide,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
