"""How well a trained model reads users' files, through predict's reading and construction.

1. MNIST's first ``--digits`` test digits redrawn in each of ``user_looks.LOOKS`` (scaled
   up 2-4x, off-centre on a larger canvas, dark ink on white RGB, light grey noisy paper,
   JPEG, JPEG stored sideways with EXIF orientation 6, transparent PNG; and cropped tight
   to the ink so the digit touches the edges: enlarged 2-8x, binarized, transparent,
   JPEG, 8x8 and 12x12): how often the model predicts on the file what it predicts on
   the original 28x28 array (agreement), its accuracy, and how many files predict
   refused (``unread``: no ink found).
2. Digits 0-9 rendered from every DejaVu and Liberation font installed (``fc-list``),
   ``FONT_SIZE`` px at a random place on a ``PAGE`` page in four ink looks, or cropped
   tight to the ink in two, in five stroke widths (``STROKES``): accuracy with the
   construction, without its stroke-width step (``mnist_digit(picture, strokes=False)``),
   and with a plain resize of the whole picture (grey, ink made bright) to 28x28 instead.

Files are written to a temporary folder and read back with ``read_image``; a file the
construction refuses (no ink found) counts as a wrong prediction, and as unread. Seeded:
the same model, options and machine give the same numbers.

    python bench/predict_looks.py [--model models/model.npz] [--digits 1000]
        [--json bench/predict_looks.json] [--mnist-dir DIR] [--no-fonts]
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from results import run_description
from support.user_looks import (
    LOOKS,
    Look,
    dark_on_white,
    find_fonts,
    grey_noisy,
    jpeg_photo,
    light_on_black,
    transparent,
)
from threadpoolctl import threadpool_limits

from nnlib.model import Model
from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES
from stages.images.constructions import construction_for, normalize
from stages.images.errors import ImageError
from stages.images.mnist import mnist_digit
from stages.images.polarity import ink_is_dark
from stages.images.reading import Picture, flatten_transparency, luma, read_image

FONT_SIZE = 160
#: (width, height) of the page a font digit is drawn on
PAGE = (360, 300)
#: row label -> stroke change in pixels: -n erodes the glyph with an (n+1)x(n+1) square
#: (Pillow's MinFilter: strokes n px thinner), +n draws an n px outline around it (Pillow's
#: text stroke: strokes 2n px bolder)
STROKES = {
    "thin (eroded by 8 px)": -8,
    "medium (eroded by 4 px)": -4,
    "as drawn": 0,
    "bold (+4 px outline)": 4,
    "heavy (+9 px outline)": 9,
}
FONT_LOOKS: dict[str, Look] = {
    "dark on white RGB": dark_on_white,
    "grey noisy paper": grey_noisy,
    "JPEG": jpeg_photo,
    "transparent PNG": transparent,
    "cropped tight, black on white RGB": dark_on_white,
    "cropped tight, white on black": light_on_black,
}
#: the font looks drawn from the glyph cropped to its ink, not placed on a page
TIGHT_FONT_LOOKS = {name for name in FONT_LOOKS if name.startswith("cropped tight")}
#: how a picture becomes the model's 28x28 image, in the font table's columns
Reading = Callable[[Picture], np.ndarray]
UNREAD = -1  # the prediction recorded for a file that could not be read


def load_test_digits(folder: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` MNIST test images ``(n, 28, 28)`` uint8 and labels ``(n,)``."""
    images = read_idx(folder / IDX_FILES.test_images)[:count]
    labels = read_idx(folder / IDX_FILES.test_labels)[:count].astype(np.intp)
    return images, labels


def predict(model: Model, images: list[np.ndarray | None]) -> np.ndarray:
    """Predicted class of each 28x28 uint8 image; ``UNREAD`` where the image is None."""
    out = np.full(len(images), UNREAD, dtype=np.intp)
    read = [i for i, image in enumerate(images) if image is not None]
    if read:
        x = normalize(np.stack([images[i] for i in read]), model.metadata["normalization"])
        out[read] = model.predict(x).argmax(axis=1)
    return out


def attempt(reading: Reading, picture: Picture) -> np.ndarray | None:
    """``reading(picture)``, or None when the picture cannot be read that way."""
    try:
        return reading(picture)
    except ImageError:
        return None


