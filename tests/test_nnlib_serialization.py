"""Model files: exact round trips, deterministic bytes, and one-line refusals of bad files."""

from __future__ import annotations

import io
import json
import pickle
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from support.model_files import HUGE_BYTES
from support.models import CNN_INPUT, classifier, dense_layers, random_parameters, small_cnn
from support.stage import measure_peak

from nnlib import (
    Adam,
    CrossEntropyLoss,
    DenseLayer,
    Dropout,
    Identity,
    LeakyReLU,
    MeanSquaredError,
    Model,
    ModelFormatError,
    ReLU,
    Sigmoid,
    Tanh,
)
from nnlib.layers import Layer
from nnlib.losses import Loss

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


METADATA = {
    "normalization": {"method": "standardize", "mean": 33.3, "std": 78.5},
    "class_names": ["zero", "un", "два"],
    "anything": [1, {"nested": None}],
}


def make_model(dtype: type = np.float32, loss: Loss | None = None, seed: int = 0) -> Model:
    """5-7-6-4-4-3 with every hidden activation, a dropout layer, metadata and random
    parameters (biases too)."""
    rng = np.random.default_rng(seed)
    hidden = [lambda: LeakyReLU(0.2), Tanh, Sigmoid, ReLU]
    layers: list[Layer] = [*dense_layers([5, 7, 6, 4, 4, 3], hidden, rng=rng, dtype=dtype)]
    layers.insert(2, Dropout(0.25, rng=rng))
    model = Model(layers, loss or CrossEntropyLoss(), Adam(1e-3), metadata=METADATA)
    return random_parameters(model, rng)


def indexed_dense(model: Model) -> list[tuple[int, DenseLayer]]:
    return [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, DenseLayer)]


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert str(path) in message, message
    assert "\n" not in message, message


def load_error(path: Path) -> pytest.ExceptionInfo:
    with pytest.raises(ModelFormatError) as info:
        Model.load(path)
    assert_one_line_naming(info, path)
    return info


def write_npz(path: Path, meta: object, arrays: dict[str, np.ndarray]) -> None:
    """A hand-made model file: ``meta`` as a JSON string plus the given arrays."""
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


def valid_entries(model: Model) -> tuple[dict, dict[str, np.ndarray]]:
    """The meta and arrays of a consistent version-2 file describing ``model``, written
    independently of nnlib's writer."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layers.append({"kind": "dropout", "rate": layer.rate})
            continue
        activation = {"name": layer.activation.name}
        if isinstance(layer.activation, LeakyReLU):
            activation["negative_slope"] = layer.activation.negative_slope
        layers.append(
            {
                "kind": "dense",
                "input_size": layer.input_size,
                "output_size": layer.output_size,
                "activation": activation,
            }
        )
    meta = {
        "format": "nnlib.mlp",
        "version": 2,
        "dtype": model.dtype.name,
        "loss": model.loss.name,
        "layers": layers,
        "metadata": {"class_names": ["a", "b", "c"]},
    }
    arrays = {}
    for i, layer in indexed_dense(model):
        arrays[f"layer{i}_weights"] = layer.weights.copy()
        arrays[f"layer{i}_biases"] = layer.biases.copy()
    return meta, arrays


def version_1_entries(model: Model) -> tuple[dict, dict[str, np.ndarray]]:
    """A file as nnlib's format version 1 wrote it: dense layers only, numbered without gaps,
    the pipeline's description in top-level keys."""
    dense = [layer for _, layer in indexed_dense(model)]
    meta = {
        "format": "nnlib.mlp",
        "version": 1,
        "dtype": model.dtype.name,
        "loss": model.loss.name,
        "layers": [
            {
                "input_size": layer.input_size,
                "output_size": layer.output_size,
                "activation": layer.activation.name,
                **(
                    {"negative_slope": layer.activation.negative_slope}
                    if isinstance(layer.activation, LeakyReLU)
                    else {}
                ),
            }
            for layer in dense
        ],
        "normalization": {"method": "scale", "divisor": 255.0, "mean": 0.0, "std": 1.0},
        "class_names": ["zero", "un", "два"],
        "dataset": "mnist",
        "image_shape": None,
    }
    arrays = {}
    for i, layer in enumerate(dense):
        arrays[f"layer{i}_weights"] = layer.weights.copy()
        arrays[f"layer{i}_biases"] = layer.biases.copy()
    return meta, arrays


