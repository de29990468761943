"""Rows where only the sign of a zero, or where a NaN or inf lands, tells two kernels apart.

assert_close takes -0.0 for +0.0, so the other tables cannot see these. Each row here compares
with torch bit for bit where the result is exact (a zero, a max, a copy), and by the pattern of
zero signs, NaNs and infinities where rounding may differ elsewhere (`_same_pattern`): forward
outputs, then the gradients of every input that requires grad, for an upstream gradient that
holds -0.0, +0.0 and (where it matters) inf. Most rows follow one of torch's CPU kernels into a
corner: a sum that starts from +0.0, a max that keeps the first of tied zeros, a zero bias that
is added all the same.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import scratch.functional as SF
from scratch.kernels import BACKENDS

DTYPES = [torch.float32, torch.float64]
INF = math.inf


def _same_pattern(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Same shape and dtype, zeros of the same sign, NaN and +-inf at the same places."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    zero_sign = (got == 0) & got.signbit(), (want == 0) & want.signbit()
    return (
        torch.equal(got == 0, want == 0)
        and torch.equal(*zero_sign)
        and torch.equal(got.isnan(), want.isnan())
        and torch.equal(got.isposinf(), want.isposinf())
        and torch.equal(got.isneginf(), want.isneginf())
    )


def _zeros(shape, dtype, gen) -> torch.Tensor:
    """+0.0 and -0.0 at random places, half each."""
    x = torch.zeros(shape, dtype=dtype)
    x[torch.rand(shape, generator=gen) < 0.5] = -0.0
    return x


def _check(ours, theirs, inputs, grad, backend):
    """ours(*inputs, backend=...) against theirs(*inputs): forward, then every grad."""
    theirs_in, ours_in = ([t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
                          for _ in range(2))  # fmt: skip
    want, got = theirs(*theirs_in), ours(*ours_in, backend)
    assert _same_pattern(got.detach(), want.detach()), (got, want)
    if not any(t.requires_grad for t in inputs):
        return
    g = grad(want.shape, want.dtype)
    wants = torch.autograd.grad(want, [t for t in theirs_in if t.requires_grad], g)
    gots = torch.autograd.grad(got, [t for t in ours_in if t.requires_grad], g)
    for a, b in zip(gots, wants):
        assert _same_pattern(a, b), (a, b)


def _upstream(kind: str):
    """An upstream gradient of one kind: all -0.0, all +0.0, or a mix with +-inf."""

    def make(shape, dtype):
        if kind == "negative-zero":
            return torch.full(shape, -0.0, dtype=dtype)
        if kind == "zero":
            return torch.zeros(shape, dtype=dtype)
        g = torch.linspace(-2, 2, math.prod(shape), dtype=dtype).reshape(shape)
        if g.numel() > 2:
            g.view(-1)[1] = INF
            g.view(-1)[-1] = -0.0
        return g

    return make


UPSTREAM = ["negative-zero", "zero", "mixed-inf"]


# --- batch_norm: torch adds a missing bias as 0 (x = mean or a zero weight gives +0.0) ----------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_without_bias(backend, dtype, layout, training, gen):
    x = _zeros((4, 3, 5), dtype, gen)
    x[:, :, ::2] = torch.randn(4, 3, 3, generator=gen, dtype=dtype)
    if layout == "strided":  # torch's elementwise path, ((x - mean) * invstd) * w + b
        x = x.transpose(0, 2).contiguous().transpose(0, 2)
    weight = torch.tensor([0.0, 1.0, -0.0], dtype=dtype)

    def run(f, backend=None):
        def call(x):
            mean, var = torch.zeros(3, dtype=dtype), torch.ones(3, dtype=dtype)
            kw = {} if backend is None else {"backend": backend}
            return f(x, mean, var, weight, None, training=training, **kw)

        return call

    _check(lambda x, b: run(SF.batch_norm, b)(x), run(F.batch_norm), (x,), None, backend)


# --- avg_pool: window sums start from +0.0; a negative divisor_override adds into zeros ---------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "d, layout, divisor",
    [
        (1, "contiguous", None),
        (2, "contiguous", None),
        (2, "contiguous", -3),
        (2, "channels-last", -3),  # torch's 2-d channels-last kernel writes the quotient
        (3, "contiguous", -1),
        (3, "channels-last", -3),  # its 3-d one adds into zeros
        (2, "transposed", -3),
    ],
    ids=lambda v: str(v),
)
def test_avg_pool_zero_windows(backend, dtype, d, layout, divisor, gen):
    x = _zeros((2, 3) + (4,) * d, dtype, gen)
    x.view(-1)[::7] = 1.5  # some windows hold a nonzero value
    if layout == "channels-last":
        x = x.to(memory_format=torch.channels_last if d == 2 else torch.channels_last_3d)
    if layout == "transposed":
        x = x.transpose(-1, -2)
    x.requires_grad_()
    name = f"avg_pool{d}d"
    kw = {} if d == 1 else {"divisor_override": divisor}

    def ours(x, b):
        return getattr(SF, name)(x, 2, backend=b, **kw)

    _check(ours, lambda x: getattr(F, name)(x, 2, **kw), (x,), _upstream("mixed-inf"), backend)


# --- max_pool: of tied zeros the first (torch's argmax) gives the output's sign ------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "d, kernel, stride, padding, size",
    [
        (1, 2, 2, 0, 40),
        (1, 3, 1, 1, 130),  # stride 1: torch.maximum vectorizes over contiguous taps
        (2, 2, 2, 0, 12),
        (2, 3, 1, 1, 36),
        (2, 2, 1, 0, 40),
        (3, 2, 1, 0, 9),
    ],
    ids=lambda v: str(v),
)
def test_max_pool_tied_zeros(backend, dtype, d, kernel, stride, padding, size, gen):
    x = _zeros((2, 3) + (size,) * d, dtype, gen)
    name = f"max_pool{d}d"
    y, indices = getattr(SF, name)(x, kernel, stride, padding, return_indices=True, backend=backend)
    y_ref, indices_ref = getattr(F, name)(x, kernel, stride, padding, return_indices=True)
    assert torch.equal(indices, indices_ref)
    assert _same_pattern(y, y_ref)  # every output is a zero: its sign, at torch's index


# --- losses over class indices: torch's two steps (NLL's gradient, then log_softmax's) ----------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("upstream", UPSTREAM)
@pytest.mark.parametrize(
    "shape, ignore_index",
    [((4, 3), -100), ((2, 3, 2), 2), ((3,), -100)],
    ids=["batch", "spatial-ignore-a-class", "unbatched"],
)
def test_class_losses(backend, dtype, loss, reduction, upstream, shape, ignore_index, gen):
    x = torch.randn(shape, generator=gen, dtype=dtype)
    x.view(-1)[1] = -INF  # a masked logit (NLL: a log-probability of 0 where exp is 1 below)
    if loss == "nll_loss":
        x = x.log_softmax(0 if len(shape) == 1 else 1)
        x.view(-1)[::4] = 0.0
    x.requires_grad_()
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = torch.randint(0, 3, target_shape, generator=gen)
    if target.dim():
        target.view(-1)[::2] = ignore_index
    weight = torch.tensor([1.0, -0.5, 2.0], dtype=dtype)
    kw = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)

    def ours(x, b):
        return getattr(SF, loss)(x, target, backend=b, **kw)

    _check(ours, lambda x: getattr(F, loss)(x, target, **kw), (x,), _upstream(upstream), backend)


# --- mse_loss: the target's gradient is torch's own 2 (t - x) g, not -(2 (x - t) g) -------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("broadcast", [False, True], ids=["same-shape", "broadcast-target"])
def test_mse_loss_target_gradient(backend, dtype, reduction, broadcast, gen):
    x = torch.randn(4, 5, generator=gen, dtype=dtype)
    target = (x[0] if broadcast else x).clone()  # x == target: every difference is 0
    target.view(-1)[::3] += 1
    x.requires_grad_()
    target.requires_grad_()

    def expand(t):
        return t.expand(4, 5) if broadcast else t

    def ours(x, t, b):
        return SF.mse_loss(x, expand(t), reduction=reduction, backend=b)

    def theirs(x, t):
        return F.mse_loss(x, expand(t), reduction=reduction)

    _check(ours, theirs, (x, target), _upstream("zero"), backend)


# --- softmax, log_softmax: along the last dim torch's row sum of -0.0 is -0.0 -------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("upstream", UPSTREAM)
@pytest.mark.parametrize(
    "shape, dim",
    [((3, 4), 1), ((2, 3, 5), 1), ((2, 3, 5), 2), ((3, 1), 0), ((4,), 0)],
    ids=["last-dim", "middle-dim", "last-of-3", "leading-dim-of-size-1-rows", "vector"],
)
def test_softmax_zero_gradients(backend, dtype, op, upstream, shape, dim, gen):
    x = torch.randn(shape, generator=gen, dtype=dtype, requires_grad=True)

    def ours(x, b):
        return getattr(SF, op)(x, dim, backend=b)

    _check(ours, lambda x: getattr(F, op)(x, dim), (x,), _upstream(upstream), backend)
