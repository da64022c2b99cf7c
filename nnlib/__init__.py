"""nnlib: a pure-NumPy multi-layer perceptron, in the vocabulary of the seed post.

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
"""

from nnlib.activations import (
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SoftMax,
    Softmax,
    Tanh,
    get_activation,
)
from nnlib.data import Dataset
from nnlib.errors import IDXFormatError, ModelFormatError, NNLibError, NonFiniteLossError
from nnlib.idx import parse_idx, read_idx
from nnlib.layers import DenseLayer
from nnlib.losses import CrossEntropyLoss, Loss, MeanSquaredError
from nnlib.metrics import accuracy, class_scores, confusion_matrix, log_loss
from nnlib.model import Model
from nnlib.optimizers import SGD, Adam, AdamW, Optimizer
from nnlib.training import EpochRecord, History, training_loop

__all__ = [
    "SGD",
    "Activation",
    "Adam",
    "AdamW",
    "CrossEntropyLoss",
    "Dataset",
    "DenseLayer",
    "EpochRecord",
    "History",
    "IDXFormatError",
    "Identity",
    "LeakyReLU",
    "Loss",
    "MeanSquaredError",
    "Model",
    "ModelFormatError",
    "NNLibError",
    "NonFiniteLossError",
    "Optimizer",
    "ReLU",
    "Sigmoid",
    "SoftMax",
    "Softmax",
    "Tanh",
    "accuracy",
    "class_scores",
    "confusion_matrix",
    "get_activation",
    "log_loss",
    "parse_idx",
    "read_idx",
    "training_loop",
]
