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
import subprocess
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


def render_predict_speed() -> list[str]:
    data = load("predict_speed")
    described = {
        "photos": "photos: 1200x900 JPEG, digit 300 px on shaded noisy paper",
        "looks": "looks: the looks of `bench/predict_looks.py` in turn, 8x8 to a few hundred px",
    }
    lines = [
        f"From {source(data)}: {data['files']:,} files per folder, the command alone, medians "
        f"of {data['repeats']} runs.",
        "",
        "| folder | pictures/s (wall) | pictures per CPU second | user, system CPU | peak memory |",
        "|---|---|---|---|---|",
    ]
    for kind, row in data["kinds"].items():
        lines.append(
            f"| {described.get(kind, kind)} | {row['pictures_per_s_wall']:.0f} "
            f"| {row['pictures_per_cpu_s']:.0f} | {row['user_s']:.1f} s, {row['system_s']:.1f} s "
            f"| {row['peak_mb']:.0f} MB |"
        )
    return lines


def render_serve() -> list[str]:
    data = load("serve")
    latency, load_ = data["latency"], data["concurrent"]
    return [
        f"From {source(data)}: {data['picture']}, `{data['model']}`, load average "
        f"{data['machine']['load_average_when_written']:.1f} when written.",
        "",
        "| what | requests | p50 | p95 | mean | requests/s |",
        "|---|---|---|---|---|---|",
        f"| one client, one kept-alive connection | {latency['requests']} "
        f"| {latency['p50_ms']:.1f} ms | {latency['p95_ms']:.1f} ms | {latency['mean_ms']:.1f} ms "
        f"| {1000 / latency['mean_ms']:.0f} |",
        f"| {load_['clients']} clients at once | {load_['requests']} | {load_['p50_ms']:.1f} ms "
        f"| {load_['p95_ms']:.1f} ms | {load_['mean_ms']:.1f} ms | {load_['requests_per_s']:.0f} |",
        f"| `python -m stages.predict` on the file, a new process each time | 3 "
        f"| {data['predict_process_s'] * 1000:.0f} ms (median) | | | |",
    ]


def render_serve_handwriting() -> list[str]:
    data = load("serve_handwriting")
    per_class = ", ".join(f"{k}: {v:.2f}" for k, v in data["per_class_accuracy"].items())
    confusions = ", ".join(
        f"{c['true']} read as {c['read']} ({c['count']})" for c in data["commonest_confusions"]
    )
    lines = [
        f"From {source(data)}: the {data['digits']:,} digits of optdigits "
        f"({data['writers']} writers) as scans, each posted to `/predict` and read by "
        f"`predict --json`, with `{data['model']}` (md5 {data['model_md5'][:8]}).",
        "",
        "| what | measured |",
        "|---|---|",
        f"| answers equal to `predict --json` for the same file | "
        f"{data['same_answer_as_predict']:,} of {data['digits']:,} |",
        f"| accuracy | **{data['accuracy']:.4f}** |",
        f"| accuracy per class | {per_class} |",
        f"| commonest confusions | {confusions} |",
    ]
    if control := data.get("control"):
        lines += [
            f"| control: MNIST's first {control['digits']:,} test digits as 28x28 arrays | "
            f"{control['accuracy_of_the_28x28_arrays']:.4f} |",
            f"| control: the same digits reduced as optdigits' were, then scanned and read | "
            f"{control['accuracy_as_optdigits_scans']:.4f} |",
        ]
    return lines


def render_fonts() -> list[str]:
    data = load("predict_looks")
    fonts = data["font_digits"]
    strokes = fonts["strokes"]
    looks = list(next(iter(strokes.values()))["looks"])
    lines = [
        f"From {source(data)}: digits 0-9 in {len(fonts['fonts'])} fonts "
        f"({fonts['digits_per_cell']} digits a cell), accuracy; the last two columns range "
        "over the looks.",
        "",
        f"| strokes | {' | '.join(looks)} | without the strokes step | plain resize |",
        "|---" * (len(looks) + 3) + "|",
    ]
    refused = 0
    for name, row in strokes.items():
        cells = [f"{row['looks'][look]['construction']:.3f}" for look in looks]
        without = [row["looks"][look]["without_strokes_step"] for look in looks]
        plain = [row["looks"][look]["plain_resize"] for look in looks]
        refused += sum(row["looks"][look]["unread"] for look in looks)
        lines.append(
            f"| {name} | {' | '.join(cells)} | {min(without):.2f}-{max(without):.2f} "
            f"| {min(plain):.2f}-{max(plain):.2f} |"
        )
    lines += ["", f"{refused} font images were refused as blank (counted as wrong)."]
    return lines


