"""stages.data.model_metadata: a model's metadata checked against the model, dense-first or
conv-first, in one line naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.models import digit_cnn, digit_model

from nnlib.model import Model
from stages.data.errors import DataError
from stages.data.model_metadata import describe_model

PATH = Path("model.npz")


@pytest.mark.parametrize("build", [digit_model, digit_cnn], ids=["mlp", "cnn"])
def test_a_model_whose_inputs_are_its_images_is_described(build: Callable[[], Model]) -> None:
    described = describe_model(build(), PATH)
    assert described.image_shape == (28, 28)
    assert described.dataset == "mnist"


def test_a_conv_first_model_of_other_images_is_refused() -> None:
    with pytest.raises(DataError) as caught:
        describe_model(digit_cnn(input_shape=(1, 14, 56)), PATH)
    assert str(caught.value) == (
        "model.npz: the model takes images of shape (1, 14, 56), not (1, 28, 28) ([28, 28] "
        "images); retrain it (dvc repro)"
    )


def test_a_conv_first_model_with_another_class_count_is_refused() -> None:
    model = digit_cnn(class_names=[str(k) for k in range(10)])
    model.metadata["class_names"] = model.metadata["class_names"][:9]
    model.metadata["dataset"] = "images"
    with pytest.raises(DataError, match=r"the model has 9 class names for 10 outputs"):
        describe_model(model, PATH)
