"""The plots of ``dvc plots diff --json``, as PNG files, offline.

DVC fills its Vega-Lite templates with the plot data of every revision and hands back the
specs; vl-convert-python renders them with the Vega-Lite 5 that DVC's templates are written
for, with no browser, no Node and no network: a spec that names anything to fetch (a data
``url``, an image mark's ``url``) is refused before rendering, and vl-convert is told to allow
no base URL at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from offline_plots import newest_vega_lite


class ChartError(Exception):
    """A plot cannot be rendered offline; the message names it."""


def external_references(spec: Any, where: str = "spec") -> Iterator[str]:
    """Where ``spec`` names something to fetch: the JSON paths of its ``url`` keys."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "url":
                yield f"{where}.url"
            else:
                yield from external_references(value, f"{where}.{key}")
    elif isinstance(spec, list):
        for index, value in enumerate(spec):
            yield from external_references(value, f"{where}[{index}]")


def render_png(name: str, spec: dict[str, Any]) -> bytes:
    """The chart of the Vega-Lite ``spec`` (data inline) as PNG bytes."""
    import vl_convert

    data = spec.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("values"), list):
        raise ChartError(f"plot {name!r}: the spec DVC gave holds no inline data")
    if fetched := list(external_references(spec)):
        raise ChartError(f"plot {name!r}: the spec would fetch {', '.join(fetched)}")
    version = newest_vega_lite(vl_convert.get_vegalite_versions())
    try:
        return vl_convert.vegalite_to_png(spec, vl_version=version, allowed_base_urls=[])
    except ValueError as error:
        raise ChartError(f"plot {name!r}: vl-convert cannot render it: {_reason(error)}") from error


def _reason(error: Exception) -> str:
    """vl-convert's message without its header line and JavaScript stack."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.endswith(":") and not line.startswith("at ")]
    return reasons[0] if reasons else str(error)


def file_stem(title: str, taken: set[str]) -> str:
    """A file name stem for a plot title ("Confusion matrix (test split)" ->
    "confusion-matrix-test-split"), unique among ``taken`` (which it joins)."""
    stem = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "plot"
    unique, number = stem, 2
    while unique in taken:
        unique, number = f"{stem}-{number}", number + 1
    taken.add(unique)
    return unique
