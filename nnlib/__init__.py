"""nnlib: a pure-NumPy multi-layer perceptron, in the vocabulary of the seed post.

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

The names below are imported on first use, so ``import nnlib.idx`` loads only
the IDX parser: a pipeline stage then depends on just the modules it runs.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    "errors": ("IDXFormatError", "ModelFormatError", "NNLibError", "NonFiniteLossError"),
    "idx": ("parse_idx", "read_idx"),
    "layers": ("DenseLayer",),
    "losses": ("CrossEntropyLoss", "Loss", "MeanSquaredError"),
    "metrics": ("accuracy", "class_scores", "confusion_matrix", "log_loss"),
    "model": ("Model",),
    "optimizers": ("SGD", "Adam", "AdamW", "Optimizer"),
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
