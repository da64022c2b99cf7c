"""The whole pipeline driven by the real ``dvc`` in a temporary git repository.

A copy of the project trains on a tiny generated dataset served from a local mirror
(its checksum table replaces MNIST's in the copy), for two epochs.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import REPO
from support.dvc_project import Project, assert_last_run_comes_back, ran_stages
from support.idx import checksum_table, gz_files, make_arrays, write_checksums, write_files
from support.stage import digests, error_lines

from stages.outputs.history import METRICS, read_live_folder

pytestmark = pytest.mark.pipeline

# Keeping the last epoch's weights, so that more epochs always give another model.
TINY_PARAMS = {
    "data": {"val_size": 10},
    "train": {"epochs": 2, "batch_size": 16, "restore_best": False},
}
STAGES = ("download", "preprocess", "train", "evaluate")
# What train and evaluate write, and the record of the last run.
RECORDED = (
    "models/model.npz",
    "dvclive/metrics.json",
    "dvclive/plots/metrics/val_accuracy.tsv",
    "metrics.json",
    "reports/confusion.csv",
    "reports/per_class_accuracy.csv",
    "reports/misclassified.png",
    "dvc.lock",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project after a first successful ``dvc repro``, committed."""
    arrays = make_arrays(n_train=60, n_test=20, seed=3)
    mirror = write_files(tmp_path_factory.mktemp("mirror"), gz_files(arrays))
    root = tmp_path_factory.mktemp("built") / "project"
    root.mkdir()
    project = Project.create(root, mirror, TINY_PARAMS)
    write_checksums(root / "stages" / "data" / "sha256", "mnist", checksum_table(arrays))
    project.commit("accept the tiny test dataset")
    project.dvc("repro")
    project.commit("first run")
    return project


@pytest.fixture
def project(built: Project, tmp_path: Path) -> Project:
    """A private copy of the built project (repository, DVC cache and workspace)."""
    return built.copy(tmp_path / "project")


def test_repro_writes_metrics_and_a_second_repro_runs_nothing(project: Project) -> None:
    metrics = json.loads((project.root / "metrics.json").read_text())
    assert set(metrics) == {"test", "train"}
    rows = (project.root / "reports" / "confusion.csv").read_text().splitlines()[1:]
    hits = sum(actual == predicted for actual, predicted in (row.split(",") for row in rows))
    assert metrics["test"]["accuracy"] == pytest.approx(hits / len(rows), abs=1e-6)
    assert (project.root / "models" / "model.npz").is_file()
    assert (project.root / "dvc.lock").is_file()

    again = project.dvc("repro")
    assert ran_stages(again.stdout) == set()
    assert "up to date" in project.dvc("status").stdout


def test_changed_epochs_reruns_only_train_and_evaluate(project: Project) -> None:
    project.set_param("train", "epochs", 3)

    diff = project.dvc("params", "diff").stdout
    assert re.search(r"train\.epochs\s+2\s+3", diff), diff

    # dvc status lists the stages whose own deps changed: train now, and evaluate once
    # train has written a new model; never the data stages.
    status = json.loads(project.dvc("status", "--json").stdout)
    assert set(status) == {"train"}
    assert ran_stages(project.dvc("repro", "train").stdout) == {"train"}
    status = json.loads(project.dvc("status", "--json").stdout)
    assert set(status) == {"evaluate"}
    assert "models/model.npz" in json.dumps(status["evaluate"])

    project.set_param("train", "epochs", 4)
    rerun = project.dvc("repro")
    assert ran_stages(rerun.stdout) == {"train", "evaluate"}
    assert len(read_live_folder(project.root / "dvclive")) == 4


def test_params_put_back_restore_the_earlier_run_from_the_run_cache(project: Project) -> None:
    """Another train.epochs trains; putting params.yaml back trains nothing: DVC's run-cache
    restores train's and evaluate's outputs, metrics and plots as the first run wrote them."""
    first = digests(project.root, RECORDED)
    project.set_param("train", "epochs", 3)
    assert ran_stages(project.dvc("repro").stdout) == {"train", "evaluate"}
    assert digests(project.root, RECORDED)["models/model.npz"] != first["models/model.npz"]

    project.git("checkout", "params.yaml")
    restored = project.dvc("repro")
    assert ran_stages(restored.stdout) == set()
    assert "Stage 'train' is cached - skipping run" in restored.stdout
    assert "Stage 'evaluate' is cached - skipping run" in restored.stdout
    assert digests(project.root, RECORDED) == first
    assert "up to date" in project.dvc("status").stdout


