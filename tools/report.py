"""What a change does to the pipeline's results: a Markdown report against a base revision.

Run in a checkout after ``dvc repro``; it runs no stage itself. Against ``--base`` (default
``main``) it writes ``report.md`` into ``--output`` (default ``report/``) with: whether the
pipeline is up to date (``dvc status``), the metrics diff (``dvc metrics diff BASE --md``),
the params diff (``dvc params diff BASE --md``) and every plot of ``dvc plots diff BASE``, the
charts rendered to PNG offline (``report_charts.py``) and the image plots (the misclassified
digits) of both revisions, all beside ``report.md``. A base that has no metrics yet (the
pipeline's first pull request) is said so. ``make report`` runs it; CI publishes the result.

    python tools/report.py [--base main] [--output report] [--images-link URL]
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from report_charts import ChartError, file_stem, render_png

from stages.cli.app import LogLevelOption, new_app, run, stage_errors
from stages.cli.errors import StageError

REPORT_FILE = "report.md"
WORKSPACE = "workspace"  # what DVC calls the working tree in its diffs
ABSENT = {"deleted", "not in cache"}  # dvc status: a file that is not here, not one that changed

app = new_app("Write report.md: metrics, params and plots of the workspace against a revision.")


def dvc(*args: str) -> str:
    """Run ``dvc ARGS`` (this interpreter's); its stdout, or StageError with DVC's error."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
        message = errors[0].removeprefix("ERROR: ") if errors else f"exit {result.returncode}"
        raise StageError(f"dvc {' '.join(args)}: {message}")
    return result.stdout


def git(*args: str) -> str:
    """Run ``git ARGS``; its stdout stripped, or StageError with git's message."""
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        raise StageError(f"git {' '.join(args)}: {message[0]}")
    return result.stdout.strip()


def check_repository() -> None:
    """StageError unless the current folder is in a git repository."""
    result = subprocess.run(["git", "rev-parse", "--git-dir"], capture_output=True, check=False)
    if result.returncode != 0:
        raise StageError(f"{Path.cwd()}: not in a git repository (run the report in a checkout)")


def resolve_base(base: str) -> str:
    """The short commit id of ``base``; StageError when this repository does not have it."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--short", f"{base}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StageError(
            f"base revision {base!r}: not a commit of this repository"
            " (fetch it first, e.g. git fetch origin main; in CI check out with fetch-depth: 0)"
        )
    return result.stdout.strip()


@dataclass
class Status:
    changed: list[str]  # stages whose code, data or params changed since they last ran
    missing: list[str]  # stages otherwise up to date whose outputs are not in the workspace


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [str(value)]


def pipeline_status() -> Status:
    """What ``dvc status`` lists, split into changed stages and absent outputs."""
    status = json.loads(dvc("status", "--json") or "{}")
    changed, missing = [], []
    for name, entries in sorted(status.items()):
        stage = name.rsplit(":", 1)[-1]
        absent = all(leaf in ABSENT for leaf in _leaves(entries))
        (missing if absent else changed).append(stage)
    return Status(changed, missing)


@dataclass
class Metrics:
    table: str  # dvc metrics diff --md: the changed metrics
    base_has_none: bool  # the base records no metric (the pipeline's first run)


def metrics(base: str) -> Metrics:
    """The metrics diff against ``base``; StageError when the workspace has no metrics."""
    every = json.loads(dvc("metrics", "diff", base, "--all", "--json") or "{}")
    values = [value for per_file in every.values() for value in per_file.values()]
    if not any(value.get("new") is not None for value in values):
        raise StageError("the workspace has no metrics: run the pipeline first (dvc repro)")
    base_has_none = all(value.get("old") is None for value in values)
    return Metrics(dvc("metrics", "diff", base, "--md").strip(), base_has_none)


@dataclass
class Plots:
    charts: dict[str, str] = field(default_factory=dict)  # title -> PNG file name
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> revision -> file
    missing_in_base: list[str] = field(default_factory=list)  # plot files the base lacks
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> content


def chart_title(plot_id: str, spec: dict[str, Any]) -> str:
    """The title a chart shows (dvc.yaml's ``title``, else its file), else its plot id."""
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return title if isinstance(title, str) and title else plot_id


def plots(base: str) -> Plots:
    """Every plot of ``dvc plots diff BASE``: charts as PNG, image plots per revision."""
    result = Plots()
    taken: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="report-plots-") as scratch:
        shown = json.loads(dvc("plots", "diff", base, "--json", "-o", scratch))
        errors = shown.get("errors") or []
        missing = sorted({e["source"] for e in errors if e.get("rev") == WORKSPACE})
        if missing:
            raise StageError(
                f"the workspace lacks {', '.join(missing)}: run the pipeline first (dvc repro)"
            )
        result.missing_in_base = sorted({e.get("source", e.get("name", "?")) for e in errors})
        for plot_id, entries in shown.get("data", {}).items():
            for entry in entries:
                if entry["type"] == "vega":
                    title = chart_title(plot_id, entry["content"])
                    name = f"{file_stem(title, taken)}.png"
                    result.files[name] = render_png(title, entry["content"])
                    result.charts[title] = name
                elif entry["type"] == "image":
                    revisions = entry.get("revisions") or []
                    role = WORKSPACE if WORKSPACE in revisions else "base"
                    label = WORKSPACE if role == WORKSPACE else base
                    source = Path(entry["url"])
                    name = f"{file_stem(f'{Path(plot_id).stem} {role}', taken)}{source.suffix}"
                    result.files[name] = source.read_bytes()
                    result.images.setdefault(plot_id, {})[label] = name
    return result


def table_or(table: str, nothing: str) -> str:
    """``table`` (a Markdown table from DVC), or ``nothing`` when it has no row below its
    header: DVC prints the header alone when nothing changed."""
    rows = [line for line in table.splitlines() if line.startswith("|")]
    return table if len(rows) > 2 else nothing


def image(alt: str, name: str, images_link: str | None) -> str:
    """Markdown showing the image file ``name``, or linking to where it is published."""
    if images_link:
        return f"[{alt}: {name}]({images_link})"
    return f"![{alt}]({name})"


def markdown(
    base: str,
    base_commit: str,
    head_commit: str,
    status: Status,
    metric_diff: Metrics,
    params_table: str,
    shown: Plots,
    images_link: str | None,
) -> str:
    """The report, in GitHub-flavoured Markdown."""
    lines = [
        f"# Pipeline report: the workspace against `{base}`",
        "",
        f"The workspace (`HEAD` at `{head_commit}`) against `{base}` (`{base_commit}`):"
        " `dvc metrics diff`, `dvc params diff` and `dvc plots diff`.",
        "",
    ]
    if status.changed:
        lines.append(
            "**Warning: the pipeline is not up to date.** `dvc status` lists"
            f" {', '.join(status.changed)} as changed since the last run: these results are"
            " not all from this code, data and params (run `dvc repro`)."
        )
    if status.missing:
        lines.append(
            f"The outputs of {', '.join(status.missing)} are not in the workspace (`dvc pull`"
            " brings them): the metrics and plot files shown are the ones in git."
        )
    if not status.changed and not status.missing:
        lines.append(
            "The pipeline is up to date (`dvc status`): these results are what this code,"
            " data and params produce."
        )
    lines += ["", "## Metrics", ""]
    if metric_diff.base_has_none:
        lines += [
            f"`{base}` has no metrics yet (the pipeline's first pull request):"
            " every metric is new, `-` in its column.",
            "",
        ]
    lines.append(table_or(metric_diff.table, "No metric changed."))
    lines += ["", "## Params", "", table_or(params_table, "No param changed.")]
    lines += ["", "## Plots", ""]
    if shown.missing_in_base:
        missing = ", ".join(f"`{source}`" for source in shown.missing_in_base)
        lines += [f"Not in `{base}`, so shown for the workspace alone: {missing}.", ""]
    if images_link:
        lines += [f"The charts are PNG files in the [report artifact]({images_link}).", ""]
    for title, name in shown.charts.items():
        lines += [f"### {title}", "", image(title, name, images_link), ""]
    for plot_id, per_revision in shown.images.items():
        labels = sorted(per_revision, key=lambda label: label == WORKSPACE)  # the base first
        lines += [
            f"### {plot_id}",
            "",
            "| " + " | ".join(f"`{label}`" for label in labels) + " |",
            "|" + "---|" * len(labels),
            "| "
            + " | ".join(image(label, per_revision[label], images_link) for label in labels)
            + " |",
            "",
        ]
    return "\n".join(lines)


def check_output(output: Path) -> None:
    """Refuse an output path that holds something other than an earlier report."""
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise StageError(f"{output}: exists and is not a report folder")
    if output.is_dir() and any(output.iterdir()) and not (output / REPORT_FILE).is_file():
        raise StageError(f"{output}: a folder that holds no {REPORT_FILE}; choose another --output")


def replace_folder(output: Path, files: dict[str, bytes]) -> None:
    """Make ``output`` hold exactly ``files``, all at once: the earlier report, if any, stays
    whole until the new one is complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.new-"))
    old = fresh.with_name(fresh.name.replace(".new-", ".old-", 1))
    try:
        for name, content in files.items():
            (fresh / name).write_bytes(content)
        fresh.chmod(0o755)
        if output.exists():
            os.replace(output, old)
        os.replace(fresh, output)
    except BaseException:
        if old.exists() and not output.exists():
            os.replace(old, output)
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


@app.command()
def main(
    base: Annotated[
        str, typer.Option("--base", help="The revision to compare with (branch, tag or commit).")
    ] = "main",
    output: Annotated[
        Path, typer.Option("--output", help="The folder to write report.md and the images to.")
    ] = Path("report"),
    images_link: Annotated[
        str | None,
        typer.Option(
            "--images-link",
            help="Link the images to this URL (where they are published) instead of showing"
            " them from the report's folder: for a pull-request comment.",
        ),
    ] = None,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Write OUTPUT/report.md and its images: the workspace against BASE."""
    with stage_errors(log_level, ChartError):
        check_output(output)
        check_repository()
        base_commit = resolve_base(base)
        head_commit = git("rev-parse", "--short", "HEAD")
        status = pipeline_status()
        metric_diff = metrics(base)
        params_table = dvc("params", "diff", base, "--md").strip()
        shown = plots(base)
        text = markdown(
            base, base_commit, head_commit, status, metric_diff, params_table, shown, images_link
        )
        replace_folder(output, {REPORT_FILE: text.encode("utf-8"), **shown.files})
        print(f"wrote {output / REPORT_FILE} and {len(shown.files)} images")


if __name__ == "__main__":
    run(app)
