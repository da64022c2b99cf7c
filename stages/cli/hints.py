"""What to try when training fails: the settings a failure message should point at."""

from __future__ import annotations

from stages.cli.params import DropoutEntry, ModelParams, TrainParams

#: the usual range of weight decay ends here; beyond it the decay dominates the gradient of
#: the weights that matter (with adam and sgd from about 0.2 on, training learns nothing)
SUSPECT_WEIGHT_DECAY = 0.1
#: the usual range of dropout ends here; beyond it too few units pass anything on
SUSPECT_DROPOUT = 0.5


def training_hint(train: TrainParams, model: ModelParams) -> str:
    """The settings to name after a failed training: weight decay and dropout (model.dropout,
    or a dropout entry of model.layers) when they are beyond their usual ranges (they are then
    the likely cause, whatever the learning rate), the learning rate always."""
    rate = f"train.learning_rate is {train.learning_rate:g}"
    suspects = []
    if train.weight_decay > SUSPECT_WEIGHT_DECAY:
        suspects.append(f"train.weight_decay is {train.weight_decay:g} (usually 0 to 0.1)")
    if model.dropout > SUSPECT_DROPOUT:
        suspects.append(f"model.dropout is {model.dropout:g} (usually 0 to 0.5)")
    for i, entry in enumerate(model.layers):
        if isinstance(entry, DropoutEntry) and entry.rate > SUSPECT_DROPOUT:
            suspects.append(f"model.layers[{i}].rate is {entry.rate:g} (usually 0 to 0.5)")
    if suspects:
        return f"; but {' and '.join(suspects)}: lower it first ({rate})"
    return f" ({rate})"
