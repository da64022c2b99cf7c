"""A scratch copy of the project as its own git + DVC repository, for pipeline tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from support import REPO
from support.params import write_params
from support.stage import digests, temporaries

PROJECT_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore", "dvc.yaml")
# .dvc/plots: the custom plot templates and the offline page template (built by make setup).
PROJECT_DIRS = ("nnlib", "stages", ".dvc/plots")


# Set RLIMIT_FSIZE (SIGXFSZ ignored: a failing write, not a killed process), then become
# ``python ARGS...`` with the limit in place.
_LIMIT_THEN_EXEC = (
    "import os, resource, signal, sys; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


class Project:
    """A copy of the project's code and pipeline in ``root``, driven by real ``dvc`` commands."""

    def __init__(self, root: Path, mirror: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MNIST_MIRROR")}
        # The stages' `python` must be this interpreter, whose environment has the dependencies.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env["PATH"]])
        self.env["MNIST_MIRROR"] = str(mirror)

    @classmethod
    def create(
        cls, root: Path, mirror: Path, params: Mapping[str, Mapping[str, Any]] | None
    ) -> Project:
        """Copy the code into ``root``, write params (the project's, with ``params``' keys
        replaced per section and augmentation off; None: the project's params.yaml as it
        is), then ``git init`` and commit."""
        if params is None:
            root.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / "params.yaml", root / "params.yaml")
        else:
            write_params(root, **params)
        for name in PROJECT_FILES:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
        for name in PROJECT_DIRS:
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        project = cls(root, mirror)
        project.git("init", "-q")
        project.git("config", "user.email", "tests@example.com")
        project.git("config", "user.name", "tests")
        project.commit("project copy")
        return project

    def copy(self, root: Path) -> Project:
        """A private copy in ``root`` (repository, DVC cache and workspace), for one test to
        change while the others start from this one."""
        shutil.copytree(self.root, root, symlinks=True)
        return Project(root, Path(self.env["MNIST_MIRROR"]))

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the copy; AssertionError with its output if it fails and ``check``."""
        result = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def limit_stage_file_size(self, n_bytes: int) -> None:
        """From now on, the stages DVC runs (``python`` on PATH) cannot grow a file beyond
        ``n_bytes``: their writes fail with EFBIG as on a full disk. DVC's own files are
        not limited."""
        shim = self.root.parent / "limited-bin" / "python"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -c "{_LIMIT_THEN_EXEC}" {n_bytes} "$@"\n',
            encoding="utf-8",
        )
        shim.chmod(0o755)
        self.env["PATH"] = os.pathsep.join([str(shim.parent), self.env["PATH"]])

    def dvc(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "dvc", *args, check=check, timeout=timeout)

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def params(self) -> dict[str, Any]:
        """The copy's current params.yaml."""
        return yaml.safe_load((self.root / "params.yaml").read_text(encoding="utf-8"))

    def set_param(self, section: str, key: str, value: Any) -> None:
        """Change one key of the copy's params.yaml."""
        params = self.params()
        params[section][key] = value
        text = yaml.safe_dump(params, sort_keys=False)
        (self.root / "params.yaml").write_text(text, encoding="utf-8")


def ran_stages(output: str) -> set[str]:
    """The stages a dvc command's output says it ran."""
    return set(re.findall(r"Running stage '(\w+)'", output))


def assert_last_run_comes_back(
    project: Project, before: Mapping[str, str | None], recorded: Sequence[str]
) -> None:
    """After a failed ``dvc repro``: dvc.lock still records the last good run, ``dvc
    checkout`` brings its model back, and with params.yaml put back ``dvc repro`` restores
    every one of ``recorded`` (files, as ``support.stage.digests`` of ``before``) from the
    run-cache without running a stage, leaving no temporary file."""
    assert digests(project.root, ["dvc.lock"]) == {"dvc.lock": before["dvc.lock"]}
    project.dvc("checkout", "models/model.npz")
    assert digests(project.root, ["models/model.npz"]) == {
        "models/model.npz": before["models/model.npz"]
    }
    project.git("checkout", "params.yaml")
    assert ran_stages(project.dvc("repro").stdout) == set()
    assert digests(project.root, recorded) == before
    assert temporaries(project.root) == []
