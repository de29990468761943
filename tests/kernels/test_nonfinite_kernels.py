"""Kernel rows for non-finite values: a NaN or inf reaches exactly what torch lets it reach."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import scratch.functional as SF
from scratch.kernels import BACKENDS

from .conftest import TOLERANCES

TIGHT = TOLERANCES[torch.float64]

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x, out, grad",
    [
        ([INF, 1, 2, 3], 2, [1.0, 2.0]),  # the example: torch gives [inf, 2.5]
        ([1, 2, 3, 4, 5], 3, [INF, 1.0, -1.0]),  # an inf upstream gradient, overlapping windows
        ([NAN, 1, -INF, 2, 0, 1, 3], 4, [NAN, 1.0, 2.0, 3.0]),
        ([INF] * 4, 3, [1.0, 2.0, 3.0]),
    ],
    ids=["inf-input", "inf-grad", "nan-and-inf", "all-inf"],
)
def test_adaptive_avg_pool_nonfinite(backend, x, out, grad):
    """adaptive_avg_pool1d forward and backward with non-finite input or upstream gradient."""
    leaf = torch.tensor([[x]], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[grad]], dtype=torch.float64)
    expected = F.adaptive_avg_pool1d(leaf, out)
    actual = SF.adaptive_avg_pool1d(leaf, out, backend=backend)
    torch.testing.assert_close(actual, expected, equal_nan=True, **TIGHT)
    (want,) = torch.autograd.grad(expected, leaf, g)
    (got,) = torch.autograd.grad(actual, leaf, g)
    torch.testing.assert_close(got, want, equal_nan=True, **TIGHT)


NONFINITE = [[INF, -INF, NAN, 1e30], [-1e30, 0.0, 1.0, -1.0]]
SILENT = {
    "gelu": lambda x: SF.gelu(x, backend="numpy"),
    "gelu-tanh": lambda x: SF.gelu(x, "tanh", backend="numpy"),
    "softmax": lambda x: SF.softmax(x, 1, backend="numpy"),
    "log_softmax": lambda x: SF.log_softmax(x, 1, backend="numpy"),
    "batch_norm": lambda x: SF.batch_norm(x, None, None, training=True, backend="numpy"),
    "mse_loss": lambda x: SF.mse_loss(x, torch.zeros_like(x), backend="numpy"),
    "bce_with_logits": lambda x: SF.binary_cross_entropy_with_logits(
        x, torch.full_like(x, 0.5), backend="numpy"
    ),
    "cross_entropy": lambda x: SF.cross_entropy(x, torch.tensor([0, 3]), backend="numpy"),
    "linear": lambda x: SF.linear(x, torch.ones(2, 4, dtype=x.dtype), backend="numpy"),
    "avg_pool1d": lambda x: SF.avg_pool1d(x[None], 2, backend="numpy"),
    "adaptive_avg_pool1d": lambda x: SF.adaptive_avg_pool1d(x[None], 3, backend="numpy"),
}


@pytest.mark.parametrize("op", SILENT)
def test_numpy_kernels_silent_on_nonfinite(op):
    """No NumPy RuntimeWarning where torch is silent (overflow, invalid value): -W error safe."""
    x = torch.tensor(NONFINITE, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        y = SILENT[op](x)
        y.backward(torch.ones_like(y))
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("public", [False, True], ids=["contextvar", "public-errstate"])
def test_silent_wrapper_restores_error_state(monkeypatch, public):
    """The errstate wrapper silences a kernel, restores NumPy's state after it (also when it
    raises), on both its paths (NumPy's context variable, or np.errstate where absent)."""
    import numpy as np

    import scratch.kernels.numpy as backend

    if public:
        monkeypatch.setattr(backend, "_extobj_contextvar", None)

    def kernel(fail: bool):
        y = np.array([1.0]) / 0.0
        if fail:
            raise ValueError("kernel failed")
        return y

    silent = backend.silent(kernel)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert silent(False)[0] == INF
        with pytest.raises(ValueError, match="kernel failed"):
            silent(True)
        with pytest.raises(RuntimeWarning):
            np.array([1.0]) / 0.0  # the caller's state is back


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [7, 20_000], ids=["small", "large"])  # both relu_backward paths
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("inplace", [False, True], ids=["out-of-place", "inplace"])
def test_relu_mask_bits(backend, size, dtype, inplace, gen):
    """ReLU bit for bit as torch's: relu(-0.0) is -0.0 and NaN stays NaN; the gradient as
    threshold_backward's: NaN inputs pass it, a NaN or inf gradient is dropped (to +0.0) where
    masked, -0.0 gradients pass as -0.0."""
    specials = torch.tensor([NAN, 0.0, -0.0, INF, -INF, 1.0, -1.0], dtype=dtype)
    x = torch.cat([specials, torch.randn(size - 7, generator=gen, dtype=dtype)])
    g = torch.cat([torch.tensor([1.0, NAN, INF, -0.0, NAN, -0.0, -INF], dtype=dtype),
                   torch.randn(size - 7, generator=gen, dtype=dtype)])  # fmt: skip
    leaf = x.clone().requires_grad_()
    want = torch.relu(leaf * 1)  # through a product, which in-place ops may overwrite
    got = SF.relu(leaf * 1, inplace=inplace, backend=backend)
    bits = {torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    assert torch.equal(got.detach().view(bits), want.detach().view(bits))
    (want,) = torch.autograd.grad(want, leaf, g)
    (got,) = torch.autograd.grad(got, leaf, g)
    assert torch.equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("special", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "shape, kernel, c_out",
    [
        ((1, 1, 2, 2), (2, 2), 4),
        ((2, 3, 9, 9), (3, 3), 4),
        ((2, 2, 5, 4, 6), (2, 3, 2), 4),
        ((16, 3, 6, 7), (3, 3), 12),
        ((2, 3, 10, 9), (3, 3), 4),
    ],
    ids=["the-fuzzers-1x1-output", "2d", "3d", "2d-row-taps", "2d-row-pairs"],
)
def test_conv_weight_gradient_nonfinite_input(backend, special, shape, kernel, c_out):
    """A NaN or inf in the input of a conv with few output channels (the full-grid shape):
    the weight gradient holds NaN and inf exactly where torch's does. The full grid would
    spread them: its garbage outputs' zero gradient times the inf they read is NaN. With 12
    channels over short rows in a batch, the torch backend's row taps."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    x.view(-1)[1] = special
    w = torch.randn(c_out, shape[1], *kernel, generator=gen, dtype=torch.float64)
    w.requires_grad_()
    conv = (F.conv2d, F.conv3d)[len(kernel) - 2]
    ours = (SF.conv2d, SF.conv3d)[len(kernel) - 2]
    g = torch.randn(conv(x, w).shape, generator=gen, dtype=torch.float64)
    (want,) = torch.autograd.grad(conv(x, w), w, g)
    (got,) = torch.autograd.grad(ours(x, w, backend=backend), w, g)
    torch.testing.assert_close(got, want, equal_nan=True, **TIGHT)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("special", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "shape, kernel, padding",
    [
        ((2, 3, 10, 9), (3, 3), 0),
        ((4, 3, 12, 12), (5, 5), 0),
        ((2, 3, 8, 7), (3, 3), 1),
        ((2, 2, 6, 4, 6), (3, 3, 2), 0),
    ],
    ids=["2d", "lenet-conv1-like", "2d-padded", "3d"],
)
def test_conv_output_nonfinite_input(backend, special, shape, kernel, padding):
    """A NaN or inf in the input of a conv with few output channels, even output and padded
    sizes in the first dim (the torch backend's row pairs: two output rows per column, each
    row block of the weight zero at the kernel row the other reads): the output holds NaN and
    inf exactly where torch's does. Zero times the inf would be NaN in an output that never
    reads it."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    x[(0, 0, 5, 3, 1)[: len(shape)]] = special  # row 5: the zero kernel row of output row 2's pair
    x[(-1, -1, -3, -2, -1)[: len(shape)]] = special
    w = torch.randn(4, shape[1], *kernel, generator=gen, dtype=torch.float64)
    conv = (F.conv2d, F.conv3d)[len(kernel) - 2]
    ours = (SF.conv2d, SF.conv3d)[len(kernel) - 2]
    want = conv(x, w, padding=padding)
    torch.testing.assert_close(
        ours(x, w, padding=padding, backend=backend), want, equal_nan=True, **TIGHT
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("special", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "shape, kernel, padding, c_out",
    [
        ((16, 3, 6, 7), (3, 3), 0, 4),
        ((16, 3, 6, 7), (3, 3), 1, 4),
        ((16, 2, 5, 4, 6), (2, 3, 2), 0, 4),
        ((16, 3, 6, 7), (3, 3), 1, 12),
    ],
    ids=["2d", "2d-padded", "3d", "2d-row-taps"],
)
def test_conv_input_gradient_nonfinite_weight(backend, special, shape, kernel, padding, c_out):
    """A NaN or inf in the weight of a conv with few output channels over short rows in a
    batch (the shape whose grad_x runs over the full grid): grad_x holds NaN and inf exactly
    where torch's does. The full grid would spread them: the zeros it places gy on, times the
    weight, are NaN. With 12 channels, the torch backend's row taps (whose padding columns
    of drows are dropped, not folded)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, shape[1], *kernel, generator=gen, dtype=torch.float64)
    w.view(-1)[1] = special
    conv = (F.conv2d, F.conv3d)[len(kernel) - 2]
    ours = (SF.conv2d, SF.conv3d)[len(kernel) - 2]
    g = torch.randn(conv(x, w, padding=padding).shape, generator=gen, dtype=torch.float64)
    (want,) = torch.autograd.grad(conv(x, w, padding=padding), x, g)
    (got,) = torch.autograd.grad(ours(x, w, padding=padding, backend=backend), x, g)
    torch.testing.assert_close(got, want, equal_nan=True, **TIGHT)