def render_augment() -> list[str]:
    data = load("augment")
    distortion = data["distortion_seconds"]
    seed_net, wide = data["seed_net_batch_32"], data["wide_net_batch_128"]
    lines = [
        f"From {source(data)}: {data['images']:,} images.",
        "",
        "| distortion of every training image, one core | seconds |",
        "|---|---|",
    ]
    for name, row in distortion.items():
        lines.append(f"| {name} | {row['wall_seconds']:.3f} |")
    lines += [
        "",
        "| seed net (784-64-32-10), batch 32, per epoch | wall seconds (median) | epoch 1 |",
        "|---|---|---|",
    ]
    for name, row in seed_net.items():
        lines.append(f"| {name} | {row['steady_seconds']:.3f} | {row['epoch1_seconds']:.3f} |")
    lines += [
        "",
        f"Against the slower of training alone and distortion alone, an epoch with the "
        f"worker takes {data['background_over_slower_of_the_two']:+.1%}, with a thread "
        f"{data['thread_over_slower_of_the_two']:+.1%} (the two halves are timed apart, so "
        "a few percent either way is the machine's noise).",
        "",
        "| 784-800-10, batch 128, per epoch | wall seconds (median) |",
        "|---|---|",
    ]
    for name, row in wide.items():
        threads, _, mode = name.partition("_threads_")
        label = f"{threads} BLAS thread{'s' if threads != '1' else ''}, " + (
            "augmented, worker" if mode == "background" else "no augmentation"
        )
        lines.append(f"| {label} | {row['steady_seconds']:.3f} |")
    return lines


def render_accurate(name: str = "accurate") -> list[str]:
    data = load(name)
    curve = data["val_curve"]
    marks = [e for e in (5, 10, 20, 25, 50, 100, 150, 200, 300) if e <= len(curve)]
    marks = marks if len(curve) > 50 else [e for e in marks if e in (5, 10, 20)]
    command = f"make {data.get('make_target', 'accurate')}"
    if data.get("settings"):
        command += f' SETTINGS="{data["settings"]}"'
    return [
        f"From {source(data)}: `{command}` from a fresh clone.",
        "",
        "| | |",
        "|---|---|",
        f"| wall time, the whole command | {data['wall_seconds'] / 60:.1f} minutes |",
        f"| training | {data['epochs']} epochs in {data['train_seconds'] / 60:.1f} minutes |",
        f"| validation accuracy, last epoch | {data['val_accuracy']:.4f} |",
        f"| test accuracy | **{data['test_accuracy']:.4f}** (loss {data['test_loss']:.4f}) |",
        "| validation accuracy along the way | "
        + ", ".join(f"epoch {e}: {curve[e - 1]:.4f}" for e in marks)
        + " |",
    ]


def render_own_images() -> list[str]:
    data = load("own_images")
    one, two = (data["build_seconds_median"][f"{n} processes"] for n in (1, 2))
    splits = data["splits"]
    return [
        f"From {source(data)}: {data['pictures']:,} pictures in {data['classes']} classes, "
        f"split {splits['train']:,} / {splits['val']:,} / {splits['test']:,}.",
        "",
        "| | |",
        "|---|---|",
        f"| test accuracy ({splits['test']:,} pictures; 784-64-32-10, params.yaml's training) "
        f"| {data['test_accuracy']:.3f} (macro F1 {data['test_f1_macro']:.3f}) |",
        f"| preprocess building the pictures, wall time, 1 / 2 processes (medians of "
        f"{data['rounds']}) | {one:.1f} s / {two:.1f} s |",
        f"| the same bytes on every run, whatever the processes | "
        f"{'yes' if data['same_bytes_every_run'] else 'no'} |",
        f"| the whole `dvc repro` from nothing | {data['repro_seconds']:.1f} s |",
    ]


