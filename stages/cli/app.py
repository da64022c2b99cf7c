"""What every stage command shares: options, logging, one-line errors and exit codes."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from typer.exceptions import TyperException

from stages.cli.errors import PREVIEW_CHARS, ParamsError, StageError
from stages.cli.lifeline import Lifeline
from stages.data.errors import DataError
from stages.outputs.errors import OutputError
from stages.outputs.folders import locked_folders

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The exit codes of every command (docs/errors.md): 1 the run failed on what it read or
#: wrote, 2 the command line cannot be used as typed, 130 Ctrl-C, 143 SIGTERM.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
#: the reader of the output went away (``| head -1``): quiet, as a Unix tool killed by SIGPIPE
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

logger = logging.getLogger(__name__)


# Failures the user can act on: their message is the one line shown.
# Commands that use nnlib add its NNLibError (this module stays independent of nnlib).
EXPECTED_ERRORS = (StageError, ParamsError, DataError, OutputError)
#: the longest error line printed: values in messages are previews, this is the last guard
MAX_LINE = 20 * PREVIEW_CHARS
ERROR_PREFIX = "error: "


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so every output set removes its temporaries."""


def _raise_terminated(signum: int, frame: object) -> NoReturn:
    raise Terminated


def _parse_log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


#: where train writes the model and the other commands read it, and the processed data
MODEL_PATH = Path("models/model.npz")
DATA_DIR = Path("data/processed")
ModelOption = Annotated[
    Path,
    typer.Option(
        "--model",
        help="The model file (train writes it; evaluate, predict and serve read it).",
        dir_okay=False,
    ),
]
DataDirOption = Annotated[
    Path,
    typer.Option("--data-dir", help="The processed data preprocess wrote.", file_okay=False),
]
ParamsOption = Annotated[
    Path,
    typer.Option("--params", help="The params file to read.", dir_okay=False),
]
LogLevelOption = Annotated[
    str,
    typer.Option(
        "--log-level",
        "--log_level",
        help=f"One of {', '.join(LOG_LEVELS)}; DEBUG also shows tracebacks.",
        callback=_parse_log_level,
    ),
]


def new_app(help_text: str) -> typer.Typer:
    """A single-command typer app whose errors are reported by ``run``."""
    return typer.Typer(
        help=help_text,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def setup_logging(level: str) -> None:
    """Log to stderr in the blog post's format."""
    logging.basicConfig(level=getattr(logging, level), format=LOG_FORMAT, force=True)


def error_lines(message: str) -> list[str]:
    """``message`` as ``error:`` lines: one per line of it, each cut to ``MAX_LINE``
    characters, the prefix included."""
    lines = [line for line in message.splitlines() if line.strip()] or ["failed"]
    room = MAX_LINE - len(ERROR_PREFIX)
    return [
        ERROR_PREFIX + (line if len(line) <= room else line[: room - 3] + "...") for line in lines
    ]


def _fail(message: str, code: int) -> NoReturn:
    for line in error_lines(message):
        print(line, file=sys.stderr)
    raise typer.Exit(code)


class Stage:
    """What a command holds while it runs: the locks of its output folders."""

    def __init__(self, held: contextlib.ExitStack) -> None:
        self._held = held

    def claim(self, *outputs: Path, reads: Iterable[Path] = ()) -> None:
        """Lock the folders of ``outputs`` (files) until the command ends: a second run
        writing into any of them is refused at once, naming this one's pid; an output that
        is, or lies in, one of the files and folders the command ``reads`` is a usage error
        (``stages.outputs.folders``)."""
        self._held.enter_context(locked_folders(*outputs, reads=reads))


@contextlib.contextmanager
def stage_errors(log_level: str, *expected: type[Exception]) -> Iterator[Stage]:
    """Set up logging, then turn any failure in the block into error lines and an exit code.

    Expected failures (``EXPECTED_ERRORS``, the ``expected`` types and OS errors) print
    their message, one ``error:`` line per line of it, and exit with the error's
    ``exit_code`` (1 unless it says 2); anything else is a bug and says so. With
    ``--log-level DEBUG`` the traceback is logged as well. Ctrl-C exits with 130 and SIGTERM
    with 143, after the block has cleaned up. Yields the ``Stage``, to lock output folders;
    the locks end with the block. Under dvc, the stage stops when dvc dies (``lifeline``).
    """
    setup_logging(log_level)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    # Ctrl-C interrupts even when started with SIGINT ignored (a background job, nohup).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    lifeline = Lifeline()
    lifeline.watch()
    try:
        with contextlib.ExitStack() as held:
            yield Stage(held)
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        logger.debug("interrupted", exc_info=True)
        _fail("interrupted", EXIT_INTERRUPTED)
    except Terminated:
        logger.debug("terminated", exc_info=True)
        _fail(lifeline.message() if lifeline.lost else "terminated", EXIT_TERMINATED)
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except (*EXPECTED_ERRORS, *expected) as exc:
        logger.debug("stage failed", exc_info=True)
        _fail(str(exc), getattr(exc, "exit_code", EXIT_FAILURE))
    except OSError as exc:
        logger.debug("stage failed", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_FAILURE)
    except Exception as exc:
        logger.debug("stage failed", exc_info=True)
        hint = "" if log_level == "DEBUG" else " (run with --log-level DEBUG for the traceback)"
        _fail(f"unexpected {type(exc).__name__}: {exc}{hint}", EXIT_FAILURE)
    finally:
        lifeline.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _silence_stdout() -> None:
    """Point stdout at the null device, so that nothing more (the interpreter's final flush
    included) is written into a pipe nobody reads."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def invoke(
    app: typer.Typer, args: Sequence[str] | None = None, prog_name: str | None = None
) -> int:
    """Run ``app`` on ``args`` (the command line's when None) and return its exit code;
    usage errors become one line and exit code 2. ``run`` and the tests call this."""
    try:
        code = app(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TyperException as exc:  # typer's (vendored click) usage errors: bad option values
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    return code or 0


def run(app: typer.Typer) -> NoReturn:
    """Run ``app`` as a program: ``python -m stages.<name>``."""
    sys.exit(invoke(app))
