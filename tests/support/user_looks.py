"""Images as users' files look: ink drawn as scans, photos and PNGs, and MNIST digits
redrawn that way (``LOOKS``), the example folder of such files, and the font files digits
are rendered from. Shared by the tests and the benchmarks (bench/ puts tests/ on its path).

An ink look draws an ink coverage ``(rows, cols)`` in [0, 1] (0 = paper, 1 = solid ink)
into a file ``stem`` + the look's suffix and returns its path; a digit look does the same
from a 28x28 uint8 MNIST digit (ink 255). Every look draws its randomness from ``rng``.

The first looks leave a wide margin around the digit; the ones whose names start with
"cropped tight" crop it to the ink's bounding box, as users crop their files, so the digit
fills the picture and touches its edges: enlarged 2-8x (smoothly, so blurry), binarized
to two levels, or shrunk to a tiny square, on a flat background or a photo's.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES

#: ``(ink coverage or digit, rng, stem) -> path of the file written``
Look = Callable[[np.ndarray, np.random.Generator, Path], Path]


def enlarge(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 28x28 uint8 digit (ink 255) scaled up 2-4x, smoothly, as a greyscale image."""
    size = round(28 * rng.uniform(2.0, 4.0))
    return Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)


def off_centre(image: Image.Image, rng: np.random.Generator, fill: int = 0) -> Image.Image:
    """``image`` pasted at a random place on a canvas 1.4-2.6 times its size."""
    width, height = image.size
    canvas_w = int(width * rng.uniform(1.6, 2.6))
    canvas_h = int(height * rng.uniform(1.4, 2.4))
    canvas = Image.new(image.mode, (canvas_w, canvas_h), fill)
    x, y = rng.integers(0, canvas_w - width + 1), rng.integers(0, canvas_h - height + 1)
    canvas.paste(image, (int(x), int(y)))
    return canvas


def coverage(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] ``(rows, cols)`` of ``digit`` enlarged and moved off-centre."""
    return np.asarray(off_centre(enlarge(digit, rng), rng), dtype=np.float64) / 255


def ink_box(ink: np.ndarray) -> np.ndarray:
    """``ink`` ``(rows, cols)`` cropped to the bounding box of its non-zero pixels."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def tight_coverage(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] of ``digit`` cropped to its ink and enlarged 2-8x, smoothly
    (bicubic: blurry, as a small picture upscaled), so that it touches every edge."""
    ink = ink_box(digit)
    factor = rng.uniform(2.0, 8.0)
    size = (round(ink.shape[1] * factor), round(ink.shape[0] * factor))
    enlarged = Image.fromarray(ink).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(enlarged, dtype=np.float64) / 255


def tiny_coverage(digit: np.ndarray, size: int) -> np.ndarray:
    """Ink coverage in [0, 1] ``(size, size)`` of ``digit`` cropped to its ink, centred in a
    square and shrunk to ``size`` pixels a side (area average): it touches two edges."""
    ink = ink_box(digit)
    side = max(ink.shape)
    square = np.zeros((side, side), dtype=np.uint8)
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    square[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    small = Image.fromarray(square).resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255


def _rgb(grey: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")


# --- ink looks: a coverage array drawn into a file


def dark_on_white(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Black ink on white paper, an RGB PNG."""
    path = stem.with_suffix(".png")
    _rgb(255 - 255 * ink).save(path)
    return path


