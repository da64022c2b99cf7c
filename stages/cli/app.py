"""What every stage command shares: options, logging, one-line errors and exit codes."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from typer.exceptions import TyperException

from stages.cli.errors import ParamsError, StageError
from stages.data.errors import DataError
from stages.outputs.atomic import OutputError

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM

logger = logging.getLogger(__name__)


# Failures the user can act on: their message is the one line shown.
# Commands that use nnlib add its NNLibError (this module stays independent of nnlib).
EXPECTED_ERRORS = (StageError, ParamsError, DataError, OutputError)


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so every output set cleans up after itself."""


def _raise_terminated(signum: int, frame: object) -> NoReturn:
    raise Terminated


def _parse_log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


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


def _fail(message: str, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


@contextlib.contextmanager
def stage_errors(log_level: str, *expected: type[Exception]) -> Iterator[None]:
    """Set up logging, then turn any failure in the block into one line and an exit code.

    Expected failures (``EXPECTED_ERRORS``, the ``expected`` types and OS errors) print
    their message; anything else is a bug and says so. With ``--log-level DEBUG`` the
    traceback is logged as well. Ctrl-C exits with 130 and SIGTERM with 143, after the
    block has cleaned up.
    """
    setup_logging(log_level)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    # Ctrl-C interrupts even when started with SIGINT ignored (a background job, nohup).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        logger.debug("interrupted", exc_info=True)
        _fail("interrupted", EXIT_INTERRUPTED)
    except Terminated:
        logger.debug("terminated", exc_info=True)
        _fail("terminated", EXIT_TERMINATED)
    except (*EXPECTED_ERRORS, *expected) as exc:
        logger.debug("stage failed", exc_info=True)
        _fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        logger.debug("stage failed", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_FAILURE)
    except Exception as exc:
        logger.debug("stage failed", exc_info=True)
        hint = "" if log_level == "DEBUG" else " (run with --log-level DEBUG for the traceback)"
        _fail(f"unexpected {type(exc).__name__}: {exc}{hint}", EXIT_FAILURE)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def run(app: typer.Typer) -> NoReturn:
    """Run ``app`` as a program; usage errors become one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except TyperException as exc:  # typer's (vendored click) usage errors: bad option values
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    sys.exit(code or 0)
