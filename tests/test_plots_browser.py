"""``dvc plots show`` and ``dvc plots diff`` pages draw every chart in a browser with no network.

The real dvc writes the pages from a tiny project after real runs; Debian's Chromium opens them
headless, in a network namespace of its own when the machine allows one and always behind a
proxy that refuses everything (tests/support/headless_chromium.py). The page must draw each chart as
Vega SVG with the data it was given, load no script file, and request nothing but files.
The per-class plot file is checked against the confusion rows and the metrics.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.dvc_project import Project
from support.headless_chromium import Chromium, find_chromium, network_namespace
from support.tiny_pipeline import N_CLASSES, N_TEST, tiny_project

from stages.outputs.history import METRICS

pytestmark = [pytest.mark.pipeline, pytest.mark.browser]

# Each chart's title (dvc.yaml's, else its file) -> the div id DVC gives it (from its file).
LIVE_CHARTS = {
    f"dvclive/plots/metrics/{name}.tsv": f"dvclive_plots_metrics_{name}_tsv" for name in METRICS
}
CHARTS = {
    **LIVE_CHARTS,
    "Confusion matrix (test split)": "reports_confusion_csv",
    "Per-class accuracy": "reports_per_class_accuracy_csv",
}
IMAGE_DIV = "reports_misclassified_png"

# What each of DVC's plot divs holds once the page has run: its SVG's size and titles, the
# lines drawn, the bars, and the numbers written in cells; the images and script files.
SUMMARY_JS = r"""
(() => {
  const charts = {};
  for (const div of document.querySelectorAll("body > div[id]")) {
    const svg = div.querySelector("svg.marks");
    if (!svg) { charts[div.id] = null; continue; }
    const box = svg.getBoundingClientRect();
    const texts = (selector) => [...svg.querySelectorAll(selector)].map((t) => t.textContent);
    charts[div.id] = {
      width: box.width,
      height: box.height,
      titles: texts(".role-title-text text"),
      lines: [...svg.querySelectorAll("g.mark-line.role-mark path")]
        .filter((p) => (p.getAttribute("d") || "").includes("L")).length,
      bars: svg.querySelectorAll("g.mark-rect.role-mark.marks path").length,
      cell_texts: texts("g.mark-text.role-mark text"),
    };
  }
  return {
    charts,
    images: [...document.images].map((i) => ({src: i.src, width: i.naturalWidth})),
    script_files: [...document.scripts].map((s) => s.src).filter(Boolean),
  };
})()
"""
ALL_DRAWN_JS = (
    f"document.querySelectorAll('body > div[id] svg.marks').length >= {len(CHARTS)}"
    " && [...document.images].every((i) => i.complete)"
)


def is_local(url: str) -> bool:
    """A request that stays on this machine: a file, inline data, or 127.0.0.1."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == "127.0.0.1"


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = find_chromium()
    if executable is None:
        message = "Debian's chromium is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return executable


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The tiny project after two runs: the first committed, the second (3 epochs) not."""
    project = tiny_project(tmp_path_factory.mktemp("plots"))
    project.dvc("repro")
    project.commit("first run")
    project.dvc("plots", "show")  # into dvc_plots/, DVC's default
    project.set_param("train", "epochs", 3)
    project.dvc("repro")
    project.dvc("plots", "diff", "HEAD", "-o", "diff_plots")  # HEAD against the workspace
    return project


@pytest.fixture(scope="module")
def pages(project: Project) -> dict[str, tuple[Path, int]]:
    """The pages ``dvc plots show`` and ``dvc plots diff`` wrote, and their revision counts."""
    return {
        "show": (project.root / "dvc_plots" / "index.html", 1),
        "diff": (project.root / "diff_plots" / "index.html", 2),
    }


def open_offline(executable: str, page: Path, profile: Path) -> tuple[dict[str, Any], Any]:
    """Open ``page`` in the offline browser; its summary once drawn (or after 20 s)."""
    with Chromium(executable, profile, network_namespace()) as browser:
        browser.visit(page.as_uri())
        browser.wait_for(ALL_DRAWN_JS, timeout=20)
        summary = browser.evaluate(SUMMARY_JS)
        return summary, browser.recorded()


@pytest.mark.parametrize("command", ["show", "diff"])
def test_plots_page_draws_every_chart_offline(
    chromium: str, pages: dict[str, tuple[Path, int]], command: str, tmp_path: Path
) -> None:
    page, revisions = pages[command]
    summary, visit = open_offline(chromium, page, tmp_path / "profile")

    offsite = [url for url in visit.requests if not is_local(url)]
    assert offsite == [], f"requests that would leave the machine: {offsite}"
    assert page.as_uri() in visit.requests
    assert summary["script_files"] == []  # Vega is inline: no script file, local or not
    assert visit.exceptions == []
    assert visit.console_errors == []

    charts = summary["charts"]
    assert set(charts) == {*CHARTS.values(), IMAGE_DIV}
    for title, div_id in CHARTS.items():
        chart = charts[div_id]
        assert chart is not None, f"{title}: nothing drawn"
        assert min(chart["width"], chart["height"]) > 100, title
        assert title in chart["titles"]
    # One curve per revision through every epoch, in each of DVCLive's charts.
    for title, div_id in LIVE_CHARTS.items():
        assert charts[div_id]["lines"] >= revisions, title
    # Every cell shows its count: the counts add up to the test set, once per revision.
    cells = charts[CHARTS["Confusion matrix (test split)"]]["cell_texts"]
    assert all(re.fullmatch(r"\d+", text) for text in cells), cells
    assert sum(int(text) for text in cells) == N_TEST * revisions
    assert len(cells) >= N_CLASSES * revisions  # a row per true class (columns: predicted)
    # One bar per class and split (test, train), per revision.
    assert charts[CHARTS["Per-class accuracy"]]["bars"] == N_CLASSES * 2 * revisions
    images = summary["images"]
    assert len(images) == revisions
    assert all(image["width"] > 0 for image in images)


def test_per_class_plot_file_holds_each_splits_recall(project: Project) -> None:
    """The bars' data: the test rows are the test split's recall as the confusion rows count
    it, and on these balanced splits each split's rows average to its accuracy."""
    with (project.root / "reports" / "per_class_accuracy.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["class"], row["split"]) for row in rows] == [
        (str(k), split) for k in range(N_CLASSES) for split in ("test", "train")
    ]
    with (project.root / "reports" / "confusion.csv").open() as handle:
        pairs = [(row["actual"], row["predicted"]) for row in csv.DictReader(handle)]
    for row in rows[::2]:
        of_class = [predicted for actual, predicted in pairs if actual == row["class"]]
        expected = of_class.count(row["class"]) / len(of_class)
        assert float(row["accuracy"]) == pytest.approx(expected)
    metrics = json.loads((project.root / "metrics.json").read_text())
    assert set(metrics) == {"test", "train"}
    for split in ("test", "train"):
        assert "per_class_accuracy" not in metrics[split]
        mean = sum(float(row["accuracy"]) for row in rows if row["split"] == split) / N_CLASSES
        assert mean == pytest.approx(metrics[split]["accuracy"], abs=1e-5)
