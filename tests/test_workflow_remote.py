"""The workflow's DVC remote steps, run as GitHub runs them, against moto's S3 server.

The report job pulls before rerunning the pipeline and, on main, pushes after it, each only
when the repository names a default remote and its secrets are set. The steps' scripts are
read from .github/workflows/ci.yml and run with GitHub's shell (``bash -eo pipefail``) in a
tiny project (tests/support/tiny_pipeline.py) whose remote is moto's S3 server on 127.0.0.1;
an unset secret reaches a step as an empty variable, as on GitHub.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support import REPO
from support.dvc_project import Project
from support.tiny_pipeline import tiny_project

pytestmark = [pytest.mark.pipeline, pytest.mark.s3]

boto3 = pytest.importorskip("boto3", reason="moto[server] and boto3 come with the dev extra")
moto_server = pytest.importorskip("moto.server", reason="moto[server] comes with the dev extra")
pytest.importorskip("dvc_s3", reason="dvc-s3 comes with the s3 extra (make setup installs it)")

BUCKET = "ci-remote"
MODEL = "models/model.npz"
SECRETS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # moto's


def step_script(prefix: str) -> str:
    """The ``run`` script of the report job's step whose name starts with ``prefix``."""
    workflow = yaml.load(
        (REPO / ".github" / "workflows" / "ci.yml").read_text(), Loader=yaml.BaseLoader
    )
    steps = workflow["jobs"]["report"]["steps"]
    (script,) = [step["run"] for step in steps if step.get("name", "").startswith(prefix)]
    return script


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, object]]:
    """moto's S3 server on 127.0.0.1 with an empty bucket: its endpoint and a client."""
    server = moto_server.ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            **{
                "aws_access_key_id": SECRETS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": SECRETS["AWS_SECRET_ACCESS_KEY"],
            },
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.stop()


def keys(client: object, prefix: str) -> set[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return {item["Key"] for item in listed.get("Contents", [])}


def run_step(project: Project, script: str, secrets: bool) -> subprocess.CompletedProcess[str]:
    """``script`` as a GitHub step in ``project``: ``.venv/bin/activate`` puts this
    interpreter's dvc first on PATH; the secrets are set, or empty as unset ones are."""
    activate = project.root / ".venv" / "bin" / "activate"
    activate.parent.mkdir(parents=True, exist_ok=True)
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    env = {k: v for k, v in project.env.items() if not k.startswith("AWS_")}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    env.update(SECRETS if secrets else dict.fromkeys(SECRETS, ""))
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def with_remote(project: Project, endpoint: str, prefix: str) -> None:
    project.dvc("remote", "add", "-d", "storage", f"s3://{BUCKET}/{prefix}")
    project.dvc("remote", "modify", "storage", "endpointurl", endpoint)
    project.commit("remote storage")


def clone_of(project: Project, root: Path) -> Project:
    """A fresh git clone of ``project``, whose stages could download nothing."""
    subprocess.run(["git", "clone", "-q", str(project.root), str(root)], check=True)
    return Project(root, mirror=root.parent / "no-mirror")


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory, server: tuple[str, object]) -> Project:
    """A tiny project with the remote in its config, after a committed run, nothing pushed."""
    project = tiny_project(tmp_path_factory.mktemp("ci-remote"))
    with_remote(project, server[0], "store")
    project.dvc("repro")
    project.commit("first run")
    return project


def test_push_step_without_secrets_pushes_nothing(
    committed: Project, server: tuple[str, object]
) -> None:
    before = keys(server[1], "store/")
    result = run_step(committed, step_script("dvc push"), secrets=False)
    assert result.returncode == 0, result.stderr
    assert "no credentials for it: nothing pushed" in result.stdout
    assert keys(server[1], "store/") == before
    assert not any(key.startswith("store/runs/") for key in before)  # nothing pushed it before


def test_push_then_pull_steps_share_the_run_through_the_remote(
    committed: Project, server: tuple[str, object], tmp_path: Path
) -> None:
    pushed = run_step(committed, step_script("dvc push"), secrets=True)
    assert pushed.returncode == 0, pushed.stderr
    stored = keys(server[1], "store/")
    assert any(key.startswith("store/files/md5/") for key in stored)
    assert any(key.startswith("store/runs/") for key in stored)  # --run-cache

    clone = clone_of(committed, tmp_path / "clone")
    assert not (clone.root / MODEL).exists()
    pulled = run_step(clone, step_script("dvc pull"), secrets=True)
    assert pulled.returncode == 0, pulled.stderr
    assert (clone.root / MODEL).read_bytes() == (committed.root / MODEL).read_bytes()
    assert "up to date" in clone.dvc("status").stdout  # make repro would run nothing


def test_pull_step_without_secrets_leaves_the_pipeline_to_run(
    committed: Project, tmp_path: Path
) -> None:
    clone = clone_of(committed, tmp_path / "clone")
    result = run_step(clone, step_script("dvc pull"), secrets=False)
    assert result.returncode == 0, result.stderr
    assert "the pipeline runs from scratch" in result.stdout
    assert not (clone.root / MODEL).exists()


def test_pull_step_with_nothing_pushed_for_the_branch_goes_on(
    committed: Project, tmp_path: Path
) -> None:
    """A branch whose outputs nobody pushed: the pull misses them and the job goes on to run
    the pipeline."""
    clone = clone_of(committed, tmp_path / "clone")
    clone.dvc("remote", "modify", "storage", "url", f"s3://{BUCKET}/empty-store")
    result = run_step(clone, step_script("dvc pull"), secrets=True)
    assert result.returncode == 0, result.stderr
    assert not (clone.root / MODEL).exists()


def test_steps_without_a_remote_do_nothing_even_with_secrets(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    for prefix, said in (("dvc pull", "runs from scratch"), ("dvc push", "nothing pushed")):
        result = run_step(project, step_script(prefix), secrets=True)
        assert result.returncode == 0, result.stderr
        assert said in result.stdout