def plain_resize(picture: Picture) -> np.ndarray:
    """The whole picture in grey, ink made bright, resized to 28x28 (area average), uint8."""
    grey = luma(flatten_transparency(picture.rgb, picture.alpha))
    if ink_is_dark(grey):
        grey = 255 - grey
    small = Image.fromarray(grey.astype(np.float32)).resize((28, 28), Image.Resampling.BOX)
    return np.clip(np.rint(np.asarray(small)), 0, 255).astype(np.uint8)


def mnist_table(
    model: Model, images: np.ndarray, labels: np.ndarray, seed: int, folder: Path
) -> dict[str, Any]:
    """Agreement with the original arrays' predictions and accuracy, per look."""
    construct = construction_for(model.metadata["dataset"])
    original = predict(model, list(images))
    looks = {}
    for index, (name, look) in enumerate(LOOKS.items()):
        rng = np.random.default_rng([seed, 1, index])
        seen = [attempt(construct, read_image(look(d, rng, folder / "digit"))) for d in images]
        got = predict(model, seen)
        looks[name] = {
            "agreement": float(np.mean(got == original)),
            "accuracy": float(np.mean(got == labels)),
            "unread": int(np.sum(got == UNREAD)),
        }
        print(f"  {name}: agreement {looks[name]['agreement']:.3f}", flush=True)
    return {
        "digits": len(images),
        "original_accuracy": float(np.mean(original == labels)),
        "looks": looks,
    }


