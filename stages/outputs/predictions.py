"""What predict prints: a table for people, or one JSON array for programs."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

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
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        name, probability = self.top_k[0]
        return {
            "file": self.file,
            "prediction": name,
            "confidence": probability,
            "top_k": [{"class": c, "probability": p} for c, p in self.top_k],
        }


def top_k(probabilities: np.ndarray, names: Sequence[str], k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` most probable classes of one row ``(n_classes,)``, ties in class order."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return tuple((names[i], round(float(probabilities[i]), 6)) for i in order)


def to_json(results: Sequence[Result]) -> str:
    """One JSON array (strict JSON), one object per input."""
    return json.dumps([r.to_json() for r in results], indent=2, allow_nan=False)


def to_table(results: Sequence[Result], k: int) -> str:
    """An aligned text table of the predicted inputs: file, prediction, confidence, top-k."""
    header = ("file", "prediction", "confidence", f"top-{k}")
    rows = [
        (
            r.file,
            r.top_k[0][0],
            f"{r.top_k[0][1]:.3f}",
            ", ".join(f"{name} {p:.3f}" for name, p in r.top_k),
        )
        for r in results
        if r.error is None
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(3)]
    lines = []
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2])]
        lines.append("  ".join([*cells, row[3]]))
    return "\n".join(lines)
