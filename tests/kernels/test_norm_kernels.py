"""Batch-norm kernels of both backends against torch.nn.functional.batch_norm and its autograd."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from .conftest import (
    BACKENDS,
    DTYPES,
    assert_close,
    assert_grads,
    assert_untouched,
    row_id,
    run_pair,
)

EPS = 1e-5
ALL = (True, True, True, False, False)  # needs: x, weight, bias; never the running stats


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, ...]  # (N, C, *)
    training: bool = True
    affine: str = "wb"  # which of weight / bias are given
    layout: str = "contiguous"  # or "strided" (every other element), "channels_last"
    constant: bool = False  # channel 0 holds one value: variance 0


CASES = [
    Case("train-2d", (8, 5)),
    Case("train-2d-n2", (2, 4)),
    Case("train-3d", (4, 3, 7)),
    Case("train-4d", (2, 3, 5, 4)),
    Case("train-5d", (2, 3, 3, 4, 2)),
    Case("train-4d-n1", (1, 3, 4, 5)),
    Case("train-3d-n1", (1, 2, 6)),
    Case("train-4d-affine-false", (2, 3, 5, 4), affine=""),
    Case("train-4d-weight-only", (2, 3, 5, 4), affine="w"),
    Case("train-4d-bias-only", (2, 3, 5, 4), affine="b"),
    Case("train-4d-strided", (2, 3, 5, 4), layout="strided"),
    Case("train-2d-strided", (6, 4), layout="strided"),
    Case("train-4d-channels-last", (2, 3, 5, 4), layout="channels_last"),
    Case("train-4d-constant-channel", (2, 3, 5, 4), constant=True),
    Case("train-2d-constant-channel-affine-false", (6, 3), affine="", constant=True),
    Case("eval-2d", (8, 5), training=False),
    Case("eval-2d-n1", (1, 5), training=False),
    Case("eval-3d", (4, 3, 7), training=False),
    Case("eval-4d", (2, 3, 5, 4), training=False),
    Case("eval-5d", (2, 3, 3, 4, 2), training=False),
    Case("eval-4d-affine-false", (2, 3, 5, 4), training=False, affine=""),
    Case("eval-4d-strided", (2, 3, 5, 4), training=False, layout="strided"),
    Case("eval-4d-channels-last", (2, 3, 5, 4), training=False, layout="channels_last"),
    Case("eval-4d-constant-channel", (2, 3, 5, 4), training=False, constant=True),
]


def make_x(case: Case, dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    """A (N, C, *) input with non-zero channel means, in the case's memory layout."""
    n, c, *spatial = case.shape
    if case.layout == "strided":
        x = torch.randn(*case.shape[:-1], 2 * case.shape[-1], generator=gen, dtype=dtype)
        x = x[..., ::2]
    elif case.layout == "channels_last":
        x = torch.randn(n, *spatial, c, generator=gen, dtype=dtype).movedim(-1, 1)
    else:
        x = torch.randn(case.shape, generator=gen, dtype=dtype)
    x = x.mul_(2.0).add_(0.5)
    if case.constant:
        x[:, 0] = 0.75
    assert x.is_contiguous() == (case.layout == "contiguous")
    return x


def make_inputs(case: Case, dtype: torch.dtype, gen: torch.Generator):
    """x, weight, bias, running_mean, running_var (absent ones None)."""
    c = case.shape[1]
    x = make_x(case, dtype, gen)
    weight = torch.randn(c, generator=gen, dtype=dtype) if "w" in case.affine else None
    bias = torch.randn(c, generator=gen, dtype=dtype) if "b" in case.affine else None
    running_mean = torch.randn(c, generator=gen, dtype=dtype)
    running_var = torch.rand(c, generator=gen, dtype=dtype) + 0.5
    return x, weight, bias, running_mean, running_var


def norm_id(case: Case) -> str:
    """The row's test id: batchnorm1d-train-2d (an (N, C) input), batchnorm2d-train-4d, ..."""
    return row_id("batchnorm", max(len(case.shape) - 2, 1), case.name)


def run_kernels(backend: str, inputs, grad_y: torch.Tensor, needs=ALL, **options):
    """Forward then backward of one backend, inputs and results as torch tensors."""
    return run_pair(backend, "batch_norm", inputs, grad_y, needs, **options)


