"""Training on your own images, worked through: MNIST test digits redrawn as users' files.

``build`` writes the example folder: the first ``--count`` MNIST test digits, each redrawn
in one of ``support.user_looks.LOOKS`` in turn (scaled up, off-centre on a larger canvas, dark ink
on white RGB, grey noisy paper, JPEG, JPEG stored sideways with an EXIF turn, transparent
PNG), one sub-folder per digit (``0/00007.png``, ...). ``measure`` builds it in a scratch
clone of this repository's HEAD, runs ``dvc repro`` there with ``data.dataset: images``,
then preprocess alone on one process and on all of them in turn (three rounds), and reports
the build times (medians), whether every run wrote the same bytes, and the test accuracy
(``bench/own_images.json``).

    python bench/own_images.py build DIR [--count 10000] [--mnist-dir DIR]
    python bench/own_images.py measure [--count 10000] [--json bench/own_images.json]

Seeded: the same count and seed give the same files, byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml
from results import run_description
from support.user_looks import build_example_folder

from stages.data.sources import IDX_FILES

REPO = Path(__file__).resolve().parents[1]
RAW_MNIST = Path("data/raw/mnist")
#: params of the example run (the rest are the project's)
EXAMPLE_DATA = {"dataset": "images", "val_size": 0.1, "test_size": 0.2}
BUILDING = re.compile(r"building (\d+) pictures of (\d+) classes .* on (\d+) process")
BUILT = re.compile(r"built \d+ pictures in ([\d.]+) s")
ROUNDS = 3

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def mnist_folder(mnist_dir: Path | None) -> Path:
    """A folder holding the MNIST test .gz files: ``mnist_dir``, else ``$MNIST_MIRROR`` (a
    folder), else ``data/raw/mnist`` (where ``dvc repro`` put them)."""
    mirror = os.environ.get("MNIST_MIRROR", "")
    folder = mnist_dir or (Path(mirror) if mirror and Path(mirror).is_dir() else RAW_MNIST)
    if not all(
        (folder / name).is_file() for name in (IDX_FILES.test_images, IDX_FILES.test_labels)
    ):
        raise typer.BadParameter(
            f"{folder}: not a folder with the MNIST test .gz files (run dvc repro first, or "
            "name one with --mnist-dir)"
        )
    return folder


@app.command()
def build(
    folder: Annotated[Path, typer.Argument(help="Where to write the example folder.")],
    count: Annotated[int, typer.Option(min=10, max=10_000, help="MNIST test digits.")] = 10_000,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the MNIST test .gz files. Default: $MNIST_MIRROR, else "
            "data/raw/mnist."
        ),
    ] = None,
    seed: int = 0,
) -> None:
    """Write the example folder of labelled pictures."""
    if folder.exists() and any(folder.iterdir()):
        raise typer.BadParameter(f"{folder}: exists and is not empty; choose a new folder")
    files = build_example_folder(mnist_folder(mnist_dir), folder, count, seed)
    print(f"wrote {len(files)} pictures into {folder}/0 ... {folder}/9")


def run(cwd: Path, *args: str) -> str:
    """Run a command in ``cwd``, failing loudly with its output; stdout and stderr."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(args)} exited {result.returncode}\n{result.stderr}")
    return result.stdout + result.stderr


@app.command()
def measure(
    count: Annotated[int, typer.Option(min=10, max=10_000, help="MNIST test digits.")] = 10_000,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the MNIST test .gz files. Default: $MNIST_MIRROR, else "
            "data/raw/mnist."
        ),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/own_images.json"
    ),
    seed: int = 0,
) -> None:
    """Build the example folder in a scratch clone of HEAD, dvc repro it, report."""
    command = shlex.join(["python", *sys.argv])
    source = mnist_folder(mnist_dir)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "project"
        run(REPO, "git", "clone", "--quiet", str(REPO), str(scratch))
        build_example_folder(source, scratch / "example-digits", count, seed)
        params_path = scratch / "params.yaml"
        params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
        params["data"].update(EXAMPLE_DATA, images="example-digits")
        params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        started = time.perf_counter()
        log = run(scratch, sys.executable, "-m", "dvc", "repro")
        seconds = time.perf_counter() - started
        building, built = BUILDING.search(log), BUILT.search(log)
        if building is None or built is None:
            sys.exit(f"error: preprocess did not report building the pictures\n{log}")
        metrics = json.loads((scratch / "metrics.json").read_text(encoding="utf-8"))
        meta = json.loads((scratch / "data/processed/meta.json").read_text(encoding="utf-8"))
        # The build alone, on 1 and on all processes in turn (medians: other jobs on the
        # machine slow some runs), and the same bytes each time.
        seconds_by_workers: dict[int, list[float]] = {1: [], int(building[3]): []}
        identical = True
        for _ in range(ROUNDS):
            for workers, times in seconds_by_workers.items():
                log = run(scratch, sys.executable, "-m", "stages.preprocess", "--workers",
                          str(workers), "--out-dir", "again")  # fmt: skip
                again = BUILT.search(log)
                if again is None:
                    sys.exit(f"error: preprocess did not report building the pictures\n{log}")
                times.append(float(again[1]))
                identical &= all(
                    (scratch / "again" / path.name).read_bytes() == path.read_bytes()
                    for path in (scratch / "data/processed").iterdir()
                )
    report = {
        **run_description(command),
        "pictures": int(building[1]),
        "classes": int(building[2]),
        "splits": meta["splits"],
        "build_processes": int(building[3]),
        "build_seconds_in_repro": float(built[1]),
        "build_seconds_median": {
            f"{workers} processes": statistics.median(times)
            for workers, times in seconds_by_workers.items()
        },
        "rounds": ROUNDS,
        "same_bytes_every_run": identical,
        "repro_seconds": round(seconds, 1),
        "test_accuracy": metrics["test"]["accuracy"],
        "test_f1_macro": metrics["test"]["f1_macro"],
        "train_accuracy": metrics["train"]["accuracy"],
    }
    print(json.dumps(report, indent=2))
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {json_path}\n{command}")


if __name__ == "__main__":
    app()
