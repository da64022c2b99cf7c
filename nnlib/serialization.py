"""The saved-model format: a versioned ``.npz`` that ``numpy.load`` reads without pickles.

Entries: ``meta`` (a JSON string: format name and version, dtype, loss, each
layer's sizes and activation, the input normalization, the class names, the dataset and
its image shape) and
``layer{i}_weights`` / ``layer{i}_biases``. The zip is written with fixed
timestamps, so the same model always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnlib.activations import LeakyReLU, get_activation
from nnlib.errors import ModelFormatError
from nnlib.layers import DenseLayer
from nnlib.losses import get_loss
from nnlib.model import Model

FORMAT_NAME = "nnlib.mlp"
FORMAT_VERSION = 1
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _layer_meta(layer: DenseLayer) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "input_size": layer.input_size,
        "output_size": layer.output_size,
        "activation": layer.activation.name,
    }
    if isinstance(layer.activation, LeakyReLU):
        meta["negative_slope"] = layer.activation.negative_slope
    return meta


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays in the metadata (e.g. a float32 mean)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot save {type(value).__name__} in the model's metadata")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def model_bytes(model: Model) -> bytes:
    """The saved form of ``model``: the bytes of its ``.npz`` file."""
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dtype": model.dtype.name,
        "loss": model.loss.name,
        "layers": [_layer_meta(layer) for layer in model.layers],
        "normalization": model.normalization,
        "class_names": model.class_names,
        "dataset": model.dataset,
        "image_shape": model.image_shape,
    }
    entries = {"meta": np.array(json.dumps(meta, sort_keys=True, default=_plain))}
    for i, layer in enumerate(model.layers):
        entries[f"layer{i}_weights"] = layer.weights
        entries[f"layer{i}_biases"] = layer.biases
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in entries.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, _npy_bytes(array))
    return buffer.getvalue()


def save_model(model: Model, file: str | os.PathLike[str] | IO[bytes]) -> None:
    """Write ``model`` to a path, atomically (a crash leaves the previous file intact), or
    to an open binary file."""
    data = model_bytes(model)
    if not isinstance(file, (str, os.PathLike)):
        file.write(data)
        return
    target = Path(file)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_entries(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not magic:
        raise ModelFormatError(f"{path}: empty file, not a model")
    if magic[:1] == b"\x80":  # the pickle protocol's opcode
        raise ModelFormatError(f"{path}: a pickle file, which is refused (allow_pickle=False)")
    if magic == b"\x93NUM":
        raise ModelFormatError(f"{path}: not a model file (a bare .npy array, not an .npz)")
    if magic != b"PK\x03\x04":
        # numpy would try any other file as a pickle; say what it is not instead
        raise ModelFormatError(f"{path}: not an .npz model file (no zip header)")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFormatError(f"{path}: not a model file (a bare .npy array, not an .npz)")
        with archive:
            entries = {name: archive[name] for name in archive.files}
        for name, value in entries.items():
            if not isinstance(value, np.ndarray):  # NpzFile returns other members as bytes
                raise ModelFormatError(f"{path}: entry {name!r} is not a .npy array")
        return entries
    except ModelFormatError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFormatError(
                f"{path}: holds pickled objects, which are refused (allow_pickle=False)"
            ) from exc
        raise ModelFormatError(f"{path}: not a readable model file ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFormatError(f"{path}: truncated or corrupt model file ({exc})") from exc


def _parse_meta(path: str | os.PathLike[str], entries: dict[str, np.ndarray]) -> dict[str, Any]:
    raw = entries.get("meta")
    if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
        raise ModelFormatError(f"{path}: no 'meta' entry; not an nnlib model file")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: 'meta' entry is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: 'meta' entry is not a JSON object")
    if meta.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{path}: not an nnlib model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: model format version {version!r} is not supported "
            f"(this nnlib reads version {FORMAT_VERSION})"
        )
    return meta


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model written by ``save_model``, validating every entry against ``meta``.

    Raises ModelFormatError (one line, naming ``path``) for truncated files, pickles,
    a missing or unknown format, arrays of the wrong shape or dtype, or non-finite
    weights; FileNotFoundError if there is no file.
    """
    entries = _read_entries(path)
    meta = _parse_meta(path, entries)
    try:
        dtype = np.dtype(meta["dtype"])
        loss = get_loss(meta["loss"])
        layers = []
        for spec in meta["layers"]:
            activation = get_activation(spec["activation"])
            if "negative_slope" in spec:
                activation = LeakyReLU(spec["negative_slope"])
            layers.append(
                DenseLayer(
                    spec["input_size"],
                    spec["output_size"],
                    activation,
                    rng=np.random.default_rng(0),
                    dtype=dtype,
                )
            )
        model = Model(layers, loss)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: inconsistent model description ({exc})") from exc

    expected = {"meta"}
    for i, layer in enumerate(model.layers):
        for part in ("weights", "biases"):
            name = f"layer{i}_{part}"
            expected.add(name)
            array = entries.get(name)
            target = getattr(layer, part)
            if array is None:
                raise ModelFormatError(f"{path}: missing entry {name!r}")
            if array.shape != target.shape or array.dtype != target.dtype:
                raise ModelFormatError(
                    f"{path}: {name} is {array.dtype}{list(array.shape)}, "
                    f"the architecture needs {target.dtype}{list(target.shape)}"
                )
            if not np.isfinite(array).all():
                raise ModelFormatError(f"{path}: {name} holds NaN or infinite values")
            setattr(layer, part, array)
    unexpected = sorted(set(entries) - expected)
    if unexpected:
        raise ModelFormatError(f"{path}: unexpected entries {unexpected}")
    model.normalization = meta.get("normalization")
    model.class_names = meta.get("class_names")
    model.dataset = meta.get("dataset")
    model.image_shape = meta.get("image_shape")
    return model
