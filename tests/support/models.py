"""The models the tests build: dense classifiers of any sizes, activations and dtype and a
small convolutional network for nnlib's own tests, and the pipeline's models (a small digit
model carrying the metadata predict and evaluate read, and the blog post's seed net).

Weights are drawn from ``rng`` layer by layer, in order, as the layers draw them; a
builder given the same generator state builds the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nnlib import (
    Adam,
    Conv2D,
    CrossEntropyLoss,
    DenseLayer,
    Dropout,
    Flatten,
    Identity,
    MaxPool2D,
    Model,
    ReLU,
    Softmax,
)
from nnlib.activations import Activation
from nnlib.layers import Layer
from nnlib.losses import Loss
from nnlib.optimizers import Optimizer
from support.processed import CLASS_NAMES, N_FEATURES, NORMALIZATION

#: an activation factory: a class such as ``ReLU``, or ``lambda: LeakyReLU(0.2)``
Make = Callable[[], Activation]

#: the blog post's network: 784-64-32-10
SEED_SIZES = (784, 64, 32, 10)


def generator(rng: np.random.Generator | int) -> np.random.Generator:
    """``rng`` itself, or a new generator seeded with it."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def dense_layers(
    sizes: Sequence[int],
    hidden: Make | Sequence[Make] = ReLU,
    head: Make = Softmax,
    *,
    rng: np.random.Generator | int = 0,
    dtype: type = np.float32,
) -> list[DenseLayer]:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]``: ``hidden`` on every hidden layer (one
    factory, or one per hidden layer), ``head`` on the last."""
    n_hidden = len(sizes) - 2
    makes = [hidden] * n_hidden if callable(hidden) else list(hidden)
    if len(makes) != n_hidden:
        raise ValueError(f"{n_hidden} hidden layers, {len(makes)} activations")
    rng = generator(rng)
    return [
        DenseLayer(n_in, n_out, make(), rng=rng, dtype=dtype)
        for n_in, n_out, make in zip(sizes[:-1], sizes[1:], [*makes, head], strict=True)
    ]


def classifier(
    sizes: Sequence[int],
    hidden: Make | Sequence[Make] = ReLU,
    head: Make = Softmax,
    *,
    loss: Loss | None = None,
    optimizer: Optimizer | None = None,
    rng: np.random.Generator | int = 0,
    dtype: type = np.float32,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """A model of ``dense_layers(sizes, hidden, head)``, cross-entropy unless ``loss``
    says otherwise; biases start at zero, as ``DenseLayer`` makes them."""
    layers = dense_layers(sizes, hidden, head, rng=rng, dtype=dtype)
    return Model(layers, loss or CrossEntropyLoss(), optimizer, metadata=metadata)


def random_biases(model: Model, rng: np.random.Generator, scale: float) -> Model:
    """``model`` with every dense and conv layer's biases drawn from N(0, scale), layer by
    layer (they start at zero, which hides a bias term a formula gets wrong)."""
    for layer in model.layers:
        if isinstance(layer, (DenseLayer, Conv2D)):
            layer.biases = rng.normal(0.0, scale, size=layer.biases.shape)
    return model


#: the small convolutional network's input: one-channel 12 x 12 images
CNN_INPUT = (1, 12, 12)
#: its classes
CNN_CLASSES = 3


def cnn_layers(
    *,
    rng: np.random.Generator | int = 0,
    dtype: type = np.float32,
    dropout: float | None = None,
    second: Make = Identity,
) -> list[Layer]:
    """conv 4 filters of 3x3 (ReLU) -> max-pool 2 -> [dropout] -> conv 6 filters of 3x3,
    padding 1 (``second`` activation) -> max-pool 2 (5x5 to 2x2: a row and a column left
    out) -> flatten -> dense 24 -> 3, softmax: on ``CNN_INPUT`` images. ``dropout`` adds a
    Dropout after the first pool (drawing from ``rng``)."""
    rng = generator(rng)
    layers: list[Layer] = [
        Conv2D(1, 4, 3, activation_function=ReLU(), rng=rng, dtype=dtype),
        MaxPool2D(2),
    ]
    if dropout is not None:
        layers.append(Dropout(dropout, rng=rng))
    layers += [
        Conv2D(4, 6, 3, padding=1, activation_function=second(), rng=rng, dtype=dtype),
        MaxPool2D(2),
        Flatten(),
        DenseLayer(6 * 2 * 2, CNN_CLASSES, Softmax(), rng=rng, dtype=dtype),
    ]
    return layers


def small_cnn(
    *,
    rng: np.random.Generator | int = 0,
    dtype: type = np.float32,
    optimizer: Optimizer | None = None,
    dropout: float | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """A model of ``cnn_layers``, cross-entropy, for ``CNN_INPUT`` images."""
    layers = cnn_layers(rng=rng, dtype=dtype, dropout=dropout)
    return Model(layers, CrossEntropyLoss(), optimizer, metadata=metadata, input_shape=CNN_INPUT)


class ReplayedUniforms:
    """Stands in for a Generator in ``Dropout``: every draw returns the same uniforms, so
    each forward pass uses the same mask and finite differences are well defined."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def random(self, *, out: np.ndarray, dtype: type) -> np.ndarray:
        out[...] = self.values
        return out


