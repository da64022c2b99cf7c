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
import math
import os
import tempfile
import zipfile
import zlib
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


_MAX_META_BYTES = 1 << 20  # the JSON description of a model is a few kB


def _check_container(path: str | os.PathLike[str]) -> None:
    """Refuse what is not a zip archive, naming what it is instead."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not magic:
        raise ModelFormatError(f"{path}: empty file, not a model")
    if magic[:1] == b"\x80":  # the pickle protocol's opcode
        raise ModelFormatError(f"{path}: a pickle file, which is refused (allow_pickle=False)")
    if magic == b"\x93NUM":
        raise ModelFormatError(f"{path}: not a model file (a bare .npy array, not an .npz)")
    if magic != b"PK\x03\x04":
        raise ModelFormatError(f"{path}: not an .npz model file (no zip header)")


def _read_header(path: str | os.PathLike[str], name: str, stream: IO[bytes]) -> tuple:
    """The ``(shape, fortran_order, dtype)`` of a ``.npy`` member, read before its data."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(stream)
    except ValueError as exc:
        raise ModelFormatError(f"{path}: entry {name!r} is not a .npy array ({exc})") from None
    raise ModelFormatError(f"{path}: entry {name!r} has .npy format version {version}")


def _read_member(
    path: str | os.PathLike[str],
    archive: zipfile.ZipFile,
    name: str,
    expected: tuple[tuple[int, ...], np.dtype] | None,
) -> np.ndarray:
    """Read member ``name.npy``, checking its header (and its size) before its data.

    ``expected`` is the ``(shape, dtype)`` it must have; None for the meta entry, which
    must be a small unicode scalar.
    """
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as stream:
        shape, fortran_order, dtype = _read_header(path, name, stream)
        if dtype.hasobject:
            raise ModelFormatError(
                f"{path}: entry {name!r} holds pickled objects, which are refused "
                "(allow_pickle=False)"
            )
        if expected is None:
            if shape != () or dtype.kind != "U" or dtype.itemsize > _MAX_META_BYTES:
                raise ModelFormatError(f"{path}: no 'meta' entry; not an nnlib model file")
        elif (shape, dtype) != expected:
            raise ModelFormatError(
                f"{path}: {name} is {dtype}{list(shape)}, "
                f"the architecture needs {expected[1]}{list(expected[0])}"
            )
        n_bytes = math.prod(shape) * dtype.itemsize
        if info.file_size != stream.tell() + n_bytes:
            raise ModelFormatError(
                f"{path}: entry {name!r} is {info.file_size} bytes, its header describes "
                f"{stream.tell() + n_bytes}"
            )
        data = stream.read(n_bytes)
    if len(data) != n_bytes:
        raise ModelFormatError(f"{path}: entry {name!r} is truncated")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array.copy()


def _parse_meta(path: str | os.PathLike[str], raw: np.ndarray) -> dict[str, Any]:
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


def _build(path: str | os.PathLike[str], meta: dict[str, Any]) -> Model:
    """The model ``meta`` describes, with placeholder weights."""
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
        return Model(layers, loss)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: inconsistent model description ({exc})") from exc


def _check_sizes(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Refuse, before allocating, layer sizes whose weights would not be in the file."""
    total = 0
    for spec in meta.get("layers") or ():
        sizes = (spec.get("input_size"), spec.get("output_size")) if isinstance(spec, dict) else ()
        if len(sizes) == 2 and all(type(n) is int and n > 0 for n in sizes):
            total += (sizes[0] + 1) * sizes[1]
    file_size = os.path.getsize(path)
    if total * 4 > file_size:  # float32 or wider: every parameter takes 4 bytes or more
        raise ModelFormatError(
            f"{path}: describes {total:,} parameters, more than its {file_size:,} bytes hold"
        )


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model written by ``save_model``, validating every entry against ``meta``.

    Each member's header (name, shape, dtype, size) is checked before its data is read,
    so a refused file costs about its own size in memory. Raises ModelFormatError (one
    line, naming ``path``) for truncated files, pickles, a missing or unknown format,
    arrays of the wrong shape or dtype, or non-finite weights; FileNotFoundError if
    there is no file.
    """
    _check_container(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy") for info in archive.infolist()}
            if any(not info.filename.endswith(".npy") for info in archive.infolist()):
                raise ModelFormatError(f"{path}: holds entries that are not .npy arrays")
            if "meta" not in members:
                raise ModelFormatError(f"{path}: no 'meta' entry; not an nnlib model file")
            meta = _parse_meta(path, _read_member(path, archive, "meta", None))
            _check_sizes(path, meta)
            model = _build(path, meta)
            expected = {"meta"}
            for i, layer in enumerate(model.layers):
                for part in ("weights", "biases"):
                    name = f"layer{i}_{part}"
                    expected.add(name)
                    if name not in members:
                        raise ModelFormatError(f"{path}: missing entry {name!r}")
                    target = getattr(layer, part)
                    array = _read_member(path, archive, name, (target.shape, target.dtype))
                    if not np.isfinite(array).all():
                        raise ModelFormatError(f"{path}: {name} holds NaN or infinite values")
                    setattr(layer, part, array)
            unexpected = sorted(members - expected)
            if unexpected:
                raise ModelFormatError(f"{path}: unexpected entries {unexpected}")
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ModelFormatError(f"{path}: truncated or corrupt model file ({exc})") from exc
    model.normalization = meta.get("normalization")
    model.class_names = meta.get("class_names")
    model.dataset = meta.get("dataset")
    model.image_shape = meta.get("image_shape")
    return model
