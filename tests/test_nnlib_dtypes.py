"""dtype discipline: float32 stays float32 everywhere, float64 likewise, nothing is upcast."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pytest
from support.models import CNN_INPUT, classifier, small_cnn

from nnlib import (
    SGD,
    Adam,
    AdamW,
    CrossEntropyLoss,
    Dataset,
    DenseLayer,
    Identity,
    LeakyReLU,
    MeanSquaredError,
    Model,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    training_loop,
)
from nnlib.losses import Loss
from nnlib.optimizers import Optimizer

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
OPTIMIZERS: list[Callable[[], Optimizer]] = [
    lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: Adam(1e-3, weight_decay=0.01),
    lambda: AdamW(1e-3),
]


def arrays_in(obj: Any, depth: int = 0) -> Iterator[np.ndarray]:
    """Every ndarray reachable from an object's attributes, lists and dicts."""
    if isinstance(obj, np.ndarray):
        yield obj
    elif depth > 4:
        return
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from arrays_in(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from arrays_in(value, depth + 1)
    elif hasattr(obj, "__dict__"):
        yield from arrays_in(vars(obj), depth + 1)


def watch_dtypes(model: Model) -> dict[str, set[str]]:
    """From now on, record by role the dtype names of what the model's parts compute: each
    layer's output, each activation's backward, the loss's per-sample values and its gradient,
    and the parameters and gradients the optimizer receives."""
    seen: dict[str, set[str]] = collections.defaultdict(set)

    def watch(
        owner: object, method: str, role: str, pick: Callable[..., Iterable[np.ndarray]]
    ) -> None:
        original = getattr(owner, method)

        def watched(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            seen[role].update(array.dtype.name for array in pick(result, *args))
            return result

        setattr(owner, method, watched)

    def result(value: np.ndarray, *args: Any) -> list[np.ndarray]:
        return [value]

    for layer in model.layers:
        watch(layer, "forward", "layer outputs", result)
        watch(
            layer, "backward", "input gradients", lambda value, *_: [] if value is None else [value]
        )
        if hasattr(layer, "activation"):
            watch(layer.activation, "backward", "activation gradients", result)
    watch(model.loss, "per_sample", "per-sample losses", result)
    watch(model.loss, "softmax_gradient", "loss gradients", result)
    watch(
        model.optimizer, "step", "optimizer arguments", lambda _, params, grads: [*params, *grads]
    )
    return seen


#: 6-8-5-3, ReLU then tanh: two kinds of hidden layer
SIZES, HIDDEN = (6, 8, 5, 3), (ReLU, Tanh)


@DTYPES
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS, ids=["sgd", "adam", "adamw"])
def test_everything_stays_in_model_dtype(dtype: type, make_optimizer: Callable) -> None:
    """Params, grads, activations, outputs, dL/dx and optimizer state keep the model's dtype."""
    model = classifier(SIZES, HIDDEN, optimizer=make_optimizer(), dtype=dtype)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6)).astype(dtype)
    y = rng.integers(0, 3, size=10)
    for _ in range(3):
        probs = model.forward(x)
        model.backward(y, probs)
    assert probs.dtype == dtype
    assert model.dtype == dtype
    assert model.parameters[0].dtype == dtype
    assert model.gradients[0].dtype == dtype
    for layer in model.layers:
        for array in (layer.weights, layer.biases, layer.grad_weights, layer.grad_biases):
            assert array.dtype == dtype
    hidden = x
    for layer in model.layers:
        hidden = layer.forward(hidden)
        assert hidden.dtype == dtype
    other = np.float64 if dtype == np.float32 else np.float32
    probs_of_other = model.forward(x.astype(other))  # an input of the other float dtype
    assert model.compute_gradients(y, probs_of_other, input_gradient=True).dtype == dtype
    assert model.predict(x).dtype == dtype
    state = list(arrays_in(model.optimizer))
    assert state, "optimizer keeps no state arrays?"
    assert {a.dtype for a in state if a.dtype.kind == "f"} == {np.dtype(dtype)}


@DTYPES
def test_training_loop_keeps_dtype(dtype: type) -> None:
    """Every step of training_loop computes in the model's dtype: layer outputs, activation
    gradients, per-sample losses, the loss gradient, what the optimizer receives and keeps.

    The data is float64: for a float32 model it is cast, never upcasting the arithmetic.
    """
    model = classifier(SIZES, HIDDEN, optimizer=Adam(1e-2), dtype=dtype)
    seen = watch_dtypes(model)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6))
    y = rng.integers(0, 3, size=40)
    training_loop(model, Dataset(x, y, rng=rng), epochs=2, batch_size=16, validation=(x, y))
    name = np.dtype(dtype).name
    roles = ("layer outputs", "activation gradients", "per-sample losses", "loss gradients")
    assert seen == {role: {name} for role in (*roles, "input gradients", "optimizer arguments")}
    assert {a.dtype.name for a in arrays_in(model.optimizer) if a.dtype.kind == "f"} == {name}


@DTYPES
def test_a_cnn_computes_in_its_dtype(dtype: type) -> None:
    """Conv, pool, dropout and flatten layers too: every output, gradient and buffer they
    keep is in the model's dtype (or boolean masks), for float64 images given to a float32
    model as well."""
    model = small_cnn(dtype=dtype, optimizer=Adam(1e-2), dropout=0.2)
    seen = watch_dtypes(model)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, *CNN_INPUT))
    y = rng.integers(0, 3, size=20)
    training_loop(model, Dataset(x, y, rng=rng), epochs=2, batch_size=8, validation=(x, y))
    name = np.dtype(dtype).name
    roles = ("layer outputs", "activation gradients", "per-sample losses", "loss gradients")
    assert seen == {role: {name} for role in (*roles, "input gradients", "optimizer arguments")}
    kept = {a.dtype.name for layer in model.layers for a in arrays_in(layer)}
    assert kept <= {name, "bool"}
    assert model.compute_gradients(y[:8], model.forward(x[:8]), input_gradient=True).dtype == dtype


