"""Running a stage command inside the test process: what ``python -m stages.<name>`` prints
and exits with, without the cost of a new interpreter (about 0.3 s each).

``invoke_stage`` goes through ``stages.cli.app.invoke``, the function ``run`` calls when the
command runs as a program, so exit codes and ``error:`` lines are the program's own. Around it,
the state a program would have to itself is set up and put back: the working folder, the
environment (without MNIST_MIRROR unless given), stdin/stdout/stderr (typer's ``CliRunner``),
the root logger (the command calls ``logging.basicConfig(force=True)``), the signal handlers,
Python's default warning filters, one BLAS thread (``stages/__init__.py`` sets it for a
program), and the limit of open files (predict raises it).

Use ``support.stage.run_stage`` (a real process) instead where a signal, a resource limit,
peak memory, a process group, the interpreter's own stdout encoding, a ``sitecustomize``
hook, or other processes running at the same time are part of what a test shows.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import resource
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from threadpoolctl import threadpool_limits
from typer.testing import CliRunner, formatting

from stages.cli.app import invoke
from support.stage import stage_command

# What a new interpreter starts with (``python -W`` unset): the filters of the warnings
# module's documentation, "Default Warning Filter".
_DEFAULT_IGNORED = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def invoke_stage(
    stage: str, cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stages.<stage> *args`` in ``cwd`` inside this process, as
    ``support.stage.run_stage`` runs it in a new one: the same exit code, stdout and stderr
    (text, universal newlines). MNIST_MIRROR is unset unless ``env`` sets it."""
    app = importlib.import_module(f"stages.{stage}").app
    environment: dict[str, str | None] = {"MNIST_MIRROR": None, **(env or {})}
    with (
        _program_state(cwd),
        CliRunner().isolation(env=environment) as (stdout, stderr, _),
    ):
        formatting.FORCED_WIDTH = _help_width()  # the runner forces 80; put back after
        code = _exit_code(lambda: invoke(app, list(args), prog_name=f"python -m stages.{stage}"))
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = stdout.getvalue(), stderr.getvalue()
    return subprocess.CompletedProcess(stage_command(stage, *args), code, _text(out), _text(err))


def _help_width() -> int:
    """The width click fills with ``--help`` in a program whose stdout is not a terminal:
    $COLUMNS (or 80) columns, at most 80, less 2 (``click.formatting.HelpFormatter``)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    return max(min(columns if columns > 0 else 80, 80) - 2, 50)


def _exit_code(command: Callable[[], int]) -> int:
    """What the interpreter would exit with after ``command()``: its code, 1 with the
    traceback on stderr for an exception that escapes it."""
    try:
        return command()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1


def _text(data: bytes) -> str:
    """``data`` as ``subprocess.run(..., text=True)`` reads a child's output."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _program_state(cwd: Path) -> Iterator[None]:
    """The process-wide state a command changes, or reads, set up as a new program's and
    put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # Taken off, not closed: basicConfig(force=True) closes the handlers it finds.
    for handler in handlers:
        root.removeHandler(handler)
    sigint, sigterm = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = Path.cwd()
    os.chdir(cwd)
    try:
        with _default_warnings(), threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        os.chdir(before)
        resource.setrlimit(resource.RLIMIT_NOFILE, open_files)
        signal.signal(signal.SIGINT, sigint)
        signal.signal(signal.SIGTERM, sigterm)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _default_warnings() -> Iterator[None]:
    """A new interpreter's warning filters, its warnings printed on (the current) stderr."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for category in _DEFAULT_IGNORED:
            warnings.simplefilter("ignore", category)
        warnings.showwarning = _print_warning
        yield


def _print_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