def render_search() -> list[str]:
    data = load("search")
    best, default = data["best"], data["default"]
    params = ", ".join(f"{key} {value}" for key, value in best["params"].items())
    states = ", ".join(f"{count} {state}" for state, count in data["states"].items() if count)
    return [
        f"From {source(data)}: `make search SEARCH_TRIALS={data['trials']}` on the real MNIST "
        f"from a fresh clone, {data['workers']} workers on this 2-core machine.",
        "",
        "| | |",
        "|---|---|",
        f"| trials | {data['trials']} ({states}) in {data['wall_seconds'] / 60:.1f} minutes |",
        f"| best trial | {best['experiment']}: {params} |",
        f"| its validation accuracy (what the study maximized) | {best['value']:.4f} |",
        f"| its test accuracy, read once | {best['test_accuracy']:.4f} |",
        f"| params.yaml's own values | validation {default['val_accuracy']:.4f}, "
        f"test {default['test_accuracy']:.4f} |",
    ]


def restored_stages(run: dict[str, Any]) -> str:
    """ "train and evaluate restored" from bench/repro.py's record of a run-cache return."""
    restored = " and ".join(run["stages_restored"]) or "nothing"
    ran = f" ({' and '.join(run['stages_run'])} ran)" if run["stages_run"] else ""
    return f"{restored} restored{ran}"


