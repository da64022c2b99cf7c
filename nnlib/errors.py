"""Exceptions nnlib raises for bad input; each message is one line naming what is wrong."""


class NNLibError(Exception):
    """Base class of nnlib's own errors."""


class ModelFormatError(NNLibError, ValueError):
    """A saved model file is truncated, inconsistent, of another format, or holds pickles."""


class NonFiniteLossError(NNLibError, FloatingPointError):
    """Training diverged: the loss or the weights became NaN or infinite."""


class NotLearningError(NNLibError):
    """Training runs but does not learn: the loss climbs, or the accuracy stays at chance."""
