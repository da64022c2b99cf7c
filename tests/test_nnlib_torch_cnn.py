"""nnlib's image layers against PyTorch, number for number: Conv2D, MaxPool2D, Flatten and
Dropout after a convolution, one by one (forward and every gradient), then a small CNN
(conv -> relu -> pool -> conv -> pool -> flatten -> dense -> softmax): forward, loss,
gradients and three Adam steps.

Tolerances as in test_nnlib_torch.py: float64 differs from torch only in summation order
(measured below 1e-15 here), so rtol 1e-10 catches any formula error; float32 rounds
differently on each side (im2col products against oneDNN's kernels), within 1e-6 measured,
checked at rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from support.models import CNN_INPUT, random_biases, small_cnn

torch = pytest.importorskip(
    "torch", reason="torch is not installed (make setup installs a local CPU wheel if one exists)"
)

from nnlib import Adam, Conv2D, DenseLayer, Dropout, Flatten, MaxPool2D, Model, ReLU, Tanh  # noqa: E402

TOL = {
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tensor(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).requires_grad_(grad)


# (in_channels, out_channels, kernel, stride, padding, height, width)
CONVOLUTIONS = {
    "one-channel": (1, 8, 5, 1, 0, 12, 12),
    "channels": (3, 4, 3, 1, 0, 9, 8),
    "padding": (4, 6, 5, 1, 2, 10, 10),
    "stride": (2, 3, 3, 2, 0, 11, 10),
    "stride-padding": (3, 2, 4, 3, 1, 13, 12),
}


@DTYPES
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("variant", list(CONVOLUTIONS))
def test_conv2d_matches_torch(variant: str, activation: str, dtype: type) -> None:
    """torch.nn.Conv2d (then the activation) with the same weights: the output, and for one
    upstream gradient dL/dW, dL/db and dL/dx."""
    c_in, c_out, k, stride, padding, height, width = CONVOLUTIONS[variant]
    rng = np.random.default_rng(0)
    make = ReLU if activation == "relu" else Tanh
    layer = Conv2D(
        c_in,
        c_out,
        k,
        stride=stride,
        padding=padding,
        activation_function=make(),
        rng=rng,
        dtype=dtype,
    )
    layer.biases = rng.normal(0, 0.1, size=c_out)
    conv = torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    with torch.no_grad():
        conv.weight.copy_(tensor(layer.weights))
        conv.bias.copy_(tensor(layer.biases))
    x = rng.normal(size=(4, c_in, height, width)).astype(dtype)
    x_t = tensor(x, grad=True)
    out_t = torch.relu(conv(x_t)) if activation == "relu" else torch.tanh(conv(x_t))
    np.testing.assert_allclose(layer.forward(x), out_t.detach().numpy(), **TOL[dtype])
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL[dtype])
    upstream = rng.normal(size=out.shape).astype(dtype)
    out_t.backward(tensor(upstream))
    grad_x = layer.backward(upstream.copy())
    np.testing.assert_allclose(grad_x, x_t.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(layer.grad_weights, conv.weight.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(layer.grad_biases, conv.bias.grad.numpy(), **TOL[dtype])


# (kernel, stride or None, height, width)
POOLS = {
    "2": (2, None, 8, 8),
    "2-leaves-a-row-out": (2, None, 9, 7),
    "3-stride-2": (3, 2, 9, 10),
    "2-stride-1": (2, 1, 6, 5),
    "3-stride-4": (3, 4, 11, 11),
}


@DTYPES
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("variant", list(POOLS))
def test_maxpool2d_matches_torch(variant: str, ties: bool, dtype: type) -> None:
    """torch.nn.MaxPool2d: the output and the input gradient, also where windows hold their
    maximum more than once (small integers), where torch picks the first."""
    kernel, stride, height, width = POOLS[variant]
    rng = np.random.default_rng(1)
    shape = (3, 4, height, width)
    x = (rng.integers(0, 3, size=shape) if ties else rng.normal(size=shape)).astype(dtype)
    layer = MaxPool2D(kernel, stride)
    x_t = tensor(x, grad=True)
    out_t = torch.nn.MaxPool2d(kernel, stride)(x_t)
    out = layer.forward(x, training=True)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    upstream = rng.normal(size=out.shape).astype(dtype)
    out_t.backward(tensor(upstream))
    np.testing.assert_allclose(layer.backward(upstream.copy()), x_t.grad.numpy(), **TOL[dtype])


@DTYPES
def test_flatten_matches_torch(dtype: type) -> None:
    """torch.nn.Flatten on a channels-last batch (as a conv or pool hands it on)."""
    x = np.random.default_rng(2).normal(size=(3, 4, 5, 6)).astype(dtype)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    expected = torch.nn.Flatten()(tensor(x)).numpy()
    np.testing.assert_array_equal(Flatten().forward(channels_last, training=True), expected)
    np.testing.assert_array_equal(Flatten().forward(channels_last), expected)


class SharedMask(torch.nn.Module):
    """Torch's inverted dropout with the mask nnlib drew: ``x * mask`` (0 or ``1 / (1 - p)``,
    as ``torch.nn.Dropout`` scales what it keeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mask is None else x * self.mask


