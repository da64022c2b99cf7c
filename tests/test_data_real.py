"""Download then preprocess the real MNIST files, from the folder MNIST_MIRROR names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from support.in_process import invoke_stage
from support.params import write_params

from stages.data import sources

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("normalize", ["scale", "standardize"])
def test_download_then_preprocess(tmp_path: Path, mnist_dir: Path, normalize: str) -> None:
    write_params(
        tmp_path,
        data={"dataset": "mnist", "val_size": 5000, "split_seed": 42, "normalize": normalize},
    )
    fetched = invoke_stage("download", tmp_path, env={"MNIST_MIRROR": str(mnist_dir)})
    assert fetched.returncode == 0, fetched.stderr
    raw = tmp_path / "data/raw/mnist"
    assert sorted(p.name for p in raw.iterdir()) == sorted(sources.IDX_FILES)
    for name in sources.IDX_FILES:  # copied byte for byte
        local, shared = (raw / name).read_bytes(), (mnist_dir / name).read_bytes()
        assert hashlib.sha256(local).digest() == hashlib.sha256(shared).digest()

    processed = invoke_stage("preprocess", tmp_path)
    assert processed.returncode == 0, processed.stderr
    out = tmp_path / "data/processed"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["splits"] == {"train": 55000, "val": 5000, "test": 10000}
    assert meta["image_shape"] == [28, 28]
    assert meta["normalization"]["method"] == normalize
    for split, n in meta["splits"].items():
        images = np.load(out / f"{split}_images.npy", mmap_mode="r")
        labels = np.load(out / f"{split}_labels.npy")
        assert images.shape == (n, 784)
        assert images.dtype == np.float32
        assert labels.shape == (n,)
        assert labels.dtype == np.int64
        assert np.bincount(labels, minlength=10).tolist() == meta["class_counts"][split]
        assert set(np.unique(labels).tolist()) == set(range(10))
        low, high = float(images.min()), float(images.max())
        if normalize == "scale":
            assert (low, high) == (0.0, 1.0)
        else:
            norm = meta["normalization"]
            assert norm["mean"] == pytest.approx(0.1307, abs=1e-3)  # the well-known MNIST values
            assert norm["std"] == pytest.approx(0.3081, abs=1e-3)
            assert low == pytest.approx(-norm["mean"] / norm["std"], rel=1e-6)
            assert high == pytest.approx((1 - norm["mean"]) / norm["std"], rel=1e-6)
    # stratified: each class is 5000/60000 of the training set, to within one image
    val_counts = np.array(meta["class_counts"]["val"])
    all_counts = val_counts + np.array(meta["class_counts"]["train"])
    assert (np.abs(val_counts - all_counts * 5000 / 60000) < 1).all()
