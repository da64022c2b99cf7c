"""The saved-model format: a versioned ``.npz`` that ``numpy.load`` reads without pickles.

Entries: ``meta`` (a JSON string: format name and version, dtype, loss, the shape of one
input sample, each layer's config, and the model's metadata mapping) and ``layer{i}_{name}``
for each parameter array of layer ``i`` (``layer0_weights``, ``layer0_biases``, ...; a layer
without parameters has none). The zip is written with fixed timestamps, so the same model
always gives the same bytes.

Versions: 3 (image layers; ``input_shape``) is written. Version 2 files (no
``input_shape``: the first dense layer fixes it) and version 1 files (dense layers only, the
metadata as top-level keys) still load. The format keeps its first name, ``nnlib.mlp``, so
that an older nnlib meeting a newer file names its version.

This module reads and writes layer configs and arrays; it knows no model class.
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from nnlib.errors import ModelFormatError
from nnlib.layer_kinds import layer_class, layer_from_config
from nnlib.layers import Layer
from nnlib.losses import LOSSES
from nnlib.shapes import stack_shapes

FORMAT_NAME = "nnlib.mlp"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Version 1 kept the pipeline's description as top-level keys; version 2 holds them in
# "metadata", untouched.
_V1_METADATA_KEYS = ("normalization", "class_names", "dataset", "image_shape")


class SavableModel(Protocol):
    """What ``save_model`` reads from a model."""

    layers: list[Layer]
    dtype: np.dtype
    metadata: dict[str, Any]
    input_shape: tuple[int, ...]

    @property
    def loss(self) -> Any: ...


@dataclass(frozen=True)
class SavedModel:
    """A model file's parts: its layers (parameters loaded), loss name, dtype, metadata and
    the shape of one input sample."""

    layers: list[Layer]
    loss: str
    dtype: np.dtype
    metadata: dict[str, Any]
    input_shape: tuple[int, ...]


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays in the metadata (e.g. a float32 mean)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot save {type(value).__name__} in the model's metadata")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def model_bytes(model: SavableModel) -> bytes:
    """The saved form of ``model``: the bytes of its ``.npz`` file."""
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dtype": model.dtype.name,
        "loss": model.loss.name,
        "input_shape": list(model.input_shape),
        "layers": [layer.config() for layer in model.layers],
        "metadata": model.metadata,
    }
    text = json.dumps(meta, sort_keys=True, default=_plain, allow_nan=False)
    entries = {"meta": np.array(text)}
    for i, layer in enumerate(model.layers):
        for name, array in layer.named_parameters().items():
            entries[f"layer{i}_{name}"] = array
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in entries.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, _npy_bytes(array))
    return buffer.getvalue()


def save_model(model: SavableModel, file: str | os.PathLike[str] | IO[bytes]) -> None:
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
    """The ``meta`` entry as a version-3 description (``input_shape`` None in a version-1
    or 2 one; a version-1 one is converted)."""
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: 'meta' entry is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: 'meta' entry is not a JSON object")
    if meta.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{path}: not an nnlib model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ModelFormatError(
            f"{path}: model format version {version!r} is not supported "
            f"(this nnlib reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if version == 1:
        meta = _from_version_1(meta)
    if version < 3:
        meta = {**meta, "input_shape": None}
    else:
        shape = meta.get("input_shape")
        if "input_shape" not in meta:
            raise ModelFormatError(f"{path}: inconsistent model description (no input_shape)")
        if not isinstance(shape, list) or not all(type(n) is int and n > 0 for n in shape):
            raise ModelFormatError(
                f"{path}: inconsistent model description (input_shape {shape!r} is not a "
                "list of positive integers)"
            )
    if not isinstance(meta.get("layers"), list) or not meta["layers"]:
        raise ModelFormatError(f"{path}: inconsistent model description (no layers)")
    if not isinstance(meta.get("metadata"), dict):
        raise ModelFormatError(
            f"{path}: inconsistent model description (metadata is not a mapping)"
        )
    return meta


def _from_version_1(meta: dict[str, Any]) -> dict[str, Any]:
    """A version-1 description (dense layers, metadata as top-level keys) as version 2."""
    layers = []
    for spec in meta.get("layers") or ():
        if not isinstance(spec, dict):
            layers.append(spec)
            continue
        activation = {"name": spec.get("activation")}
        if "negative_slope" in spec:
            activation["negative_slope"] = spec["negative_slope"]
        layers.append(
            {
                "kind": "dense",
                "input_size": spec.get("input_size"),
                "output_size": spec.get("output_size"),
                "activation": activation,
            }
        )
    metadata = {key: meta[key] for key in _V1_METADATA_KEYS if meta.get(key) is not None}
    return {**meta, "version": 2, "layers": layers, "metadata": metadata}


def _parameter_shapes(
    path: str | os.PathLike[str], configs: list[Any]
) -> list[dict[str, tuple[int, ...]]]:
    """Each layer's parameter shapes, checked to be positive sizes, before anything is built."""
    shapes = []
    try:
        for config in configs:
            if not isinstance(config, dict):
                raise TypeError(f"a layer is described by {type(config).__name__}, not a mapping")
            layer_shapes = layer_class(config).parameter_shapes(config)
            for name, shape in layer_shapes.items():
                if not all(type(n) is int and n > 0 for n in shape):
                    raise ValueError(f"{config['kind']} {name} of shape {list(shape)}")
            shapes.append(layer_shapes)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: inconsistent model description ({exc})") from None
    return shapes


