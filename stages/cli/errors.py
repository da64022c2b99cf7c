"""The command-line layer's exceptions: plain one-line messages, independent of typer."""


class StageError(Exception):
    """A command cannot do what was asked; the message is the one line the user sees."""


class ParamsError(ValueError):
    """A params file or a command-line override is missing, malformed or out of range."""
