"""Working as a team through a DVC remote on a real S3 server: moto's server mode on 127.0.0.1.

Clone A runs the tiny pipeline and pushes data, model and run-cache to the remote and its
commits to a bare git origin; other clones start from that origin with a mirror that does not
exist, so any download or training they did would fail or show. Credentials reach the dvc
subprocesses through their environment only; the test process talks to the server with the
same throwaway values passed as arguments.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from support.dvc_project import Project
from support.s3 import PREFIX, S3Server, add_remote, aws_environment, clone, share
from support.tiny_pipeline import tiny_project

pytestmark = [pytest.mark.pipeline, pytest.mark.s3]

pytest.importorskip("boto3", reason="moto[server] and boto3 come with the dev extra")
pytest.importorskip("moto.server", reason="moto[server] comes with the dev extra")
pytest.importorskip("dvc_s3", reason="dvc-s3 comes with the s3 extra (make setup installs it)")

BUCKET = "mnist-team"
MODEL = "models/model.npz"
ARTIFACT = "mnist-mlp"

ONE_ATTEMPT = {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "1"}


def ran_stages(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", result.stdout + result.stderr))


def cached_outputs(project: Project, rev: str) -> dict[str, str]:
    """Each output DVC caches (data and model, not the git-tracked reports) -> its md5 at
    ``rev`` (``.dir`` for directories)."""
    lock = yaml.safe_load(project.git("show", f"{rev}:dvc.lock").stdout)
    md5s = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}
    return {path: md5s[path] for path in ("data/raw", "data/processed", MODEL)}


@dataclass
class Team:
    server: S3Server
    origin: Path
    a: Project
    model: bytes  # the committed model, as A trained it
    experiment: str  # an experiment A ran (train.epochs=3), not yet shared
    experiment_model: bytes


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    base = tmp_path_factory.mktemp("team")
    server = S3Server()
    server.client.create_bucket(Bucket=BUCKET)
    try:
        a = tiny_project(base / "a")
        aws_environment(a)
        add_remote(a, server.endpoint, BUCKET)
        a.dvc("repro")
        a.commit("first run")
        origin = base / "origin.git"
        share(a, origin)
        a.dvc("push", "--run-cache")
        model = (a.root / MODEL).read_bytes()

        a.dvc("exp", "run", "-n", "three-epochs", "-S", "train.epochs=3")
        yield Team(server, origin, a, model, "three-epochs", (a.root / MODEL).read_bytes())
    finally:
        server.stop()


def test_push_sends_data_model_and_run_cache(team: Team) -> None:
    keys = team.server.keys(BUCKET, PREFIX + "/")
    for path, md5 in cached_outputs(team.a, "main").items():
        assert f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" in keys, path
    assert any(key.startswith(f"{PREFIX}/runs/") for key in keys)


def test_a_second_clone_pulls_the_model_and_trains_nothing(team: Team, tmp_path: Path) -> None:
    b = clone(team.origin, tmp_path / "b")
    assert not (b.root / MODEL).exists()

    b.dvc("pull")
    assert (b.root / MODEL).read_bytes() == team.model
    assert ran_stages(b.dvc("repro")) == set()
    assert "up to date" in b.dvc("status").stdout


def test_repro_pull_fetches_what_is_missing_and_runs_nothing(team: Team, tmp_path: Path) -> None:
    c = clone(team.origin, tmp_path / "c")
    assert ran_stages(c.dvc("repro", "--pull")) == set()
    assert (c.root / MODEL).read_bytes() == team.model
    assert (c.root / "data" / "processed").is_dir()


def test_a_run_a_never_committed_reaches_b_through_the_run_cache(
    team: Team, tmp_path: Path
) -> None:
    """A trains 4 epochs, commits nothing and pushes (its outputs and run-cache); B, at the
    same commit, asks for the same params: ``dvc pull --run-cache`` then ``dvc repro --pull``
    (which fetches the outputs the run-cache names) restore A's model and history without
    training; evaluate, whose git-tracked files the remote does not hold, scores it again."""
    a = team.a.copy(tmp_path / "a")
    aws_environment(a)
    a.git("checkout", "-q", "--", ".")
    a.set_param("train", "epochs", 4)
    assert ran_stages(a.dvc("repro")) == {"train", "evaluate"}
    a.dvc("push", "--run-cache")
    trained = (a.root / MODEL).read_bytes()
    assert trained != team.model

    b = clone(team.origin, tmp_path / "b")
    b.set_param("train", "epochs", 4)
    b.dvc("pull", "--run-cache")
    repro = b.dvc("repro", "--pull")
    assert ran_stages(repro) == {"evaluate"}  # its git-tracked files are not in the remote
    assert "Stage 'train' is cached - skipping run" in repro.stdout
    assert (b.root / MODEL).read_bytes() == trained
    assert (b.root / "metrics.json").read_bytes() == (a.root / "metrics.json").read_bytes()
    live = "dvclive/metrics.json"
    assert (b.root / live).read_bytes() == (a.root / live).read_bytes()


def test_an_experiment_pushed_from_a_is_listed_in_b_after_exp_pull(
    team: Team, tmp_path: Path
) -> None:
    b = clone(team.origin, tmp_path / "b")
    assert team.experiment not in b.dvc("exp", "list", "--all-commits").stdout

    team.a.dvc("exp", "push", "origin", team.experiment)
    assert team.experiment in b.dvc("exp", "list", "origin").stdout
    b.dvc("exp", "pull", "origin", team.experiment)

    shown = json.loads(b.dvc("exp", "show", "--json").stdout)
    names = {exp.get("name") for commit in shown for exp in commit.get("experiments") or []}
    assert team.experiment in names
    b.dvc("exp", "apply", team.experiment)
    assert b.params()["train"]["epochs"] == 3
    assert (b.root / MODEL).read_bytes() == team.experiment_model  # pulled, not retrained


def test_the_model_artifact_into_an_empty_folder(team: Team, tmp_path: Path) -> None:
    """``dvc artifacts get`` (a registered version) and ``dvc get`` (a path), from the origin."""
    declared = yaml.safe_load((team.a.root / "dvc.yaml").read_text())["artifacts"][ARTIFACT]
    assert declared["path"] == MODEL
    assert declared["type"] == "model"
    assert declared["desc"]
    assert declared["labels"]
    team.a.git("tag", "-a", f"{ARTIFACT}@v1.0.0", "-m", "the tiny model", "main")
    team.a.git("push", "-q", "origin", f"{ARTIFACT}@v1.0.0")
    empty = tmp_path / "empty"
    empty.mkdir()
    outsider = Project(empty, mirror=tmp_path / "no-mirror-here")
    aws_environment(outsider)

    outsider.dvc("artifacts", "get", str(team.origin), ARTIFACT, "-o", "artifact.npz")
    outsider.dvc("get", str(team.origin), MODEL, "-o", "model.npz")
    assert sorted(p.name for p in empty.iterdir()) == ["artifact.npz", "model.npz"]
    assert (empty / "artifact.npz").read_bytes() == team.model
    assert (empty / "model.npz").read_bytes() == team.model


def test_push_and_pull_fail_with_the_server_down_and_lose_nothing(
    team: Team, tmp_path: Path
) -> None:
    server = S3Server()
    server.client.create_bucket(Bucket="down-bucket")
    d = Project(tmp_path / "d", mirror=tmp_path / "no-mirror-here")
    shutil.copytree(team.a.root, d.root, symlinks=True)
    aws_environment(d)
    d.dvc("remote", "add", "-f", "-d", "storage", f"s3://down-bucket/{PREFIX}")
    d.dvc("remote", "modify", "storage", "endpointurl", server.endpoint)
    d.commit("the other remote")
    server.stop()
    workspace = (d.root / MODEL).read_bytes()
    # One try per request: botocore's default retries (with back-off) only add a minute.
    d.env.update(ONE_ATTEMPT)

    pushed = d.dvc("push", check=False)
    assert pushed.returncode != 0
    assert pushed.stderr.startswith("ERROR: "), pushed.stderr
    assert f'Could not connect to the endpoint URL: "{server.endpoint}/' in pushed.stderr
    assert (d.root / MODEL).read_bytes() == workspace
    (d.root / MODEL).unlink()
    d.dvc("checkout", MODEL)  # the local cache still holds it
    assert (d.root / MODEL).read_bytes() == workspace

    e = clone(d.root, tmp_path / "e")
    e.env.update(ONE_ATTEMPT)
    pulled = e.dvc("pull", check=False)
    assert pulled.returncode != 0
    assert pulled.stderr.startswith("ERROR: "), pulled.stderr
    assert f'Could not connect to the endpoint URL: "{server.endpoint}/' in pulled.stderr
    assert not (e.root / "models").exists()
    assert e.run("git", "status", "--porcelain").stdout == ""
