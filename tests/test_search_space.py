"""tools/search_space.py (the search space file), the study's identity checks and the
objective's epoch (tools/search_study.py, tools/search_trial.py), without running DVC."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from support import REPO
from support.in_process import invoke_stage
from support.params import write_params

from nnlib.metrics import accuracy
from nnlib.model import Model
from stages.data.processed import load_meta, load_split
from stages.outputs.history import read_live_folder

optuna = pytest.importorskip("optuna", reason="optuna comes with the search extra")
sys.path.insert(0, str(REPO / "tools"))

import search_space  # noqa: E402
import search_study  # noqa: E402
import search_trial  # noqa: E402

SAMPLER = {"name": "TPESampler", "seed": 3}


def write_space(directory: Path, **sections: Any) -> Path:
    path = directory / "search.yaml"
    path.write_text(yaml.safe_dump({"sampler": SAMPLER, **sections}), encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> str:
    """The one-line error that loading ``text`` as a search space gives."""
    params = write_params(tmp_path)
    space = tmp_path / "search.yaml"
    space.write_text(text, encoding="utf-8")
    with pytest.raises(search_space.SpaceError) as error:
        search_space.load_space(space, params)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_the_repository_search_space_loads_against_its_params() -> None:
    """Every key, range, seed and setting of search.yaml, as the file says them."""
    space = search_space.load_space(REPO / "search.yaml", REPO / "params.yaml")
    written = yaml.safe_load((REPO / "search.yaml").read_text(encoding="utf-8"))
    assert {
        key: dimension.model_dump(exclude_defaults=True) for key, dimension in space.params.items()
    } == written["params"]
    assert space.fixed == written["fixed"]
    sampler = dict(written["sampler"])
    assert (space.sampler.name, space.sampler.seed) == (sampler.pop("name"), sampler.pop("seed"))
    assert space.sampler.arguments == sampler
    assert type(space.make_sampler()).__name__ == space.sampler.name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "params: {train.learning_rat: {low: 0.001, high: 0.01}}",
            "params: train.learning_rat is not a key of {params} "
            "(did you mean train.learning_rate?)",
        ),
        (
            "params: {train.learning_rate: {low: 0.0, high: 0.01}}",
            "params.train.learning_rate: low 0.0 is refused: "
            "train.learning_rate must be a number > 0",
        ),
        (
            "params: {train.optimizer: {choices: [adam, rmsprop]}}",
            "params.train.optimizer: choice 'rmsprop' is refused: "
            "train.optimizer must be one of sgd, adam, adamw",
        ),
        (
            "params: {model.hidden_sizes: {choices: [[64], [0, 3]]}}",
            "params.model.hidden_sizes: choice [0, 3] is refused: "
            "model.hidden_sizes must be a list of integers >= 1 (or [] when model.layers describes "
            "the network)",
        ),
        (
            "params: {train.batch_size: {low: 8.0, high: 64.0}}",
            "params.train.batch_size: low 8.0 is refused: train.batch_size must be an integer >= 1",
        ),
        (
            "params: {train.epochs: {low: 1, high: 3}}\nfixed: {data.val_size: 0}",
            "fixed: {params} with these values: data.val_size must be > 0: trials are "
            "scored on the validation split",
        ),
        (
            "params: {train.learning_rate: {low: 1e-2, high: 1e-4}}",
            "params.train.learning_rate: low (0.01) must be below high (0.0001)",
        ),
        (
            "params: {train.learning_rate: {low: -1.0, high: 1.0, log: true}}",
            "params.train.learning_rate: a log range needs low > 0, got -1.0",
        ),
        (
            "params: {train.learning_rate: {low: 0.001, high: 0.1, lg: true}}",
            "unknown key params.train.learning_rate.lg",
        ),
        (
            "params: {train.learning_rate: 0.01}",
            "params.train.learning_rate: expected {low: .., high: ..} or {choices: [..]} "
            "(a single value belongs under fixed), got 0.01",
        ),
        ("params: {}", "params: name at least one key to search"),
        (
            "params: {train.epochs: {low: 1, high: 3}}\nfixed: {train.epochs: 2}",
            "train.epochs is both in params and in fixed",
        ),
        (
            "params: {train.seed: {choices: [1, 1]}}",
            "params.train.seed: choices must differ from each other",
        ),
        (
            "params: {model: {choices: [{hidden_sizes: [64]}, [32]]}}",
            "params.model: choices are all mappings of keys set together, or none is",
        ),
        (
            "params: {model.hidden_sizes: {choices: [{hidden_sizes: [64]}]}}",
            "params.model.hidden_sizes: choices are mappings of keys, but model.hidden_sizes is "
            "not a mapping of {params}",
        ),
        (
            "params: {model: {choices: [[64], [32]]}}",
            "params: model is not a key of {params}: it holds keys; choices of mappings of "
            "them set them together",
        ),
        (
            "params: {model: {choices: [{hidden_size: [64]}]}}",
            "params.model: model.hidden_size is not a key of {params} "
            "(did you mean model.hidden_sizes?)",
        ),
        (
            "params: {model: {choices: [{hidden_sizes: [64]}]}, "
            "model.hidden_sizes: {choices: [[32], [16]]}}",
            "model.hidden_sizes is set by the choices of params.model and on its own",
        ),
        (
            "params: {model: {choices: [{layers: [{type: dense, units: 8}]}]}}",
            "params.model: choice {'layers': [{'type': 'dense', 'units': 8}]} is refused: "
            "model.hidden_sizes [64, 32] and model.layers (1 entry) are both set, and the "
            "network is one or the other: set model.hidden_sizes to [] for model.layers' "
            "network (dvc exp run -S 'model.hidden_sizes=[]' -S 'model.layers=[...]'), or "
            "model.layers to [] for the MLP",
        ),
    ],
)
def test_a_space_is_refused_in_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    full = f"{text}\nsampler: {{name: TPESampler, seed: 3}}\n"
    expected = message.replace("{params}", str(tmp_path / "params.yaml"))
    assert refusal(tmp_path, full) == f"{tmp_path / 'search.yaml'}: {expected}"


@pytest.mark.parametrize(
    ("sampler", "pruner", "message"),
    [
        ("{name: TPESampler}", "", "sampler.seed is missing"),
        ("{name: Foo, seed: 1}", "", "sampler.name: Optuna has no sampler 'Foo' (it has "),
        (
            "{name: TPESampler, seed: 1, bogus: 3}",
            "",
            "sampler: Optuna's TPESampler refuses {'bogus': 3, 'seed': 1}: ",
        ),
        (
            "{name: TPESampler, seed: 1}",
            "pruner: {name: MedianPruner, n_warmup_steps: -1}",
            "pruner: Optuna's MedianPruner refuses {'n_warmup_steps': -1}: ",
        ),
    ],
)
def test_the_sampler_and_pruner_are_checked_by_optuna(
    tmp_path: Path, sampler: str, pruner: str, message: str
) -> None:
    text = f"params: {{train.seed: {{choices: [1, 2]}}}}\nsampler: {sampler}\n{pruner}\n"
    assert refusal(tmp_path, text).startswith(f"{tmp_path / 'search.yaml'}: {message}")


def test_a_trial_draws_typed_values_and_the_fixed_ones(tmp_path: Path) -> None:
    space = search_space.load_space(
        write_space(
            tmp_path,
            params={
                "train.learning_rate": {"low": "1e-4", "high": 1.0e-2, "log": True},
                "train.batch_size": {"low": 16, "high": 128, "step": 16},
                "model.hidden_sizes": {"choices": [[64, 32], [128]]},
                "model.activation": {"choices": ["relu", "tanh"]},
            },
            fixed={"train.epochs": 3, "train.restore_best": True},
        ),
        write_params(tmp_path),
    )
    study = optuna.create_study(direction="maximize", sampler=space.make_sampler())
    for _ in range(10):
        values = space.suggest(study.ask())
        assert 1e-4 <= values["train.learning_rate"] <= 1e-2
        assert isinstance(values["train.learning_rate"], float)
        assert values["train.batch_size"] in range(16, 129, 16)
        assert isinstance(values["train.batch_size"], int)
        assert values["model.hidden_sizes"] in ([64, 32], [128])
        assert values["model.activation"] in ("relu", "tanh")
        assert values["train.epochs"] == 3
        assert values["train.restore_best"] is True


MLP_OR_CNN = {
    "choices": [
        {"hidden_sizes": [128, 64], "layers": []},
        {
            "hidden_sizes": [],
            "layers": [
                {"type": "conv2d", "filters": 8, "kernel": 5},
                {"type": "maxpool2d", "size": 2},
                {"type": "dense", "units": 64, "activation": "relu"},
            ],
        },
    ]
}


def test_a_choice_of_networks_sets_both_keys_together(tmp_path: Path) -> None:
    """``model: {choices: [{hidden_sizes: .., layers: []}, {hidden_sizes: [], layers: ..}]}``:
    each trial sets both keys of the choice drawn, as ``-S`` overrides DVC applies to
    params.yaml."""
    from dvc.utils.hydra import apply_overrides

    params = write_params(tmp_path)
    space = search_space.load_space(write_space(tmp_path, params={"model": MLP_OR_CNN}), params)
    study = optuna.create_study(sampler=space.make_sampler())
    drawn = []
    for _ in range(8):
        values = space.suggest(study.ask())
        assert set(values) == {"model.hidden_sizes", "model.layers"}
        drawn.append(values)
        document = tmp_path / "drawn.yaml"
        document.write_text(params.read_text())
        arguments = search_space.overrides(values)
        apply_overrides(document, arguments[1::2])
        model = yaml.safe_load(document.read_text())["model"]
        assert {"hidden_sizes": model["hidden_sizes"], "layers": model["layers"]} in (
            MLP_OR_CNN["choices"]
        )
        assert model["hidden_sizes"] == values["model.hidden_sizes"]
    assert len({str(values) for values in drawn}) == 2  # both networks came up


def test_each_trial_number_seeds_its_own_draws(tmp_path: Path) -> None:
    """Trial n draws from seed + n: the same numbers give the same draws, others differ."""
    path = write_space(tmp_path, params={"train.learning_rate": {"low": 1e-4, "high": 1e-2}})
    space = search_space.load_space(path, write_params(tmp_path))

    def draw(offset: int) -> float:
        study = optuna.create_study(sampler=space.make_sampler(seed_offset=offset))
        return space.suggest(study.ask())["train.learning_rate"]

    assert draw(5) == draw(5)
    assert len({draw(n) for n in range(4)}) == 4


@pytest.mark.parametrize(
    ("values", "arguments"),
    [
        ({"train.learning_rate": 0.00123}, ["-S", "train.learning_rate=0.00123"]),
        ({"train.learning_rate": 1.5e-05}, ["-S", "train.learning_rate=1.5e-05"]),
        ({"model.hidden_sizes": [128, 64]}, ["-S", "model.hidden_sizes=[128,64]"]),
        (
            {"train.restore_best": True, "train.epochs": 3},
            ["-S", "train.restore_best=true", "-S", "train.epochs=3"],
        ),
        ({"model.activation": "leaky_relu"}, ["-S", "model.activation=leaky_relu"]),
        ({"data.dataset": "fashion-mnist"}, ["-S", "data.dataset=fashion-mnist"]),
        ({"x.name": "two words"}, ["-S", "x.name='two words'"]),
        (
            {"model.layers": [{"type": "conv2d", "filters": 8}, {"type": "dropout", "rate": 0.5}]},
            ["-S", "model.layers=[{type:conv2d,filters:8},{type:dropout,rate:0.5}]"],
        ),
    ],
)
def test_values_become_dvc_overrides(values: dict[str, Any], arguments: list[str]) -> None:
    assert search_space.overrides(values) == arguments


def test_nested_keys_are_found_and_set() -> None:
    document = {"train": {"augment": {"rotation": 0.0}, "epochs": 2}}
    assert search_space.has_key(document, "train.augment.rotation")
    assert not search_space.has_key(document, "train.augment")  # a section, not a key
    assert not search_space.has_key(document, "train.augment.shear")
    changed = search_space.with_value(document, "train.augment.rotation", 12.0)
    assert changed == {"train": {"augment": {"rotation": 12.0}, "epochs": 2}}
    assert document["train"]["augment"]["rotation"] == 0.0


def test_a_study_refuses_workers_of_another_commit_or_space(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    one = search_space.load_space(
        write_space(tmp_path, params={"train.seed": {"choices": [1, 2]}}), params
    )
    other = search_space.load_space(
        write_space(tmp_path, params={"train.seed": {"choices": [1, 3]}}), params
    )
    storage = search_study.open_storage(str(tmp_path / "journal.log"))
    search_study.join_study(storage, "s", one, "a" * 40)
    search_study.join_study(storage, "s", one, "a" * 40)  # a second worker joins
    with pytest.raises(
        search_study.SearchError, match="searches from commit aaaaaaa, this clone is at bbbbbbb"
    ):
        search_study.join_study(storage, "s", one, "b" * 40)
    with pytest.raises(search_study.SearchError, match="another search space"):
        search_study.join_study(storage, "s", other, "a" * 40)


def test_an_unreachable_database_is_one_line_without_its_password() -> None:
    url = "postgresql+psycopg://searcher:hunter2@127.0.0.1:9/search"
    with pytest.raises(search_study.SearchError) as error:
        search_study.open_storage(url)
    message = str(error.value)
    assert message.startswith(
        "cannot open the study storage postgresql+psycopg://searcher:***@127.0.0.1:9/search: "
    )
    assert "hunter2" not in message
    assert "\n" not in message


ROWS = [
    {
        "epoch": 1,
        "loss": 0.9,
        "accuracy": 0.6,
        "val_loss": 0.5,
        "val_accuracy": 0.8,
    },
    {
        "epoch": 2,
        "loss": 0.5,
        "accuracy": 0.8,
        "val_loss": 0.3,
        "val_accuracy": 0.9,
    },
    {
        "epoch": 3,
        "loss": 0.3,
        "accuracy": 0.9,
        "val_loss": 0.4,
        "val_accuracy": 0.9,
    },
    {
        "epoch": 4,
        "loss": 0.2,
        "accuracy": 0.9,
        "val_loss": 0.6,
        "val_accuracy": 0.85,
    },
]


@pytest.mark.parametrize(
    ("restore_best", "monitor", "epoch"),
    [
        (False, "val_accuracy", 4),
        (True, "val_accuracy", 2),  # the first of two best
        (True, "val_loss", 2),
        (True, "loss", 4),
        (True, "accuracy", 3),
    ],
)
def test_the_kept_epoch_is_the_one_the_model_holds(
    restore_best: bool, monitor: str, epoch: int
) -> None:
    assert search_trial.kept_epoch(ROWS, restore_best, monitor)["epoch"] == epoch


@pytest.mark.parametrize("restore_best", [False, True])
def test_the_objective_is_the_validation_accuracy_of_the_saved_model(
    workdir: Path, restore_best: bool
) -> None:
    """Against the model train wrote: scored on the validation split, it has the accuracy
    the objective reads from the history at the kept epoch."""
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"].update(epochs=6, restore_best=restore_best, monitor="val_loss")
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    result = invoke_stage("train", workdir)
    assert result.returncode == 0, result.stderr
    rows = read_live_folder(workdir / "dvclive")
    kept = search_trial.kept_epoch(rows, restore_best, "val_loss")
    data = workdir / "data" / "processed"
    X_val, y_val = load_split(data, "val", len(load_meta(data)["class_names"]))
    model = Model.load(workdir / "models" / "model.npz")
    scored = accuracy(y_val, model.predict(X_val))
    assert float(kept["val_accuracy"]) == pytest.approx(scored, abs=5e-7)
    if restore_best:
        assert np.argmin([float(r["val_loss"]) for r in rows]) + 1 == int(kept["epoch"])
