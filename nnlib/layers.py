"""The layers a model stacks: each maps a batch forward and its gradient backward.

Every layer has ``forward(x, training=...)``, ``backward(grad)`` (returning the gradient of
its input), its parameters (possibly none) and a ``config()`` that rebuilds it with
``layer_from_config``. Batches are ``(n_samples, n_features)``. In training mode a layer
writes into buffers it keeps per batch size and remembers what its backward needs; out of
it (``training=False``, prediction) it allocates and remembers nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlib.activations import Activation, Identity, activation_from_config, ones
from nnlib.buffers import BatchBuffers
from nnlib.initializers import initial_weights


def float_dtype(dtype: np.typing.DTypeLike) -> np.dtype:
    """``dtype`` as a numpy dtype, refusing anything but float32 and float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Layer:
    """Base class of the layers a ``Model`` stacks.

    Subclasses set ``kind`` (their name in a saved model) and implement ``forward``,
    ``backward``, ``output_size_for`` and ``config``; a layer with parameters also
    implements ``parameter_shapes``, ``bind`` and ``named_parameters``.
    """

    kind: str = ""
    #: the inputs the layer takes, or None if it takes any width
    input_size: int | None = None
    #: the dtype of its parameters, or None if it has none (it keeps its input's dtype)
    dtype: np.dtype | None = None

    @classmethod
    def parameter_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter array of the layer ``config`` describes."""
        return {}

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.parameter_shapes(self.config()).values())

    def bind(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Move the parameters into ``params``, their gradients into ``grads`` (1-D, n_params)."""

    def named_parameters(self) -> dict[str, np.ndarray]:
        """Each parameter array by name (views into the model's flat vector once bound)."""
        return {}

    def output_size_for(self, input_size: int | None) -> int | None:
        """The output width for inputs of ``input_size``; ValueError if it cannot take them."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``(n, input_size)`` -> ``(n, output_size)``."""
        raise NotImplementedError

    def backward(self, grad: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """Fill the parameters' gradients from ``grad`` = dL/d(output) ``(n, output_size)`` of
        the last training-mode forward, and return dL/d(input) ``(n, input_size)`` (None when
        not ``input_gradient``). ``grad`` may be overwritten."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """What ``layer_from_config`` rebuilds the layer from (JSON-compatible)."""
        raise NotImplementedError


class DenseLayer(Layer):
    """``a = activation(x @ weights + biases)``.

    ``weights`` has shape ``(input_size, output_size)`` and ``biases``
    ``(output_size,)``. Once the layer is part of a ``Model`` both are views into
    the model's one flat parameter vector (and ``grad_weights``/``grad_biases``
    into its gradient vector); assigning to them copies into those views.

    Parameters
    ----------
    input_size, output_size : int
        Units in and out.
    activation_function : Activation, default Identity()
    init : {"he", "glorot"}, optional
        Defaults to what the activation prefers (He for ReLU-like, else Glorot).
    rng : numpy.random.Generator, optional
        Source of the initial weights; pass one Generator to every layer of a
        model for reproducible runs. A fresh unseeded Generator if omitted.
    dtype : float32 (default) or float64
    """

    kind = "dense"

    def __init__(
        self,
        input_size: int,
        output_size: int,
        activation_function: Activation | None = None,
        *,
        init: str | None = None,
        rng: np.random.Generator | None = None,
        dtype: np.typing.DTypeLike = np.float32,
    ) -> None:
        for name, size in (("input_size", input_size), ("output_size", output_size)):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        self.input_size = int(input_size)
        self.output_size = int(output_size)
        self.activation = activation_function if activation_function is not None else Identity()
        self.init = init or self.activation.default_init
        self.dtype = float_dtype(dtype)
        rng = rng if rng is not None else np.random.default_rng()
        self._weights = initial_weights(
            self.init, self.input_size, self.output_size, rng, self.dtype
        )
        self._biases = np.zeros(self.output_size, dtype=self.dtype)
        self.grad_weights = np.zeros_like(self._weights)
        self.grad_biases = np.zeros_like(self._biases)
        self._outputs = BatchBuffers()
        self._input_grads = BatchBuffers()
        # the last training-mode forward: its input and output, for backward
        self._x: np.ndarray | None = None
        self._a: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        return self._weights

    @weights.setter
    def weights(self, value: np.ndarray) -> None:
        self._assign(self._weights, value, "weights")

    @property
    def biases(self) -> np.ndarray:
        return self._biases

    @biases.setter
    def biases(self, value: np.ndarray) -> None:
        self._assign(self._biases, value, "biases")

    @staticmethod
    def _assign(target: np.ndarray, value: np.ndarray, name: str) -> None:
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, got {value.shape}")
        np.copyto(target, value, casting="same_kind")

    @classmethod
    def parameter_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n_in, n_out = config["input_size"], config["output_size"]
        return {"weights": (n_in, n_out), "biases": (n_out,)}

    @property
    def n_params(self) -> int:
        return self.input_size * self.output_size + self.output_size

    def bind(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Weights first (row-major), then biases."""
        split = self.input_size * self.output_size
        shape = (self.input_size, self.output_size)
        weights, biases = params[:split].reshape(shape), params[split:]
        np.copyto(weights, self._weights)
        np.copyto(biases, self._biases)
        self._weights, self._biases = weights, biases
        self.grad_weights, self.grad_biases = grads[:split].reshape(shape), grads[split:]

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {"weights": self._weights, "biases": self._biases}

    def output_size_for(self, input_size: int | None) -> int:
        if input_size is not None and input_size != self.input_size:
            raise ValueError(f"expects {self.input_size} inputs, gets {input_size}")
        return self.output_size

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Input of another dtype is cast to the layer's, never the other way."""
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if not training:
            z = np.dot(x, self._weights)
            z += self._biases
            return self.activation.forward(z, out=z)
        out = self._outputs.get(len(x), self.output_size, self.dtype)
        np.dot(x, self._weights, out=out)  # np.dot: 0.3 us less per call than np.matmul
        out += self._biases
        self._x, self._a = x, self.activation.forward(out, out=out)
        return out

    def backward(self, grad: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self._a is None:
            raise RuntimeError("backward needs a forward pass in training mode first")
        grad_z = self.activation.backward(self._a, grad, out=grad)
        return self.backward_linear(grad_z, input_gradient)

    def backward_linear(self, grad_z: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """``backward`` from dL/dz ``(n, output_size)``, the gradient before the activation
        (a model's fused softmax + cross-entropy head starts here)."""
        x = self._x
        if x is None:
            raise RuntimeError("backward needs a forward pass in training mode first")
        np.dot(x.T, grad_z, out=self.grad_weights)
        # The batch sum as a product with a row of ones: 0.4 us where np.add.reduce takes
        # 1.1 us at batch 32 (three layers: 2% of a training step).
        np.dot(ones(len(grad_z), grad_z.dtype), grad_z, out=self.grad_biases)
        if not input_gradient:
            return None
        grad_x = self._input_grads.get(len(grad_z), self.input_size, self.dtype)
        return np.dot(grad_z, self._weights.T, out=grad_x)

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input_size": self.input_size,
            "output_size": self.output_size,
            "activation": self.activation.config(),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: np.typing.DTypeLike) -> DenseLayer:
        activation = activation_from_config(config["activation"])
        # The weights drawn here are placeholders: the caller loads the real ones.
        return cls(
            config["input_size"],
            config["output_size"],
            activation,
            rng=np.random.default_rng(0),
            dtype=dtype,
        )

    def __repr__(self) -> str:
        return (
            f"DenseLayer(input_size={self.input_size}, output_size={self.output_size}, "
            f"activation_function={self.activation!r}, dtype={self.dtype.name})"
        )


class Dropout(Layer):
    """Inverted dropout, as ``torch.nn.Dropout``: in training, each input is zeroed with
    probability ``rate`` and the others are scaled by ``1 / (1 - rate)``; at prediction
    time (and at rate 0) it is the identity and draws nothing.

    Parameters
    ----------
    rate : float in [0, 1)
    rng : numpy.random.Generator, optional
        Source of the masks (one uniform draw per input in training); pass the model's one
        Generator for reproducible runs.
    """

    kind = "dropout"

    def __init__(self, rate: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._masks = BatchBuffers()
        self._outputs = BatchBuffers()
        #: the last training forward's mask (0 or ``1 / (1 - rate)`` per input), None if identity
        self.mask: np.ndarray | None = None

    def output_size_for(self, input_size: int | None) -> int | None:
        return input_size

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or not self.rate:
            if training:
                self.mask = None
            return x
        n, width = x.shape
        mask = self._masks.get(n, width, x.dtype)
        self.rng.random(out=mask, dtype=x.dtype)
        np.greater_equal(mask, x.dtype.type(self.rate), out=mask)  # kept with 1 - rate
        mask *= x.dtype.type(1 / (1 - self.rate))
        self.mask = mask
        # Not in place: x is the previous layer's output, which its backward still needs.
        return np.multiply(x, mask, out=self._outputs.get(n, width, x.dtype))

    def backward(self, grad: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        if self.mask is not None:
            grad *= self.mask
        return grad if input_gradient else None

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "rate": self.rate}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: np.typing.DTypeLike) -> Dropout:
        return cls(config["rate"])

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate})"


LAYERS: dict[str, type[Layer]] = {cls.kind: cls for cls in (DenseLayer, Dropout)}


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
