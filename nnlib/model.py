"""The model: a stack of dense layers, a loss and an optimizer, as in the blog post."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from nnlib.activations import Softmax
from nnlib.layers import DenseLayer
from nnlib.losses import CrossEntropyLoss, Loss

if TYPE_CHECKING:  # only for annotations: evaluating a model never loads the optimizers
    from nnlib.optimizers import Optimizer

_MAX_WORKSPACES = 4  # batch sizes with preallocated buffers (training uses one or two)


class Model:
    """A multi-layer perceptron trained by ``backward`` (gradients + optimizer step).

    The model owns one flat parameter vector and one flat gradient vector; each
    layer's ``weights``/``biases`` (and their gradients) are views into them, so
    the optimizer updates every parameter in a handful of array operations.

    Parameters
    ----------
    layers : sequence of DenseLayer
        Consecutive sizes must match; all layers share one dtype.
    loss : Loss
        With ``CrossEntropyLoss`` after a ``Softmax`` output, backpropagation starts
        from the fused gradient ``(p - y) / n``.
    optimizer : Optimizer, optional
        Needed only for ``backward``.
    """

    def __init__(
        self, layers: Sequence[DenseLayer], loss: Loss, optimizer: Optimizer | None = None
    ) -> None:
        if not layers:
            raise ValueError("a model needs at least one layer")
        for i, (prev, nxt) in enumerate(itertools.pairwise(layers)):
            if prev.output_size != nxt.input_size:
                raise ValueError(
                    f"layer {i} outputs {prev.output_size} units "
                    f"but layer {i + 1} expects {nxt.input_size}"
                )
        dtypes = {layer.dtype for layer in layers}
        if len(dtypes) > 1:
            raise TypeError(
                f"all layers must share one dtype, got {sorted(d.name for d in dtypes)}"
            )
        self.layers = list(layers)
        self.loss = loss
        self.optimizer = optimizer
        self.dtype: np.dtype = layers[0].dtype
        #: how inputs were normalized (saved with the model), e.g. {"method": "scale", ...}
        self.normalization: dict[str, Any] | None = None
        #: the name of each output class, saved with the model
        self.class_names: list[str] | None = None
        #: what the model was trained on, saved with it: the dataset's name (e.g. "mnist")
        #: and the (rows, cols) of its images, whose pixels are the input row-major
        self.dataset: str | None = None
        self.image_shape: list[int] | None = None

        total = sum(layer.n_params for layer in self.layers)
        self._params = np.empty(total, dtype=self.dtype)
        self._grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer in self.layers:
            end = offset + layer.n_params
            layer.bind(self._params[offset:end], self._grads[offset:end])
            offset = end

        self._fused_softmax = isinstance(loss, CrossEntropyLoss) and isinstance(
            self.layers[-1].activation, Softmax
        )
        self._workspaces: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._param_list, self._grad_list = [self._params], [self._grads]
        self._last_forward: tuple[np.ndarray, list[np.ndarray]] | None = None

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

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
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"expected input of shape (n, {self.input_size}), got {x.shape}")
        return x

    def _workspace(self, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each layer's output and gradient buffer for a batch of ``n``."""
        space = self._workspaces.get(n)
        if space is None:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            outputs = [np.empty((n, layer.output_size), self.dtype) for layer in self.layers]
            deltas = [np.empty((n, layer.output_size), self.dtype) for layer in self.layers]
            space = self._workspaces[n] = (outputs, deltas)
        return space

    def _forward_into(self, x: np.ndarray) -> np.ndarray:
        """Run ``x`` through every layer into the workspace; keep it for the gradients."""
        outputs, _ = self._workspace(len(x))
        h = x
        for layer, buffer in zip(self.layers, outputs, strict=True):
            h = layer.forward(h, out=buffer)
        self._last_forward = (x, outputs)
        return h

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Output ``(n, output_size)`` for a batch ``x`` ``(n, input_size)``, kept for ``backward``.

        The returned array is new; the hidden activations live in buffers that the
        next ``forward`` of the same batch size reuses.
        """
        return self._forward_into(self._as_input(x)).copy()

    def fit_batch(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One training step: ``forward``, gradients and an optimizer step on one batch.

        Returns the output ``(n, output_size)`` computed before the step, in a buffer
        that the next call overwrites (the training loop scores it at once).
        """
        if self.optimizer is None:
            raise RuntimeError("training needs an optimizer; pass optimizer= to Model")
        y_pred = self._forward_into(self._as_input(x))
        self.compute_gradients(y, y_pred)
        self.optimizer.step(self._param_list, self._grad_list)
        return y_pred

    def compute_loss(self, y: np.ndarray, y_pred: np.ndarray) -> float:
        """Mean loss of the batch."""
        return self.loss(y, y_pred)

    def compute_gradients(
        self, y: np.ndarray, y_pred: np.ndarray, *, input_gradient: bool = False
    ) -> np.ndarray | None:
        """Fill ``gradients`` for the last ``forward`` batch.

        With ``input_gradient`` also return dL/dx ``(n, input_size)`` (training skips it).
        """
        if self._last_forward is None:
            raise RuntimeError("backward needs a forward pass first")
        x, outputs = self._last_forward
        if len(y_pred) != len(x):
            raise ValueError(f"y_pred has {len(y_pred)} rows, the last forward batch had {len(x)}")
        _, deltas = self._workspace(len(x))
        y = np.asarray(y)
        last = self.layers[-1]
        if self._fused_softmax:
            grad = self.loss.softmax_gradient(y, y_pred, out=deltas[-1])
        else:
            grad = self.loss.gradient(y, y_pred, out=deltas[-1])
            grad = last.activation.backward(y_pred, grad, out=grad)
        input_grad = np.empty_like(x) if input_gradient else None
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == 0:
                layer.param_gradients(x, grad, input_grad)
            else:
                layer.param_gradients(outputs[i - 1], grad, deltas[i - 1])
                below = self.layers[i - 1].activation
                grad = below.backward(outputs[i - 1], deltas[i - 1], out=deltas[i - 1])
        return input_grad

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

    def predict(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Output probabilities ``(n, output_size)``; leaves the training state alone."""
        x = self._as_input(x)
        out = np.empty((len(x), self.output_size), dtype=self.dtype)
        for start in range(0, len(x), batch_size):
            h = x[start : start + batch_size]
            for layer in self.layers:
                h = layer.forward(h)
            out[start : start + batch_size] = h
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
        from nnlib.serialization import save_model

        save_model(self, file)

    @classmethod
    def load(cls, path: str | os.PathLike[str], optimizer: Optimizer | None = None) -> Model:
        """Read a model written by ``save``; refuses pickles and inconsistent files."""
        from nnlib.serialization import load_model

        model = load_model(path)
        model.optimizer = optimizer
        return model

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(layer) for layer in self.layers)
        return f"Model(layers=[\n    {inner}\n], loss={self.loss!r}, optimizer={self.optimizer!r})"
