"""A scratch copy of the project as its own git + DVC repository, for pipeline tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "mnist"
PROJECT_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore", "dvc.yaml")
# .dvc/plots: the custom plot templates and the offline page template (built by make setup).
PROJECT_DIRS = ("nnlib", "stages", ".dvc/plots")


class Project:
    """A copy of the project's code and pipeline in ``root``, driven by real ``dvc`` commands."""

    def __init__(self, root: Path, mirror: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MNIST_MIRROR")}
        # The stages' `python` must be this interpreter, whose environment has the dependencies.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env["PATH"]])
        self.env["MNIST_MIRROR"] = str(mirror)

    @classmethod
    def create(cls, root: Path, mirror: Path, params: dict[str, dict[str, Any]]) -> Project:
        """Copy the code into ``root``, write params (project defaults updated by ``params``),
        then ``git init`` and commit."""
        for name in PROJECT_FILES:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
        for name in PROJECT_DIRS:
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        defaults = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
        for section, values in params.items():
            defaults[section].update(values)
        project = cls(root, mirror)
        project.write_params(defaults)
        project.git("init", "-q")
        project.git("config", "user.email", "tests@example.com")
        project.git("config", "user.name", "tests")
        project.commit("project copy")
        return project

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text(encoding="utf-8"))

    def write_params(self, params: dict[str, Any]) -> None:
        text = yaml.safe_dump(params, sort_keys=False)
        (self.root / "params.yaml").write_text(text, encoding="utf-8")

    def set_param(self, section: str, key: str, value: Any) -> None:
        params = self.params()
        params[section][key] = value
        self.write_params(params)
