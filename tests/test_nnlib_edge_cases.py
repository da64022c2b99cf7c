"""Edge cases found in review: each was wrong once, or nearly so."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from support.idx import idx_bytes
from test_nnlib_serialization import load_error, make_model, valid_entries, write_npz

from nnlib import (
    SGD,
    Adam,
    CrossEntropyLoss,
    Dataset,
    DenseLayer,
    Model,
    NonFiniteLossError,
    ReLU,
    Softmax,
    accuracy,
    training_loop,
)
from nnlib.metrics import as_labels
from stages.data.idx import read_idx


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_model_version_must_be_the_integer_1(tmp_path: Path, version: object) -> None:
    meta, arrays = valid_entries(make_model())
    meta["version"] = version
    path = tmp_path / "model.npz"
    write_npz(path, meta, arrays)
    assert "version" in str(load_error(path).value)


def test_numpy_scalars_in_the_normalization_are_saved_as_numbers(tmp_path: Path) -> None:
    model = make_model()
    model.normalization = {"method": "standardize", "mean": np.float32(0.25), "std": np.float64(2)}
    model.save(tmp_path / "model.npz")
    loaded = Model.load(tmp_path / "model.npz")
    assert loaded.normalization == {"method": "standardize", "mean": 0.25, "std": 2.0}


def test_a_refused_optimizer_step_changes_nothing() -> None:
    params = [np.ones(3, np.float32), np.ones(2, np.float32)]
    optimizer = Adam(0.1)
    optimizer.step(params, [np.ones(3, np.float32), np.ones(2, np.float32)])
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match="differ from the first step"):
        optimizer.step(params, [np.ones(3, np.float32), np.ones(5, np.float32)])
    assert optimizer.steps == 1
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)


def test_dense_layer_casts_its_input_to_its_own_dtype() -> None:
    layer = DenseLayer(3, 2, ReLU(), rng=np.random.default_rng(0), dtype=np.float32)
    assert layer.forward(np.ones((4, 3), np.float64)).dtype == np.float32


def test_a_single_probability_column_is_a_binary_prediction() -> None:
    probs = np.array([[0.2], [0.7], [0.5]], np.float32)
    np.testing.assert_array_equal(as_labels(probs), [0, 1, 1])
    assert accuracy(np.array([0, 1, 0]), probs) == pytest.approx(2 / 3)


def test_read_idx_decompresses_an_upper_case_gz_name(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    path = tmp_path / "LABELS.GZ"
    path.write_bytes(gzip.compress(idx_bytes(labels, 0x08)))
    np.testing.assert_array_equal(read_idx(path), labels)


def _tiny_model(optimizer: object) -> Model:
    rng = np.random.default_rng(0)
    layers = [DenseLayer(4, 5, ReLU(), rng=rng), DenseLayer(5, 3, Softmax(), rng=rng)]
    return Model(layers, CrossEntropyLoss(), optimizer)


def test_backward_refuses_a_non_positive_learning_rate() -> None:
    model = _tiny_model(SGD(0.1))
    y_pred = model.forward(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        model.backward(np.array([0, 1]), y_pred, learning_rate=0.0)


def test_training_refuses_labels_the_model_cannot_output() -> None:
    model = _tiny_model(SGD(0.1))
    data = Dataset(np.ones((6, 4), np.float32), np.array([0, 1, 2, 3, 0, 1]))
    with pytest.raises(ValueError, match=r"class labels must be in \[0, 3\)"):
        training_loop(model, data, epochs=1, batch_size=2)


def test_divergence_message_says_whether_the_weights_are_finite() -> None:
    model = _tiny_model(SGD(1e30))
    X = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32) * 1e3
    data = Dataset(X, np.arange(64) % 3, np.random.default_rng(2))
    with pytest.raises(NonFiniteLossError) as info:
        training_loop(model, data, epochs=3, batch_size=8)
    message = str(info.value)
    assert "\n" not in message
    weights_finite = bool(np.isfinite(model.parameters[0]).all())
    assert ("weights are finite" in message) == weights_finite
