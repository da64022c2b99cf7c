"""The project's layout: what nnlib may import, what stays at the top of stages/, and which
folders the data stages depend on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO
from support.stage import stage_environment

COMMANDS = ("download", "preprocess", "train", "evaluate")
OPTIONAL_COMMANDS = ("predict", "serve")  # commands, not DVC stages
# the names the blog post this project follows imports from its library
SEED_NAMES = (
    "Model",
    "DenseLayer",
    "ReLU",
    "Softmax",
    "CrossEntropyLoss",
    "Adam",
    "Dataset",
    "training_loop",
    "accuracy",
)


def imported_packages(path: Path, package: str) -> set[str]:
    """The top-level package of everything the module at ``path`` imports, anywhere in it:
    import statements (a relative import is ``package`` itself) and calls of
    ``importlib.import_module`` or ``__import__`` whose name starts with a literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and _names_an_importer(node.func) and node.args:
            literal = _leading_literal(node.args[0])
            if literal:
                found.add(literal.split(".")[0])
    return found


def _names_an_importer(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _leading_literal(arg: ast.expr) -> str:
    """The constant start of a string or f-string argument ("" if there is none)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value)
    return ""


def nnlib_modules_imported_by(path: Path) -> set[str]:
    """The nnlib modules (``model``, ``layers``, ...) that the module at ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnlib."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("nnlib."))
    return found


def nnlib_in_a_fresh_interpreter(code: str, cwd: Path) -> str:
    """Run ``code`` in a new interpreter (the checkout importable); return what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=stage_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_nnlib_imports_only_the_standard_library_numpy_and_itself() -> None:
    allowed = {*sys.stdlib_module_names, "numpy", "nnlib"}
    modules = sorted((REPO / "nnlib").rglob("*.py"))
    assert REPO / "nnlib" / "model.py" in modules
    others = {
        str(path.relative_to(REPO)): sorted(imported_packages(path, "nnlib") - allowed)
        for path in modules
    }
    assert {name: found for name, found in others.items() if found} == {}


def test_stages_top_level_holds_only_the_commands() -> None:
    """``stages/*.py`` are ``__init__.py`` and the commands; helpers live in subpackages."""
    top = REPO / "stages"
    files = {path.name for path in top.iterdir() if path.is_file()}
    optional = {f"{name}.py" for name in OPTIONAL_COMMANDS} & files
    assert files == {"__init__.py", *(f"{name}.py" for name in COMMANDS), *optional}
    folders = [path for path in top.iterdir() if path.is_dir() and path.name != "__pycache__"]
    assert folders
    assert [path.name for path in folders if not (path / "__init__.py").is_file()] == []


@pytest.mark.parametrize("stage", ["download", "preprocess"])
def test_data_stages_depend_on_no_nnlib_file(stage: str) -> None:
    """A change to the network never reruns the download or the split."""
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]["deps"]
    assert f"stages/{stage}.py" in deps
    assert [dep for dep in deps if dep.rstrip("/") == "nnlib" or dep.startswith("nnlib/")] == []


def test_the_blog_posts_names_import_from_nnlib(tmp_path: Path) -> None:
    """``from nnlib import Model, DenseLayer, ...``, as in the blog post this project follows,
    works in a fresh interpreter."""
    code = (
        f"from nnlib import {', '.join(SEED_NAMES)}\n"
        f"print(*(f'{{o.__module__}}.{{o.__name__}}' for o in ({', '.join(SEED_NAMES)},)))"
    )
    printed = nnlib_in_a_fresh_interpreter(code, tmp_path).split()
    assert [name.rsplit(".", 1)[1] for name in printed] == list(SEED_NAMES)
    assert all(name.startswith("nnlib.") for name in printed)


def test_nnlib_modules_import_each_other_without_a_cycle() -> None:
    """The imports between nnlib's modules form no cycle (serialization knows no model)."""
    modules = {path.stem: path for path in (REPO / "nnlib").glob("*.py")}
    graph = {name: nnlib_modules_imported_by(path) & set(modules) for name, path in modules.items()}
    assert "model" not in graph["serialization"]
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, f"import cycle: {' -> '.join((*stack, name))}"
        if name in done:
            return
        for other in graph[name] - {"__init__"}:
            visit(other, (*stack, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_nnlib_knows_nothing_of_mnist_or_the_pipeline() -> None:
    """No nnlib source names MNIST, images or the stages."""
    words = ("mnist", "stages", "pixel", "params.yaml")
    found = {
        str(path.relative_to(REPO)): [w for w in words if w in path.read_text("utf-8").lower()]
        for path in (REPO / "nnlib").rglob("*.py")
    }
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_no_test_module_imports_another() -> None:
    """Shared code lives in conftest.py and tests/support, never in a test module."""
    tests = REPO / "tests"
    importers = sorted([*tests.glob("*.py"), *(tests / "support").rglob("*.py")])
    assert tests / "conftest.py" in importers
    found = {
        str(path.relative_to(tests)): sorted(
            name for name in imported_packages(path, "tests") if name.startswith("test_")
        )
        for path in importers
    }
    assert {name: imported for name, imported in found.items() if imported} == {}