def render_results() -> list[str]:
    """The README's summary: the default model, the accurate preset, speed, predict."""
    defaults, speed, repro = load("defaults"), load("speed"), load("repro")
    accurate, looks, own = load("accurate"), load("predict_looks"), load("own_images")
    search, serve, handwriting = load("search"), load("serve"), load("serve_handwriting")
    cnn, cnn_fashion, cnn_speed = load("accurate_cnn"), load("accurate_cnn_fashion"), load("cnn")
    baseline = load("speed_baseline")
    cnn_handwriting = load("serve_handwriting_cnn")
    chosen = defaults["configurations"][defaults["params_yaml"]]
    seed_net = speed["seed_net"]
    agreement = [row["agreement"] for row in looks["mnist_test_digits"]["looks"].values()]
    refused = sum(row["unread"] for row in looks["mnist_test_digits"]["looks"].values())
    return [
        "| what | measured | command |",
        "|---|---|---|",
        f"| default model (`dvc repro`), test accuracy | {repro['test_accuracy']:.4f}; "
        f"{chosen['test_median']:.4f} median of {len(defaults['seeds'])} seeds | "
        f"`{repro['command']}`; `{defaults['command']}` |",
        f"| accurate preset (`make accurate`), test accuracy | "
        f"{accurate['test_accuracy']:.4f} (validation {accurate['val_accuracy']:.4f}), "
        f"{accurate['wall_seconds'] / 60:.1f} minutes from a fresh clone | "
        f"`{accurate['command']}` |",
        f"| convolutional preset (`make accurate-cnn`), test accuracy | "
        f"{cnn['test_accuracy']:.4f} (validation {cnn['val_accuracy']:.4f}), "
        f"{cnn['wall_seconds'] / 60:.1f} minutes from a fresh clone; Fashion-MNIST with its "
        f"entry in docs/accuracy.md {cnn_fashion['test_accuracy']:.4f} | `{cnn['command']}`; "
        f"`{cnn_fashion['command'].split(' --settings')[0]} --settings ...` |",
        f"| whole `dvc repro` from a fresh clone | {repro['repro_seconds_median']:.1f} s, of "
        f"which training {repro['train_seconds_median']:.1f} s; train's peak memory "
        f"{repro['train_peak_mb']} MB; params.yaml put back after another run: "
        f"{restored_stages(repro['run_cache'])} from the run-cache in "
        f"{repro['run_cache']['restore_seconds']:.1f} s | `{repro['command']}` |",
        f"| training speed, 784-64-32-10 batch 32 | "
        f"{seed_net['implementations']['nnlib']['steady_seconds']:.3f} s/epoch: "
        f"{seed_net['ratios']['scikit-learn_over_nnlib']:.2f}x faster than scikit-learn, "
        f"{seed_net['ratios'].get('pytorch_over_nnlib', float('nan')):.2f}x than PyTorch, "
        f"{seed_net['ratios']['nnlib_over_floor']:.2f}x the floor; "
        f"{baseline['this_over_baseline']:.2f}x the time of commit "
        f"{baseline['baseline_commit']}'s nnlib, side by side | `{speed['command']}`; "
        f"`{baseline['command']}` |",
        f"| training speed, the CNN of `make bench`, batch 128 | "
        f"{cnn_speed['implementations']['nnlib']['step_ms']:.1f} ms a step: "
        f"{cnn_speed['ratios']['nnlib_over_pytorch']:.2f}x PyTorch's time, "
        f"{cnn_speed['ratios']['nnlib_over_floor']:.2f}x the floor | `{cnn_speed['command']}` |",
        f"| predict on MNIST digits drawn as users' files | agreement with the 28x28 reading "
        f"{min(agreement):.3f}-{max(agreement):.3f} over {len(agreement)} looks, "
        f"{refused} refused | `{looks['command']}` |",
        f"| your own images: the example's {own['pictures']:,} pictures in users' looks | "
        f"test accuracy {own['test_accuracy']:.3f}; its whole `dvc repro` from nothing "
        f"{own['repro_seconds']:.0f} s | `{own['command']}` |",
        f"| `make search`, 2 workers | {search['trials']} trials in "
        f"{search['wall_seconds'] / 60:.1f} minutes; best validation accuracy "
        f"{search['best']['value']:.4f} (test {search['best']['test_accuracy']:.4f}) against "
        f"{search['default']['val_accuracy']:.4f} ({search['default']['test_accuracy']:.4f}) "
        f"for params.yaml's | `{search['command']}` |",
        f"| `make serve`: a drawn digit through `POST /predict` | p50 "
        f"{serve['latency']['p50_ms']:.1f} ms, p95 {serve['latency']['p95_ms']:.1f} ms; "
        f"{serve['concurrent']['requests_per_s']:.0f} requests/s with "
        f"{serve['concurrent']['clients']} clients | `{serve['command']}` |",
        f"| real handwriting of {handwriting['writers']} writers outside MNIST "
        f"(optdigits) | accuracy {handwriting['accuracy']:.3f} (the CNN preset's model: "
        f"{cnn_handwriting['accuracy']:.3f}); {handwriting['same_answer_as_predict']:,} of "
        f"{handwriting['digits']:,} answers equal to predict's | `{handwriting['command']}` |",
    ]


def render_cnn_speed() -> list[str]:
    """The CNN of ``make bench`` beside PyTorch and its products (bench/cnn.json)."""
    data = load("cnn")
    layers = ", ".join(
        f"{e['type']} {e.get('filters') or e.get('units') or e.get('size')}"
        + (f" {e['kernel']}x{e['kernel']}" if "kernel" in e else "")
        for e in data["network"]["layers"]
    )
    rows = data["implementations"]
    ratios = data["ratios"]
    lines = [
        f"From {source(data)}: {layers}, dense {data['network']['classes']} softmax; batch "
        f"{data['batch']}, {data['threads']} BLAS thread; median of {data['steps']} steps after "
        f"{data['warmup']} of warm-up, {data['rounds']} alternating rounds.",
        "",
        "| | ms per step | s per epoch of 60,000 |",
        "|---|---|---|",
    ]
    for name in ("nnlib", "pytorch", "floor"):
        if name in rows:
            row = rows[name]
            lines.append(f"| {name} | {row['step_ms']:.1f} | {row['epoch_seconds']:.1f} |")
    lines += [
        "",
        f"nnlib / PyTorch {ratios['nnlib_over_pytorch']:.2f}x, nnlib / floor "
        f"{ratios['nnlib_over_floor']:.2f}x, PyTorch / floor {ratios['pytorch_over_floor']:.2f}x; "
        f"the floor is the network's {data['products']['gflop_per_step']:.2f} GFLOP a step at "
        f"the rate this machine's GEMM reaches on those shapes.",
    ]
    return lines


