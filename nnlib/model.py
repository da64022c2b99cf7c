"""The model: a stack of layers, a loss and an optimizer, as in the blog post."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np

from nnlib.activations import Softmax
from nnlib.buffers import BatchBuffers
from nnlib.layers import DenseLayer, Layer, Shape
from nnlib.losses import CrossEntropyLoss, Loss, get_loss
from nnlib.optimizers import Optimizer
from nnlib.serialization import read_model, save_model
from nnlib.shapes import stack_shapes

#: ``predict`` runs batches whose largest activation holds about this many values
_PREDICT_VALUES = 1 << 22
_PREDICT_MAX_BATCH = 4096


class Model:
    """A stack of layers trained by ``backward`` (gradients + optimizer step).

    ``forward`` runs the layers in order, ``backward`` walks them in reverse, each layer
    turning the gradient of its output into the gradient of its input. The model owns one
    flat parameter vector and one flat gradient vector; each layer's parameters (and their
    gradients) are views into them, so the optimizer updates every parameter in a handful
    of array operations.

    Batches are ``(n, *input_shape)``: ``(n, features)`` for a dense first layer, ``(n, C,
    H, W)`` for a ``Conv2D`` first; rows of ``C*H*W`` values (``(n, C*H*W)``, in C order)
    are taken as images too.

    Parameters
    ----------
    layers : sequence of Layer
        Each must take the shape the one before gives (checked here: ValueError naming the
        layer and the shapes); the last gives flat outputs; the layers with parameters share
        one dtype.
    loss : Loss
        With ``CrossEntropyLoss`` after a dense layer with ``Softmax`` output,
        backpropagation starts from the fused gradient ``(p - y) / n``.
    optimizer : Optimizer, optional
        Needed only for ``backward``.
    metadata : mapping, optional
        Anything JSON can hold that describes the model to its users (how its inputs were
        made, its class names, ...): saved and loaded with it, untouched.
    input_shape : tuple of int, optional
        The shape of one input sample, e.g. ``(1, 28, 28)`` for one-channel images; needed
        when the first layer does not fix it (a ``Conv2D``). A dense first layer fixes
        ``(input_size,)``.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        loss: Loss,
        optimizer: Optimizer | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        shapes = stack_shapes(layers, input_shape)
        dtypes = {layer.dtype for layer in layers if layer.dtype is not None}
        if not dtypes:
            raise ValueError("a model needs at least one layer with parameters")
        if len(dtypes) > 1:
            raise TypeError(
                f"all layers must share one dtype, got {sorted(d.name for d in dtypes)}"
            )
        self.layers = list(layers)
        self.loss = loss
        self.optimizer = optimizer
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.dtype: np.dtype = dtypes.pop()
        #: the shape of one input sample, and of each layer's output
        self.input_shape: Shape = shapes.input_shape
        self.layer_shapes: list[Shape] = shapes.outputs
        #: the values of one input sample
        self.input_size: int = math.prod(self.input_shape)
        self.output_size: int = shapes.outputs[-1][0]
        largest = max(math.prod(shape) for shape in [self.input_shape, *self.layer_shapes])
        self._predict_batch = max(1, min(_PREDICT_MAX_BATCH, _PREDICT_VALUES // largest))

        total = sum(layer.n_params for layer in self.layers)
        self._params = np.empty(total, dtype=self.dtype)
        self._grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer in self.layers:
            end = offset + layer.n_params
            layer.bind(self._params[offset:end], self._grads[offset:end])
            offset = end
        self._param_list, self._grad_list = [self._params], [self._grads]

        last = self.layers[-1]
        self._fused_softmax = (
            isinstance(loss, CrossEntropyLoss)
            and isinstance(last, DenseLayer)
            and isinstance(last.activation, Softmax)
        )
        # Below the first layer with parameters, no gradient is needed.
        self._first_trained = next(i for i, layer in enumerate(self.layers) if layer.n_params)
        self._head = BatchBuffers()
        self._batch: int | None = None  # rows of the last training-mode forward

    @property
    def parameters(self) -> list[np.ndarray]:
        """All parameters as one flat array (in a list, as optimizers take them)."""
        return self._param_list

    @property
    def gradients(self) -> list[np.ndarray]:
        """All gradients as one flat array, laid out like ``parameters``."""
        return self._grad_list

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[1:] == self.input_shape:
            return x
        if len(self.input_shape) > 1 and x.ndim == 2 and x.shape[1] == self.input_size:
            return x.reshape(len(x), *self.input_shape)
        expected = ", ".join(map(str, self.input_shape))
        rows = f" or (n, {self.input_size})" if len(self.input_shape) > 1 else ""
        raise ValueError(f"expected input of shape (n, {expected}){rows}, got {x.shape}")

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        h = x
        for layer in self.layers:
            h = layer.forward(h, training)
        if training:
            self._batch = len(x)
        return h

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Output ``(n, output_size)`` for a batch ``x`` ``(n, *input_shape)``.

        In training mode (the default, as the blog post calls it before ``backward``)
        dropout is active and the layers keep what ``backward`` needs; ``training=False``
        is ``predict``'s mode. The returned array is new.
        """
        out = self._forward(self._as_input(x), training)
        return out.copy() if training else out

    def fit_batch(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One training step: ``forward``, gradients and an optimizer step on one batch.

        Returns the output ``(n, output_size)`` computed before the step, in a buffer
        that the next call overwrites (the training loop keeps a copy at once).
        """
        if self.optimizer is None:
            raise RuntimeError("training needs an optimizer; pass optimizer= to Model")
        y_pred = self._forward(self._as_input(x), training=True)
        self.compute_gradients(y, y_pred)
        self.optimizer.step(self._param_list, self._grad_list)
        return y_pred

    def compute_loss(self, y: np.ndarray, y_pred: np.ndarray) -> float:
        """Mean loss of the batch."""
        return self.loss(y, y_pred)

    def compute_gradients(
        self, y: np.ndarray, y_pred: np.ndarray, *, input_gradient: bool = False
    ) -> np.ndarray | None:
        """Fill ``gradients`` for the last training-mode ``forward`` batch, walking the layers
        in reverse.

        With ``input_gradient`` also return dL/dx ``(n, *input_shape)`` (training skips it).
        """
        if self._batch is None:
            raise RuntimeError("backward needs a forward pass (in training mode) first")
        if len(y_pred) != self._batch:
            raise ValueError(
                f"y_pred has {len(y_pred)} rows, the last forward batch had {self._batch}"
            )
        y = np.asarray(y)
        layers = self.layers
        stop = 0 if input_gradient else self._first_trained
        head = self._head.get(len(y_pred), self.output_size, self.dtype)
        top = len(layers) - 1
        if self._fused_softmax:
            grad = self.loss.softmax_gradient(y, y_pred, out=head)
            grad = layers[top].backward_linear(grad, input_gradient=top > stop or input_gradient)
        else:
            grad = self.loss.gradient(y, y_pred, out=head)
            grad = layers[top].backward(grad, input_gradient=top > stop or input_gradient)
        for i in range(top - 1, stop - 1, -1):
            grad = layers[i].backward(grad, input_gradient=i > stop or input_gradient)
        return grad.copy() if input_gradient else None

    def backward(
        self, y: np.ndarray, y_pred: np.ndarray, learning_rate: float | None = None
    ) -> None:
        """Backpropagate the loss of the last ``forward`` batch and take one optimizer step.

        ``learning_rate``, if given, replaces the optimizer's (the blog post passes it each step).
        """
        if self.optimizer is None:
            raise RuntimeError("backward needs an optimizer; pass optimizer= to Model")
        self.compute_gradients(y, y_pred)
        if learning_rate is not None:
            self.optimizer.learning_rate = learning_rate  # the optimizer refuses a bad one
        self.optimizer.step(self.parameters, self.gradients)

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Output probabilities ``(n, output_size)`` with dropout off; leaves the training
        state alone.

        ``batch_size`` samples go through at a time: by default as many as keep the largest
        layer output near 4 million values (at most 4096 samples).
        """
        batch_size = batch_size or self._predict_batch
        x = self._as_input(x)
        out = np.empty((len(x), self.output_size), dtype=self.dtype)
        for start in range(0, len(x), batch_size):
            out[start : start + batch_size] = self._forward(x[start : start + batch_size], False)
        return out

    def get_weights(self) -> np.ndarray:
        """A copy of all parameters (flat)."""
        return self._params.copy()

    def set_weights(self, flat: np.ndarray) -> None:
        """Overwrite all parameters from a flat copy made by ``get_weights``."""
        if flat.shape != self._params.shape:
            raise ValueError(f"expected {self._params.shape} parameters, got {flat.shape}")
        np.copyto(self._params, flat)

    def save(self, file: str | os.PathLike[str] | IO[bytes]) -> None:
        """Write the model to a versioned ``.npz`` (see ``nnlib.serialization``): atomically to
        a path, or into an open binary file."""
        save_model(self, file)

    @classmethod
    def load(cls, path: str | os.PathLike[str], optimizer: Optimizer | None = None) -> Model:
        """Read a model written by ``save``; refuses pickles and inconsistent files."""
        saved = read_model(path)
        return cls(
            saved.layers,
            get_loss(saved.loss),
            optimizer,
            saved.metadata,
            input_shape=saved.input_shape,
        )

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(layer) for layer in self.layers)
        shape = "" if len(self.input_shape) == 1 else f", input_shape={self.input_shape}"
        return (
            f"Model(layers=[\n    {inner}\n], loss={self.loss!r}, "
            f"optimizer={self.optimizer!r}{shape})"
        )
