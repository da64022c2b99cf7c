"""The measured figures of the README and docs/, rendered from the benchmarks' JSON.

Each block of figures sits between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``
in a Markdown file, and is rendered here from ``bench/*.json`` (which every benchmark writes,
with the command and the commit it ran). ``make figures`` rewrites the blocks; ``--check``
(run by the tests) fails when a block says anything but what the JSON holds, so no figure
is retyped by hand or left behind by a newer run.

    python tools/figures.py [--check]
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- figures:([\w-]+) -->\n)(.*?)(<!-- /figures:\2 -->)", re.DOTALL)


def load(name: str) -> dict[str, Any]:
    return json.loads((REPO / "bench" / f"{name}.json").read_text(encoding="utf-8"))


def source(data: dict[str, Any]) -> str:
    """Where a table's numbers come from: the command and the commit it ran."""
    commit = data.get("commit", "")[:7] or "unknown commit"
    return f"`{data['command']}`, commit {commit}"


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def speed_table(net: dict[str, Any]) -> list[str]:
    rows = [
        "| implementation | epoch 1 (s) | later epochs, median (s) | range (s) | test accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, row in net["implementations"].items():
        low, high = row["steady_range"]
        accuracy = f"{row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else "-"
        rows.append(
            f"| {name} | {_seconds(row['epoch1_seconds'])} | {_seconds(row['steady_seconds'])} "
            f"| {_seconds(low)}-{_seconds(high)} | {accuracy} |"
        )
    return rows


def ratios_line(net: dict[str, Any]) -> str:
    ratios = net["ratios"]
    parts = [f"nnlib / floor **{ratios['nnlib_over_floor']:.2f}x**"]
    for name in ("scikit-learn", "pytorch"):
        if f"{name}_over_nnlib" in ratios:
            parts.append(f"{name} / nnlib **{ratios[f'{name}_over_nnlib']:.2f}x**")
    return "Steady state: " + ", ".join(parts) + "."


def render_speed() -> list[str]:
    data = load("speed")
    seed, wide = data["seed_net"], data["wide_net"]
    lines = [f"From {source(data)}.", ""]
    lines += [
        f"The blog post's network ({'-'.join(map(str, seed['network']))}, batch "
        f"{seed['batch']}, one BLAS thread, {seed['rounds']} alternating rounds of "
        f"{seed['epochs']} epochs):",
        "",
        *speed_table(seed),
        "",
        ratios_line(seed) + f" Training allocates {seed['nnlib_training_memory_mb']:.1f} MB "
        "beyond the loaded data.",
    ]
    for key, net in wide.items():
        threads = key.split("_")[0]
        lines += [
            "",
            f"The wide network ({'-'.join(map(str, net['network']))}, batch {net['batch']}, "
            f"{threads} BLAS thread{'s' if threads != '1' else ''}, {net['rounds']} rounds of "
            f"{net['epochs']} epochs):",
            "",
            *speed_table(net),
            "",
            ratios_line(net),
        ]
    return lines


def render_defaults() -> list[str]:
    data = load("defaults")
    seeds = ", ".join(map(str, data["seeds"]))
    lines = [
        f"From {source(data)}: each row over train.seed {seeds}; validation picks, test is "
        "reported.",
        "",
        "| configuration | validation, median | test, median | test, each seed |",
        "|---|---|---|---|",
    ]
    for name, row in data["configurations"].items():
        marks = []
        if name == data["best_on_validation"]:
            marks.append("**best on validation**")
        if name == data.get("params_yaml"):
            marks.append("params.yaml")
        mark = f" ({', '.join(marks)})" if marks else ""
        tests = " / ".join(f"{a:.4f}" for a in row["test_accuracy"])
        lines.append(
            f"| {name}{mark} | {row['val_median']:.4f} | {row['test_median']:.4f} | {tests} |"
        )
    seconds = statistics.median(
        s for row in data["configurations"].values() for s in row["seconds"]
    )
    lines += ["", f"A run took {seconds:.1f} s (median) on this machine."]
    return lines


def render_looks() -> list[str]:
    data = load("predict_looks")
    digits = data["mnist_test_digits"]
    lines = [
        f"From {source(data)}: MNIST's first {digits['digits']} test digits, drawn into files "
        f"in each look and read by predict with `{data['model']['path']}`; agreement is with "
        f"the model's reading of the 28x28 array (accuracy {digits['original_accuracy']:.3f}).",
        "",
        "| look | agreement | accuracy | refused |",
        "|---|---|---|---|",
    ]
    for name, row in digits["looks"].items():
        lines.append(
            f"| {name} | {row['agreement']:.3f} | {row['accuracy']:.3f} | {row['unread']} |"
        )
    return lines


def render_results() -> list[str]:
    """The README's summary: the default model, the accurate preset, speed, predict."""
    metrics = json.loads((REPO / "metrics.json").read_text(encoding="utf-8"))
    defaults, speed, repro = load("defaults"), load("speed"), load("repro")
    accurate, looks, own = load("accurate"), load("predict_looks"), load("own_images")
    chosen = defaults["configurations"][defaults["params_yaml"]]
    seed_net = speed["seed_net"]
    agreement = [row["agreement"] for row in looks["mnist_test_digits"]["looks"].values()]
    refused = sum(row["unread"] for row in looks["mnist_test_digits"]["looks"].values())
    return [
        "| what | measured | command |",
        "|---|---|---|",
        f"| default model (`dvc repro`), test accuracy | {metrics['test']['accuracy']:.4f}; "
        f"{chosen['test_median']:.4f} median of {len(defaults['seeds'])} seeds | "
        f"`dvc repro`; `{defaults['command']}` |",
        f"| accurate preset (`make accurate`), test accuracy | "
        f"{accurate['test_accuracy']:.4f} (validation {accurate['val_accuracy']:.4f}), "
        f"{accurate['wall_seconds'] / 60:.1f} minutes from a fresh clone | "
        f"`{accurate['command']}` |",
        f"| whole `dvc repro` from a fresh clone | {repro['repro_seconds_median']:.1f} s, of "
        f"which training {repro['train_seconds_median']:.1f} s; train's peak memory "
        f"{repro['train_peak_mb']} MB | `{repro['command']}` |",
        f"| training speed, 784-64-32-10 batch 32 | "
        f"{seed_net['implementations']['nnlib']['steady_seconds']:.3f} s/epoch: "
        f"{seed_net['ratios']['scikit-learn_over_nnlib']:.2f}x faster than scikit-learn, "
        f"{seed_net['ratios'].get('pytorch_over_nnlib', float('nan')):.2f}x than PyTorch, "
        f"{seed_net['ratios']['nnlib_over_floor']:.2f}x the floor | `{speed['command']}` |",
        f"| predict on MNIST digits drawn as users' files | agreement with the 28x28 reading "
        f"{min(agreement):.3f}-{max(agreement):.3f} over {len(agreement)} looks, "
        f"{refused} refused | `{looks['command']}` |",
        f"| your own images: 10,000 pictures in users' looks | test accuracy "
        f"{own['test_accuracy']:.3f} | `{own['command']}` |",
    ]


RENDERERS: dict[str, Callable[[], list[str]]] = {
    "results": render_results,
    "speed": render_speed,
    "defaults": render_defaults,
    "looks": render_looks,
}
FILES = ("README.md", *(f"docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md"))))


def rendered(text: str) -> str:
    """``text`` with every figures block rendered afresh."""

    def block(match: re.Match[str]) -> str:
        name = match[2]
        if name not in RENDERERS:
            raise SystemExit(f"error: no renderer for figures block {name!r}")
        return match[1] + "\n".join(RENDERERS[name]()) + "\n" + match[4]

    return BLOCK.sub(block, text)


def main(
    check: Annotated[bool, typer.Option(help="Fail if a block differs; write nothing.")] = False,
) -> None:
    stale = []
    for name in FILES:
        path = REPO / name
        text = path.read_text(encoding="utf-8")
        new = rendered(text)
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
    if check and stale:
        print(f"error: figures differ from bench/*.json in {', '.join(stale)}; run make figures")
        sys.exit(1)
    print(f"{'stale' if stale else 'up to date'}: {', '.join(stale) or ', '.join(FILES)}")


if __name__ == "__main__":
    typer.run(main)
