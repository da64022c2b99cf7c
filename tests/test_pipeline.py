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

import pytest
import yaml
from support.dvc_project import Project
from support.idx import checksum_table, gz_files, make_arrays, write_checksums, write_files

pytestmark = pytest.mark.pipeline

# Keeping the last epoch's weights, so that more epochs always give another model.
TINY_PARAMS = {
    "data": {"val_size": 10},
    "train": {"epochs": 2, "batch_size": 16, "restore_best": False},
}
STAGES = ("download", "preprocess", "train", "evaluate")


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
    root = tmp_path / "project"
    shutil.copytree(built.root, root, symlinks=True)
    return Project(root, Path(built.env["MNIST_MIRROR"]))


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def test_repro_writes_metrics_and_a_second_repro_runs_nothing(project: Project) -> None:
    metrics = json.loads((project.root / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert set(metrics) == {"test", "train"}
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
    history = (project.root / "reports" / "train_history.csv").read_text().splitlines()
    assert len(history) == 1 + 4  # header + one row per epoch


def test_an_optimizer_edit_reruns_only_train(project: Project) -> None:
    """nnlib/optimizers.py is a dependency of train alone: neither the data stages nor
    evaluate (which never loads the optimizers) are out of date after it changes."""
    with (project.root / "nnlib" / "optimizers.py").open("a", encoding="utf-8") as source:
        source.write("# a comment changes the file's hash, not what it does\n")
    status = json.loads(project.dvc("status", "--json").stdout)
    assert set(status) == {"train"}
    assert "nnlib/optimizers.py" in json.dumps(status["train"])


def test_metrics_show_json_holds_test_accuracy(project: Project) -> None:
    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    metrics = shown[""]["data"]["metrics.json"]["data"]
    assert isinstance(metrics["test"]["accuracy"], float)
    assert isinstance(metrics["train"]["loss"], float)


def test_plots_show_renders_every_plot(project: Project) -> None:
    project.dvc("plots", "show", "-o", "rendered")
    html = (project.root / "rendered" / "index.html").read_text()
    for title in ("Loss", "Accuracy", "Confusion matrix (test split)", "misclassified.png"):
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
    outputs = ("metrics.json", "models/model.npz", "reports/train_history.csv")
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
def test_dvc_yaml_deps_list_every_code_file_the_stage_runs(project: Project, stage: str) -> None:
    """Run the stage's command with an import audit and compare with its deps."""
    spec = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"][stage]
    module = spec["cmd"].split("-m ", 1)[1].split()[0]
    result = project.run(sys.executable, "-c", MODULE_DUMP, module)
    ran = set(result.stderr.split("RAN", 1)[1].split()) | {module.replace(".", "/") + ".py"}
    code_deps = {dep for dep in spec["deps"] if dep.endswith(".py")}
    assert ran == code_deps
