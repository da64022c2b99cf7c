"""stages.data.normalization: pixel statistics and the normalization recipes."""

from __future__ import annotations

import numpy as np
import pytest

from stages.data.normalization import Normalization, pixel_mean_std


def test_pixel_mean_std_matches_float64_numpy() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5000, 7, 3), dtype=np.uint8)
    mean, std = pixel_mean_std(images)
    reference = images.astype(np.float64) / 255
    assert mean == pytest.approx(reference.mean(), rel=1e-13)
    assert std == pytest.approx(reference.std(), rel=1e-12)


def test_normalization_apply() -> None:
    images = np.array([[[0, 51], [255, 102]]], dtype=np.uint8)
    scaled = Normalization.fit("scale", images).apply(images)
    assert scaled.dtype == np.float32
    assert scaled.shape == (1, 4)
    np.testing.assert_array_equal(scaled, np.float32([[0, 0.2, 1, 0.4]]))
    standard = Normalization.fit("standardize", images)
    assert standard.mean == pytest.approx(0.4)
    out = standard.apply(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (scaled - 0.4) / standard.std, rtol=1e-6)


def test_standardize_refuses_constant_images() -> None:
    with pytest.raises(ValueError, match="same value"):
        Normalization.fit("standardize", np.full((3, 2, 2), 7, dtype=np.uint8))