def _check_sizes(path: str | os.PathLike[str], shapes: list[dict[str, tuple[int, ...]]]) -> None:
    """Refuse, before allocating, parameters that would not fit in the file."""
    total = sum(math.prod(shape) for layer in shapes for shape in layer.values())
    file_size = os.path.getsize(path)
    if total * 4 > file_size:  # float32 or wider: every parameter takes 4 bytes or more
        raise ModelFormatError(
            f"{path}: describes {total:,} parameters, more than its {file_size:,} bytes hold"
        )


def _dtype(path: str | os.PathLike[str], meta: dict[str, Any]) -> np.dtype:
    try:
        dtype = np.dtype(meta.get("dtype"))
    except TypeError as exc:
        raise ModelFormatError(f"{path}: inconsistent model description ({exc})") from None
    if dtype not in (np.float32, np.float64):
        raise ModelFormatError(f"{path}: parameters of dtype {dtype} (float32 or float64 expected)")
    return dtype


def _build(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    dtype: np.dtype,
    arrays: Mapping[str, np.ndarray],
) -> tuple[list[Layer], tuple[int, ...]]:
    """The layers ``meta`` describes, holding ``arrays`` (``layer{i}_{name}``), and the shape
    of one input sample, checked to pass through them."""
    try:
        layers = [layer_from_config(config, dtype) for config in meta["layers"]]
        input_shape = stack_shapes(layers, meta["input_shape"]).input_shape
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: inconsistent model description ({exc})") from None
    for i, layer in enumerate(layers):
        for name, target in layer.named_parameters().items():
            np.copyto(target, arrays[f"layer{i}_{name}"])
    return layers, input_shape


def read_model(path: str | os.PathLike[str]) -> SavedModel:
    """Read a model file written by ``save_model``, validating every entry against ``meta``.

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
            dtype = _dtype(path, meta)
            if meta.get("loss") not in LOSSES:
                raise ModelFormatError(f"{path}: unknown loss {meta.get('loss')!r}")
            shapes = _parameter_shapes(path, meta["layers"])
            _check_sizes(path, shapes)
            arrays: dict[str, np.ndarray] = {}
            for i, layer_shapes in enumerate(shapes):
                for part, shape in layer_shapes.items():
                    name = f"layer{i}_{part}"
                    if name not in members:
                        raise ModelFormatError(f"{path}: missing entry {name!r}")
                    array = _read_member(path, archive, name, (shape, dtype))
                    if not np.isfinite(array).all():
                        raise ModelFormatError(f"{path}: {name} holds NaN or infinite values")
                    arrays[name] = array
            unexpected = sorted(members - {"meta", *arrays})
            if unexpected:
                shown = ", ".join(repr(name[:40]) for name in unexpected[:3])
                more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
                raise ModelFormatError(f"{path}: unexpected entries {shown}{more}")
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ModelFormatError(f"{path}: truncated or corrupt model file ({exc})") from exc
    layers, input_shape = _build(path, meta, dtype, arrays)
    return SavedModel(layers, str(meta.get("loss")), dtype, meta["metadata"], input_shape)