def grey_noisy(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Light grey, slightly yellow paper lit unevenly, ink darkening it, sensor noise."""
    rows, cols = np.mgrid[0 : ink.shape[0], 0 : ink.shape[1]]
    paper = 195 + 30 * cols / ink.shape[1] - 20 * rows / ink.shape[0]
    grey = paper * (1 - 0.8 * ink) + rng.normal(0, 6, ink.shape)
    rgb = np.stack([grey, grey * 0.98, grey * 0.93], axis=-1)
    path = stem.with_suffix(".png")
    Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8)).save(path, compress_level=1)
    return path


def jpeg_photo(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Dark grey ink on light grey paper, JPEG quality 75."""
    path = stem.with_suffix(".jpg")
    _rgb(232 - 200 * ink).save(path, quality=75)
    return path


def jpeg_sideways(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """A phone photo held sideways: pixels stored rotated, EXIF orientation 6 to undo it."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = stem.with_suffix(".jpg")
    _rgb(232 - 200 * ink).transpose(Image.Transpose.ROTATE_90).save(path, quality=75, exif=exif)
    return path


def transparent(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Dark blue ink whose opacity is the ink coverage, on a transparent canvas."""
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = (20, 20, 90)
    rgba[..., 3] = np.rint(ink * 255)
    path = stem.with_suffix(".png")
    Image.fromarray(rgba).save(path)
    return path


def light_on_black(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """White ink on a black, perfectly flat background (MNIST's own look), a grey PNG."""
    path = stem.with_suffix(".png")
    Image.fromarray(np.rint(255 * ink).astype(np.uint8)).save(path)
    return path


def bilevel_light_on_black(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Ink thresholded at half coverage: white on black, a 1-bit PNG."""
    path = stem.with_suffix(".png")
    Image.fromarray(ink >= 0.5).save(path)
    return path


def bilevel_dark_on_white(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Ink thresholded at half coverage: black on white, a two-colour palette PNG."""
    path = stem.with_suffix(".png")
    image = Image.fromarray((ink >= 0.5).astype(np.uint8), mode="P")
    image.putpalette([255, 255, 255, 0, 0, 0])
    image.save(path)
    return path


def dark_on_white_grey(ink: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    """Black ink on white, a perfectly flat background, a grey PNG."""
    path = stem.with_suffix(".png")
    Image.fromarray(np.rint(255 - 255 * ink).astype(np.uint8)).save(path)
    return path


# --- digit looks: an MNIST digit redrawn as users' files look


def scaled(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    path = stem.with_suffix(".png")
    enlarge(digit, rng).save(path)
    return path


def moved_off_centre(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
    path = stem.with_suffix(".png")
    off_centre(enlarge(digit, rng), rng).save(path)
    return path


def redrawn(look: Look) -> Look:
    """The digit look that draws the digit's ``coverage`` with the ink look ``look``."""

    def draw(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
        return look(coverage(digit, rng), rng, stem)

    draw.__doc__ = look.__doc__
    return draw


def cropped_tight(look: Look) -> Look:
    """The digit look that draws the digit's ``tight_coverage`` with the ink look ``look``."""

    def draw(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
        return look(tight_coverage(digit, rng), rng, stem)

    draw.__doc__ = f"Cropped to the ink and enlarged 2-8x. {look.__doc__}"
    return draw


def tiny(size: int, look: Look) -> Look:
    """The digit look that draws the digit's ``tiny_coverage`` with the ink look ``look``."""

    def draw(digit: np.ndarray, rng: np.random.Generator, stem: Path) -> Path:
        return look(tiny_coverage(digit, size), rng, stem)

    draw.__doc__ = f"Cropped to the ink, {size}x{size} pixels. {look.__doc__}"
    return draw


LOOKS: dict[str, Look] = {
    "scaled 2-4x": scaled,
    "off-centre on a larger canvas": moved_off_centre,
    "dark ink on white RGB": redrawn(dark_on_white),
    "light grey noisy paper": redrawn(grey_noisy),
    "JPEG": redrawn(jpeg_photo),
    "JPEG turned by EXIF": redrawn(jpeg_sideways),
    "transparent PNG": redrawn(transparent),
    "cropped tight 2-8x, white on black": cropped_tight(light_on_black),
    "cropped tight 2-8x, black on white RGB": cropped_tight(dark_on_white),
    "cropped tight, binarized white on black (1-bit)": cropped_tight(bilevel_light_on_black),
    "cropped tight, binarized black on white (palette)": cropped_tight(bilevel_dark_on_white),
    "cropped tight, transparent PNG": cropped_tight(transparent),
    "cropped tight, JPEG": cropped_tight(jpeg_photo),
    "cropped tight 8x8, white on black": tiny(8, light_on_black),
    "cropped tight 8x8, black on white": tiny(8, dark_on_white_grey),
    "cropped tight 12x12, white on black": tiny(12, light_on_black),
    "cropped tight 12x12, black on white": tiny(12, dark_on_white_grey),
}


#: the font families whose files the font digits are rendered from
FONT_FAMILIES = ("DejaVu", "Liberation")
FONT_FOLDER = Path("/usr/share/fonts")
#: the sub-folder of each digit in the example folder
DIGIT_NAMES = tuple(str(digit) for digit in range(10))


def find_fonts() -> list[Path]:
    """The DejaVu and Liberation font files installed (``fc-list``, else a glob), one per
    file name, sorted."""
    if shutil.which("fc-list"):
        listing = subprocess.run(
            ["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=False
        ).stdout
        files = {Path(line) for line in listing.splitlines() if line}
    else:
        files = set(FONT_FOLDER.rglob("*"))
    by_name = {
        path.name: path
        for path in sorted(files)
        if path.name.startswith(FONT_FAMILIES) and path.suffix.lower() in (".ttf", ".otf")
    }
    return [by_name[name] for name in sorted(by_name)]


def build_example_folder(
    mnist_dir: Path,
    folder: Path,
    count: int,
    seed: int = 0,
    names: Sequence[str] = DIGIT_NAMES,
    start: int = 0,
) -> list[Path]:
    """Write MNIST test digits ``start`` to ``start + count`` into ``folder/<name>/<index>.<ext>``
    (``names[d]`` is digit d's sub-folder), digit ``i`` in look ``i mod 7`` drawn with
    ``default_rng([seed, i])``; return the files written, in order."""
    images = read_idx(mnist_dir / IDX_FILES.test_images)[start : start + count]
    labels = read_idx(mnist_dir / IDX_FILES.test_labels)[start : start + count]
    looks = list(LOOKS.values())
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    files = []
    for index, (digit, label) in enumerate(zip(images, labels, strict=True), start=start):
        look = looks[index % len(looks)]
        rng = np.random.default_rng([seed, index])
        files.append(look(digit, rng, folder / names[label] / f"{index:05d}"))
    return files
