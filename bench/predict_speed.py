"""Pictures per second of ``python -m stages.predict`` on a folder of many files, and its peak
memory, for two kinds of folder:

- ``photos``: phone-like photos, 1200x900 JPEG, an MNIST test digit 300 pixels tall on grey
  paper lit unevenly, with sensor noise (the construction works on a million pixels each);
- ``looks``: MNIST test digits in each of ``user_looks.LOOKS`` in turn (small files, from
  8x8 to a few hundred pixels a side: the per-file overhead).

Each folder is written once to a temporary directory, untimed; then the command runs on it
(``--json``, output discarded) ``--repeats`` times, and the median wall time, the CPU time
(user and system, of the command alone) and the peak resident memory are reported, with
pictures per second of wall and of CPU time. Run it on an otherwise idle machine; it takes
a few minutes.

    python bench/predict_speed.py [--model models/model.npz] [--files 2000] [--repeats 3]
        [--json bench/predict_speed.json] [--mnist-dir DIR]
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image
from results import run_description
from support.user_looks import LOOKS

from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES

PHOTO_SIZE = (1200, 900)
DIGIT_SIZE = 300


def write_photos(digits: np.ndarray, folder: Path, rng: np.random.Generator) -> None:
    """One ``PHOTO_SIZE`` JPEG per digit (ink 255) in ``folder``."""
    width, height = PHOTO_SIZE
    rows, cols = np.mgrid[0:height, 0:width]
    paper = 200 + 30 * cols / width - 20 * rows / height
    for n, digit in enumerate(digits):
        big = Image.fromarray(digit).resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BICUBIC)
        ink = np.zeros((height, width))
        top = rng.integers(0, height - DIGIT_SIZE)
        left = rng.integers(0, width - DIGIT_SIZE)
        ink[top : top + DIGIT_SIZE, left : left + DIGIT_SIZE] = np.asarray(big) / 255
        grey = paper * (1 - 0.8 * ink) + rng.normal(0, 4, ink.shape)
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")
        image.save(folder / f"photo{n:05d}.jpg", quality=85)


def write_looks(digits: np.ndarray, folder: Path, rng: np.random.Generator) -> None:
    """Each digit in the next of ``LOOKS``, in ``folder``."""
    looks = list(LOOKS.values())
    for n, digit in enumerate(digits):
        looks[n % len(looks)](digit, rng, folder / f"digit{n:05d}")


# Runs argv[1:] and prints its wall, user and system seconds and peak memory (kB) as one
# JSON line on stderr. A child's peak memory starts from the process it was forked from, so
# the command is forked from this small launcher, not from the benchmark holding the data.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
print(json.dumps([os.waitstatus_to_exitcode(status), wall, usage.ru_utime, usage.ru_stime,
                  usage.ru_maxrss]), file=sys.stderr)
"""


def timed(command: list[str]) -> dict[str, float]:
    """Run ``command``: its wall and CPU seconds (its own) and its peak memory in MB."""
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True, check=False
    )
    last = (result.stderr.strip().splitlines() or [""])[-1]
    code, wall, user, system, peak_kb = json.loads(last) if last.startswith("[") else [1] * 5
    if code != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr}")
    return {"wall_s": wall, "user_s": user, "system_s": system, "peak_mb": peak_kb / 1024}


def main(
    model_path: Annotated[Path, typer.Option("--model", help="The trained model.")] = Path(
        "models/model.npz"
    ),
    files: Annotated[int, typer.Option(min=1, max=10_000, help="Files per folder.")] = 2000,
    repeats: Annotated[int, typer.Option(min=1, help="Runs per folder (median).")] = 3,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the MNIST test .gz files. Default: $MNIST_MIRROR."),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/predict_speed.json"
    ),
    seed: int = 0,
) -> None:
    command = shlex.join(["python", *sys.argv])
    print(command)
    folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
    if not (folder / IDX_FILES.test_images).is_file():
        raise typer.BadParameter(f"{folder}: not a folder with the MNIST test .gz files")
    if not model_path.is_file():
        raise typer.BadParameter(f"{model_path}: no model file there (dvc repro writes one)")
    digits = read_idx(folder / IDX_FILES.test_images)[:files]
    kinds = {"photos": write_photos, "looks": write_looks}
    report: dict[str, Any] = {
        **run_description(command),
        "files": len(digits),
        "repeats": repeats,
        "kinds": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for kind, write in kinds.items():
            target = Path(tmp) / kind
            target.mkdir()
            write(digits, target, np.random.default_rng(seed))
            predict = [sys.executable, "-m", "stages.predict", str(target), "--json"]
            runs = [timed([*predict, "--model", str(model_path)]) for _ in range(repeats)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            cpu = median["user_s"] + median["system_s"]
            median["pictures_per_s_wall"] = len(digits) / median["wall_s"]
            median["pictures_per_cpu_s"] = len(digits) / cpu
            report["kinds"][kind] = median
            print(
                f"{kind}: {median['pictures_per_s_wall']:.0f} pictures/s wall, "
                f"{median['pictures_per_cpu_s']:.0f} per CPU second (user "
                f"{median['user_s']:.1f} s, system {median['system_s']:.1f} s), "
                f"peak {median['peak_mb']:.0f} MB",
                flush=True,
            )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