def random_parameters(model: Model, rng: np.random.Generator, scale: float = 1.0) -> Model:
    """``model`` with all its parameters, biases too, drawn from N(0, scale) as one flat
    vector (no gradient is trivially zero)."""
    model.set_weights(rng.normal(0.0, scale, size=model.parameters[0].shape))
    return model


def digit_metadata(
    dataset: str = "mnist",
    normalization: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The metadata predict and evaluate read from a model (the normalization, the class
    names, the dataset and the image shape); unless told otherwise, that of
    ``support.processed``'s data: scale normalization, the ten digits."""
    return {
        "normalization": dict(normalization or NORMALIZATION),
        "class_names": list(class_names or CLASS_NAMES),
        "dataset": dataset,
        "image_shape": [28, 28],
    }


def digit_model(
    dataset: str = "mnist",
    normalization: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> Model:
    """784-16-(classes) with random weights and ``digit_metadata``: a model predict and
    evaluate take, which fits ``support.processed``'s data."""
    metadata = digit_metadata(dataset, normalization, class_names)
    sizes = [N_FEATURES, 16, len(metadata["class_names"])]
    return classifier(sizes, rng=seed, metadata=metadata)


def digit_cnn(
    dataset: str = "mnist",
    normalization: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    input_shape: tuple[int, int, int] = (1, 28, 28),
) -> Model:
    """conv 4 of 5x5 -> max-pool 2 -> flatten -> (classes), softmax, with random weights and
    ``digit_metadata``: a convolutional model predict and evaluate take; ``input_shape``
    other than ``(1, 28, 28)`` makes one whose images are not its metadata's."""
    metadata = digit_metadata(dataset, normalization, class_names)
    rng = np.random.default_rng(seed)
    rows, cols = (size - 4 for size in input_shape[1:])
    layers: list[Layer] = [
        Conv2D(1, 4, 5, activation_function=ReLU(), rng=rng),
        MaxPool2D(2),
        Flatten(),
        DenseLayer(4 * (rows // 2) * (cols // 2), len(metadata["class_names"]), Softmax(), rng=rng),
    ]
    return Model(layers, CrossEntropyLoss(), metadata=metadata, input_shape=input_shape)


def seed_net(
    rng: np.random.Generator | int = 0,
    learning_rate: float = 1e-3,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """The blog post's 784-64-32-10: ReLU, softmax, cross-entropy, Adam."""
    optimizer = Adam(learning_rate=learning_rate)
    return classifier(SEED_SIZES, rng=rng, optimizer=optimizer, metadata=metadata)
