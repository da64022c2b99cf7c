"""Working as a team in tests: moto's S3 server on 127.0.0.1 as the DVC remote, a bare git
origin, and clones that reach both. Credentials reach the dvc subprocesses through their
environment only; the test process talks to the server with the same throwaway values
passed as arguments."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.dvc_project import Project

# Throwaway values moto accepts; never written to a file.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
PREFIX = "store"


def aws_environment(project: Project) -> None:
    """Point the project's dvc subprocesses at moto through the environment only."""
    for name in list(project.env):
        if name.startswith(("AWS_", "DVC_STUDIO_", "STUDIO_")):
            del project.env[name]
    project.env.update(CREDENTIALS)
    project.env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            # Credentials from here, before any profile file; never the instance metadata service.
            "AWS_EC2_METADATA_DISABLED": "true",
            "DVC_NO_ANALYTICS": "1",
        }
    )


class S3Server:
    """moto's S3 server on 127.0.0.1 at a free port, in a thread of this process."""

    def __init__(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self, bucket: str, prefix: str) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def stop(self) -> None:
        self._server.stop()


def add_remote(project: Project, endpoint: str, bucket: str) -> None:
    """The team's remote, committed: a URL and an endpoint, no credentials."""
    project.dvc("remote", "add", "-d", "storage", f"s3://{bucket}/{PREFIX}")
    project.dvc("remote", "modify", "storage", "endpointurl", endpoint)
    config = (project.root / ".dvc" / "config").read_text()
    assert "testing" not in config
    assert "secret" not in config
    project.commit("remote storage")


def clone(origin: Path, root: Path) -> Project:
    """A fresh clone of ``origin`` whose stages could not download anything."""
    subprocess.run(["git", "clone", "-q", str(origin), str(root)], check=True)
    project = Project(root, mirror=root.parent / "no-mirror-here")
    aws_environment(project)
    return project


def share(project: Project, origin: Path) -> None:
    """Make ``origin`` a bare repository holding ``project``'s ``main``, its ``origin``."""
    project.git("branch", "-M", "main")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "-u", "origin", "main")