def test_after_make_repro_in_a_fresh_clone_every_stage_comes_back_from_the_run_cache(
    project: Project,
) -> None:
    """A fresh clone's ``dvc repro`` trains (no model there) and skips evaluate, whose
    recorded outputs it matches, and DVC makes run-cache entries only for stages that run.
    ``make repro`` records the skipped ones too, so that after another train.epochs,
    params.yaml put back restores train and evaluate both."""
    for output in ("data", "models", "dvclive", ".dvc/cache", ".dvc/tmp"):
        shutil.rmtree(project.root / output)
    venv = f"VENV={Path(sys.executable).parent.parent}"
    first = project.run("make", "-f", str(REPO / "Makefile"), "-o", "setup", "repro", venv)
    assert ran_stages(first.stdout) == {"download", "preprocess", "train"}
    assert "Stage 'evaluate' didn't change, skipping" in first.stdout

    project.set_param("train", "epochs", 3)
    assert ran_stages(project.dvc("repro").stdout) == {"train", "evaluate"}
    project.git("checkout", "params.yaml")
    restored = project.dvc("repro")
    assert ran_stages(restored.stdout) == set()
    assert "Stage 'evaluate' is cached - skipping run" in restored.stdout


def test_an_nnlib_edit_reruns_the_model_stages_and_never_the_data(project: Project) -> None:
    """The nnlib folder is a dependency of train and evaluate only: after an edit the data
    stages are up to date; compiled bytecode beside the code changes nothing."""
    with (project.root / "nnlib" / "optimizers.py").open("a", encoding="utf-8") as source:
        source.write("# a comment changes the file's hash, not what it does\n")
    status = json.loads(project.dvc("status", "--json").stdout)
    assert set(status) == {"train", "evaluate"}
    assert all("nnlib" in json.dumps(status[stage]) for stage in status)


def test_bytecode_beside_the_code_makes_nothing_out_of_date(project: Project) -> None:
    """Running the stages writes __pycache__ folders into the dependency folders; DVC
    ignores them (.dvcignore), so the pipeline stays up to date."""
    cache = project.root / "stages" / "data" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "stray.cpython-311.pyc").write_bytes(b"not code")
    assert json.loads(project.dvc("status", "--json").stdout) == {}


def test_metrics_show_json_holds_test_accuracy(project: Project) -> None:
    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    metrics = shown[""]["data"]["metrics.json"]["data"]
    assert isinstance(metrics["test"]["accuracy"], float)
    assert isinstance(metrics["train"]["loss"], float)


def test_metrics_show_fits_a_120_column_terminal(project: Project) -> None:
    """Per-class accuracy is a plot, not metric columns: evaluate's table stays readable
    (DVCLive's file adds its own columns to the full table)."""
    full = project.dvc("metrics", "show").stdout.splitlines()
    assert [line.split()[0] for line in full[1:]] == ["dvclive/metrics.json", "metrics.json"]
    table = project.dvc("metrics", "show", "metrics.json").stdout.splitlines()
    assert table[0].split() == [
        "Path",
        "test.accuracy",
        "test.f1_macro",
        "test.loss",
        "train.accuracy",
        "train.f1_macro",
        "train.loss",
    ]
    assert max(len(line) for line in table) <= 120


def test_plots_show_renders_every_plot_once(project: Project) -> None:
    shown = json.loads(project.dvc("plots", "show", "--json").stdout)["data"]
    live = [f"dvclive/plots/metrics/{name}.tsv" for name in METRICS]
    evaluate = ["reports/confusion.csv", "reports/per_class_accuracy.csv"]
    assert sorted(shown) == sorted([*live, *evaluate, "reports/misclassified.png"])
    project.dvc("plots", "show", "-o", "rendered")
    html = (project.root / "rendered" / "index.html").read_text()
    for title in ("val_accuracy.tsv", "Confusion matrix (test split)", "Per-class accuracy"):
        assert title in html
    assert list((project.root / "rendered").rglob("*.png"))


def test_exp_run_with_set_param_is_listed_by_exp_show(project: Project) -> None:
    project.dvc("exp", "run", "-S", "train.learning_rate=0.01")
    assert project.params()["train"]["learning_rate"] == 0.01

    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    learning_rates = []
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                params = rev["data"]["params"]["params.yaml"]["data"]
                learning_rates.append(params["train"]["learning_rate"])
    assert 0.01 in learning_rates


