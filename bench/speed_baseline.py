"""The blog post's network trained by this commit's nnlib beside an earlier commit's, in one run.

A speed an earlier commit states was measured on that day's machine, busy or idle as it was;
to tell whether a change slowed the MLP down, both versions of nnlib train the seed network
(784-64-32-10, batch 32, Adam 1e-3, one BLAS thread) here, in alternating rounds, each round
in a fresh process with that version's ``nnlib`` first on the path (``git archive`` of the
earlier commit's ``nnlib`` folder; the loop and the data are this commit's). Epoch 1 is left
out; a round's steady state is the median of its later epochs, and the median over rounds is
reported. With the same seed both versions should reach the same test accuracy: the
arithmetic is meant to be the same.

    python bench/speed_baseline.py [--baseline 9557826] [--epochs 20] [--rounds 3]
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from results import REPO, run_description

# The last commit before nnlib learnt shaped layers (Conv2D, MaxPool2D, Flatten).
BASELINE = "9557826"


def train_here(nnlib_root: Path, epochs: int, seed: int, mnist_dir: Path) -> dict[str, object]:
    """One run of the seed network, in this process, with ``nnlib_root``'s nnlib."""
    sys.path.insert(0, str(nnlib_root))
    # nnlib_root is first on the path: bench_speed's nnlib is that one
    from bench_speed import SEED_NET, load_mnist, run_nnlib
    from threadpoolctl import threadpool_limits

    import nnlib

    with threadpool_limits(limits=1, user_api="blas"):
        run = run_nnlib(load_mnist(mnist_dir), SEED_NET, epochs, seed, threads=1)
    return {
        "nnlib": str(Path(nnlib.__file__).parent),
        "seconds": run.epoch_seconds,
        "steady": run.steady,
        "test_accuracy": run.test_accuracy,
    }


def train_in_child(nnlib_root: Path, epochs: int, seed: int, mnist_dir: Path) -> dict[str, object]:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(nnlib_root),
            "--epochs",
            str(epochs),
            "--seed",
            str(seed),
            "--mnist-dir",
            str(mnist_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"error: the run with {nnlib_root}'s nnlib failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_nnlib(commit: str, folder: Path) -> None:
    """``commit``'s nnlib folder into ``folder``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "nnlib"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        sys.exit(f"error: git archive {commit} nnlib: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")


def main(
    baseline: Annotated[str, typer.Option(help="The earlier commit.")] = BASELINE,
    epochs: Annotated[int, typer.Option(min=2)] = 20,
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    seed: int = 0,
    mnist_dir: Annotated[Path | None, typer.Option(help="Default: $MNIST_MIRROR.")] = None,
    json_path: Annotated[Path, typer.Option("--json")] = Path("bench/speed_baseline.json"),
    child: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
    if child is not None:
        print(json.dumps(train_here(child, epochs, seed, folder)))
        return
    commit = subprocess.run(
        ["git", "rev-parse", "--short", baseline],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not commit:
        raise typer.BadParameter(f"{baseline}: not a commit of this repository")
    runs: dict[str, list[dict[str, object]]] = {"this commit": [], commit: []}
    with tempfile.TemporaryDirectory() as scratch:
        export_nnlib(commit, Path(scratch))
        roots = {"this commit": REPO, commit: Path(scratch)}
        for round_ in range(rounds):
            for name, root in roots.items():
                run = train_in_child(root, epochs, seed, folder)
                runs[name].append(run)
                print(
                    f"round {round_ + 1} {name:12s} later epochs median "
                    f"{run['steady']:.3f} s, test accuracy {run['test_accuracy']:.4f}",
                    flush=True,
                )
    steady = {name: statistics.median(r["steady"] for r in rs) for name, rs in runs.items()}
    ratio = steady["this commit"] / steady[commit]
    print(
        f"this commit {steady['this commit']:.3f} s/epoch, {commit} {steady[commit]:.3f} "
        f"s/epoch: {ratio:.3f}x"
    )
    report = {
        **run_description(
            f"python bench/speed_baseline.py --baseline {baseline} --epochs {epochs} "
            f"--rounds {rounds}"
        ),
        "baseline_commit": commit,
        "network": [784, 64, 32, 10],
        "batch": 32,
        "epochs": epochs,
        "rounds": rounds,
        "steady_seconds": steady,
        "this_over_baseline": ratio,
        "same_test_accuracy": len({r["test_accuracy"] for rs in runs.values() for r in rs}) == 1,
        "runs": runs,
    }
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
