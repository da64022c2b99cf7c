"""stages.data.sources: the registry of datasets the pipeline knows."""

from __future__ import annotations

import pytest
from support.params import project_params

from stages.data import sources
from stages.data.errors import DataError


def test_registry_matches_params_choices() -> None:
    for dataset in sources.DATA_SOURCES.values():
        assert dataset.n_classes == 10
        assert all(m.startswith(("http://", "https://")) for m in dataset.mirrors)


def test_get_source_refuses_an_unknown_dataset() -> None:
    assert sources.get_source("fashion-mnist") is sources.DATA_SOURCES["fashion-mnist"]
    with pytest.raises(
        DataError, match=r"^unknown dataset 'cifar' \(known: mnist, fashion-mnist\)$"
    ):
        sources.get_source("cifar")


def test_the_project_params_name_a_registered_dataset() -> None:
    assert project_params()["data"]["dataset"] in sources.DATA_SOURCES
