"""Build the page template that lets ``dvc plots show`` / ``dvc plots diff`` draw offline.

DVC's default page loads vega, vega-lite and vega-embed from a CDN. ``.dvc/config`` points
``plots.html_template`` at ``.dvc/plots/offline.html`` instead, which this script writes from
``.dvc/plots/offline.html.in`` with the three libraries inlined: vl-convert-python's
``javascript_bundle()`` packs them into one classic script that defines ``window.vegaEmbed``,
as the plot divs DVC writes expect. Inline, the page needs neither a network nor a file beside
it, wherever ``-o`` puts it. ``make setup`` runs this; the output is git-ignored.

    python tools/offline_plots.py [--source PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / ".dvc" / "plots" / "offline.html.in"
OUTPUT = REPO / ".dvc" / "plots" / "offline.html"
MARKER = "/*@VEGA_BUNDLE@*/"
# What DVC replaces in the template (dvc_render.html.HTML); the bundle must hold none of them.
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
# DVC's plot templates are Vega-Lite 5 specs: bundle the newest 5.x that vl-convert carries.
VEGA_LITE_MAJOR = "5"


class PageError(Exception):
    """The template or the bundle cannot make a valid page."""


def newest_vega_lite(available: list[str], major: str = VEGA_LITE_MAJOR) -> str:
    """The highest ``major.minor`` version in ``available`` (e.g. ``['5.8', '5.21', '6.1']``)."""
    matching = [v for v in available if v.split(".")[0] == major]
    if not matching:
        raise PageError(f"vl-convert-python carries no Vega-Lite {major}.x (it has {available})")
    return max(matching, key=lambda v: tuple(int(part) for part in v.split(".")))


def vega_bundle() -> tuple[str, str]:
    """The inline script (vega, vega-lite, vega-embed as window globals) and a version line."""
    import vl_convert

    vl_version = newest_vega_lite(vl_convert.get_vegalite_versions())
    bundle = vl_convert.javascript_bundle(vl_version=vl_version)
    versions = (
        f"vega {vl_convert.get_vega_version()}, vega-lite {vl_version}, vega-embed "
        f"{vl_convert.get_vega_embed_version()}, bundled by vl-convert-python"
    )
    return bundle, versions


def build_page(template: str, bundle: str, versions: str) -> str:
    """``template`` with ``bundle`` inlined at its marker, checked to survive DVC and HTML."""
    if template.count(MARKER) != 1:
        raise PageError(f"the template must hold {MARKER} exactly once")
    if "{plot_divs}" not in template:
        raise PageError("the template must hold {plot_divs}, where DVC puts the plots")
    for placeholder in DVC_PLACEHOLDERS:
        if placeholder in bundle:
            raise PageError(f"the bundle holds {placeholder}, which DVC would replace")
    # Inside <script>, only "</script" (and "<!--" before "<script") end or alter the element.
    if re.search(r"</script|<!--", bundle, re.IGNORECASE):
        raise PageError("the bundle holds '</script' or '<!--' and cannot be inlined as it is")
    return template.replace(MARKER, f"// {versions}\n{bundle}")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, never leaving half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Write the offline page template; one line on stderr and exit 1 on failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="template with the marker")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="page template to write")
    args = parser.parse_args(argv)
    try:
        template = args.source.read_text(encoding="utf-8")
        bundle, versions = vega_bundle()
        page = build_page(template, bundle, versions)
        write_atomically(args.output, page)
    except (ImportError, OSError, PageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({len(page) // 1024} KiB: {versions})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
