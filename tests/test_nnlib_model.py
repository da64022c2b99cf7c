"""Model bookkeeping: construction checks, the flat parameter vector, and misuse errors."""

from __future__ import annotations

import numpy as np
import pytest
from support import nnlib_reference as ref
from support.models import CNN_INPUT, classifier, small_cnn

from nnlib import SGD, CrossEntropyLoss, DenseLayer, MeanSquaredError, Model, Tanh


def test_forward_equals_reference_mlp() -> None:
    """model.forward = the textbook a = f(a @ W + b) chain, with the layers' own arrays."""
    model = classifier([5, 8, 6, 3], optimizer=SGD(0.1), dtype=np.float64)
    for layer in model.layers:
        layer.biases = np.random.default_rng(1).normal(size=layer.biases.shape)
    x = np.random.default_rng(2).normal(size=(7, 5))
    _, outs = ref.mlp_forward(
        x,
        [layer.weights for layer in model.layers],
        [layer.biases for layer in model.layers],
        [ref.relu, ref.relu, ref.softmax],
    )
    np.testing.assert_allclose(model.forward(x), outs[-1], rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(model.predict(x), outs[-1], rtol=1e-13, atol=1e-16)


def test_parameter_count_and_views() -> None:
    """One flat vector of sum(in*out + out) entries; layer arrays are views into it."""
    model = classifier([5, 8, 6, 3], optimizer=SGD(0.1), dtype=np.float64)
    flat = model.parameters[0]
    assert flat.shape == (5 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3,)
    assert model.gradients[0].shape == flat.shape
    for layer in model.layers:
        for array in (layer.weights, layer.biases):
            assert np.shares_memory(array, flat)
        for array in (layer.grad_weights, layer.grad_biases):
            assert np.shares_memory(array, model.gradients[0])
    model.layers[1].weights[2, 3] = 123.0
    assert 123.0 in flat
    assert model.layers[0].weights.shape == (5, 8)
    assert model.layers[0].biases.shape == (8,)


def test_get_and_set_weights_copy() -> None:
    """get_weights returns a copy; set_weights writes into the existing views."""
    model = classifier([4, 3, 2], optimizer=SGD(0.1), dtype=np.float64)
    saved = model.get_weights()
    saved[:] = 0.0
    assert np.any(model.parameters[0] != 0.0)
    view = model.layers[0].weights
    model.set_weights(np.arange(saved.size, dtype=np.float64))
    assert model.layers[0].weights is view
    np.testing.assert_array_equal(model.layers[0].weights.ravel(), np.arange(12))
    with pytest.raises(ValueError, match="parameters"):
        model.set_weights(np.zeros(saved.size + 1))


def test_forward_does_not_alias_returned_outputs() -> None:
    """A returned output survives later forward passes of the same batch size."""
    model = classifier([4, 6, 3], optimizer=SGD(0.1), dtype=np.float64)
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    first = model.forward(x1)
    kept = first.copy()
    model.forward(x2)
    model.predict(x2)
    np.testing.assert_array_equal(first, kept)


def test_gradients_follow_the_last_forward_batch() -> None:
    """compute_gradients uses the most recent forward batch, even after other batch sizes."""
    model = classifier([4, 6, 3], optimizer=SGD(0.1), dtype=np.float64)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 4)), np.array([0, 1, 2, 0, 1])
    probs = model.forward(x)
    model.compute_gradients(y, probs)
    expected = model.gradients[0].copy()
    for n in (1, 2, 3, 7, 9, 11):  # more batch sizes than the model keeps buffers for
        model.forward(rng.normal(size=(n, 4)))
    probs = model.forward(x)
    model.compute_gradients(y, probs)
    np.testing.assert_array_equal(model.gradients[0], expected)


