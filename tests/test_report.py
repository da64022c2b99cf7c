"""tools/report.py (``make report``): the report of a real change, read as a reviewer reads it.

A tiny project (tests/support/tiny_pipeline.py) as its own git + DVC repository: a commit with
no run yet, a first run (branch ``first-run``), then a commit that changes ``train.epochs``
and retrains. The report of the last commit against ``first-run`` and against the commit
with no run (a pipeline's first pull request) is checked row by row against the metrics files
in git, and every image as a PNG of its chart. The command runs in the temporary repository,
never in the checkout.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from support import REPO
from support.dvc_project import Project
from support.tiny_pipeline import tiny_project

from stages.outputs.history import METRICS

sys.path.insert(0, str(REPO / "tools"))

import report_charts
from report import chart_title

pytestmark = pytest.mark.pipeline

REPORT = REPO / "tools" / "report.py"
BASE = "first-run"
NO_RUN = "no-run"
IMAGE_PLOT = "reports/misclassified.png"
PRECISION = 5  # DVC's: digits after the decimal point in its tables
EMBED = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def chart_titles() -> list[str]:
    """The titles of the charts of dvc.yaml's stages: a plot's ``title``, else its file (one
    per DVCLive figure); the image plot is no chart."""
    titles = []
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        for entry in stage.get("plots", []):
            path, props = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            if path == "dvclive/plots":
                titles += [f"{path}/metrics/{name}.tsv" for name in METRICS]
            elif not path.endswith(".png"):
                titles.append(props.get("title", path))
    return titles


@dataclass
class History:
    project: Project
    metrics: dict[str, dict[str, float]]  # revision -> flat metric name -> value


def flat_metrics(text: str) -> dict[str, float]:
    """metrics.json's content as ``{"test.accuracy": 0.85, ...}``."""
    return {
        f"{split}.{name}": value
        for split, values in json.loads(text).items()
        for name, value in values.items()
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    project = tiny_project(tmp_path_factory.mktemp("report"))
    project.git("branch", NO_RUN)
    project.dvc("repro")
    project.commit("first run")
    project.git("branch", BASE)
    project.set_param("train", "epochs", 3)
    project.dvc("repro")
    project.commit("three epochs")
    metrics = {
        BASE: flat_metrics(project.git("show", f"{BASE}:metrics.json").stdout),
        "workspace": flat_metrics((project.root / "metrics.json").read_text()),
    }
    assert metrics[BASE] != metrics["workspace"]  # the change changed the results
    return History(project, metrics)


def run_report(project: Project, output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``make report``'s command, in the temporary project."""
    return project.run(sys.executable, str(REPORT), "--output", str(output), *args, check=False)


@dataclass
class Report:
    folder: Path
    text: str

    def section(self, heading: str) -> str:
        """The text under ``## heading``, up to the next such heading."""
        match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", self.text, re.M | re.S)
        assert match, f"no section {heading!r} in\n{self.text}"
        return match.group(1)

    def table(self, heading: str) -> list[dict[str, str]]:
        """The rows of the Markdown table in section ``heading``, by column name."""
        lines = [line for line in self.section(heading).splitlines() if line.startswith("|")]
        cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
        header, separator, *rows = cells
        assert all(set(cell) <= {"-", ":"} for cell in separator)
        return [dict(zip(header, row, strict=True)) for row in rows]

    def images(self) -> dict[str, str]:
        """Each image the report shows: file name -> its alt text."""
        return {name: alt for alt, name in EMBED.findall(self.text)}


@pytest.fixture(scope="module")
def report(history: History, tmp_path_factory: pytest.TempPathFactory) -> Report:
    folder = tmp_path_factory.mktemp("against-first-run") / "report"
    result = run_report(history.project, folder, "--base", BASE)
    assert result.returncode == 0, result.stderr
    return Report(folder, (folder / "report.md").read_text())


@pytest.fixture(scope="module")
def first_report(history: History, tmp_path_factory: pytest.TempPathFactory) -> Report:
    folder = tmp_path_factory.mktemp("against-no-run") / "report"
    result = run_report(history.project, folder, "--base", NO_RUN)
    assert result.returncode == 0, result.stderr
    return Report(folder, (folder / "report.md").read_text())


def as_number(cell: str) -> float:
    return float(cell)


def test_metrics_table_has_each_changed_metric_with_both_values_and_the_change(
    history: History, report: Report
) -> None:
    old, new = history.metrics[BASE], history.metrics["workspace"]
    rows = [row for row in report.table("Metrics") if row["Path"] == "metrics.json"]
    assert [row["Metric"] for row in rows] == sorted(k for k in new if new[k] != old[k])
    assert {row["Path"] for row in report.table("Metrics")} == {
        "metrics.json",
        "dvclive/metrics.json",
    }
    tolerance = 10**-PRECISION
    for row in rows:
        name = row["Metric"]
        assert as_number(row[BASE]) == pytest.approx(old[name], abs=tolerance)
        assert as_number(row["workspace"]) == pytest.approx(new[name], abs=tolerance)
        assert as_number(row["Change"]) == pytest.approx(new[name] - old[name], abs=2 * tolerance)


def test_params_table_has_the_changed_param_alone(report: Report) -> None:
    assert report.table("Params") == [
        {"Path": "params.yaml", "Param": "train.epochs", BASE: "2", "workspace": "3"}
    ]


def test_the_report_says_the_pipeline_is_up_to_date(report: Report) -> None:
    assert "The pipeline is up to date (`dvc status`)" in report.text
    assert "Warning" not in report.text
    assert "has no metrics yet" not in report.text


def png(path: Path) -> Image.Image:
    """``path`` as a decoded PNG image; AssertionError if it is anything else."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path.name
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # checks the chunks' CRCs
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()  # decodes every pixel: a truncated file fails here
    return image.convert("RGB")


def colours(image: Image.Image) -> int:
    return len(image.getcolors(maxcolors=image.width * image.height))


def dvc_charts(project: Project, *revisions: str) -> dict[str, dict[str, Any]]:
    """The Vega-Lite specs ``dvc plots diff`` gives for the charts, by title."""
    result = project.dvc("plots", "diff", *revisions, "--json", "-o", "../dvc-plots-for-test")
    shown = json.loads(result.stdout)["data"]
    return {
        chart_title(plot_id, entry["content"]): entry["content"]
        for plot_id, entries in shown.items()
        for entry in entries
        if entry["type"] == "vega"
    }


def test_every_image_is_a_png_of_its_chart_and_nothing_else_is_written(
    history: History, report: Report
) -> None:
    images = report.images()
    assert set(images.values()) == {*chart_titles(), BASE, "workspace"}
    assert {p.name for p in report.folder.iterdir()} == {"report.md", *images}
    specs = dvc_charts(history.project, BASE)
    assert set(specs) == set(chart_titles())
    for name, alt in images.items():
        image = png(report.folder / name)
        assert colours(image) > 1, f"{name} is blank"
        if alt in specs:  # a chart: DVC's spec of both revisions, rendered as it is
            assert min(image.size) >= 200, name
            expected = report_charts.render_png(alt, specs[alt])
            assert (report.folder / name).read_bytes() == expected, name


def test_misclassified_digits_of_both_revisions_side_by_side(
    history: History, report: Report
) -> None:
    section = report.section("Plots")
    table = section[section.index(f"### {IMAGE_PLOT}") :]
    shown = EMBED.findall(table)
    assert [alt for alt, _ in shown] == [BASE, "workspace"]  # the base first, as in the tables
    base_file, workspace_file = (report.folder / name for _, name in shown)
    project = history.project
    committed = subprocess.run(
        ["git", "show", f"{BASE}:{IMAGE_PLOT}"], cwd=project.root, capture_output=True, check=True
    ).stdout
    assert base_file.read_bytes() == committed
    assert workspace_file.read_bytes() == (project.root / IMAGE_PLOT).read_bytes()
    assert committed != workspace_file.read_bytes()


def test_charts_draw_both_revisions(report: Report, first_report: Report) -> None:
    """Against the first run, the confusion matrix has a panel per revision and the per-class
    chart a bar per split and revision: wider and taller than with the workspace alone."""
    two = {alt: png(report.folder / name).size for name, alt in report.images().items()}
    one = {alt: png(first_report.folder / name).size for name, alt in first_report.images().items()}
    confusion, per_class = "Confusion matrix (test split)", "Per-class accuracy"
    assert two[confusion][0] > 1.6 * one[confusion][0]
    assert two[per_class][1] > 1.6 * one[per_class][1]


def test_first_pull_request_says_the_base_has_no_metrics(
    history: History, first_report: Report
) -> None:
    assert f"`{NO_RUN}` has no metrics yet" in first_report.text
    rows = [row for row in first_report.table("Metrics") if row["Path"] == "metrics.json"]
    new = history.metrics["workspace"]
    assert [row["Metric"] for row in rows] == sorted(new)
    for row in rows:
        assert row[NO_RUN] == "-"
        assert row["Change"] == "-"
        assert as_number(row["workspace"]) == pytest.approx(new[row["Metric"]], abs=1e-5)
    images = first_report.images()
    assert set(images.values()) == {*chart_titles(), "workspace"}
    for name in images:
        assert colours(png(first_report.folder / name)) > 1, name
    assert f"Not in `{NO_RUN}`, so shown for the workspace alone" in first_report.text


def test_the_report_runs_nothing_in_the_repository(history: History, report: Report) -> None:
    project = history.project
    assert project.git("status", "--porcelain").stdout == ""
    assert "up to date" in project.dvc("status").stdout
    assert not (project.root / "dvc_plots").exists()


def test_images_link_replaces_the_images_by_links(history: History, tmp_path: Path) -> None:
    url = "https://ci.example/runs/7#artifacts"
    result = run_report(history.project, tmp_path / "r", "--base", BASE, "--images-link", url)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r" / "report.md").read_text()
    assert EMBED.findall(text) == []
    for title in chart_titles():
        assert re.search(rf"\[{re.escape(title)}: [a-z-]+\.png\]\({re.escape(url)}\)", text)
    assert len(list((tmp_path / "r").glob("*.png"))) == len(chart_titles()) + 2


def test_a_changed_param_not_yet_run_is_a_warning(history: History, tmp_path: Path) -> None:
    project = history.project
    params = (project.root / "params.yaml").read_text()
    try:
        project.set_param("train", "epochs", 4)
        result = run_report(project, tmp_path / "r", "--base", BASE)
    finally:
        (project.root / "params.yaml").write_text(params)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r" / "report.md").read_text()
    assert "**Warning: the pipeline is not up to date.** `dvc status` lists train " in text
    assert "up to date (`dvc status`)" not in text


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_a_report_replaces_the_earlier_one_whole_or_not_at_all(
    history: History, tmp_path: Path
) -> None:
    folder = tmp_path / "report"
    assert run_report(history.project, folder, "--base", NO_RUN).returncode == 0
    (folder / "left-over.png").write_bytes(b"old")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    error = one_line_error(run_report(history.project, folder, "--base", "no-such-branch"))
    assert "base revision 'no-such-branch': not a commit of this repository" in error
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    assert run_report(history.project, folder, "--base", BASE).returncode == 0
    assert not (folder / "left-over.png").exists()
    assert "has no metrics yet" not in (folder / "report.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left


def test_refuses_an_output_folder_that_is_not_a_report(history: History, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("keep me")
    error = one_line_error(run_report(history.project, folder, "--base", BASE))
    assert f"{folder}: a folder that holds no report.md" in error
    assert [p.name for p in folder.iterdir()] == ["todo.txt"]


def test_a_workspace_without_results_is_one_line(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "fresh")
    error = one_line_error(run_report(project, tmp_path / "r", "--base", "HEAD"))
    assert "the workspace has no metrics: run the pipeline first (dvc repro)" in error
    assert not (tmp_path / "r").exists()


def test_outside_a_repository_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPORT), "--output", str(tmp_path / "r")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "not in a git repository" in one_line_error(result)


def test_dvcs_specs_hold_their_data_and_fetch_nothing(history: History) -> None:
    for title, spec in dvc_charts(history.project, BASE).items():
        assert isinstance(spec["data"]["values"], list), title
        assert spec["data"]["values"], title
        assert list(report_charts.external_references(spec)) == [], title


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"data": {"url": "https://example.com/d.csv"}, "mark": "point"}, "no inline data"),
        (
            {
                "data": {"values": [{"a": 1}]},
                "mark": "image",
                "encoding": {"url": {"value": "https://example.com/a.png"}},
            },
            r"would fetch spec\.encoding\.url$",
        ),
        (
            {"data": {"values": [{"a": 1}]}, "layer": [{"data": {"url": "/etc/passwd"}}]},
            r"would fetch spec\.layer\[0\]\.data\.url",
        ),
    ],
)
def test_render_refuses_a_spec_that_would_fetch(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(report_charts.ChartError, match=message):
        report_charts.render_png("a plot", spec)


def test_render_reports_vl_converts_error_in_one_line() -> None:
    spec = {"data": {"values": [{"a": 1}]}, "mark": "no-such-mark"}
    with pytest.raises(report_charts.ChartError, match="vl-convert cannot render it") as error:
        report_charts.render_png("odd", spec)
    assert "\n" not in str(error.value)


def test_file_stems_are_unique_and_plain() -> None:
    taken: set[str] = set()
    assert report_charts.file_stem("Confusion matrix (test split)", taken) == (
        "confusion-matrix-test-split"
    )
    assert report_charts.file_stem("Confusion matrix: test split", taken) == (
        "confusion-matrix-test-split-2"
    )
    assert report_charts.file_stem("((()))", taken) == "plot"
