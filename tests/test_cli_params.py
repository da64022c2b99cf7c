"""stages.cli.params: the whole params.yaml validated, every error one line naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
import yaml
from support import REPO
from support.params import project_params, write_params

from nnlib.activations import HIDDEN_ACTIVATIONS
from nnlib.layer_kinds import LAYERS
from nnlib.optimizers import OPTIMIZERS
from nnlib.schedules import SCHEDULES
from nnlib.training import MONITORS
from stages.cli.errors import ParamsError, UsageError
from stages.cli.params import (
    LAYER_TYPES,
    Activation,
    Monitor,
    Optimizer,
    Schedule,
    did_you_mean,
    known_keys,
    load_params,
    with_available_monitor,
)


def test_the_project_params_load(tmp_path: Path) -> None:
    params = load_params(write_params(tmp_path))
    assert params.model.hidden_sizes == project_params()["model"]["hidden_sizes"]


def keys_of(document: dict, prefix: str = "") -> list[str]:
    """Every dotted key of a params document, inner keys as well as leaves."""
    keys = []
    for name, value in document.items():
        key = f"{prefix}.{name}" if prefix else name
        if prefix:
            keys.append(key)
        if isinstance(value, dict):
            keys.extend(keys_of(value, key))
    return keys


def test_every_schema_key_is_in_the_project_params() -> None:
    """params.yaml documents every key the stages read, and nothing else: its keys are the
    schema's, and the only ones it leaves out are the strengths under a dataset whose
    augmentation is ``none``."""
    params = project_params()
    written = set(keys_of(params))
    assert written <= set(known_keys())
    off = [
        f"train.augment.{name}."
        for name, entry in params["train"]["augment"].items()
        if entry == "none"
    ]
    assert off == ["train.augment.fashion-mnist."]
    assert sorted(set(known_keys()) - written) == sorted(
        key for key in known_keys() if key.startswith(tuple(off))
    )


def test_a_real_number_written_as_yaml_1_1_text_is_a_number(tmp_path: Path) -> None:
    """dvc exp run -S train.learning_rate=1e-3 writes 1e-3, which PyYAML reads as text."""
    path = tmp_path / "params.yaml"
    written = write_params(tmp_path, train={"learning_rate": 0.001}).read_text()
    text = written.replace("learning_rate: 0.001", "learning_rate: 1e-3")
    path.write_text(text)
    assert "learning_rate: 1e-3" in text
    assert load_params(path).train.learning_rate == 0.001


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "learning_rate", True, "train.learning_rate must be a number > 0, got True"),
        ("train", "learning_rate", ".nan", "train.learning_rate must be a number > 0, got '.nan'"),
        ("train", "epochs", 2.0, "train.epochs must be an integer >= 1, got 2.0"),
        (
            "train",
            "restore_best",
            "yes please",
            "train.restore_best must be true or false, got 'yes please'",
        ),
        ("train", "momentum", 1, "train.momentum must be a number >= 0 and < 1, got 1"),
        (
            "model",
            "hidden_sizes",
            [64, 0],
            "model.hidden_sizes must be a list of integers >= 1 (or [] when model.layers describes "
            "the network), got [64, 0]",
        ),
        (
            "data",
            "dataset",
            "cifar",
            "data.dataset must be one of mnist, fashion-mnist, images, got 'cifar'",
        ),
        ("data", "images", "", "data.images must be the path of a folder, got ''"),
        *(
            (
                "data",
                "val_size",
                value,
                "data.val_size must be a count (an integer >= 0) or a fraction (a number > 0 "
                f"and < 1), got {value!r}",
            )
            for value in (1.5, 1.0, 0.0, -1, True, "10%")
        ),
        (
            "data",
            "test_size",
            0,
            "data.test_size must be a count (an integer >= 1) or a fraction (a number > 0 "
            "and < 1), got 0",
        ),
    ],
)
def test_bad_values_name_key_and_value(
    tmp_path: Path, section: str, key: str, value: object, message: str
) -> None:
    path = write_params(tmp_path, **{section: {key: value}})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("val_size", "test_size", "loaded"),
    [(5000, 1, (5000, 1)), (0, 0.25, (0, 0.25)), ("1e-1", "2.5e-1", (0.1, 0.25))],
)
def test_split_sizes_are_counts_or_fractions(
    tmp_path: Path, val_size: object, test_size: object, loaded: tuple[object, object]
) -> None:
    """An integer is a count, a number between 0 and 1 a fraction (also as YAML 1.1 text,
    as ``dvc exp run -S data.val_size=1e-1`` writes it); the types stay apart."""
    data = load_params(write_params(tmp_path, data={"val_size": val_size, "test_size": test_size}))
    got = (data.data.val_size, data.data.test_size)
    assert got == loaded
    assert [type(value) for value in got] == [type(value) for value in loaded]


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("batch_size", " (did you mean train.batch_size?)"),
        ("train.epoch", " (did you mean train.epochs?)"),
        ("model.epochs", " (did you mean train.epochs?)"),
        ("train.dropout", " (did you mean model.dropout?)"),
        ("train.warmup", ""),
        ("colour", ""),
    ],
)
def test_unknown_keys_get_a_did_you_mean_where_one_fits(key: str, hint: str) -> None:
    assert did_you_mean(key) == hint


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: p.update(batch_size=64),
            "unknown key batch_size (did you mean train.batch_size?)",
        ),
        (
            lambda p: p["train"].update(dropout=0.5),
            "unknown key train.dropout (did you mean model.dropout?)",
        ),
        (
            lambda p: p["data"].update(augment=True),
            "unknown key data.augment (did you mean train.augment?)",
        ),
    ],
    ids=["top-level", "train", "data"],
)
def test_an_unknown_key_at_any_depth_is_refused(
    tmp_path: Path, edit: Callable[[dict], None], message: str
) -> None:
    params = project_params()
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == f"{path}: {message}"


def test_an_override_is_named_by_its_option_and_is_a_usage_error(tmp_path: Path) -> None:
    path = write_params(tmp_path, model={"activation": "swish"})
    # the bad option is reported (exit code 2) before the file's own problems
    with pytest.raises(UsageError, match=r"^--epochs must be an integer >= 1, got 0$"):
        load_params(path, {"train.epochs": (0, "--epochs")})
    path = write_params(tmp_path)
    assert load_params(path, {"train.epochs": (7, "--epochs")}).train.epochs == 7
    epochs = project_params()["train"]["epochs"]
    assert load_params(path, {"train.epochs": (None, "--epochs")}).train.epochs == epochs


@pytest.mark.parametrize(
    ("names", "registry"),
    [
        (Activation, HIDDEN_ACTIVATIONS),
        (Optimizer, OPTIMIZERS),
        (Schedule, SCHEDULES),
        (Monitor, MONITORS),
    ],
    ids=["activation", "optimizer", "schedule", "monitor"],
)
def test_the_names_the_schema_accepts_are_nnlibs(names: object, registry: object) -> None:
    assert get_args(names) == tuple(registry)  # the same names, in the same order


def test_a_name_nnlib_does_not_know_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = write_params(tmp_path, model={"activation": "Relu"})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == (
        f"{path}: model.activation must be one of relu, leaky_relu, sigmoid, tanh, "
        "got 'Relu' (did you mean relu?)"
    )


def test_every_problem_of_a_file_is_one_line(tmp_path: Path) -> None:
    params = project_params()
    params["model"].update(hidden_sizes=[64, 0, "x", -1], activation="swish")
    params["train"].update(epochs=0)
    del params["train"]["seed"]
    params["batch_size"] = 64
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value).splitlines() == [
        f"{path}: model.hidden_sizes must be a list of integers >= 1 (or [] when model.layers "
        "describes the network), got [64, 0, 'x', -1]",
        f"{path}: model.activation must be one of relu, leaky_relu, sigmoid, tanh, got 'swish'",
        f"{path}: train.epochs must be an integer >= 1, got 0",
        f"{path}: train.seed is missing",
        f"{path}: unknown key batch_size (did you mean train.batch_size?)",
    ]


def test_a_long_value_is_quoted_as_a_short_preview(tmp_path: Path) -> None:
    path = write_params(tmp_path, data={"dataset": "x" * 100_000})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(
        f"{path}: data.dataset must be one of mnist, fashion-mnist, images, got 'xxx"
    )
    assert "..." in line
    assert len(line) < len(str(path)) + 200


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    """PyYAML alone keeps the last value silently; DVC refuses such a file."""
    path = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    epochs = f"  epochs: {project_params()['train']['epochs']}"
    path.write_text(text.replace(f"{epochs}\n", f"{epochs}\n  epochs: 1\n"))
    line = text.splitlines().index(epochs) + 1
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == (
        f"{path}: key train.epochs is given twice (lines {line} and {line + 1}); keep one"
    )


def test_a_section_given_twice_is_named_as_such(tmp_path: Path) -> None:
    """Not "train.batch_size is missing", as the second section alone would say."""
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text() + "train:\n  epochs: 3\n")
    with pytest.raises(ParamsError, match=r"key train is given twice \(lines \d+ and \d+\)"):
        load_params(path)


def test_aliases_within_bounds_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    text = text.replace("seed: 42", "seed: &seed 42", 1).replace("  seed: 42", "  seed: *seed")
    path.write_text(text)
    params = load_params(path)
    assert params.data.split_seed == params.train.seed == 42


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    path.write_text(text.replace("hidden_sizes: [64, 32]", "hidden_sizes: &h [64, *h]"))
    with pytest.raises(ParamsError, match=r"an alias at line \d+ contains itself$"):
        load_params(path)


def test_a_monitor_that_needs_the_validation_split_it_lacks_is_refused(tmp_path: Path) -> None:
    path = write_params(tmp_path, data={"val_size": 0}, train={"patience": 3})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == (
        f"{path}: train.monitor is val_accuracy, which needs a validation split, but "
        "data.val_size is 0 (no split); set train.monitor to accuracy, or data.val_size above 0"
    )


def test_without_a_split_an_unused_monitor_falls_back_to_the_training_split(
    tmp_path: Path,
) -> None:
    """data.val_size 0 alone, as the README documents it, works with every other default."""
    path = write_params(tmp_path, data={"val_size": 0})
    params = load_params(path)
    train = with_available_monitor(params, False, path, tmp_path)
    assert (params.train.monitor, train.monitor) == ("val_accuracy", "accuracy")
    assert with_available_monitor(params, True, path, tmp_path).monitor == "val_accuracy"


# --- model.layers: the network as a list of entries ------------------------------------------

LENET = [
    {"type": "conv2d", "filters": 8, "kernel": 5, "activation": "relu"},
    {"type": "maxpool2d", "size": 2},
    {"type": "conv2d", "filters": 16, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "maxpool2d", "size": 3, "stride": 1},
    {"type": "dropout", "rate": 0.25},
    {"type": "dense", "units": 64, "activation": "tanh"},
]


def test_layers_read_with_their_defaults(tmp_path: Path) -> None:
    params = load_params(write_params(tmp_path, model={"hidden_sizes": [], "layers": LENET}))
    assert params.model.hidden_sizes == []
    assert [entry.model_dump() for entry in params.model.layers] == [
        {
            "type": "conv2d",
            "filters": 8,
            "kernel": 5,
            "stride": 1,
            "padding": 0,
            "activation": "relu",
        },
        {"type": "maxpool2d", "size": 2, "stride": None},
        {
            "type": "conv2d",
            "filters": 16,
            "kernel": 3,
            "stride": 2,
            "padding": 1,
            "activation": None,
        },
        {"type": "maxpool2d", "size": 3, "stride": 1},
        {"type": "dropout", "rate": 0.25},
        {"type": "dense", "units": 64, "activation": "tanh"},
    ]


def test_the_shipped_params_are_the_mlp(tmp_path: Path) -> None:
    params = load_params(write_params(tmp_path))
    assert (params.model.hidden_sizes, params.model.layers) == ([64, 32], [])


@pytest.mark.parametrize(
    ("left_out", "kept"),
    [("layers", {"hidden_sizes": [64, 32]}), ("hidden_sizes", {"layers": LENET})],
)
def test_a_key_left_out_is_not_set(tmp_path: Path, left_out: str, kept: dict) -> None:
    """Leaving a key out is the same as [] (what params.yaml writes; older files have no
    model.layers, and ``dvc exp run -S '~model.hidden_sizes'`` deletes a key)."""
    params = project_params()
    params["model"].update(kept)
    del params["model"][left_out]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert getattr(load_params(path).model, left_out) == []


def test_the_entry_types_are_nnlib_layer_kinds() -> None:
    assert set(LAYER_TYPES) <= set(LAYERS)
    assert set(LAYERS) - set(LAYER_TYPES) == {"flatten"}  # the pipeline adds it


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"type": "conv2d", "filters": 8, "kernel": 0},
            "model.layers[1].kernel must be an integer >= 1, got 0",
        ),
        (
            {"type": "conv2d", "filters": 8, "kernel": 5, "padding": -1},
            "model.layers[1].padding must be an integer >= 0, got -1",
        ),
        (
            {"type": "conv2d", "filters": 2.5, "kernel": 5},
            "model.layers[1].filters must be an integer >= 1, got 2.5",
        ),
        ({"type": "conv2d", "filters": 8}, "model.layers[1].kernel is missing"),
        (
            {"type": "maxpool2d", "size": 2, "stride": 0},
            "model.layers[1].stride must be an integer >= 1, got 0",
        ),
        (
            {"type": "dense", "units": 64, "activation": "Relu"},
            "model.layers[1].activation must be one of relu, leaky_relu, sigmoid, tanh, "
            "got 'Relu' (did you mean relu?)",
        ),
        (
            {"type": "dropout", "rate": 1.0},
            "model.layers[1].rate must be a number >= 0 and < 1, got 1.0",
        ),
        (
            {"type": "conv", "filters": 8, "kernel": 5},
            "model.layers[1].type must be one of conv2d, maxpool2d, dense, dropout, got 'conv' "
            "(did you mean conv2d?)",
        ),
        (
            {"filters": 8, "kernel": 5},
            "model.layers[1].type is missing: one of conv2d, maxpool2d, dense, dropout",
        ),
        (
            "conv2d",
            "model.layers[1] must be a mapping with a type (conv2d, maxpool2d, dense, dropout) "
            "and its keys, got 'conv2d'",
        ),
        (
            {"type": "conv2d", "filters": 8, "kernel": 5, "strides": 2},
            "unknown key model.layers[1].strides (did you mean model.layers[1].stride?)",
        ),
        (
            {"type": "maxpool2d", "size": 2, "filters": 8},
            "unknown key model.layers[1].filters: a maxpool2d entry takes type, size, stride",
        ),
    ],
    ids=[
        "kernel-0",
        "padding-negative",
        "filters-real",
        "kernel-missing",
        "stride-0",
        "activation-case",
        "rate-1",
        "type-unknown",
        "type-missing",
        "not-a-mapping",
        "key-misspelt",
        "key-of-another-type",
    ],
)
def test_a_bad_entry_is_one_line_naming_its_key_path(
    tmp_path: Path, entry: object, message: str
) -> None:
    layers = [LENET[0], entry, LENET[-1]]
    path = write_params(tmp_path, model={"hidden_sizes": [], "layers": layers})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == f"{path}: {message}"


def test_each_bad_entry_of_a_list_is_its_own_line(tmp_path: Path) -> None:
    layers = [{"type": "conv2d", "filters": 0, "kernel": 5}, LENET[1], {"type": "dense"}]
    path = write_params(tmp_path, model={"hidden_sizes": [], "layers": layers})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value).splitlines() == [
        f"{path}: model.layers[0].filters must be an integer >= 1, got 0",
        f"{path}: model.layers[2].units is missing",
    ]


def test_layers_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    path = write_params(tmp_path, model={"hidden_sizes": [], "layers": "lenet"})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == (
        f"{path}: model.layers must be a list of layer entries, each a mapping with a type "
        "(conv2d, maxpool2d, dense, dropout) and its keys (or [] when model.hidden_sizes "
        "describes the network), got 'lenet'"
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"hidden_sizes": [64, 32], "layers": LENET[:1]},
            "model.hidden_sizes [64, 32] and model.layers (1 entry) are both set, and the "
            "network is one or the other: set model.hidden_sizes to [] for model.layers' "
            "network (dvc exp run -S 'model.hidden_sizes=[]' -S 'model.layers=[...]'), or "
            "model.layers to [] for the MLP",
        ),
        (
            {"hidden_sizes": [], "layers": []},
            "model.hidden_sizes and model.layers are both empty: set model.hidden_sizes (the "
            "MLP's hidden layer sizes) or model.layers (a list of layer entries)",
        ),
        (
            {"hidden_sizes": [], "layers": LENET, "dropout": 0.5},
            "model.dropout is 0.5, which puts dropout after each of model.hidden_sizes' "
            "layers; model.layers places its own: add {type: dropout, rate: 0.5} entries "
            "where you want them, and set model.dropout to 0",
        ),
    ],
    ids=["both", "neither", "dropout-with-layers"],
)
def test_the_network_is_one_of_the_two_keys(tmp_path: Path, model: dict, message: str) -> None:
    path = write_params(tmp_path, model=model)
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == f"{path}: {message}"


def test_dropout_zero_goes_with_layers(tmp_path: Path) -> None:
    path = write_params(tmp_path, model={"hidden_sizes": [], "layers": LENET, "dropout": 0})
    assert load_params(path).model.dropout == 0


def test_a_datasets_bad_augment_entry_is_described_as_the_entry(tmp_path: Path) -> None:
    """The key path walks through train.augment's dataset keys to the entry's description."""
    path = write_params(tmp_path, train={"augment": {"mnist": "off", "fashion-mnist": "none"}})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == (
        f"{path}: train.augment.mnist must be none or a mapping of rotation, scale, shear, "
        "shift, elastic_alpha, elastic_sigma, mirror, got 'off'"
    )
