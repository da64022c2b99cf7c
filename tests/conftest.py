"""Fixtures shared by the whole suite: the real MNIST folder, a small generated dataset, and
scratch directories holding processed data (and a trained model) for the stage commands.

The builders behind them live in ``tests/support``.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from support.idx import checksum_table, gz_files, link_files, make_arrays
from support.in_process import invoke_stage
from support.mirror_server import listening_socket
from support.model_files import write_huge_member_model
from support.models import digit_metadata, seed_net
from support.params import write_params
from support.processed import NORMALIZATION, write_processed

from nnlib import Dataset, training_loop
from stages.data.idx import read_idx
from stages.data.sources import IDX_FILES
from stages.images.constructions import normalize


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the real MNIST ``.gz`` files: ``$MNIST_MIRROR``, which ``make test``
    sets (the Makefile is the one place that names this team's offline copy)."""
    value = os.environ.get("MNIST_MIRROR", "")
    path = Path(value)
    if not value or not path.is_dir():
        pytest.skip("the real MNIST files: set MNIST_MIRROR to a folder holding them (make does)")
    return path


@pytest.fixture(scope="session")
def mnist_arrays(mnist_dir: Path) -> Mapping[str, np.ndarray]:
    """The four real MNIST files, parsed: IDX file name -> read-only uint8 array."""
    return _read_only({name: read_idx(mnist_dir / name) for name in IDX_FILES})


@pytest.fixture(scope="session")
def real_model(
    mnist_arrays: Mapping[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The seed post's 784-64-32-10, 3 epochs on the real MNIST training set (no
    distortions), saved as train saves a model: it reads digits as predict's tests need.
    Read it, never write."""
    rng = np.random.default_rng(0)
    model = seed_net(rng, metadata=digit_metadata())
    X = normalize(mnist_arrays[IDX_FILES.train_images], NORMALIZATION)
    labels = mnist_arrays[IDX_FILES.train_labels].astype(np.int64)
    training_loop(model, Dataset(X, labels, rng), 3, 32)
    path = tmp_path_factory.mktemp("real-model") / "model.npz"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def real_processed(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``data/processed`` as the preprocess command writes it from the real MNIST files with
    the project's params (55,000 train, 5,000 val, 10,000 test images). Read it, never write."""
    root = tmp_path_factory.mktemp("real-mnist")
    link_files(root / "data" / "raw" / "mnist", mnist_dir)
    write_params(root)
    result = invoke_stage("preprocess", root)
    assert result.returncode == 0, result.stderr
    return root / "data" / "processed"


@pytest.fixture(scope="session")
def huge_member_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[bool], Path]:
    """``get(meta_agrees)``: a 0.5 MB model file whose ``layer0_weights`` member holds 512 MiB
    (``support.model_files.write_huge_member_model``), built once per variant. Copy it
    before changing it."""
    directory = tmp_path_factory.mktemp("huge-member")
    built: dict[bool, Path] = {}

    def get(meta_agrees: bool = False) -> Path:
        if meta_agrees not in built:
            path = directory / f"model-{'agrees' if meta_agrees else 'differs'}.npz"
            built[meta_agrees] = write_huge_member_model(path, meta_agrees=meta_agrees)
        return built[meta_agrees]

    return get


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on 127.0.0.1 that never answers (``connections`` counts who came)."""
    with listening_socket() as sock:
        yield sock


@pytest.fixture(scope="session")
def arrays() -> Mapping[str, np.ndarray]:
    """The small generated dataset: IDX file name -> read-only uint8 array; 40 training and
    10 test images of random pixels, every digit in every split."""
    return _read_only(make_arrays(n_train=40, n_test=10))


@pytest.fixture(scope="session")
def files(arrays: Mapping[str, np.ndarray]) -> Mapping[str, bytes]:
    """The small dataset's ``.gz`` files: name -> bytes."""
    return MappingProxyType(gz_files(arrays))


@pytest.fixture(scope="session")
def table(arrays: Mapping[str, np.ndarray]) -> Mapping[str, str]:
    """The small dataset's checksum table: name -> SHA-256 of the decompressed file."""
    return MappingProxyType(checksum_table(arrays))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch directory for train and evaluate: small processed data (200 train, 50 val,
    60 test) and params for a quick run (3 epochs of batch 16 at learning rate 0.01)."""
    write_processed(tmp_path / "data" / "processed", {"train": 200, "val": 50, "test": 60})
    write_params(tmp_path, train={"epochs": 3, "batch_size": 16, "learning_rate": 0.01})
    return tmp_path


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``trained`` copies: one run of train, made once per session. Never write."""
    root = tmp_path_factory.mktemp("trained")
    write_processed(root / "data" / "processed", {"train": 100, "val": 20, "test": 30})
    write_params(root, train={"epochs": 1, "batch_size": 16})
    result = invoke_stage("train", root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def trained(trained_once: Path, tmp_path: Path) -> Path:
    """A scratch directory after one epoch of ``python -m stages.train`` (100 train, 20 val,
    30 test): ``models/model.npz`` and the history exist, evaluate has not run."""
    shutil.copytree(trained_once, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path


def _read_only(arrays: dict[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """``arrays`` frozen, so that session-wide fixtures cannot leak changes between tests."""
    for array in arrays.values():
        array.flags.writeable = False
    return MappingProxyType(arrays)