def glyph(font: ImageFont.FreeTypeFont, text: str, stroke: int) -> np.ndarray:
    """Ink coverage ``(rows, cols)`` of ``text`` in ``font``, cropped to the ink, its strokes
    changed by ``stroke`` pixels (``STROKES``)."""
    outline = max(stroke, 0)
    left, top, right, bottom = font.getbbox(text, stroke_width=outline)
    margin = 2
    canvas = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(canvas).text(
        (margin - left, margin - top),
        text,
        font=font,
        fill=255,
        stroke_width=outline,
        stroke_fill=255,
    )
    if stroke < 0:
        canvas = canvas.filter(ImageFilter.MinFilter(1 - stroke))
    ink = np.asarray(canvas, dtype=np.float32) / 255
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return np.zeros((1, 1), dtype=np.float32)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def on_page(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``ink`` placed at a random place on a blank ``PAGE`` ``(height, width)``."""
    width, height = PAGE
    page = np.zeros((height, width), dtype=np.float32)
    rows, cols = min(ink.shape[0], height), min(ink.shape[1], width)
    top, left = rng.integers(0, height - rows + 1), rng.integers(0, width - cols + 1)
    page[top : top + rows, left : left + cols] = ink[:rows, :cols]
    return page


def font_table(model: Model, fonts: list[Path], seed: int, folder: Path) -> dict[str, Any]:
    """Accuracy per stroke width and look, with each of the three readings."""
    construct = construction_for(model.metadata["dataset"])
    readings: dict[str, Reading] = {
        "construction": construct,
        "without_strokes_step": lambda picture: mnist_digit(picture, strokes=False),
        "plain_resize": plain_resize,
    }
    loaded = [ImageFont.truetype(str(path), FONT_SIZE) for path in fonts]
    labels = np.tile(np.arange(10), len(fonts))
    rng = np.random.default_rng([seed, 2])
    rows = {}
    for row, stroke in STROKES.items():
        glyphs = [glyph(font, str(d), stroke) for font in loaded for d in range(10)]
        pages = [on_page(ink, rng) for ink in glyphs]
        cells = {}
        for name, look in FONT_LOOKS.items():
            seen: dict[str, list[np.ndarray | None]] = {key: [] for key in readings}
            for page in glyphs if name in TIGHT_FONT_LOOKS else pages:
                picture = read_image(look(page, rng, folder / "digit"))
                for key, reading in readings.items():
                    seen[key].append(attempt(reading, picture))
            got = {key: predict(model, images) for key, images in seen.items()}
            cells[name] = {key: float(np.mean(p == labels)) for key, p in got.items()}
            cells[name]["unread"] = int(np.sum(got["construction"] == UNREAD))
        rows[row] = {"stroke_px": stroke, "looks": cells}
        print(f"  {row}: done", flush=True)
    return {
        "fonts": [path.name for path in fonts],
        "digits_per_cell": len(labels),
        "font_size": FONT_SIZE,
        "page": list(PAGE),
        "strokes": rows,
    }


def spread(values: list[float]) -> str:
    """``0.62-0.63``, or ``0.88`` when the values agree to two decimals."""
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return low if low == high else f"{low}-{high}"


def print_tables(mnist: dict[str, Any], fonts: dict[str, Any] | None) -> None:
    """Both tables in Markdown."""
    print(f"\nMNIST's first {mnist['digits']} test digits, redrawn:\n")
    print("| look | same prediction as on the 28x28 array | accuracy | refused |")
    print("|---|---|---|---|")
    print(f"| original 28x28 arrays | | {mnist['original_accuracy']:.3f} | |")
    for name, cell in mnist["looks"].items():
        print(f"| {name} | {cell['agreement']:.3f} | {cell['accuracy']:.3f} | {cell['unread']} |")
    if fonts is None:
        return
    print(
        f"\nDigits 0-9 in {len(fonts['fonts'])} fonts ({fonts['digits_per_cell']} digits a "
        "cell), accuracy; the last two columns range over the looks:\n"
    )
    print(f"| strokes | {' | '.join(FONT_LOOKS)} | without the strokes step | plain resize |")
    print("|---" * (len(FONT_LOOKS) + 3) + "|")
    for row, entry in fonts["strokes"].items():
        cells = entry["looks"]
        with_construction = [f"{cells[name]['construction']:.3f}" for name in FONT_LOOKS]
        without = spread([cell["without_strokes_step"] for cell in cells.values()])
        plain = spread([cell["plain_resize"] for cell in cells.values()])
        print(f"| {row} | {' | '.join(with_construction)} | {without} | {plain} |")
    unread = sum(c["unread"] for e in fonts["strokes"].values() for c in e["looks"].values())
    print(f"\n{unread} font images refused by the construction (no ink found; counted as wrong)")


def main(
    model_path: Annotated[
        Path, typer.Option("--model", help="The trained model (dvc repro writes it).")
    ] = Path("models/model.npz"),
    digits: Annotated[int, typer.Option(min=1, max=10_000, help="MNIST test digits.")] = 1000,
    mnist_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the MNIST test .gz files. Default: $MNIST_MIRROR."),
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/predict_looks.json"
    ),
    fonts: Annotated[bool, typer.Option(help="Measure the font digits too.")] = True,
    seed: int = 0,
) -> None:
    command = shlex.join(["python", *sys.argv])
    print(command)
    folder = mnist_dir or Path(os.environ.get("MNIST_MIRROR", ""))
    if not all(
        (folder / name).is_file() for name in (IDX_FILES.test_images, IDX_FILES.test_labels)
    ):
        raise typer.BadParameter(f"{folder}: not a folder with the MNIST test .gz files")
    if not model_path.is_file():
        raise typer.BadParameter(f"{model_path}: no model file there (dvc repro writes one)")
    model = Model.load(model_path)
    if model.metadata["dataset"] != "mnist":
        raise typer.BadParameter(
            f"{model_path}: a {model.metadata['dataset']} model, not an MNIST one"
        )
    images, labels = load_test_digits(folder, digits)
    font_files = find_fonts() if fonts else []
    if fonts and not font_files:
        print("no DejaVu or Liberation fonts installed (fc-list): the font table is skipped")

    seconds = {}
    with threadpool_limits(limits=1, user_api="blas"), tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        print(f"MNIST test digits, {len(LOOKS)} looks:", flush=True)
        mnist = mnist_table(model, images, labels, seed, Path(tmp))
        seconds["mnist"] = time.perf_counter() - started
        font_results = None
        if font_files:
            started = time.perf_counter()
            print(f"{len(font_files)} fonts, {len(STROKES)} stroke widths:", flush=True)
            font_results = font_table(model, font_files, seed, Path(tmp))
            seconds["fonts"] = time.perf_counter() - started

    print_tables(mnist, font_results)
    print("\n" + ", ".join(f"{name} table {s:.0f} s" for name, s in seconds.items()))
    report = {
        **run_description(command),
        "model": {
            "path": str(model_path),
            "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        },
        "seed": seed,
        "mnist_test_digits": mnist,
        "font_digits": font_results,
        "seconds": seconds,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}\n{command}")


if __name__ == "__main__":
    typer.run(main)
