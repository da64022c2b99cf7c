"""tools/offline_plots.py: the page template with Vega inlined, as ``make setup`` builds it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dvc_render import render_html
from dvc_render.vega import VegaRenderer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import offline_plots  # noqa: E402

TEMPLATE = (
    "<html><head><script>\n/*@VEGA_BUNDLE@*/\n</script></head><body>{plot_divs}</body></html>"
)


def test_newest_vega_lite_picks_the_highest_5x() -> None:
    versions = ["5.8", "5.14", "5.21", "5.9", "6.4"]
    assert offline_plots.newest_vega_lite(versions) == "5.21"
    with pytest.raises(offline_plots.PageError, match=r"no Vega-Lite 5\.x"):
        offline_plots.newest_vega_lite(["6.1", "6.4"])


def test_build_page_inlines_the_bundle_at_the_marker() -> None:
    page = offline_plots.build_page(TEMPLATE, "window.vegaEmbed = 1;", "vega 6")
    assert "// vega 6\nwindow.vegaEmbed = 1;" in page
    assert offline_plots.MARKER not in page


@pytest.mark.parametrize(
    ("template", "bundle", "message"),
    [
        ("<body>{plot_divs}</body>", "x", "exactly once"),
        (TEMPLATE.replace("{plot_divs}", ""), "x", "plot_divs"),
        (TEMPLATE, "s = '</script>';", "cannot be inlined"),
        (TEMPLATE, "s = '<!--';", "cannot be inlined"),
        (TEMPLATE, "s = '{scripts}';", "DVC would replace"),
    ],
)
def test_build_page_refuses_what_would_break_the_page(
    template: str, bundle: str, message: str
) -> None:
    with pytest.raises(offline_plots.PageError, match=message):
        offline_plots.build_page(template, bundle, "v")


@pytest.mark.slow
def test_the_built_page_is_a_dvc_template_without_cdn_scripts(tmp_path: Path) -> None:
    """The real template and bundle; DVC fills the page in and adds no CDN script."""
    output = tmp_path / "offline.html"
    assert offline_plots.main(["--output", str(output)]) == 0
    assert 500_000 < output.stat().st_size < 5_000_000

    renderer = VegaRenderer([{"x": 1, "y": 2}], "a plot", x="x", y="y")
    page = tmp_path / "plots" / "index.html"
    render_html([renderer], page, html_template=output)
    html = page.read_text()
    assert "vegaEmbed('#a_plot', spec);" in html
    assert "window.vegaEmbed=" in html
    assert "<script src" not in html
    assert "cdn.jsdelivr.net" not in html


def test_main_reports_a_missing_template_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.html.in"
    assert offline_plots.main(["--source", str(missing), "--output", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert str(missing) in err
    assert err.count("\n") == 1
    assert not (tmp_path / "p").exists()
