"""nnlib: a pure-NumPy multi-layer perceptron, in the vocabulary of the blog post this project
follows.

>>> import numpy as np
>>> from nnlib import Adam, CrossEntropyLoss, DenseLayer, Model, ReLU, Softmax
>>> rng = np.random.default_rng(0)
>>> model = Model(
...     layers=[
...         DenseLayer(784, 64, ReLU(), rng=rng),
...         DenseLayer(64, 32, ReLU(), rng=rng),
...         DenseLayer(32, 10, Softmax(), rng=rng),
...     ],
...     loss=CrossEntropyLoss(),
...     optimizer=Adam(learning_rate=1e-3),
... )

The names below are imported on first use, so a program that only loads and scores a
model never imports the optimizers or the training loop: each pipeline stage then depends
on just the modules it runs. Type checkers read the imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers ("X as X": re-exported)
    from nnlib.activations import Activation as Activation
    from nnlib.activations import Identity as Identity
    from nnlib.activations import LeakyReLU as LeakyReLU
    from nnlib.activations import ReLU as ReLU
    from nnlib.activations import Sigmoid as Sigmoid
    from nnlib.activations import SoftMax as SoftMax
    from nnlib.activations import Softmax as Softmax
    from nnlib.activations import Tanh as Tanh
    from nnlib.activations import get_activation as get_activation
    from nnlib.data import Dataset as Dataset
    from nnlib.errors import ModelFormatError as ModelFormatError
    from nnlib.errors import NNLibError as NNLibError
    from nnlib.errors import NonFiniteLossError as NonFiniteLossError
    from nnlib.errors import NotLearningError as NotLearningError
    from nnlib.layers import DenseLayer as DenseLayer
    from nnlib.losses import CrossEntropyLoss as CrossEntropyLoss
    from nnlib.losses import Loss as Loss
    from nnlib.losses import MeanSquaredError as MeanSquaredError
    from nnlib.metrics import accuracy as accuracy
    from nnlib.metrics import class_scores as class_scores
    from nnlib.metrics import confusion_matrix as confusion_matrix
    from nnlib.metrics import log_loss as log_loss
    from nnlib.model import Model as Model
    from nnlib.optimizers import SGD as SGD
    from nnlib.optimizers import Adam as Adam
    from nnlib.optimizers import AdamW as AdamW
    from nnlib.optimizers import Optimizer as Optimizer
    from nnlib.schedules import ConstantSchedule as ConstantSchedule
    from nnlib.schedules import CosineSchedule as CosineSchedule
    from nnlib.schedules import Schedule as Schedule
    from nnlib.training import EpochRecord as EpochRecord
    from nnlib.training import History as History
    from nnlib.training import training_loop as training_loop

_EXPORTS = {
    "activations": (
        "Activation",
        "Identity",
        "LeakyReLU",
        "ReLU",
        "Sigmoid",
        "SoftMax",
        "Softmax",
        "Tanh",
        "get_activation",
    ),
    "data": ("Dataset",),
    "errors": ("ModelFormatError", "NNLibError", "NonFiniteLossError", "NotLearningError"),
    "layers": ("DenseLayer",),
    "losses": ("CrossEntropyLoss", "Loss", "MeanSquaredError"),
    "metrics": ("accuracy", "class_scores", "confusion_matrix", "log_loss"),
    "model": ("Model",),
    "optimizers": ("SGD", "Adam", "AdamW", "Optimizer"),
    "schedules": ("ConstantSchedule", "CosineSchedule", "Schedule"),
    "training": ("EpochRecord", "History", "training_loop"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'nnlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nnlib.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
