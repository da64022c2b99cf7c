""".github/workflows: GitHub's workflow schema, zizmor's audits, and what the docs promise.

check-jsonschema validates each workflow against its vendored copy of GitHub's workflow schema
(SchemaStore's), and zizmor audits it for the known ways a workflow leaks tokens or runs
injected code; both run offline. Copies broken on purpose must fail each check, so that a clean
result means something. docs/reviewing.md lists the commands the workflow runs; they must be
the ones it runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CI = REPO / ".github" / "workflows" / "ci.yml"
DOCS = REPO / "docs" / "reviewing.md"
# The commands a workflow step runs that the docs list: the project's own, not shell plumbing.
COMMAND = re.compile(r"^(make|dvc|bash \.ci/run)\b")


def tool(name: str) -> str:
    """A command-line tool of this environment (the dev extra installs both)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: make setup installs the dev extra")
    return str(path)


def check_schema(workflow: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*command, str(workflow)], capture_output=True, text=True, check=False)


def audit(workflow: Path) -> tuple[int, list[dict[str, Any]]]:
    """zizmor's exit code and findings (``ident``, ``determinations``, ...) for ``workflow``."""
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--format", "json", "--no-progress", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
        cwd=workflow.parent,
    )
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def load(workflow: Path) -> dict[str, Any]:
    """The workflow as plain strings (YAML 1.1 would read the ``on`` key as ``True``)."""
    return yaml.load(workflow.read_text(), Loader=yaml.BaseLoader)


def run_scripts(workflow: dict[str, Any]) -> dict[str, list[str]]:
    """Job id -> the ``run`` scripts of its steps."""
    return {
        job_id: [step["run"] for step in job["steps"] if "run" in step]
        for job_id, job in workflow["jobs"].items()
    }


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = CI.read_text()
    assert old in text
    copy = tmp_path / ".github" / "workflows" / "ci.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(text.replace(old, new, 1))
    return copy


def test_the_project_has_its_workflow() -> None:
    assert CI in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_matches_githubs_schema(workflow: Path) -> None:
    result = check_schema(workflow)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validation done" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_zizmor_finds_nothing(workflow: Path) -> None:
    code, findings = audit(workflow)
    assert findings == []
    assert code == 0


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        # A job key misspelt: GitHub refuses the whole workflow.
        (
            "    runs-on: ubuntu-24.04\n    timeout-minutes: 60",
            "    run-on: ubuntu-24.04\n    timeout-minutes: 60",
            "run-on",
        ),
        # A step that both uses an action and runs a script.
        (
            "      - name: make setup\n        run: make setup",
            "      - name: make setup\n        uses: actions/cache@v4\n        run: make setup",
            "is not valid under any of the given schemas",
        ),
        ("  pull_request:\n", "  pull_requests:\n", "pull_requests"),
    ],
    ids=["misspelt-key", "uses-and-run", "unknown-event"],
)
def test_schema_check_fails_a_broken_copy(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    result = check_schema(broken_copy(tmp_path, old, new))
    assert result.returncode == 1
    assert complaint in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new", "finding"),
    [
        # The pull request's title, pasted into a shell script: code injection.
        ('echo "$marker";', 'echo "${{ github.event.pull_request.title }}";', "template-injection"),
        # The checkout leaves the token in .git/config for any later step to read.
        (
            "          fetch-depth: 0\n          persist-credentials: false\n",
            "          fetch-depth: 0\n",
            "artipacked",
        ),
        # A job that may write everything (the workflow's default is none).
        (
            "    permissions:\n      contents: read # the checkout\n",
            "    permissions: write-all\n",
            "excessive-permissions",
        ),
        # Someone else's action at a branch: whoever moves the branch runs code in the job.
        (
            "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97 # v7.0.0",
            "someone/setup-python@main",
            "unpinned-uses",
        ),
    ],
    ids=["template-injection", "persisted-credentials", "write-all", "unpinned"],
)
def test_zizmor_fails_a_broken_copy(tmp_path: Path, old: str, new: str, finding: str) -> None:
    code, findings = audit(broken_copy(tmp_path, old, new))
    assert code != 0
    assert finding in {item["ident"] for item in findings}


def test_every_action_is_pinned_by_commit() -> None:
    for workflow in WORKFLOWS:
        uses = re.findall(r"uses:\s*(\S+)(.*)", workflow.read_text())
        assert uses
        for action, comment in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
            assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), f"{action}: no version comment"


def test_least_permissions() -> None:
    """No default permission; only the comment job writes, and it runs no code of the branch."""
    workflow = load(CI)
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    for job_id, job in jobs.items():
        writes = {scope for scope, level in job["permissions"].items() if level == "write"}
        assert writes == ({"pull-requests"} if job_id == "comment" else set()), job_id
    comment_steps = jobs["comment"]["steps"]
    assert not any("checkout" in step.get("uses", "") for step in comment_steps)
    assert "make" not in " ".join(step.get("run", "") for step in comment_steps)


def test_the_report_job_checks_out_the_history_and_only_the_data_steps_get_secrets() -> None:
    jobs = load(CI)["jobs"]
    checkout = next(s for s in jobs["report"]["steps"] if "checkout" in s.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == "0"
    with_secrets = [
        step["run"]
        for job in jobs.values()
        for step in job["steps"]
        if "secrets." in json.dumps(step.get("env", {}))
    ]
    assert len(with_secrets) == 2
    pull, push = with_secrets
    assert "dvc pull --run-cache" in pull
    assert "dvc push --run-cache" in push


def test_triggers_are_pull_requests_and_main() -> None:
    on = load(CI)["on"]
    assert set(on) == {"pull_request", "push"}
    assert on["push"]["branches"] == ["main"]


def test_every_run_script_is_valid_bash() -> None:
    for job_id, scripts in run_scripts(load(CI)).items():
        for script in scripts:
            result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
            assert result.returncode == 0, f"{job_id}: {result.stderr}"


def workflow_commands() -> list[str]:
    """The project's commands the workflow runs, in order (continued lines joined)."""
    commands = []
    for scripts in run_scripts(load(CI)).values():
        for script in scripts:
            for line in script.replace("\\\n", " ").splitlines():
                if COMMAND.match(line.strip()):
                    commands.append(line.strip())
    return commands


def documented_commands() -> list[str]:
    """The command list of docs/reviewing.md: the code block after "The commands it runs"."""
    text = DOCS.read_text()
    block = re.search(r"The commands it runs, in order:\n\n```bash\n(.*?)```", text, re.S)
    assert block, "docs/reviewing.md lists no commands"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_docs_list_the_commands_the_workflow_runs() -> None:
    assert documented_commands() == workflow_commands()


def test_the_report_target_runs_the_report_tool() -> None:
    """``make report``, as CI calls it, runs tools/report.py with the base and options given."""
    url = "https://github.com/o/r/actions/runs/1#artifacts"  # '#' is no comment here
    result = subprocess.run(
        ["make", "-n", "report", "BASE=origin/main", f"REPORT_ARGS=--images-link {url}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if "tools/report.py" in line]
    assert lines == [
        f'python tools/report.py --base "origin/main" --output report --images-link {url}'
    ]
