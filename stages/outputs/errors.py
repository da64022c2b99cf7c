"""What can go wrong writing a stage's outputs; each message names the file or folder."""

from __future__ import annotations


class OutputError(Exception):
    """An output cannot be written; the message names it. Exit code 1."""


class OutputsBusy(OutputError):
    """Another live run is writing into the same output folder."""


class OutputConflict(OutputError):
    """One file named as two outputs, or as an output and an input: the command line is at
    fault. Exit code 2."""

    exit_code = 2
