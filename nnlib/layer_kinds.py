"""Every kind of layer by the name a saved model gives it, and layers rebuilt from configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlib.convolution import Conv2D
from nnlib.flatten import Flatten
from nnlib.layers import DenseLayer, Dropout, Layer
from nnlib.pooling import MaxPool2D

LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (DenseLayer, Dropout, Conv2D, MaxPool2D, Flatten)
}


def layer_class(config: Mapping[str, Any]) -> type[Layer]:
    """The layer class ``config["kind"]`` names; ValueError if there is none."""
    kind = config.get("kind")
    if kind not in LAYERS:
        raise ValueError(f"unknown layer kind {kind!r}; known: {', '.join(LAYERS)}")
    return LAYERS[kind]


def layer_from_config(config: Mapping[str, Any], dtype: np.typing.DTypeLike) -> Layer:
    """The layer ``config`` (from ``Layer.config``) describes, in ``dtype``, with placeholder
    parameters."""
    return layer_class(config).from_config(config, dtype)