def reference(case: Case, inputs, grad_y: torch.Tensor):
    """torch's outputs (y; batch mean, unbiased var in training) and grads of (y * g).sum()."""
    x, weight, bias, running_mean, running_var = (None if t is None else t.clone() for t in inputs)
    leaves = [t.requires_grad_() if t is not None else None for t in (x, weight, bias)]
    # momentum 1 makes the running buffers the batch mean and unbiased variance themselves
    y = F.batch_norm(x, running_mean, running_var, weight, bias, case.training, 1.0, EPS)
    (y * grad_y).sum().backward()
    outputs = (y.detach(), running_mean, running_var) if case.training else (y.detach(),)
    return outputs, tuple(None if t is None else t.grad for t in leaves)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES, ids=norm_id)
def test_batch_norm_matches_torch(case: Case, dtype, backend, gen):
    inputs = make_inputs(case, dtype, gen)
    grad_y = torch.randn(case.shape, generator=gen, dtype=dtype)
    originals = [None if t is None else t.clone() for t in inputs]
    outputs, grads = run_kernels(backend, inputs, grad_y, training=case.training, eps=EPS)
    expected_outputs, expected_grads = reference(case, inputs, grad_y)
    assert len(outputs) == len(expected_outputs)
    for out, expected in zip(outputs, expected_outputs):
        assert_close(out, expected, dtype)
    assert_grads(grads, expected_grads + (None, None), dtype)
    assert_untouched(inputs, originals)