def render_speed_baseline() -> list[str]:
    """The seed network with this commit's nnlib beside an earlier commit's."""
    data = load("speed_baseline")
    base = data["baseline_commit"]
    steady = data["steady_seconds"]
    same = "the same" if data["same_test_accuracy"] else "a different"
    return [
        f"From {source(data)}: the seed network, {data['rounds']} alternating rounds of "
        f"{data['epochs']} epochs, each version's nnlib in its own process.",
        "",
        "| nnlib | later epochs, median (s) |",
        "|---|---|",
        f"| this commit | {steady['this commit']:.3f} |",
        f"| {base} | {steady[base]:.3f} |",
        "",
        f"This commit / {base}: **{data['this_over_baseline']:.3f}x**, with {same} test "
        "accuracy from the same seed.",
    ]


def render_looks_cnn() -> list[str]:
    """How predict reads users' files with the CNN preset's model beside the MLP's."""
    mlp, cnn = load("predict_looks"), load("predict_looks_cnn")
    digits = mlp["mnist_test_digits"]
    lines = [
        f"From {source(cnn)} and {source(mlp)}: MNIST's first {digits['digits']} test digits in "
        "each look, read by predict with each model.",
        "",
        "| look | MLP (params.yaml) | CNN (`make accurate-cnn`) |",
        "|---|---|---|",
        f"| the 28x28 arrays | {digits['original_accuracy']:.3f} | "
        f"{cnn['mnist_test_digits']['original_accuracy']:.3f} |",
    ]
    for name, row in digits["looks"].items():
        other = cnn["mnist_test_digits"]["looks"][name]
        lines.append(f"| {name} | {row['accuracy']:.3f} | {other['accuracy']:.3f} |")
    return lines


def render_handwriting_cnn() -> list[str]:
    mlp, cnn = load("serve_handwriting"), load("serve_handwriting_cnn")
    return [
        f"From {source(cnn)} and {source(mlp)}: the {cnn['digits']:,} optdigits scans "
        f"({cnn['writers']} writers outside MNIST), read with each model.",
        "",
        "| model | accuracy | answers equal to `predict --json` |",
        "|---|---|---|",
        f"| MLP (params.yaml) | {mlp['accuracy']:.4f} | {mlp['same_answer_as_predict']:,} |",
        f"| CNN (`make accurate-cnn`) | {cnn['accuracy']:.4f} | "
        f"{cnn['same_answer_as_predict']:,} |",
    ]


RENDERERS: dict[str, Callable[[], list[str]]] = {
    "results": render_results,
    "speed": render_speed,
    "defaults": render_defaults,
    "looks": render_looks,
    "fonts": render_fonts,
    "predict-speed": render_predict_speed,
    "augment": render_augment,
    "accurate": render_accurate,
    "accurate-cnn": lambda: render_accurate("accurate_cnn"),
    "accurate-cnn-fashion": lambda: render_accurate("accurate_cnn_fashion"),
    "cnn-speed": render_cnn_speed,
    "speed-baseline": render_speed_baseline,
    "looks-cnn": render_looks_cnn,
    "handwriting-cnn": render_handwriting_cnn,
    "search": render_search,
    "own-images": render_own_images,
    "serve": render_serve,
    "serve-handwriting": render_serve_handwriting,
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


def code_changed_since(commit: str) -> bool:
    """Whether nnlib/ or stages/ differ between ``commit`` and the checkout."""
    result = subprocess.run(
        ["git", "diff", "--quiet", commit, "--", "nnlib", "stages"], cwd=REPO, check=False
    )
    return result.returncode != 0


def main(
    check: Annotated[bool, typer.Option(help="Fail if a block differs; write nothing.")] = False,
) -> None:
    for path in sorted((REPO / "bench").glob("*.json")):
        commit = json.loads(path.read_text(encoding="utf-8")).get("commit")
        if commit and code_changed_since(commit):
            print(f"note: {path.name} was measured at {commit[:7]}; the code has changed since")
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
