"""nnlib.shapes: a stack of layers checks itself when a model is built, naming the layer and
the shapes when one cannot take what the layer before it gives."""

from __future__ import annotations

import numpy as np
import pytest
from support.models import CNN_INPUT, cnn_layers

from nnlib import (
    Conv2D,
    CrossEntropyLoss,
    DenseLayer,
    Dropout,
    Flatten,
    MaxPool2D,
    Model,
    ReLU,
    Softmax,
)
from nnlib.shapes import stack_shapes


def test_the_small_cnn_passes_its_shapes_along() -> None:
    model = Model(cnn_layers(dropout=0.2), CrossEntropyLoss(), input_shape=CNN_INPUT)
    assert model.input_shape == (1, 12, 12)
    assert model.input_size == 144
    assert model.layer_shapes == [
        (4, 10, 10),
        (4, 5, 5),
        (4, 5, 5),
        (6, 5, 5),
        (6, 2, 2),
        (24,),
        (3,),
    ]
    assert model.output_size == 3


def test_a_dense_first_layer_fixes_the_input_shape_even_behind_dropout() -> None:
    rng = np.random.default_rng(0)
    layers = [Dropout(0.2), DenseLayer(6, 4, ReLU(), rng=rng), DenseLayer(4, 2, rng=rng)]
    assert stack_shapes(layers).input_shape == (6,)
    assert Model(layers, CrossEntropyLoss(), input_shape=(6,)).input_shape == (6,)


@pytest.mark.parametrize(
    ("layers", "input_shape", "message"),
    [
        (
            [Conv2D(1, 4, 3), MaxPool2D(2), DenseLayer(4 * 5 * 5, 3, Softmax())],
            CNN_INPUT,
            r"^layer 2 \(dense\) cannot take layer 1 \(maxpool2d\), of shape \(4, 5, 5\): it "
            r"expects inputs of shape \(100,\) \(a Flatten before it makes rows of them\)$",
        ),
        (
            [Conv2D(3, 4, 3), Flatten(), DenseLayer(400, 3)],
            CNN_INPUT,
            r"^layer 0 \(conv2d\) cannot take the input, of shape \(1, 12, 12\): it expects 3 "
            r"channels$",
        ),
        (
            [Conv2D(1, 4, 3), MaxPool2D(2), Conv2D(4, 4, 7), Flatten(), DenseLayer(4, 2)],
            CNN_INPUT,
            r"^layer 2 \(conv2d\) cannot take layer 1 \(maxpool2d\), of shape \(4, 5, 5\): its "
            r"7x7 kernel does not fit in 5x5 \(padding 0\)$",
        ),
        (
            [Conv2D(1, 4, 3), MaxPool2D(16), Flatten(), DenseLayer(4, 2)],
            CNN_INPUT,
            r"layer 1 \(maxpool2d\) cannot take layer 0 \(conv2d\), of shape \(4, 10, 10\): its "
            r"16x16 window does not fit in 10x10",
        ),
        (
            [Flatten(), Conv2D(1, 4, 3), Flatten(), DenseLayer(4, 2)],
            CNN_INPUT,
            r"layer 1 \(conv2d\) cannot take layer 0 \(flatten\), of shape \(144,\): it expects "
            r"images of shape \(1, height, width\)",
        ),
        (
            [Conv2D(1, 4, 3), MaxPool2D(2)],
            CNN_INPUT,
            r"the last layer \(maxpool2d\) gives outputs of shape \(4, 5, 5\); a model ends in "
            r"flat outputs",
        ),
        (
            [Conv2D(1, 4, 3), Flatten(), DenseLayer(400, 2)],
            None,
            r"layer 0 \(conv2d\) does not fix the shape of its input: pass the shape of one "
            r"input sample, input_shape=\(1, height, width\)",
        ),
        (
            [DenseLayer(6, 2)],
            (5,),
            r"layer 0 \(dense\) cannot take the input, of shape \(5,\): it expects inputs of "
            r"shape \(6,\)$",
        ),
        ([DenseLayer(6, 2)], (6, 0), r"input_shape must be a tuple of positive integers"),
        ([DenseLayer(6, 2)], (6.0,), r"input_shape must be a tuple of positive integers"),
        ([], (6,), "at least one layer"),
    ],
    ids=[
        "dense-after-pool",
        "channels",
        "kernel-too-big",
        "window-too-big",
        "conv-after-flatten",
        "not-flat-at-the-end",
        "conv-first-without-input-shape",
        "input-shape-disagrees",
        "zero-size",
        "float-size",
        "no-layers",
    ],
)
def test_stacks_that_cannot_take_their_input_are_refused_at_build(
    layers: list, input_shape: tuple | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Model(layers, CrossEntropyLoss(), input_shape=input_shape)


def test_a_stack_without_parameters_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one layer with parameters"):
        Model([MaxPool2D(2), Flatten()], CrossEntropyLoss(), input_shape=(1, 4, 4))


def test_numpy_integers_are_sizes_too() -> None:
    shape = tuple(np.array([1, 12, 12]))
    assert stack_shapes(cnn_layers(), shape).input_shape == (1, 12, 12)
    assert all(type(size) is int for size in stack_shapes(cnn_layers(), shape).input_shape)
