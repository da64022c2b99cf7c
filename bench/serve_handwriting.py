"""How well the server reads real handwriting by writers outside MNIST, and whether it answers
exactly as predict does: the 1,797 digits of scikit-learn's optdigits (43 writers) written as
scans (``tests/support/optdigits.py``), each posted to ``POST /predict`` of
``python -m stages.serve`` and read by ``python -m stages.predict --json``, both with
``models/model.npz``.

Written to ``bench/serve_handwriting.json``: the agreement of the two, the accuracy, per class
and the commonest confusions; and a control that separates the pictures' coarseness from the
writers' hands: MNIST's own test digits reduced as optdigits' were (a bitmap fitted into
32x32, ink counted in 4x4 blocks: 8x8 with 17 levels), then written and read the same way.
Nothing is tuned on these digits. About a minute.

    python bench/serve_handwriting.py [--model models/model.npz] [--json ...] [--mnist-dir DIR]
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image
from results import run_description
from support.optdigits import LEVELS, optdigits, scan, write_scans

from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES
from stages.reader.reader import Reader

BITMAP = 32  # optdigits' bitmaps, counted in 4x4 blocks
BLOCK = 4


def served_answers(model: Path, pictures: list[Path]) -> list[dict[str, Any]]:
    """Each picture's answer from ``POST /predict`` of a server started for them."""
    server = subprocess.Popen(
        [sys.executable, "-m", "stages.serve", "--port", "0", "--model", str(model)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[1]
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        answers = []
        for path in pictures:
            connection.request("POST", "/predict", body=path.read_bytes())
            answers.append(json.loads(connection.getresponse().read()))
        connection.close()
        return answers
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: how the server is stopped
        server.wait()


def predicted_answers(model: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """``python -m stages.predict FOLDER --json``: file name -> its object, the name aside."""
    result = subprocess.run(
        [sys.executable, "-m", "stages.predict", str(folder), "--model", str(model), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {Path(item.pop("file")).name: item for item in json.loads(result.stdout)}


def as_optdigit(digit: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit reduced as optdigits' digits were: thresholded to a bitmap,
    fitted (aspect kept, centred) into 32x32, its ink counted in 4x4 blocks: 8x8, 0-16."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    ink = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BITMAP / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    fitted = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR)) >= 128
    bitmap = np.zeros((BITMAP, BITMAP), dtype=np.int64)
    top, left = (BITMAP - fitted.shape[0]) // 2, (BITMAP - fitted.shape[1]) // 2
    bitmap[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    counts = bitmap.reshape(BITMAP // BLOCK, BLOCK, BITMAP // BLOCK, BLOCK).sum(axis=(1, 3))
    return counts.astype(np.float64) * (LEVELS / BLOCK**2)


def control(reader: Reader, mnist_dir: Path, n: int, folder: Path) -> dict[str, Any]:
    """MNIST's first ``n`` test digits: read as their arrays, and as optdigits-like scans."""
    images = read_idx(mnist_dir / IDX_FILES.test_images)[:n]
    labels = read_idx(mnist_dir / IDX_FILES.test_labels)[:n]
    folder.mkdir()
    as_scans, as_arrays = [], []
    for i, digit in enumerate(images):
        path = folder / f"mnist{i:04d}.png"
        scan(as_optdigit(digit)).save(path)
        as_scans.append(int(reader.class_names[int(np.argmax(reader.read(path)[1]))]))
        as_arrays.append(int(np.argmax(reader.classify(digit))))
    return {
        "digits": n,
        "accuracy_of_the_28x28_arrays": float(np.mean(np.array(as_arrays) == labels)),
        "accuracy_as_optdigits_scans": float(np.mean(np.array(as_scans) == labels)),
    }


def main(
    model_path: Annotated[Path, typer.Option("--model", help="The trained model.")] = Path(
        "models/model.npz"
    ),
    mnist_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the MNIST test .gz files. Default: $MNIST_MIRROR."),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/serve_handwriting.json"
    ),
) -> None:
    command = shlex.join(["python", *sys.argv])
    print(command)
    if not model_path.is_file():
        raise typer.BadParameter(f"{model_path}: no model file there (dvc repro writes one)")
    _, labels = optdigits()
    with tempfile.TemporaryDirectory() as tmp:
        scans = write_scans(Path(tmp) / "scans")
        pictures = [path for path, _ in scans]
        served = served_answers(model_path, pictures)
        printed = predicted_answers(model_path, Path(tmp) / "scans")
        same = sum(
            answer == printed[path.name] for path, answer in zip(pictures, served, strict=True)
        )
        predicted = np.array([int(answer["prediction"]) for answer in served])
        wrong = Counter((int(t), int(p)) for t, p in zip(labels, predicted, strict=True) if t != p)
        report: dict[str, Any] = {
            **run_description(command),
            "model": str(model_path),
            "model_md5": hashlib.md5(model_path.read_bytes()).hexdigest(),  # as dvc.lock has it
            "digits": len(pictures),
            "writers": 43,
            "same_answer_as_predict": same,
            "accuracy": float(np.mean(predicted == labels)),
            "per_class_accuracy": {
                str(k): float(np.mean(predicted[labels == k] == k)) for k in range(10)
            },
            "commonest_confusions": [
                {"true": t, "read": p, "count": c} for (t, p), c in wrong.most_common(6)
            ],
        }
        folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
        if (folder / IDX_FILES.test_images).is_file():
            reader = Reader.load(model_path)
            report["control"] = control(reader, folder, len(pictures), Path(tmp) / "mnist")
    print(
        f"{same} of {len(pictures)} answers equal to predict --json; accuracy "
        f"{report['accuracy']:.4f}; per class "
        + ", ".join(f"{k} {v:.2f}" for k, v in report["per_class_accuracy"].items())
    )
    if "control" in report:
        print(f"control, MNIST test digits: {report['control']}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
