"""The memory a planned network needs to train, and the check that it fits before anything
is allocated.

Counted in float32 values, from the plan's shapes:

- each parameter six times (itself, its gradient, the optimizer's three state arrays, the
  best epoch's copy), a convolution's eight (its weights also as the kernel matrix the
  product takes, and that matrix's gradient);
- per sample of a batch, the buffers nnlib's layers keep while training: each layer's
  output; a convolution's window columns ``OH*OW x k*k*C`` and, with padding, its padded
  input; a dropout's mask; and on the way back the gradient of each layer's input (none
  at or below the first layer with parameters), padded for a padded convolution, with a
  convolution's and a pooling's scratch arrays.

The training data and the distorted copies of each epoch are not counted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from stages.cli.errors import StageError
from stages.network.plan import Plan, PlannedLayer

#: bytes of a float32 value
_VALUE_BYTES = 4
#: float32 arrays of a parameter's size while training, by layer kind (others: 6)
_ARRAYS_PER_PARAMETER = {"conv2d": 8}
_DEFAULT_ARRAYS = 6


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), if the system says."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


@dataclass(frozen=True)
class TrainingMemory:
    """What training a network holds: its parameters, and the values its layers keep for a
    batch (``activations``), each counted as float32."""

    parameters: int
    parameter_values: int
    activations: int

    @property
    def bytes(self) -> int:
        return (self.parameter_values + self.activations) * _VALUE_BYTES


def activation_values(layer: PlannedLayer, input_gradient: bool, first: bool = False) -> int:
    """The values ``layer`` keeps for one sample while training (see the module's text);
    ``input_gradient``: whether it computes the gradient of its input (a layer above one
    with parameters does); ``first``: it is the network's first layer. 0 for a layer that
    cannot take its input."""
    if layer.output_shape is None:
        return 0
    given, made = math.prod(layer.input_shape), math.prod(layer.output_shape)
    if layer.kind == "conv2d":
        channels, height, width = layer.input_shape
        k, p = layer.config["kernel_size"], layer.config["padding"]
        positions = made // layer.config["out_channels"]
        padded = channels * (height + 2 * p) * (width + 2 * p) if p else 0
        forward = made + positions * k * k * channels + padded  # output, windows, padded input
        # the (padded) input gradient, one kernel position's part of it, the unpadded copy
        backward = (padded or given) + positions * channels + (given if p else 0)
    elif layer.kind == "maxpool2d":
        overlapping = layer.config["stride"] < layer.config["kernel_size"]
        forward = made
        backward = given + made * (2 if overlapping else 1)  # input gradient, routing masks
    elif layer.kind == "dropout":
        forward, backward = 2 * made, 0  # output and mask; the gradient is masked in place
    elif layer.kind == "flatten" and first:
        forward, backward = 0, 0  # the input images as rows: a view
    else:  # dense, flatten
        forward, backward = made, given
    return forward + (backward if input_gradient else 0)


def training_memory(plan: Plan, batch_size: int) -> TrainingMemory:
    """What training ``plan``'s network on batches of ``batch_size`` holds (its layers up to
    the first that does not fit, if one does not)."""
    parameter_values = sum(
        layer.n_params * _ARRAYS_PER_PARAMETER.get(layer.kind, _DEFAULT_ARRAYS)
        for layer in plan.layers
    )
    trained = [i for i, layer in enumerate(plan.layers) if layer.n_params]
    first_trained = trained[0] if trained else len(plan.layers)
    per_sample = sum(
        activation_values(layer, input_gradient=i > first_trained, first=i == 0)
        for i, layer in enumerate(plan.layers)
    )
    return TrainingMemory(plan.n_params, parameter_values, per_sample * batch_size)


def check_fits_in_memory(
    plan: Plan, batch_size: int, source: Path, available: int | None = None
) -> TrainingMemory:
    """Refuse, before anything is allocated, a network whose training would not fit in the
    memory available (``available`` bytes, by default what the system reports)."""
    needed = training_memory(plan, batch_size)
    available = available_memory() if available is None else available
    if available is not None and needed.bytes > available:
        at_least = "" if plan.fits else "at least "
        raise StageError(
            f"{source}: {plan.label} gives {at_least}{needed.parameters:,} parameters and "
            f"{needed.activations:,} activation values per batch of {batch_size} "
            f"(train.batch_size), which need about {needed.bytes / 1e9:.1f} GB to train; this "
            f"machine has {available / 1e9:.1f} GB available"
        )
    return needed