def test_misuse_is_refused_with_clear_errors() -> None:
    model = classifier([4, 6, 3], optimizer=SGD(0.1), dtype=np.float64)
    with pytest.raises(RuntimeError, match="forward"):
        model.compute_gradients(np.array([0]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        model.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        model.predict(np.zeros(4))
    probs = model.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="rows"):
        model.compute_gradients(np.array([0, 1, 2]), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="labels"):
        model.compute_loss(np.array([0, 1, 2]), probs)
    no_optimizer = Model(model.layers, CrossEntropyLoss())
    with pytest.raises(RuntimeError, match="optimizer"):
        no_optimizer.backward(np.array([0, 1]), no_optimizer.forward(np.zeros((2, 4))))


def test_construction_checks() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="expects"):
        Model([DenseLayer(4, 5, rng=rng), DenseLayer(6, 3, rng=rng)], MeanSquaredError())
    with pytest.raises(ValueError, match="at least one layer"):
        Model([], MeanSquaredError())
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="positive integer"):
            DenseLayer(bad, 3)
    layer = DenseLayer(3, 3, Tanh(), rng=rng, dtype=np.float64)
    layer.biases = np.array([0.5, -0.25, 1.0])
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(
        layer.forward(x, training=False), np.tanh(x @ layer.weights + layer.biases), rtol=1e-15
    )


def test_backward_refuses_a_non_positive_learning_rate() -> None:
    model = classifier([4, 5, 3], optimizer=SGD(0.1), dtype=np.float64)
    y_pred = model.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        model.backward(np.array([0, 1]), y_pred, learning_rate=0.0)


def test_image_batches_and_flat_rows_give_the_same_outputs() -> None:
    """A model of image layers takes (n, C, H, W) batches, and rows of C*H*W values in C
    order (the same images, flattened) alike; other shapes are refused naming both."""
    model = small_cnn(dtype=np.float64, optimizer=SGD(0.1))
    x = np.random.default_rng(5).normal(size=(6, *CNN_INPUT))
    images = model.predict(x)
    np.testing.assert_array_equal(model.predict(x.reshape(6, -1)), images)
    np.testing.assert_array_equal(model.forward(x.reshape(6, -1)), model.forward(x))
    with pytest.raises(ValueError, match=r"\(n, 1, 12, 12\) or \(n, 144\), got \(6, 12, 12\)"):
        model.predict(x[:, 0])
    with pytest.raises(ValueError, match=r"got \(6, 2, 12, 12\)"):
        model.forward(np.concatenate([x, x], axis=1))


def test_predict_in_any_batch_size_equals_forward() -> None:
    """predict runs a few images at a time by default (the conv layers' outputs are large);
    any batch size gives the same numbers (to the last bits the products round in another
    order)."""
    model = small_cnn(dtype=np.float64, dropout=0.5)
    x = np.random.default_rng(6).normal(size=(10, *CNN_INPUT))
    expected = model.predict(x, batch_size=10)
    for batch_size in (None, 1, 3):
        np.testing.assert_allclose(
            model.predict(x, batch_size=batch_size), expected, rtol=1e-13, atol=1e-15
        )
    assert 1 <= model._predict_batch <= 4096
    assert classifier([784, 64, 10])._predict_batch == 4096  # an MLP's batches as before


def test_a_cnns_parameters_are_views_into_the_flat_vector() -> None:
    model = small_cnn(dtype=np.float64)
    conv = model.layers[0]
    assert model.parameters[0].size == (4 * 9 + 4) + (6 * 4 * 9 + 6) + (24 * 3 + 3)
    assert np.shares_memory(conv.weights, model.parameters[0])
    model.set_weights(np.arange(model.parameters[0].size, dtype=np.float64))
    np.testing.assert_array_equal(conv.weights.ravel(), np.arange(36))
    np.testing.assert_array_equal(conv.biases, [36, 37, 38, 39])


def test_a_cnns_input_gradient_has_the_input_shape() -> None:
    model = small_cnn(dtype=np.float64)
    x = np.random.default_rng(7).normal(size=(4, *CNN_INPUT))
    probs = model.forward(x)
    assert model.compute_gradients(np.array([0, 1, 2, 0]), probs) is None
    grad_x = model.compute_gradients(np.array([0, 1, 2, 0]), probs, input_gradient=True)
    assert grad_x.shape == x.shape
    assert grad_x.flags.c_contiguous