# --------------------------------------------------------------------------- round trips


@DTYPES
@pytest.mark.parametrize("loss", [CrossEntropyLoss(), MeanSquaredError()], ids=["ce", "mse"])
def test_save_load_round_trip_is_exact(tmp_path: Path, dtype: type, loss: Loss) -> None:
    """Loading gives the same architecture, dtype, loss, metadata and bit-identical predictions."""
    model = make_model(dtype, loss)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = Model.load(path)
    assert loaded.dtype == dtype
    assert type(loaded.loss) is type(loss)
    assert loaded.metadata == model.metadata
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[2].rate == 0.25
    for i, ours in indexed_dense(model):
        theirs = loaded.layers[i]
        assert (theirs.input_size, theirs.output_size) == (ours.input_size, ours.output_size)
        assert type(theirs.activation) is type(ours.activation)
        assert theirs.dtype == dtype
        np.testing.assert_array_equal(theirs.weights, ours.weights)
        np.testing.assert_array_equal(theirs.biases, ours.biases)
    assert loaded.layers[0].activation.negative_slope == 0.2
    np.testing.assert_array_equal(loaded.get_weights(), model.get_weights())
    x = np.random.default_rng(1).normal(size=(9, 5))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer is None


def test_loaded_model_trains_with_a_given_optimizer(tmp_path: Path) -> None:
    """Model.load(path, optimizer) gives a model that can take optimizer steps."""
    model = make_model()
    model.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz", optimizer=Adam(1e-2))
    x = np.random.default_rng(2).normal(size=(4, 5))
    before = loaded.get_weights()
    loaded.backward(np.array([0, 1, 2, 0]), loaded.forward(x))
    assert not np.array_equal(loaded.get_weights(), before)
    np.testing.assert_array_equal(model.get_weights(), before)  # the saved model is untouched


def test_saved_file_is_plain_npz_without_pickles(tmp_path: Path) -> None:
    """numpy.load(allow_pickle=False) reads every entry; meta is JSON naming format and version."""
    model = make_model()
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as archive:
        entries = {name: archive[name] for name in archive.files}
    meta = json.loads(str(entries.pop("meta")))
    assert meta["format"] == "nnlib.mlp"
    assert isinstance(meta["version"], int)
    assert sorted(entries) == sorted(
        f"layer{i}_{part}" for i, _ in indexed_dense(model) for part in ("weights", "biases")
    )
    assert all(array.dtype == np.float32 for array in entries.values())


