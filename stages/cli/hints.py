"""What to try when training fails: the settings a failure message should point at."""

from __future__ import annotations

from stages.cli.params import TrainParams

#: weight decay from here on dominates the gradient of any weight that matters; usual
#: values are 0 to 0.1
SUSPECT_WEIGHT_DECAY = 1.0


def training_hint(train: TrainParams) -> str:
    """The settings to name after a failed training: weight decay when it is far beyond
    the usual range (it is then the cause, whatever the learning rate), the learning rate
    always."""
    rate = f"train.learning_rate is {train.learning_rate:g}"
    if train.weight_decay >= SUSPECT_WEIGHT_DECAY:
        return (
            f"; but train.weight_decay is {train.weight_decay:g}, far beyond the usual 0 to "
            f"0.1: lower it first ({rate})"
        )
    return f" ({rate})"
