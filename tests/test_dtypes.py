"""float16 / bfloat16 next to torch's own half-precision results (scratch/kernels/dtypes.py).

torch's CPU kernels compute these dtypes in float32 and round once, so the bridge runs our
kernels on float32 copies and rounds each output and gradient once. A forward torch computes
that way (its result equals its float32 result rounded) must come out bit for bit; the rest,
and every gradient, within two units in the last place of the dtype, at the value's own
magnitude or at the tensor's largest (a sum's rounding error is relative to its terms).
Where we compute exactly as torch does (batch norm, dropout, mse_loss: BITWISE), the forward and
the gradients come out bit for bit.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import scratch.functional as F
from scratch.kernels import BACKENDS

REDUCED = {"float16": torch.float16, "bfloat16": torch.bfloat16}
TARGETS = torch.tensor([0, 2, 1, 3])


def _bn_train(f, x, w, b, **kw):
    return f.batch_norm(x, None, None, w, b, training=True, **kw)


def _bn_eval(f, x, w, b, mean, var, **kw):
    return f.batch_norm(x, mean, var.abs() + 0.5, w, b, training=False, **kw)


# name -> (call(f, *tensors, **backend), shapes, how values are drawn, leading tensors with grad)
ROWS = {
    "batch_norm-train": (_bn_train, [(8, 3, 5), (3,), (3,)], "randn", 3),
    "batch_norm-train-ties": (_bn_train, [(8, 3, 5), (3,), (3,)], "ties", 3),
    "batch_norm-train-shifted": (_bn_train, [(16, 4, 6, 6), (4,), (4,)], "shifted", 3),
    "batch_norm-eval": (_bn_eval, [(8, 3, 5), (3,), (3,), (3,), (3,)], "randn", 3),
    "softmax-ties": (lambda f, x, **kw: f.softmax(x, 1, **kw), [(4, 7)], "ties", 1),
    "log_softmax-ties": (lambda f, x, **kw: f.log_softmax(x, 1, **kw), [(4, 7)], "ties", 1),
    "linear": (
        lambda f, x, w, b, **kw: f.linear(x, w, b, **kw),
        [(5, 16), (6, 16), (6,)],
        "randn",
        3,
    ),
    "conv2d": (
        lambda f, x, w, b, **kw: f.conv2d(x, w, b, padding=1, **kw),
        [(2, 3, 6, 6), (4, 3, 3, 3), (4,)],
        "randn",
        3,
    ),
    "cross_entropy": (lambda f, x, **kw: f.cross_entropy(x, TARGETS, **kw), [(4, 5)], "randn", 1),
    "bce_with_logits": (
        lambda f, x, t, **kw: f.binary_cross_entropy_with_logits(x, t.sigmoid(), **kw),
        [(4, 5), (4, 5)],
        "randn",
        2,
    ),
    "leaky_relu": (lambda f, x, **kw: f.leaky_relu(x, 0.01, **kw), [(64,)], "randn", 1),
    "gelu": (lambda f, x, **kw: f.gelu(x, **kw), [(64,)], "randn", 1),
    # torch rounds in the dtype itself here: dropout's noise mask / (1 - p) and mse's x - target
    # are tensors of x's dtype
    "dropout": (lambda f, x, **kw: f.dropout(x, 0.3, **kw), [(64,)], "randn", 1),
    "mse_loss-none": (
        lambda f, x, t, **kw: f.mse_loss(x, t, reduction="none", **kw),
        [(4, 5), (4, 5)],
        "randn",
        2,
    ),
    # adaptive average pooling: torch's CPU kernels sum each window in its order and add each
    # window's share into the gradient in the dtype, window by window (many where they overlap)
    "adaptive_avg_pool1d-up": (
        lambda f, x, **kw: f.adaptive_avg_pool1d(x, 13, **kw),
        [(2, 3, 5)],
        "randn",
        1,
    ),
    "adaptive_avg_pool2d-up": (
        lambda f, x, **kw: f.adaptive_avg_pool2d(x, (7, 5), **kw),
        [(2, 3, 3, 2)],
        "randn",
        1,
    ),
    "adaptive_avg_pool2d-down": (
        lambda f, x, **kw: f.adaptive_avg_pool2d(x, (4, 3), **kw),
        [(2, 3, 9, 7)],
        "shifted",
        1,
    ),
    "adaptive_avg_pool2d-global": (
        lambda f, x, **kw: f.adaptive_avg_pool2d(x, 1, **kw),
        [(2, 3, 9, 7)],
        "shifted",
        1,
    ),
    "adaptive_avg_pool3d-mixed": (
        lambda f, x, **kw: f.adaptive_avg_pool3d(x, (5, 2, 3), **kw),
        [(2, 2, 2, 7, 5)],
        "shifted",
        1,
    ),
    "adaptive_avg_pool2d-long-windows": (  # window lengths over 256: not exact in bfloat16
        lambda f, x, **kw: f.adaptive_avg_pool2d(x, (1, 2), **kw),
        [(1, 2, 300, 3)],
        "randn",
        1,
    ),
    # average pooling: the same order, windows overlapping, with padding
    "avg_pool2d-overlap": (
        lambda f, x, **kw: f.avg_pool2d(x, 3, 1, 1, count_include_pad=False, **kw),
        [(2, 3, 9, 7)],
        "randn",
        1,
    ),
    "avg_pool2d-divisor-529": (  # 23 x 23 windows: 529 is 528 in bfloat16, as torch divides
        lambda f, x, **kw: f.avg_pool2d(x, 23, 4, 11, divisor_override=529, **kw),
        [(1, 2, 30, 30)],
        "randn",
        1,
    ),
}

# forwards and gradients bit for bit torch's: batch norm (float32 arithmetic around statistics
# rounded to the dtype, as torch's kernel), ops computed in the dtype as torch does
F16, BF16 = torch.float16, torch.bfloat16
BITWISE = {
    "batch_norm-train": {F16, BF16},
    "batch_norm-train-ties": {F16, BF16},
    "batch_norm-train-shifted": {BF16},  # float16: one gradient of 2304 a unit off (a sum's order)
    "batch_norm-eval": {F16, BF16},
    "dropout": {F16, BF16},
    "mse_loss-none": {F16, BF16},
    **{name: {F16, BF16} for name in ROWS if "avg_pool" in name},
}


def _inputs(shapes, mode: str, dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(s, generator=gen) for s in shapes]
    if mode == "ties":  # small integers: ties in softmax's max, repeated values in a channel
        xs[0] = xs[0].mul(1.5).round()
    elif mode == "shifted":  # channel means far from 0: the mean's rounding shows
        xs[0] = xs[0].mul(3).add(5)
    return [x.to(dtype) for x in xs]


def _run(call, tensors, grads: int, **kw):
    """Output and the grads of (out * g).sum() for the first `grads` tensors."""
    leaves = [t.clone().requires_grad_(i < grads) for i, t in enumerate(tensors)]
    torch.manual_seed(3)  # dropout: one mask on both sides
    out = call(*leaves, **kw)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(2)).to(out.dtype)
    return out.detach(), torch.autograd.grad((out * g).sum(), leaves[:grads])


def assert_ulps(actual: torch.Tensor, expected: torch.Tensor, ulps: float = 2) -> None:
    """Within `ulps` units in the last place of expected's dtype (see the module doc)."""
    assert actual.dtype == expected.dtype
    eps = torch.finfo(expected.dtype).eps
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=ulps * eps, atol=ulps * eps * scale)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", REDUCED.values(), ids=REDUCED.keys())
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_reduced_precision_as_torch(row, dtype, backend):
    """Forward bit for bit where torch rounds once, forward and grads where BITWISE says, the
    rest within two ULPs."""
    if backend == "numpy" and dtype == torch.bfloat16:
        pytest.skip("the numpy backend refuses bfloat16 (tests/test_bad_input.py)")
    call, shapes, mode, grads = ROWS[row]
    tensors = _inputs(shapes, mode, dtype)
    out, grad = _run(lambda *t, **kw: call(F, *t, **kw), tensors, grads, backend=backend)
    want, want_grad = _run(lambda *t: call(TF, *t), tensors, grads)
    once, _ = _run(lambda *t: call(TF, *t), [t.float() for t in tensors], grads)
    bitwise = dtype in BITWISE.get(row, ())
    if bitwise or torch.equal(want, once.to(dtype)):  # torch rounds once: so must we
        torch.testing.assert_close(out, want, rtol=0, atol=0)
    assert_ulps(out, want)
    for g, w in zip(grad, want_grad):
        assert_ulps(g, w, ulps=0 if bitwise else 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_inplace_leaky_relu_writes_into_its_input(backend):
    """The float32 copy is the kernel's: the rounded result still lands in the input itself."""
    x = torch.randn(16, generator=torch.Generator().manual_seed(0)).half()
    expected = TF.leaky_relu(x.clone(), 0.01)
    leaf = x.clone().requires_grad_()
    y = leaf * 1  # a non-leaf may be changed in place
    out = F.leaky_relu(y, 0.01, inplace=True, backend=backend)
    assert out is y and out.dtype == torch.float16
    torch.testing.assert_close(y.detach(), expected, rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(leaf.grad, torch.where(x > 0, 1.0, 0.01).half(), rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_outputs_never_alias_inputs(backend):
    """Results are fresh half tensors: never the input's memory, never float32."""
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)).half()
    for y in (
        F.softmax(x, 1, backend=backend),
        F.gelu(x, backend=backend),
        *F.max_pool2d(x, 2, return_indices=True, backend=backend),
        F.flatten(x, backend=backend),
        F.dropout(x, 0.3, backend=backend),
    ):
        assert y.dtype in (torch.float16, torch.int64)
        assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_input_changed_before_backward_raises_as_torch(backend):
    """The kernel reads a float32 copy, but the half tensor it came from is what autograd
    watches: changing it in place before backward raises torch's version-counter error."""
    for f, kw in ((TF, {}), (F, {"backend": backend})):
        leaf = torch.randn(8, generator=torch.Generator().manual_seed(0)).half().requires_grad_()
        x = leaf * 1
        y = f.gelu(x, **kw)
        x.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


# the fuzzer's cases: (leaf shape, seed, how the layer's input is made from the leaf)
STRIDED = {
    "1d-transposed": ((2, 2), 1, lambda t: t.transpose(0, 1).contiguous().transpose(0, 1)),
    "1d-expanded": ((2, 1), 1, lambda t: t.expand(2, 2)),
    "3d-expanded": ((1, 2, 1, 1, 1), 0, lambda t: t.expand(1, 2, 1, 1, 3)),
    "3d-expanded-2x2": ((1, 3, 1, 2, 1), 1, lambda t: t.expand(1, 3, 1, 2, 2)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", STRIDED, ids=str)
def test_half_batch_norm_strided_rounds_each_step_as_torch(case, backend):
    """A non-dense float16 x takes torch's strided path, which rounds each step in float16, in
    its own order (an expanded x is constant per channel: invstd = 1/sqrt(eps) = 316 magnifies
    each rounding; computed in float32, the 3d case's gradient is 0.19 off): bit for bit."""
    shape, seed, feed = STRIDED[case]
    base = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def run(f, **kw):
        leaf = base.half().requires_grad_()
        y = f.batch_norm(feed(leaf), None, None, training=True, **kw)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).half()
        return y.detach(), torch.autograd.grad((y * g).sum(), leaf)[0]

    for actual, expected in zip(run(F, backend=backend), run(TF)):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["log_softmax", "softmax"])
def test_half_backward_reads_the_rounded_output_as_torch(op, backend):
    """torch saves the float16 output for backward, so its gradient for equal logits keeps the
    output's rounding: sum_j (g_j - exp(y) sum g) = (1 - 4 exp(y)) sum g is not 0 (the fuzzer's
    LogSoftmax case: a (3, 1) leaf expanded to (3, 4)); bit for bit torch's."""
    leaf_values = torch.randn(3, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.randn(3, 4, generator=torch.Generator().manual_seed(2)).half()

    def grad(f, **kw):
        leaf = leaf_values.half().requires_grad_()
        y = getattr(f, op)(leaf.expand(3, 4), 1, **kw)
        return torch.autograd.grad((y * g).sum(), leaf)[0]

    expected = grad(TF)
    assert expected.abs().max() > 0  # the exact gradient is 0: torch's residue of the rounding
    torch.testing.assert_close(grad(F, backend=backend), expected, rtol=0, atol=0)


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn-if-the-cpu-can", "torch-kernels"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_conv_backward_as_torch_on_this_cpu(backend, onednn):
    """torch's own float16 conv kernels accumulate their backward in float16 (its bfloat16 one
    in float32); on a CPU with float16 arithmetic torch runs oneDNN instead, float32 throughout.
    Either way the input gradient bit for bit; the fuzzer's Conv3d case (padding 2, groups 2,
    an expanded input) within its tolerance, 0.0012 off computed in float32 against torch's
    own kernels."""
    before = torch.backends.mkldnn.enabled  # not mkldnn.flags(): it also sets (and warns on) tf32
    torch.backends.mkldnn.enabled = onednn
    try:
        _check_half_conv_backward(backend)
    finally:
        torch.backends.mkldnn.enabled = before


def _check_half_conv_backward(backend):
    gen = torch.Generator().manual_seed(0)
    x, w = (
        torch.randn(2, 3, 6, 6, generator=gen).half(),
        torch.randn(4, 3, 3, 3, generator=gen).half(),
    )
    g = torch.randn(2, 4, 6, 6, generator=gen).half()

    def grad_x(f, **kw):
        leaf = x.clone().requires_grad_()
        return torch.autograd.grad((f.conv2d(leaf, w, padding=1, **kw) * g).sum(), leaf)[0]

    torch.testing.assert_close(grad_x(F, backend=backend), grad_x(TF), rtol=0, atol=0)
    base = torch.randn(2, 2, 5, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(0)
    w3 = torch.nn.Conv3d(2, 4, 3, padding=2, groups=2, bias=False).weight.detach().half()

    def grad_3d(f, **kw):
        leaf = base.half().requires_grad_()
        y = f.conv3d(leaf.expand(2, 2, 5, 2), w3, padding=2, groups=2, **kw)  # unbatched
        gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).half()
        return torch.autograd.grad((y * gy).sum(), leaf)[0]

    torch.testing.assert_close(grad_3d(F, backend=backend), grad_3d(TF), rtol=1e-2, atol=1e-3)
