"""What predict prints: a table for people, or one JSON array for programs, written a
result at a time."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text any terminal can show: bytes that are not UTF-8 (kept as surrogates
    in Python's file names) become ``\\xNN``, and so do control characters."""
    raw = os.fsencode(path)
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


@dataclass(frozen=True)
class Result:
    """One input's outcome: the ``top_k`` (class name, probability) pairs, best first,
    or an ``error`` (one line)."""

    file: str
    top_k: tuple[tuple[str, float], ...] = ()
    error: str | None = None

    def to_json(self) -> dict:
        """The object ``predict --json`` prints for this input."""
        return {"file": self.file, **self.answer()}

    def answer(self) -> dict:
        """``to_json`` without the file name: ``{"prediction", "confidence", "top_k"}``, or
        ``{"error"}`` (what the server answers for a picture)."""
        if self.error is not None:
            return {"error": self.error}
        name, probability = self.top_k[0]
        return {
            "prediction": name,
            "confidence": probability,
            "top_k": [{"class": c, "probability": p} for c, p in self.top_k],
        }


def top_k(probabilities: np.ndarray, names: Sequence[str], k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` most probable classes of one row ``(n_classes,)``, ties in class order."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return tuple((names[i], round(float(probabilities[i]), 6)) for i in order)


def write_json(results: Iterable[Result], out: TextIO) -> None:
    """Write one JSON array (strict JSON), one object per result, to ``out``, each object as
    it comes: the text ``json.dumps(..., indent=2)`` makes, without holding the results."""
    out.write("[")
    separator = "\n"
    for result in results:
        body = json.dumps(result.to_json(), indent=2, allow_nan=False)
        out.write(separator + textwrap.indent(body, "  "))
        separator = ",\n"
    out.write("]\n" if separator == "\n" else "\n]\n")


def write_table(
    results: Iterable[Result], k: int, files: Sequence[str], names: Sequence[str], out: TextIO
) -> bool:
    """Write an aligned text table of the predicted ``results`` (file, prediction,
    confidence, top-k) to ``out``, a row as each comes, the columns as wide as the longest
    of ``files`` and class ``names``. Class names are shown as file names are
    (``display_path``: a line break in one is ``\\n``, one row stays one line). Nothing when
    no result is a prediction; returns whether any row was written."""
    header = ("file", "prediction", "confidence", f"top-{k}")
    widths = (
        max([len(header[0]), *map(len, files)]),
        max([len(header[1]), *(len(display_path(name)) for name in names)]),
        len(header[2]),
    )

    def line(row: tuple[str, str, str, str]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2])]
        return "  ".join([*cells, row[3]]) + "\n"

    wrote = False
    for result in results:
        if result.error is not None:
            continue
        if not wrote:
            out.write(line(header))
            wrote = True
        name, probability = result.top_k[0]
        top = ", ".join(f"{display_path(c)} {p:.3f}" for c, p in result.top_k)
        out.write(line((result.file, display_path(name), f"{probability:.3f}", top)))
    return wrote