def torch_cnn(model: Model, dtype: type, dropout: bool) -> tuple[torch.nn.Sequential, SharedMask]:
    """``support.models.cnn_layers`` in torch, holding ``model``'s parameters."""
    conv1, conv2 = (layer for layer in model.layers if isinstance(layer, Conv2D))
    dense = model.layers[-1]
    shared = SharedMask()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        *([shared] if dropout else []),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(24, 3),
    ).to(torch.float64 if dtype == np.float64 else torch.float32)
    convs = [module for module in net if isinstance(module, torch.nn.Conv2d)]
    with torch.no_grad():
        for ours, theirs in zip((conv1, conv2), convs, strict=True):
            theirs.weight.copy_(tensor(ours.weights))
            theirs.bias.copy_(tensor(ours.biases))
        net[-1].weight.copy_(tensor(dense.weights.T))
        net[-1].bias.copy_(tensor(dense.biases))
    return net, shared


def assert_same_parameters(model: Model, net: torch.nn.Sequential, tol: dict) -> None:
    theirs = [module for module in net if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))]
    ours = [layer for layer in model.layers if isinstance(layer, (Conv2D, DenseLayer))]
    for i, (layer, module) in enumerate(zip(ours, theirs, strict=True)):
        weight = module.weight.detach().numpy()
        expected = weight.T if isinstance(layer, DenseLayer) else weight
        np.testing.assert_allclose(layer.weights, expected, err_msg=f"weights {i}", **tol)
        np.testing.assert_allclose(layer.biases, module.bias.detach().numpy(), **tol)


@DTYPES
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout-after-conv"])
def test_small_cnn_matches_torch_for_three_adam_steps(dtype: type, dropout: bool) -> None:
    """The same forward probabilities, loss, gradients (every parameter and the input) and,
    after each of three Adam steps, the same weights; with a dropout layer after the first
    pool, torch multiplies by the mask nnlib's Dropout drew (0 or 1 / (1 - 0.3))."""
    rng = np.random.default_rng(3)
    model = small_cnn(rng=rng, dtype=dtype, optimizer=Adam(1e-2), dropout=0.3 if dropout else None)
    random_biases(model, rng, 0.1)
    net, shared = torch_cnn(model, dtype, dropout)
    optimizer_t = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = rng.normal(size=(16, *CNN_INPUT)).astype(dtype)
    y = rng.integers(0, 3, size=16)
    for _ in range(3):
        probs = model.forward(x)
        assert probs.dtype == dtype
        loss = model.compute_loss(y, probs)
        grad_x = model.compute_gradients(y, probs, input_gradient=True)
        if dropout:
            mask = model.layers[2].mask
            assert set(np.unique(mask)) == {dtype(0), dtype(1 / 0.7)}
            shared.mask = tensor(mask)
        optimizer_t.zero_grad()
        x_t = tensor(x, grad=True)
        logits = net(x_t)
        loss_t = loss_fn(logits, torch.from_numpy(y))
        loss_t.backward()
        assert loss == pytest.approx(loss_t.item(), rel=TOL[dtype]["rtol"])
        np.testing.assert_allclose(
            probs, torch.softmax(logits, dim=1).detach().numpy(), **TOL[dtype]
        )
        np.testing.assert_allclose(grad_x, x_t.grad.numpy(), **TOL[dtype])
        conv1 = model.layers[0]
        np.testing.assert_allclose(conv1.grad_weights, net[0].weight.grad.numpy(), **TOL[dtype])
        model.optimizer.step(model.parameters, model.gradients)
        optimizer_t.step()
        assert_same_parameters(model, net, TOL[dtype])
    shared.mask = None
    with torch.no_grad():
        expected = torch.softmax(net(tensor(x)), dim=1).numpy()
    np.testing.assert_allclose(model.predict(x), expected, **TOL[dtype])  # nothing dropped


@DTYPES
def test_dropout_after_a_conv_is_torchs_with_the_same_mask(dtype: type) -> None:
    """Dropout on a (n, C, H, W) conv output: each value kept with probability 1 - p and
    scaled by 1 / (1 - p), as torch.nn.Dropout (not a channel-wise Dropout2d); backward
    multiplies by the same mask."""
    rng = np.random.default_rng(4)
    conv = Conv2D(2, 8, 3, activation_function=ReLU(), rng=rng, dtype=dtype)
    dropout = Dropout(0.25, rng=rng)
    x = rng.normal(size=(64, 2, 10, 10)).astype(dtype)
    h = conv.forward(x, training=True)
    out = dropout.forward(h, training=True)
    mask = dropout.mask
    assert mask.shape == h.shape == out.shape
    assert abs((mask == 0).mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / mask.size)
    torch_out = tensor(h) * tensor(mask)
    np.testing.assert_array_equal(out, torch_out.numpy())
    upstream = rng.normal(size=out.shape).astype(dtype)
    np.testing.assert_array_equal(dropout.backward(upstream.copy()), upstream * mask)
    assert dropout.forward(h, training=False) is h
