"""nnlib: a pure-NumPy neural network library, in the vocabulary of the blog post this
project follows (Model, DenseLayer, ReLU, Softmax, CrossEntropyLoss, Adam, training_loop).

>>> import numpy as np
>>> from nnlib import Adam, CrossEntropyLoss, DenseLayer, Dropout, Model, ReLU, Softmax
>>> rng = np.random.default_rng(0)
>>> model = Model(
...     layers=[
...         DenseLayer(784, 64, ReLU(), rng=rng),
...         Dropout(0.2, rng=rng),
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
from nnlib.convolution import Conv2D
from nnlib.data import Dataset
from nnlib.errors import ModelFormatError, NNLibError, NonFiniteLossError, NotLearningError
from nnlib.flatten import Flatten
from nnlib.layers import DenseLayer, Dropout, Layer
from nnlib.losses import CrossEntropyLoss, Loss, MeanSquaredError
from nnlib.metrics import accuracy, class_scores, confusion_matrix, log_loss
from nnlib.model import Model
from nnlib.optimizers import SGD, Adam, AdamW, Optimizer
from nnlib.pooling import MaxPool2D
from nnlib.schedules import ConstantSchedule, CosineSchedule, Schedule
from nnlib.training import EpochRecord, History, training_loop

__all__ = [
    "SGD",
    "Activation",
    "Adam",
    "AdamW",
    "ConstantSchedule",
    "Conv2D",
    "CosineSchedule",
    "CrossEntropyLoss",
    "Dataset",
    "DenseLayer",
    "Dropout",
    "EpochRecord",
    "Flatten",
    "History",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Loss",
    "MaxPool2D",
    "MeanSquaredError",
    "Model",
    "ModelFormatError",
    "NNLibError",
    "NonFiniteLossError",
    "NotLearningError",
    "Optimizer",
    "ReLU",
    "Schedule",
    "Sigmoid",
    "SoftMax",
    "Softmax",
    "Tanh",
    "accuracy",
    "class_scores",
    "confusion_matrix",
    "get_activation",
    "log_loss",
    "training_loop",
]
