"""The layer every model stacks, and the dense and dropout layers.

Every layer has ``forward(x, training=...)``, ``backward(grad)`` (returning the gradient of
its input), its parameters (possibly none), ``output_shape`` (the shape of one output for a
given input shape, so a stack checks itself when it is built) and a ``config()`` that
rebuilds it (``nnlib.layer_kinds.layer_from_config``). Batches are ``(n, *shape)``:
``(n, features)`` for dense layers, ``(n, C, H, W)`` for image layers
(``nnlib.convolution``, ``nnlib.pooling``). In training mode a layer writes into buffers it
keeps per batch size and remembers what its backward needs; out of it (``training=False``,
prediction) it allocates and remembers nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlib.activations import Activation, Identity, activation_from_config, ones
from nnlib.buffers import BatchBuffers
from nnlib.initializers import initial_weights

Shape = tuple[int, ...]


def float_dtype(dtype: np.typing.DTypeLike) -> np.dtype:
    """``dtype`` as a numpy dtype, refusing anything but float32 and float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int, refusing non-integers and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    return int(value)


def assign_parameter(target: np.ndarray, value: np.ndarray, name: str) -> None:
    """Copy ``value`` into the parameter array ``target`` (in its dtype), refusing another
    shape."""
    value = np.asarray(value)
    if value.shape != target.shape:
        raise ValueError(f"{name} must have shape {target.shape}, got {value.shape}")
    np.copyto(target, value, casting="same_kind")


class Layer:
    """Base class of the layers a ``Model`` stacks.

    Subclasses set ``kind`` (their name in a saved model) and implement ``forward``,
    ``backward``, ``output_shape`` and ``config``; a layer with parameters also implements
    ``parameter_shapes``, ``bind`` and ``named_parameters``.
    """

    kind: str = ""
    #: the dtype of its parameters, or None if it has none (it keeps its input's dtype)
    dtype: np.dtype | None = None
    #: whether its output always has its input's shape (a model looks through such layers
    #: for the first one that fixes the input shape)
    keeps_shape: bool = False

    @property
    def input_shape(self) -> Shape | None:
        """The shape of one input (no batch dimension) that the layer alone fixes, or None
        if it takes what the layer before it gives."""
        return None

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

    def output_shape(self, input_shape: Shape) -> Shape:
        """The shape of one output for inputs of ``input_shape`` (neither has the batch
        dimension); ValueError saying why if the layer cannot take them."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``(n, *input_shape)`` -> ``(n, *output_shape)``."""
        raise NotImplementedError

    def backward(self, grad: np.ndarray, input_gradient: bool = True) -> np.ndarray | None:
        """Fill the parameters' gradients from ``grad`` = dL/d(output) ``(n, *output_shape)``
        of the last training-mode forward, and return dL/d(input) ``(n, *input_shape)`` (None
        when not ``input_gradient``). ``grad`` may be overwritten."""
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
        self.input_size = check_count("input_size", input_size)
        self.output_size = check_count("output_size", output_size)
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
        assign_parameter(self._weights, value, "weights")

    @property
    def biases(self) -> np.ndarray:
        return self._biases

    @biases.setter
    def biases(self, value: np.ndarray) -> None:
        assign_parameter(self._biases, value, "biases")

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

    @property
    def input_shape(self) -> Shape:
        return (self.input_size,)

    def output_shape(self, input_shape: Shape) -> Shape:
        if input_shape != (self.input_size,):
            hint = " (a Flatten before it makes rows of them)" if len(input_shape) > 1 else ""
            raise ValueError(f"it expects inputs of shape ({self.input_size},){hint}")
        return (self.output_size,)

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
    keeps_shape = True

    def __init__(self, rate: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._masks = BatchBuffers()
        self._outputs = BatchBuffers()
        #: the last training forward's mask (0 or ``1 / (1 - rate)`` per input), None if identity
        self.mask: np.ndarray | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or not self.rate:
            if training:
                self.mask = None
            return x
        if x.ndim != 2:
            return self._forward_any_shape(x)
        n, width = x.shape
        mask = self._masks.get(n, width, x.dtype)
        self.rng.random(out=mask, dtype=x.dtype)
        np.greater_equal(mask, x.dtype.type(self.rate), out=mask)  # kept with 1 - rate
        mask *= x.dtype.type(1 / (1 - self.rate))
        self.mask = mask
        # Not in place: x is the previous layer's output, which its backward still needs.
        return np.multiply(x, mask, out=self._outputs.get(n, width, x.dtype))

    def _forward_any_shape(self, x: np.ndarray) -> np.ndarray:
        """``forward`` in training for batches of any shape (image batches). The mask is drawn
        in the order ``x`` lies in memory, so that the product runs over contiguous arrays
        (for a channels-last image batch: position by position, the channels of each)."""
        order = memory_order(x)
        x_in_memory = x.transpose(order)
        mask = self._masks.shaped(x_in_memory.shape, x.dtype)
        self.rng.random(out=mask, dtype=x.dtype)
        np.greater_equal(mask, x.dtype.type(self.rate), out=mask)
        mask *= x.dtype.type(1 / (1 - self.rate))
        out = np.multiply(x_in_memory, mask, out=self._outputs.shaped(mask.shape, x.dtype))
        back = tuple(np.argsort(order))
        self.mask = mask.transpose(back)
        return out.transpose(back)

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


def memory_order(x: np.ndarray) -> tuple[int, ...]:
    """The axes of ``x`` from the largest stride to the smallest: ``x.transpose(order)`` walks
    its memory in order (is C-contiguous for a transposed contiguous array)."""
    return tuple(sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis])))