def test_save_is_byte_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same model saved twice (at different times, to different names) gives the same bytes.

    The second save runs with the clock moved 400 days on, so zip entry timestamps taken
    from the current time would show up as a difference.
    """
    model = make_model()
    model.save(tmp_path / "a.npz")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 400 * 86400)
    model.save(tmp_path / "sub" / "b.npz")  # the parent directory is created
    monkeypatch.undo()
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "sub" / "b.npz").read_bytes()
    twin = make_model()
    twin.save(tmp_path / "c.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "c.npz").read_bytes()


def test_failed_save_leaves_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the middle of writing keeps the old file intact and cleans up."""
    import nnlib.serialization as serialization

    path = tmp_path / "model.npz"
    make_model(seed=1).save(path)
    old = path.read_bytes()
    calls = []
    real = serialization._npy_bytes

    def failing(array: np.ndarray) -> bytes:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(array)

    monkeypatch.setattr(serialization, "_npy_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        make_model(seed=2).save(path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


# --------------------------------------------------------------------------- refusals


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Model.load(tmp_path / "nope.npz")


def test_truncated_files_are_refused(tmp_path: Path) -> None:
    """Cutting a saved file anywhere (start, middle, inside the zip directory) is refused."""
    source = tmp_path / "model.npz"
    make_model().save(source)
    data = source.read_bytes()
    cuts = sorted({0, 1, 2, 3, 4, 10, 30, 100, len(data) // 2, *range(len(data) - 40, len(data))})
    target = tmp_path / "cut.npz"
    for cut in cuts:
        target.write_bytes(data[:cut])
        load_error(target)


def test_corrupted_bytes_are_refused(tmp_path: Path) -> None:
    """Flipping bytes inside a stored array is caught (zip CRC), not loaded as other weights."""
    source = tmp_path / "model.npz"
    make_model().save(source)
    data = bytearray(source.read_bytes())
    target = tmp_path / "corrupt.npz"
    for offset in (len(data) // 3, len(data) // 2):
        corrupted = bytearray(data)
        corrupted[offset] ^= 0xFF
        target.write_bytes(bytes(corrupted))
        load_error(target)


def test_hand_written_valid_file_loads(tmp_path: Path) -> None:
    """The hand-made format below is accepted as-is (so the refusals test one fault each)."""
    model = make_model()
    meta, arrays = valid_entries(model)
    write_npz(tmp_path / "ok.npz", meta, arrays)
    loaded = Model.load(tmp_path / "ok.npz")
    np.testing.assert_array_equal(loaded.get_weights(), model.get_weights())
    assert loaded.metadata == {"class_names": ["a", "b", "c"]}


def test_a_version_1_file_loads_with_its_description_as_metadata(tmp_path: Path) -> None:
    """Files of format version 1 (dense layers numbered without gaps, the pipeline's keys at
    the top level) load as the same network, their non-null keys becoming the metadata."""
    model = make_model()
    meta, arrays = version_1_entries(model)
    write_npz(tmp_path / "v1.npz", meta, arrays)
    loaded = Model.load(tmp_path / "v1.npz")
    assert [type(layer) for layer in loaded.layers] == [DenseLayer] * 5
    assert loaded.layers[0].activation.negative_slope == 0.2
    np.testing.assert_array_equal(loaded.get_weights(), model.get_weights())
    x = np.random.default_rng(1).normal(size=(6, 5))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # dropout is off there
    assert loaded.metadata == {
        "normalization": meta["normalization"],
        "class_names": meta["class_names"],
        "dataset": "mnist",
    }
    loaded.save(tmp_path / "v3.npz")
    saved_meta = json.loads(str(np.load(tmp_path / "v3.npz")["meta"]))
    assert (saved_meta["version"], saved_meta["input_shape"]) == (3, [5])


MUTATIONS: dict[str, Callable[[dict, dict], None]] = {
    "weights-shape": lambda meta, arrays: arrays.update(
        layer1_weights=np.zeros((6, 7), dtype=np.float32)  # transposed
    ),
    "biases-shape": lambda meta, arrays: arrays.update(layer3_biases=np.zeros(5, np.float32)),
    "meta-size-disagrees": lambda meta, arrays: meta["layers"][1].update(output_size=5),
    "weights-dtype": lambda meta, arrays: arrays.update(
        layer0_weights=arrays["layer0_weights"].astype(np.float64)
    ),
    "nan-weight": lambda meta, arrays: arrays["layer4_weights"].__setitem__((0, 0), np.nan),
    "inf-bias": lambda meta, arrays: arrays["layer5_biases"].__setitem__(1, -np.inf),
    "missing-array": lambda meta, arrays: arrays.pop("layer3_weights"),
    "extra-array": lambda meta, arrays: arrays.update(layer9_weights=np.zeros(2, np.float32)),
    "dropout-with-weights": lambda meta, arrays: arrays.update(
        layer2_weights=np.zeros((6, 6), np.float32)
    ),
    "version-4": lambda meta, arrays: meta.update(version=4),
    "version-3-without-input-shape": lambda meta, arrays: meta.update(version=3),
    "version-3-input-shape-disagrees": lambda meta, arrays: meta.update(version=3, input_shape=[6]),
    "version-3-input-shape-not-sizes": lambda meta, arrays: meta.update(
        version=3, input_shape=[5.0]
    ),
    "version-0": lambda meta, arrays: meta.update(version=0),
    "version-string": lambda meta, arrays: meta.update(version="2"),
    "no-version": lambda meta, arrays: meta.pop("version"),
    "other-format": lambda meta, arrays: meta.update(format="keras"),
    "unknown-activation": lambda meta, arrays: meta["layers"][0]["activation"].update(name="swish"),
    "unknown-layer-kind": lambda meta, arrays: meta["layers"][2].update(kind="batchnorm"),
    "bad-dropout-rate": lambda meta, arrays: meta["layers"][2].update(rate=1.5),
    "unknown-loss": lambda meta, arrays: meta.update(loss="hinge"),
    "float16": lambda meta, arrays: meta.update(dtype="float16"),
    "bad-dtype-name": lambda meta, arrays: meta.update(dtype="floaty"),
    "no-layers": lambda meta, arrays: meta.update(layers=[]),
    "layer-not-a-dict": lambda meta, arrays: meta["layers"].__setitem__(0, [5, 7, "relu"]),
    "negative-size": lambda meta, arrays: meta["layers"][0].update(input_size=-5),
    "bad-slope": lambda meta, arrays: meta["layers"][0]["activation"].update(negative_slope=3.0),
    "metadata-not-a-mapping": lambda meta, arrays: meta.update(metadata=["a", "b", "c"]),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_inconsistent_files_are_refused(tmp_path: Path, mutation: str) -> None:
    """A consistent-looking hand-written file with one fault raises a one-line ModelFormatError."""
    meta, arrays = valid_entries(make_model())
    MUTATIONS[mutation](meta, arrays)
    path = tmp_path / f"{mutation}.npz"
    write_npz(path, meta, arrays)
    load_error(path)


@pytest.mark.parametrize(
    "meta_text",
    ["[1, 2]", '"nnlib.mlp"', "42", "null", "{not json", ""],
    ids=["list", "string", "number", "null", "invalid-json", "empty"],
)
def test_meta_that_is_not_a_json_object_is_refused(tmp_path: Path, meta_text: str) -> None:
    """meta must be a JSON object; anything else is a ModelFormatError, not a crash."""
    path = tmp_path / "m.npz"
    _, arrays = valid_entries(make_model())
    np.savez(path, meta=np.array(meta_text), **arrays)
    load_error(path)


def test_file_without_meta_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    _, arrays = valid_entries(make_model())
    np.savez(path, **arrays)
    load_error(path)


def test_npz_with_object_array_is_refused_as_pickle(tmp_path: Path) -> None:
    """An .npz whose entry is an object array (a pickle inside) is refused, not unpickled."""
    meta, arrays = valid_entries(make_model())
    arrays["layer0_biases"] = np.array([{"evil": 1}, None, 3, 4, 5, 6, 7], dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    info = load_error(path)
    assert "pickle" in str(info.value)


def test_object_meta_is_refused_as_pickle(tmp_path: Path) -> None:
    """meta stored as an object array (e.g. a pickled dict) is refused."""
    _, arrays = valid_entries(make_model())
    path = tmp_path / "pickled_meta.npz"
    np.savez(path, meta=np.array({"format": "nnlib.mlp"}, dtype=object), **arrays)
    load_error(path)


def test_plain_pickle_file_is_refused(tmp_path: Path) -> None:
    """A pickle (what a careless save would produce) is never unpickled."""
    path = tmp_path / "model.pkl"
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    path.write_bytes(pickle.dumps({"weights": [np.zeros(3)], "payload": Payload()}))
    info = load_error(path)
    assert "pickle" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world, not a model", b"PK\x03\x04" + b"\x00" * 40],
    ids=["empty", "text", "broken-zip"],
)
def test_garbage_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    load_error(path)


def test_bare_npy_file_is_refused(tmp_path: Path) -> None:
    """A .npy array (not an .npz archive) is a ModelFormatError, not a TypeError from numpy."""
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((3, 3), dtype=np.float32))
    load_error(path)


def test_zip_that_is_not_npz_is_refused(tmp_path: Path) -> None:
    """A valid zip holding something other than .npy members is refused."""
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", b"this is not an npy header")
    load_error(path)


def test_identity_output_round_trip(tmp_path: Path) -> None:
    """A regression head (Identity output, MSE) also round-trips exactly."""
    rng = np.random.default_rng(0)
    model = classifier([3, 4, 2], head=Identity, loss=MeanSquaredError(), rng=rng)
    model.save(tmp_path / "r.npz")
    loaded = Model.load(tmp_path / "r.npz")
    x = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.metadata == {}


@pytest.mark.parametrize("version", [True, 2.0, "2"])
def test_model_version_must_be_an_integer(tmp_path: Path, version: object) -> None:
    meta, arrays = valid_entries(make_model())
    meta["version"] = version
    path = tmp_path / "model.npz"
    write_npz(path, meta, arrays)
    assert "version" in str(load_error(path).value)


def test_numpy_scalars_in_the_metadata_are_saved_as_numbers(tmp_path: Path) -> None:
    model = make_model()
    model.metadata = {"normalization": {"mean": np.float32(0.25), "std": np.float64(2)}}
    model.save(tmp_path / "model.npz")
    loaded = Model.load(tmp_path / "model.npz")
    assert loaded.metadata == {"normalization": {"mean": 0.25, "std": 2.0}}


LOAD = """
import sys
from nnlib.errors import ModelFormatError
from nnlib.serialization import read_model
try:
    read_model(sys.argv[1])
except ModelFormatError as exc:
    print(exc)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("meta_agrees", "reason"),
    [
        (False, "layer0_weights is float32[16384, 8192], the architecture needs float32[784, 16]"),
        (True, "describes 134,307,850 parameters, more than its 523,"),
    ],
    ids=["member-differs-from-meta", "meta-agrees"],
)
def test_a_huge_member_is_refused_before_its_data_is_read(
    huge_member_model: Callable[[bool], Path], meta_agrees: bool, reason: str
) -> None:
    """A 0.5 MB file whose first weights member decompresses to 512 MiB: refused from its
    header (or the description it contradicts), with a peak memory far below the member."""
    path = huge_member_model(meta_agrees)
    assert zipfile.ZipFile(path).getinfo("layer0_weights.npy").file_size > HUGE_BYTES
    result = measure_peak([sys.executable, "-c", LOAD, str(path)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: {reason}")
    assert result.peak_bytes < HUGE_BYTES / 4  # numpy.load of every member peaks above 550 MB


# --------------------------------------------------------------------------- image layers

FILES = Path(__file__).parent / "files"


def make_cnn(dtype: type = np.float32, seed: int = 0) -> Model:
    """``support.models.small_cnn`` with a dropout layer, metadata and random parameters."""
    rng = np.random.default_rng(seed)
    model = small_cnn(rng=rng, dtype=dtype, optimizer=Adam(1e-3), dropout=0.25, metadata=METADATA)
    return random_parameters(model, rng, 0.3)


@DTYPES
def test_a_cnn_round_trips_exactly(tmp_path: Path, dtype: type) -> None:
    """Conv, pool, dropout, flatten and dense layers, the input shape and the weights come
    back; the loaded model predicts the same bits and trains on."""
    model = make_cnn(dtype)
    model.save(tmp_path / "cnn.npz")
    loaded = Model.load(tmp_path / "cnn.npz", optimizer=Adam(1e-3))
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in model.layers]
    assert loaded.input_shape == CNN_INPUT
    assert loaded.dtype == dtype
    assert loaded.metadata == model.metadata
    np.testing.assert_array_equal(loaded.get_weights(), model.get_weights())
    x = np.random.default_rng(1).normal(size=(5, *CNN_INPUT))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.fit_batch(x, np.array([0, 1, 2, 0, 1]))
    assert not np.array_equal(loaded.get_weights(), model.get_weights())


def test_a_cnn_file_holds_torch_shaped_kernels_and_the_input_shape(tmp_path: Path) -> None:
    model = make_cnn()
    model.save(tmp_path / "cnn.npz")
    with np.load(tmp_path / "cnn.npz", allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        shapes = {name: archive[name].shape for name in archive.files if name != "meta"}
    assert (meta["format"], meta["version"], meta["input_shape"]) == ("nnlib.mlp", 3, [1, 12, 12])
    assert [layer["kind"] for layer in meta["layers"]] == [
        "conv2d",
        "maxpool2d",
        "dropout",
        "conv2d",
        "maxpool2d",
        "flatten",
        "dense",
    ]
    assert shapes == {
        "layer0_weights": (4, 1, 3, 3),
        "layer0_biases": (4,),
        "layer3_weights": (6, 4, 3, 3),
        "layer3_biases": (6,),
        "layer6_weights": (24, 3),
        "layer6_biases": (3,),
    }


def test_a_version_2_file_written_by_the_previous_nnlib_loads(tmp_path: Path) -> None:
    """tests/files/model_v2.npz was written by nnlib's format-2 writer (commit 9557826:
    dense 6-5 leaky ReLU, dropout, dense 5-4 tanh, dense 4-3 softmax, random float32
    weights), with its predictions for five inputs beside it. It loads as the same network
    and predicts the same; saved again, it becomes version 3."""
    loaded = Model.load(FILES / "model_v2.npz")
    assert [layer.kind for layer in loaded.layers] == ["dense", "dropout", "dense", "dense"]
    assert loaded.input_shape == (6,)
    assert loaded.layers[0].activation.negative_slope == 0.2
    assert loaded.metadata == {"class_names": ["a", "b", "c"], "image_shape": [2, 3]}
    with np.load(FILES / "model_v2.npz", allow_pickle=False) as archive:
        assert json.loads(str(archive["meta"]))["version"] == 2
        np.testing.assert_array_equal(loaded.layers[2].weights, archive["layer2_weights"])
    with np.load(FILES / "model_v2_predictions.npz", allow_pickle=False) as expected:
        np.testing.assert_allclose(
            loaded.predict(expected["x"]), expected["probabilities"], rtol=1e-6
        )
    loaded.save(tmp_path / "again.npz")
    again = Model.load(tmp_path / "again.npz")
    assert json.loads(str(np.load(tmp_path / "again.npz")["meta"]))["version"] == 3
    np.testing.assert_array_equal(again.get_weights(), loaded.get_weights())


def cnn_entries() -> tuple[dict, dict[str, np.ndarray]]:
    """The meta and arrays of ``make_cnn``'s file, read back with numpy."""
    model = make_cnn()
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(str(arrays.pop("meta"))), arrays


CNN_MUTATIONS: dict[str, Callable[[dict, dict], None]] = {
    "kernel-shape": lambda meta, arrays: arrays.update(
        layer0_weights=np.zeros((4, 1, 5, 5), np.float32)
    ),
    "kernel-transposed": lambda meta, arrays: arrays.update(
        layer3_weights=np.zeros((4, 6, 3, 3), np.float32)
    ),
    "config-disagrees-with-arrays": lambda meta, arrays: meta["layers"][3].update(out_channels=5),
    "input-shape-channels": lambda meta, arrays: meta.update(input_shape=[3, 12, 12]),
    "input-shape-too-small": lambda meta, arrays: meta.update(input_shape=[1, 3, 3]),
    "input-shape-missing": lambda meta, arrays: meta.pop("input_shape"),
    "input-shape-flat": lambda meta, arrays: meta.update(input_shape=[144]),
    "no-flatten": lambda meta, arrays: meta["layers"].__setitem__(
        5, {"kind": "dropout", "rate": 0}
    ),
    "bad-stride": lambda meta, arrays: meta["layers"][1].update(stride=0),
    "float-kernel": lambda meta, arrays: meta["layers"][0].update(kernel_size=3.0),
    "negative-padding": lambda meta, arrays: meta["layers"][3].update(padding=-1),
    "softmax-conv": lambda meta, arrays: meta["layers"][0].update(activation={"name": "softmax"}),
    "pool-with-weights": lambda meta, arrays: arrays.update(
        layer1_weights=np.zeros((2, 2), np.float32)
    ),
}


@pytest.mark.parametrize("mutation", list(CNN_MUTATIONS))
def test_inconsistent_cnn_files_are_refused(tmp_path: Path, mutation: str) -> None:
    """One fault in an otherwise consistent CNN file: a one-line ModelFormatError."""
    meta, arrays = cnn_entries()
    write_npz(tmp_path / "untouched.npz", meta, arrays)
    Model.load(tmp_path / "untouched.npz")
    CNN_MUTATIONS[mutation](meta, arrays)
    path = tmp_path / f"{mutation}.npz"
    write_npz(path, meta, arrays)
    load_error(path)


def test_many_unexpected_entries_are_named_in_a_short_line(tmp_path: Path) -> None:
    """20,000 extra members: the refusal names three and counts the rest (it listed all of
    them: a 1,207-character error line, past the 1,200 every error line keeps to)."""
    path = tmp_path / "model.npz"
    classifier((4, 3, 2)).save(path)
    with zipfile.ZipFile(path, "a") as archive:
        for n in range(20_000):
            archive.writestr(f"extra{n:05d}.npy", b"")
    with pytest.raises(ModelFormatError) as caught:
        Model.load(path)
    assert str(caught.value) == (
        f"{path}: unexpected entries 'extra00000', 'extra00001', 'extra00002' and 19997 more"
    )
