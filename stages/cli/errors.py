"""The command-line layer's exceptions and how values are quoted in them: plain messages,
one line per problem, independent of typer."""

from __future__ import annotations

import reprlib

#: the longest quoted value an error line shows
PREVIEW_CHARS = 60


class StageError(Exception):
    """A command cannot do what was asked; the message is what the user sees, one line per
    problem. Exit code 1."""

    exit_code = 1


class UsageError(StageError):
    """The command line cannot be used as typed (an option's value out of range, two options
    naming one file, a folder the command may not write into). Exit code 2."""

    exit_code = 2


class ParamsError(ValueError):
    """A params file is missing, malformed or out of range; one line per problem."""

    exit_code = 1


def _short_repr() -> reprlib.Repr:
    # Attributes, not constructor arguments: Python 3.10's Repr takes none.
    short = reprlib.Repr()
    short.maxstring = PREVIEW_CHARS
    short.maxother = PREVIEW_CHARS
    short.maxlist = short.maxtuple = short.maxset = short.maxdict = 6
    short.maxlevel = 3
    return short


_SHORT = _short_repr()


def preview(value: object) -> str:
    """``repr(value)``, cut to a short preview: long strings and lists are elided in the
    middle and deep nesting shown as ``[...]``, without building the full repr."""
    text = _SHORT.repr(value)
    if len(text) > 2 * PREVIEW_CHARS:
        text = f"{text[: 2 * PREVIEW_CHARS - 3]}..."
    return text
