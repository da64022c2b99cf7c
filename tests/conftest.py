"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the real MNIST ``.gz`` files: ``$MNIST_MIRROR``, which ``make test``
    sets (the Makefile is the one place that names this team's offline copy)."""
    value = os.environ.get("MNIST_MIRROR", "")
    path = Path(value)
    if not value or not path.is_dir():
        pytest.skip("the real MNIST files: set MNIST_MIRROR to a folder holding them (make does)")
    return path