def test_forced_repro_twice_gives_identical_metrics_and_model(project: Project) -> None:
    outputs = RECORDED[:-1]
    project.dvc("repro", "--force")
    first = {name: (project.root / name).read_bytes() for name in outputs}
    project.dvc("repro", "--force")
    second = {name: (project.root / name).read_bytes() for name in outputs}
    assert first == second


MODULE_DUMP = """
import atexit, os, runpy, sys
def dump():
    root = os.getcwd()
    files = {os.path.relpath(m.__file__, root) for m in list(sys.modules.values())
             if getattr(m, "__file__", None) and os.path.abspath(m.__file__).startswith(root)}
    print("RAN", *sorted(files), file=sys.__stderr__)
atexit.register(dump)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_yaml_deps_name_exactly_the_code_folders_the_stage_runs(
    project: Project, stage: str
) -> None:
    """Run the stage's command with an import audit: every code file it runs lies in a
    folder (or is a file) its deps name, and every code dep holds a file it runs."""
    spec = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"][stage]
    module = spec["cmd"].split("-m ", 1)[1].split()[0]
    result = project.run(sys.executable, "-c", MODULE_DUMP, module)
    ran = set(result.stderr.split("RAN", 1)[1].split()) | {module.replace(".", "/") + ".py"}
    code_deps = {dep for dep in spec["deps"] if dep.split("/")[0] in ("nnlib", "stages")}

    def covering(file: str) -> set[str]:
        return {dep for dep in code_deps if file == dep or file.startswith(dep + "/")}

    assert sorted(file for file in ran if not covering(file)) == []
    used = set().union(*(covering(file) for file in ran))
    assert sorted(code_deps - used) == []


def test_a_run_that_learns_nothing_is_not_recorded(project: Project) -> None:
    """Adam at 1e6 keeps a finite loss but learns nothing: train fails in one line and DVC
    records nothing; the last good run comes back as DVC brings any run back."""
    before = digests(project.root, RECORDED)
    project.set_param("train", "learning_rate", 1e6)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    (line,) = error_lines(result)
    assert line.startswith("error: training is not learning: the training loss rose from ")
    assert line.endswith("a smaller learning rate usually helps (train.learning_rate is 1e+06)")
    assert ran_stages(result.stdout) == {"train"}
    assert_last_run_comes_back(project, before, RECORDED)


def test_a_key_added_by_hand_reruns_train_which_refuses_it(project: Project) -> None:
    """``train.dropout: 0.5`` would do nothing: DVC sees the change (train tracks the whole
    file), ``dvc params diff`` shows it key by key, and train refuses it, naming it."""
    before = digests(project.root, RECORDED)
    project.set_param("train", "dropout", 0.5)
    assert set(json.loads(project.dvc("status", "--json").stdout)) == {"train"}
    diff = project.dvc("params", "diff").stdout
    assert re.search(r"params\.yaml\s+train\.dropout\s+-\s+0\.5", diff), diff
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: params.yaml: unknown key train.dropout (did you mean model.dropout?)"
    ]
    assert "Epoch" not in result.stderr
    assert_last_run_comes_back(project, before, RECORDED)

    with (project.root / "params.yaml").open("a", encoding="utf-8") as params:
        params.write("batch_size: 64\n")
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: params.yaml: unknown key batch_size (did you mean train.batch_size?)"
    ]
    assert_last_run_comes_back(project, before, RECORDED)


def test_exp_run_refuses_a_key_it_appends(project: Project) -> None:
    """DVC refuses ``-S train.dropout=0.5`` for a key params.yaml lacks; ``+`` appends it,
    and train refuses the experiment, naming the key that exists."""
    before = digests(project.root, RECORDED)
    result = project.dvc("exp", "run", "-S", "+train.dropout=0.5", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: params.yaml: unknown key train.dropout (did you mean model.dropout?)"
    ]
    assert project.dvc("exp", "list", "--name-only").stdout.strip() == ""
    assert_last_run_comes_back(project, before, RECORDED)


def test_exp_run_trains_with_dropout(project: Project) -> None:
    """``dvc exp run -S model.dropout=0.2``: the model gets a dropout layer after each hidden
    layer, evaluate scores it, and the experiment is recorded."""
    project.dvc("exp", "run", "--name", "dropout-02", "-S", "model.dropout=0.2")
    assert project.params()["model"]["dropout"] == 0.2
    described = json.loads(str(np.load(project.root / "models" / "model.npz")["meta"]))
    assert [layer["kind"] for layer in described["layers"]] == [
        "dense",
        "dropout",
        "dense",
        "dropout",
        "dense",
    ]
    assert [layer.get("rate") for layer in described["layers"][1::2]] == [0.2, 0.2]
    assert "dropout-02" in project.dvc("exp", "list", "--name-only").stdout.split()


CNN = (
    "model.layers=[{type: conv2d, filters: 4, kernel: 5}, {type: maxpool2d, size: 2},"
    " {type: dropout, rate: 0.1}, {type: dense, units: 16, activation: tanh}]"
)


def test_exp_run_trains_a_cnn_of_layers_set_on_the_command_line(project: Project) -> None:
    """``dvc exp run -S 'model.hidden_sizes=[]' -S 'model.layers=[{...}, ...]'``: DVC's -S
    writes the entries into params.yaml, train builds and trains the
    convolutional network, evaluate scores it, and the experiment is recorded."""
    quick = ("-S", "train.learning_rate=0.01")  # eight steps from random patterns of pixels
    project.dvc("exp", "run", "--name", "cnn", "-S", "model.hidden_sizes=[]", "-S", CNN, *quick)
    model = project.params()["model"]
    assert model["hidden_sizes"] == []
    assert model["layers"] == [
        {"type": "conv2d", "filters": 4, "kernel": 5},
        {"type": "maxpool2d", "size": 2},
        {"type": "dropout", "rate": 0.1},
        {"type": "dense", "units": 16, "activation": "tanh"},
    ]
    described = json.loads(str(np.load(project.root / "models" / "model.npz")["meta"]))
    assert described["input_shape"] == [1, 28, 28]
    assert [layer["kind"] for layer in described["layers"]] == [
        "conv2d",
        "maxpool2d",
        "dropout",
        "flatten",
        "dense",
        "dense",
    ]
    assert len(read_live_folder(project.root / "dvclive")) == 2
    assert "test" in json.loads((project.root / "metrics.json").read_text())
    assert "cnn" in project.dvc("exp", "list", "--name-only").stdout.split()
    diff = project.dvc("params", "diff", "--json").stdout
    changed = json.loads(diff)["params.yaml"]  # lists as their text
    assert changed["model.hidden_sizes"] == {"old": "[64, 32]", "new": "[]"}
    assert changed["model.layers"]["old"] == "[]"
    assert "'filters': 4" in changed["model.layers"]["new"]


def test_exp_run_with_layers_beside_hidden_sizes_is_refused_naming_both(project: Project) -> None:
    before = digests(project.root, RECORDED)
    result = project.dvc("exp", "run", "-S", CNN, check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: params.yaml: model.hidden_sizes [64, 32] and model.layers (4 entries) are both "
        "set, and the network is one or the other: set model.hidden_sizes to [] for "
        "model.layers' network (dvc exp run -S 'model.hidden_sizes=[]' -S "
        "'model.layers=[...]'), or model.layers to [] for the MLP"
    ]
    assert "Epoch" not in result.stderr
    assert project.dvc("exp", "list", "--name-only").stdout.strip() == ""
    assert_last_run_comes_back(project, before, RECORDED)


def test_exp_run_takes_a_learning_rate_in_exponent_form(project: Project) -> None:
    """``-S train.learning_rate=1e-3``: YAML 1.1 (PyYAML) reads ``1e-3`` as text where it
    appears as such; either way train runs with 0.001."""
    project.set_param("train", "learning_rate", 0.01)
    project.set_param("train", "lr_schedule", "constant")
    project.commit("learning rate 0.01")
    project.dvc("exp", "run", "-S", "train.learning_rate=1e-3")
    assert float(project.params()["train"]["learning_rate"]) == 0.001
    rows = read_live_folder(project.root / "dvclive")
    assert [row["learning_rate"] for row in rows] == [0.001, 0.001]


def test_a_full_disk_under_repro_records_nothing(project: Project) -> None:
    """The disk fills up while train saves: the history (1 kB) was written, the model
    (200 kB) was not. The failure names the file, DVC records nothing, and the last good run
    comes back."""
    before = digests(project.root, RECORDED)
    project.set_param("train", "epochs", 3)
    project.limit_stage_file_size(64 * 1024)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert "Epoch 3/3" in result.stderr
    assert error_lines(result) == ["error: models/model.npz: cannot write (File too large)"]
    assert_last_run_comes_back(project, before, RECORDED)