NEEDS = {
    "x-only": (True, False, False, False, False),
    "params-only": (False, True, True, False, False),
    "weight-only": (False, True, False, False, False),
    "none": (False, False, False, False, False),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("training", [True, False], ids=["batchnorm1d-train", "batchnorm1d-eval"])
@pytest.mark.parametrize("needs", NEEDS.values(), ids=NEEDS.keys())
def test_batch_norm_backward_skips_unneeded_grads(needs, training, backend, gen):
    case = Case("needs", (3, 4, 5), training=training)
    inputs = make_inputs(case, torch.float64, gen)
    grad_y = torch.randn(case.shape, generator=gen, dtype=torch.float64)
    _, grads = run_kernels(backend, inputs, grad_y, needs, training=training, eps=EPS)
    _, expected_grads = reference(case, inputs, grad_y)
    for grad, expected, need in zip(grads, expected_grads + (None, None), needs):
        if need:
            assert_close(grad, expected, torch.float64)
        else:
            assert grad is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_batch_norm_running_stats_after_steps(dtype, backend, gen):
    """Three training steps of running = (1 - m) * running + m * batch_stat, as torch updates."""
    momentum, c = 0.1, 3
    running = [torch.zeros(c, dtype=dtype), torch.ones(c, dtype=dtype)]
    expected = [t.clone() for t in running]
    for _ in range(3):
        x = torch.randn(4, c, 3, 5, generator=gen, dtype=dtype) * 3.0 + 1.0
        F.batch_norm(x, *expected, training=True, momentum=momentum, eps=EPS)
        (_, mean, var), _ = run_kernels(
            backend, (x, None, None, *running), torch.ones_like(x), training=True, eps=EPS
        )
        for buffer, stat in zip(running, (mean, var)):
            buffer.mul_(1 - momentum).add_(stat, alpha=momentum)
    for buffer, exp in zip(running, expected):
        assert_close(buffer, exp, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_empty_batch(backend, gen):
    """N = 0: an empty y, zero grads for weight and bias, as torch."""
    case = Case("empty", (0, 3, 4))
    inputs = make_inputs(case, torch.float64, gen)
    grad_y = torch.randn(case.shape, generator=gen, dtype=torch.float64)
    (y, *_), grads = run_kernels(backend, inputs, grad_y, training=True, eps=EPS)
    (expected_y, *_), expected_grads = reference(case, inputs, grad_y)
    assert_close(y, expected_y, torch.float64)
    for grad, expected in zip(grads, expected_grads):
        assert_close(grad, expected, torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("training", [True, False], ids=["batchnorm1d-train", "batchnorm1d-eval"])
def test_batch_norm_keeps_float32(training, backend, gen):
    case = Case("dtype", (2, 3, 4), training=training)
    inputs = make_inputs(case, torch.float32, gen)
    outputs, grads = run_kernels(
        backend, inputs, torch.ones(case.shape), training=training, eps=EPS
    )
    assert all(t.dtype == torch.float32 for t in outputs + grads[:3])


def _huge(layout: str) -> torch.Tensor:
    """(4, 3, 5, 2) float32 with 1e30 in channel 0 and -1e30 in channel 1, in `layout`."""
    x = torch.randn(4, 3, 5, 1 if layout == "expanded" else 2, generator=torch.Generator())
    x[0, 0, 1, 0], x[2, 1, 3, 0] = 1e30, -1e30
    if layout == "transposed":
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    return x.expand(4, 3, 5, 2) if layout == "expanded" else x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed", "expanded"])
def test_batch_norm_huge_values_overflow_where_torch_does(layout, backend):
    """float32 |x| = 1e30: torch's CPU kernel squares x - mean in float32 for a dense input
    (contiguous or channels-last: an infinite variance, y = bias throughout the channel) and in
    float64 for any other strides (a finite y). Outputs, batch stats and grads as torch's."""
    x = _huge(layout)
    weight, bias = torch.linspace(0.5, 1.5, 3), torch.linspace(-1.0, 1.0, 3)
    grad_y = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    inputs = (x, weight, bias, None, None)
    outputs, grads = run_kernels(backend, inputs, grad_y, training=True, eps=EPS)
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]  # x keeps its strides
    running = [torch.zeros(3), torch.ones(3)]  # momentum 1: the batch mean and unbiased var
    y = F.batch_norm(leaves[0], *running, *leaves[1:], True, 1.0, EPS)
    expected_grads = torch.autograd.grad((y * grad_y).sum(), leaves)
    overflowed = all(y[:, c].unique().numel() == 1 for c in (0, 1))
    assert overflowed == (layout in ("contiguous", "channels_last"))  # torch's rule, as read
    for actual, want in zip(outputs + grads, (y.detach(), *running, *expected_grads)):
        torch.testing.assert_close(actual, want, equal_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_dense_float32_fuses_multiply_add(backend):
    """torch's dense kernel computes x * alpha + beta as one fused multiply-add: for a channel
    of equal 1e30 values (var 0, alpha = 1/sqrt(eps)) the cancellation leaves torch's residue,
    -2.3e24, not 0 (found by the deep fuzz); the other channels within float32's tolerance."""
    x = torch.full((2, 1, 3), 1e30)  # channel 0: six equal 1e30
    x = torch.cat([x, torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1)) * 5], 1)
    (y, *_), _ = run_kernels(backend, (x, None, None, None, None), torch.ones(x.shape),
                             training=True, eps=EPS)  # fmt: skip
    expected = F.batch_norm(x, None, None, None, None, True, 0.1, EPS)
    assert expected[:, 0, 0].eq(expected[0, 0, 0]).all() and expected[0, 0, 0] < -1e24
    torch.testing.assert_close(y[:, 0], expected[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_batch_norm_bfloat16_huge_values_overflow_on_every_path(layout):
    """bfloat16 |x| = 1e30 (torch backend; NumPy has no bfloat16): torch's strided path squares
    x - mean in float32 for half types (its CPU accumulate type), so the variance overflows
    for any strides, not only dense ones, and y = bias throughout the channel (found by the
    deep fuzz: a transposed (2, 2) batch)."""
    x = _huge(layout).to(torch.bfloat16)  # .to keeps a dense layout
    assert x.is_contiguous() == (layout == "contiguous")
    weight, bias = (torch.linspace(a, b, 3, dtype=torch.bfloat16) for a, b in ((0.5, 1.5), (-1, 1)))
    grad_y = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x.dtype)
    outputs, grads = run_kernels(
        "torch", (x, weight, bias, None, None), grad_y, training=True, eps=EPS
    )
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]  # x keeps its strides
    y = F.batch_norm(leaves[0], None, None, *leaves[1:], True, 0.1, EPS)
    expected_grads = torch.autograd.grad((y * grad_y).sum(), leaves)
    assert all(y[:, c].eq(bias[c]).all() for c in (0, 1))  # torch's rule, as read
    torch.testing.assert_close(outputs[0], y.detach(), rtol=0, atol=0)
    for actual, want in zip(grads, expected_grads):
        torch.testing.assert_close(actual, want, equal_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_strided_input_normalizes_in_torchs_strided_form(backend):
    """A non-dense x (here expanded: each channel one value, its mean) takes torch's strided
    path, y = ((x - mean) * invstd) * w + b: exactly b, where x * alpha + beta, the dense
    form, leaves a rounding residue of about |x| * invstd * eps (1e-5 at x = 1, eps = 1e-5)."""
    x = torch.tensor([1.5, -0.37, 2.2, 1.541]).view(1, 4, 1, 1).expand(2, 4, 4, 2)
    weight, bias = torch.tensor([1.3, 0.7, -0.9, 1.1]), torch.tensor([0.1, 0.25, -1.0, 0.3])
    grad_y = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    inputs = (x, weight, bias, None, None)
    (y, *_), _ = run_kernels(backend, inputs, grad_y, training=True, eps=EPS)
    expected = F.batch_norm(x, None, None, weight, bias, True, 0.1, EPS)
    assert expected.eq(bias.view(1, 4, 1, 1)).all()  # torch's strided form, as read
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