@pytest.mark.parametrize("input_dtype", [np.float64, np.float16, np.uint8, np.int64])
def test_other_input_dtypes_are_cast_to_float32_model(input_dtype: type) -> None:
    """Inputs of another dtype give float32 outputs and gradients; the model is never upcast.

    The input is cast once, up front: outputs and gradients are the very numbers (bit for bit)
    that the input cast to float32 by the caller gives.
    """
    model = classifier(SIZES, HIDDEN, dtype=np.float32)
    x = (np.random.default_rng(3).random(size=(4, 6)) * 10).astype(input_dtype)
    y = np.array([0, 1, 2, 0])
    expected_probs = model.forward(x.astype(np.float32))
    expected_grad_x = model.compute_gradients(y, expected_probs, input_gradient=True)
    expected_grads = model.gradients[0].copy()
    probs = model.forward(x)
    assert probs.dtype == np.float32
    grad_x = model.compute_gradients(y, probs, input_gradient=True)
    assert grad_x.dtype == np.float32
    np.testing.assert_array_equal(probs, expected_probs)
    np.testing.assert_array_equal(grad_x, expected_grad_x)
    np.testing.assert_array_equal(model.gradients[0], expected_grads)
    np.testing.assert_array_equal(model.predict(x), model.predict(x.astype(np.float32)))


@DTYPES
@pytest.mark.parametrize(
    ("loss", "targets"),
    [
        (CrossEntropyLoss(), "labels"),
        (CrossEntropyLoss(), "onehot64"),
        (CrossEntropyLoss(), "onehot_int"),
        (MeanSquaredError(), "labels"),
        (MeanSquaredError(), "onehot64"),
        (MeanSquaredError(), "onehot_int"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_losses_keep_prediction_dtype(dtype: type, loss: Loss, targets: str) -> None:
    """per_sample losses and dL/dy_pred are in y_pred's dtype, whatever the targets' dtype.

    Targets given as float64 (or int) one-hot rows must not upcast a float32 gradient.
    """
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(3), size=5).astype(dtype)
    labels = np.array([0, 1, 2, 1, 0])
    y = {
        "labels": labels,
        "onehot64": np.eye(3)[labels],
        "onehot_int": np.eye(3, dtype=np.int64)[labels],
    }[targets]
    assert loss.per_sample(y, probs).dtype == dtype
    assert loss.gradient(y, probs).dtype == dtype
    assert type(loss(y, probs)) is float  # a plain float whatever the dtype
    if isinstance(loss, CrossEntropyLoss):
        assert loss.softmax_gradient(y, probs).dtype == dtype


@DTYPES
@pytest.mark.parametrize(
    "activation", [ReLU(), LeakyReLU(), Sigmoid(), Tanh(), Identity(), Softmax()]
)
def test_activations_keep_dtype(dtype: type, activation: Any) -> None:
    """forward and backward of every activation return the input's dtype."""
    z = np.random.default_rng(5).normal(size=(3, 4)).astype(dtype)
    a = activation.forward(z.copy())
    assert a.dtype == dtype
    assert activation.backward(a, np.ones_like(a)).dtype == dtype


def test_float32_and_float64_initializations_agree() -> None:
    """Same seed, both dtypes: the float32 weights are the float64 ones rounded once."""
    w32 = classifier(SIZES, HIDDEN, rng=7, dtype=np.float32).get_weights()
    w64 = classifier(SIZES, HIDDEN, rng=7, dtype=np.float64).get_weights()
    np.testing.assert_array_equal(w32, w64.astype(np.float32))


def test_mixed_dtype_layers_are_refused() -> None:
    """A model whose layers disagree on dtype raises TypeError instead of upcasting."""
    rng = np.random.default_rng(0)
    layers = [
        DenseLayer(4, 3, ReLU(), rng=rng, dtype=np.float32),
        DenseLayer(3, 2, Softmax(), rng=rng, dtype=np.float64),
    ]
    with pytest.raises(TypeError, match="dtype"):
        Model(layers, CrossEntropyLoss())


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.complex128, "float128"])
def test_unsupported_layer_dtypes_are_refused(dtype: Any) -> None:
    """Only float32 and float64 layers can be built."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        pytest.skip(f"{dtype} does not exist on this platform")
    with pytest.raises(TypeError, match="float32 or float64"):
        DenseLayer(2, 2, dtype=dtype)


def test_float64_weights_assigned_to_float32_layer_stay_float32() -> None:
    """Assigning float64 weights (and biases) copies into the float32 views of the model's
    parameters (no upcast, no rebinding)."""
    model = classifier(SIZES, HIDDEN, dtype=np.float32)
    layer = model.layers[0]
    view, bias_view = layer.weights, layer.biases
    layer.weights = np.full(view.shape, 0.1, dtype=np.float64)
    layer.biases = np.full(bias_view.shape, 0.2, dtype=np.float64)
    assert layer.weights is view
    assert layer.biases is bias_view
    np.testing.assert_array_equal(layer.weights, np.float32(0.1))
    np.testing.assert_array_equal(layer.biases, np.float32(0.2))
