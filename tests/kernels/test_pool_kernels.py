"""Pooling kernels of both backends against torch.nn.functional: outputs, indices, gradients.

Each row names its edge case; every row runs in float64 (tight) and float32 (assert_close
defaults) through the NumPy and the torch kernels, called as the bridge calls them (NumPy gets
read-only views, possibly non-contiguous).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

import scratch.functional as SF
from scratch.kernels import kernels

from .conftest import BACKENDS, DTYPES, TOLERANCES, as_array, row_id, run_pair

# --- Inputs -----------------------------------------------------------------------------------


def _fill(kind: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """A float64 input of one kind: ties, signs and non-finite values at exact positions."""
    if kind == "zeros":
        return torch.zeros(shape, dtype=torch.float64)
    if kind == "neginf":
        return torch.full(shape, -math.inf, dtype=torch.float64)
    if kind == "ints":  # many exact ties
        return torch.randint(0, 3, shape, generator=gen).double()
    if kind == "negative":  # a max of 0 would come from the padding
        return -1 - torch.rand(shape, generator=gen, dtype=torch.float64)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    if kind == "signed-zeros":  # -0.0 == +0.0: ties, whatever the sign
        return x.sign() * 0.0
    if kind == "infs":  # ties at +-inf, no NaN (but their sum is NaN)
        x.view(-1)[::5] = math.inf
        x.view(-1)[2::5] = -math.inf
        return x
    if kind == "relu":  # ties at 0, as after a ReLU
        return x.clamp(min=0)
    if kind == "nan":  # some windows hold two NaNs (torch picks the last) and -inf
        x.view(-1)[::7] = math.nan
        x.view(-1)[3::11] = -math.inf
    return x


def _input(shape, fill: str, layout: str, dtype, gen) -> torch.Tensor:
    """x of `shape`, contiguous, or a non-contiguous view with those values' layout."""
    if layout == "transposed":  # last two dims swapped in memory
        return _fill(fill, shape[:-2] + shape[-2:][::-1], gen).to(dtype).transpose(-1, -2)
    if layout == "strided":  # every other element of the last dim
        return _fill(fill, shape[:-1] + (2 * shape[-1],), gen).to(dtype)[..., ::2]
    return _fill(fill, shape, gen).to(dtype)


def _check(backend, op, x, options, reference, gen, grad=None):
    """Kernels vs torch: outputs (and indices), then grad_x of (out * g).sum() for a random g."""
    x_ref = x.detach().clone().requires_grad_()
    expected = reference(x_ref)
    expected = expected if isinstance(expected, tuple) else (expected,)
    if grad is None:
        grad = torch.randn(expected[0].shape, generator=gen, dtype=torch.float64).to(x.dtype)
    (expected[0] * grad).sum().backward()

    outputs, (grad_x,) = run_pair(backend, op, (x,), grad, (True,), **options)
    assert outputs[0].dtype == x.dtype and outputs[0].is_contiguous()
    torch.testing.assert_close(outputs[0], expected[0], **TOLERANCES[x.dtype], equal_nan=True)
    for out, exp in zip(outputs[1:], expected[1:]):
        assert out.dtype == exp.dtype and torch.equal(out, exp)  # the indices, exactly
    torch.testing.assert_close(grad_x, x_ref.grad, **TOLERANCES[x.dtype])


def _ids(op: str):
    """Row ids `<op><d>d-<name>` (maxpool2d-k3-s2-p1) for cases with a shape (N, C, *spatial)."""
    return lambda case: row_id(op, len(case.shape) - 2, case.name)


def _tuple(value, d: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * d


# --- Max pooling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaxCase:
    name: str
    shape: tuple[int, ...]
    kernel: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None  # None: the kernel, as torch
    padding: int | tuple[int, ...] = 0
    dilation: int | tuple[int, ...] = 1
    ceil_mode: bool = False
    fill: str = "randn"
    layout: str = "contiguous"


MAX_CASES = [
    MaxCase("k2-stride-default", (2, 3, 8, 8), 2),
    MaxCase("k3-s2-p1", (2, 3, 9, 9), 3, 2, 1),
    MaxCase("k2-s3-stride-gt-kernel", (2, 3, 9, 10), 2, 3),
    MaxCase("k3-s1-overlap", (2, 3, 7, 7), 3, 1),
    MaxCase("k2x3-s1x2-p1x0-nonsquare", (2, 3, 7, 9), (2, 3), (1, 2), (1, 0)),
    MaxCase("k3-s1-d2", (2, 3, 10, 10), 3, 1, 0, 2),
    MaxCase("k2x3-s2x3-p1-d3x2-ceil", (2, 3, 11, 10), (2, 3), (2, 3), 1, (3, 2), True),
    MaxCase("k3-s2-ceil-last-window-partial", (2, 3, 6, 6), 3, 2, 0, 1, True),
    MaxCase("k2-s2-p1-ceil-last-window-dropped", (2, 3, 5, 5), 2, 2, 1, 1, True),
    MaxCase("zeros-k3-s1-p1-ties", (2, 3, 6, 6), 3, 1, 1, fill="zeros"),
    MaxCase("ints-k3-s2-ties", (2, 3, 9, 9), 3, 2, fill="ints"),
    MaxCase("relu-k2-s1-ties-at-zero", (2, 3, 8, 8), 2, 1, fill="relu"),
    MaxCase("negative-k3-s2-p1", (2, 3, 8, 8), 3, 2, 1, fill="negative"),
    MaxCase("neginf-k3-s2-p1-ceil", (2, 3, 6, 6), 3, 2, 1, 1, True, fill="neginf"),
    MaxCase("nan-k3-s1-p1", (2, 3, 7, 7), 3, 1, 1, fill="nan"),
    # kernel == stride, no padding (the benchmarked pools): the same edge cases
    MaxCase("zeros-k2-ties", (2, 3, 8, 8), 2, fill="zeros"),
    MaxCase("signed-zeros-k2-ties", (2, 3, 8, 8), 2, fill="signed-zeros"),
    MaxCase("ints-k2-ties", (2, 3, 8, 8), 2, fill="ints"),
    MaxCase("relu-k3-ties-at-zero", (2, 3, 9, 9), 3, fill="relu"),
    MaxCase("negative-k2", (2, 3, 8, 8), 2, fill="negative"),
    MaxCase("neginf-k2", (2, 3, 8, 8), 2, fill="neginf"),
    MaxCase("infs-k2-ties", (2, 3, 10, 10), 2, fill="infs"),
    MaxCase("nan-k2-two-per-window", (2, 3, 8, 8), 2, fill="nan"),
    MaxCase("nan-k3-floor-crop", (2, 3, 10, 11), 3, fill="nan"),
    MaxCase("1d-nan-k3", (2, 3, 21), 3, fill="nan"),
    MaxCase("3d-nan-k2", (2, 2, 4, 6, 6), 2, fill="nan"),
    MaxCase("kernel-eq-input", (2, 3, 5, 7), (5, 7)),
    MaxCase("k1-identity", (2, 3, 4, 5), 1),
    MaxCase("batch1", (1, 4, 8, 8), 2),
    MaxCase("noncontiguous-transposed-k3-s2-p1", (2, 3, 9, 8), 3, 2, 1, layout="transposed"),
    MaxCase("noncontiguous-strided-k2", (2, 3, 8, 8), 2, layout="strided"),
    MaxCase("k17x16-over-255-taps", (1, 2, 18, 17), (17, 16), 1),
    MaxCase("1d-k2", (2, 3, 10), 2),
    MaxCase("1d-k3-s2-p1-d2-ceil", (2, 3, 17), 3, 2, 1, 2, True),
    MaxCase("3d-k2", (2, 2, 4, 6, 6), 2),
    MaxCase("3d-k3-s2-p1-d1x2x1-ceil", (2, 2, 7, 8, 9), 3, 2, 1, (1, 2, 1), True),
]


def _max_options(case: MaxCase, d: int) -> dict:
    """The max-pool kernel's options of a row, as the functional passes them."""
    kernel = _tuple(case.kernel, d)
    return dict(
        kernel_size=kernel,
        stride=kernel if case.stride is None else _tuple(case.stride, d),
        padding=_tuple(case.padding, d),
        dilation=_tuple(case.dilation, d),
        ceil_mode=case.ceil_mode,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize(
    "case", MAX_CASES, ids=lambda c: row_id("maxpool", len(c.shape) - 2, c.name)
)
def test_max_pool(case: MaxCase, dtype, backend, gen):
    d = len(case.shape) - 2
    x = _input(case.shape, case.fill, case.layout, dtype, gen)
    options = _max_options(case, d)
    pool = getattr(F, f"max_pool{d}d")
    args = (case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    _check(backend, "max_pool", x, options, lambda t: pool(t, *args, return_indices=True), gen)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize(
    "case",
    [c for c in MAX_CASES if c.name.startswith(("k3-s2-p1", "k2x3-s2x3", "nan-k2", "3d-k3"))],
    ids=lambda c: row_id("maxpool", len(c.shape) - 2, c.name),
)
def test_max_pool_without_indices(case: MaxCase, dtype, backend, gen):
    """return_indices=False (the functional's default): y alone, the same y and gradient."""
    d = len(case.shape) - 2
    x = _input(case.shape, case.fill, case.layout, dtype, gen)
    options = dict(_max_options(case, d), return_indices=False)
    y, _ = kernels(backend).max_pool_forward(as_array(x, backend), **options)
    assert not isinstance(y, tuple)
    pool = getattr(F, f"max_pool{d}d")
    args = (case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    _check(backend, "max_pool", x, options, lambda t: pool(t, *args), gen)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_broadcast_grad(backend, gen):
    """A stride-0 gradient, as from y.sum().backward()."""
    x = _input((2, 3, 6, 6), "randn", "contiguous", torch.float64, gen)
    options = dict(kernel_size=(2, 2), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    grad = torch.tensor(0.5, dtype=torch.float64).expand(2, 3, 7, 7)

    def pool(t):
        return F.max_pool2d(t, 2, 1, 1, return_indices=True)

    _check(backend, "max_pool", x, options | dict(ceil_mode=False), pool, gen, grad)


BITS = {torch.float64: torch.int64, torch.float32: torch.int32}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize(
    "case",
    [c for c in MAX_CASES if c.layout == "contiguous" and c.fill in ("randn", "ints")],
    ids=lambda c: row_id("maxpool", len(c.shape) - 2, c.name),
)
def test_max_pool_grad_bit_for_bit(case: MaxCase, dtype, backend, gen):
    """grad_x bit for bit torch's, which adds each window's gradient into zeros in row-major
    window order: overlapping windows' sums in that order, and 0 + -0.0 = +0.0 (disjoint
    windows too). The upstream gradient holds -0.0, NaN and inf."""
    d = len(case.shape) - 2
    x = _input(case.shape, case.fill, case.layout, dtype, gen)
    x_ref = x.clone().requires_grad_()
    args = (case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    y = getattr(F, f"max_pool{d}d")(x_ref, *args)
    grad = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(dtype)
    grad.view(-1)[::3] = -0.0
    grad.view(-1)[1::13] = math.nan
    grad.view(-1)[2::17] = -math.inf
    (want,) = torch.autograd.grad(y, x_ref, grad)
    _, (got,) = run_pair(backend, "max_pool", (x,), grad, (True,), **_max_options(case, d))
    assert torch.equal(got.view(BITS[dtype]), want.view(BITS[dtype]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "shape, kernel, stride, padding, dilation",
    [((2, 3, 1), (2,), (2,), (1,), (2,)), ((1, 2, 3, 1), (1, 2), (1, 2), (0, 1), (1, 2))],
    ids=["maxpool1d", "maxpool2d-index-inside-plane"],
)
def test_max_pool_hollow_windows(shape, kernel, stride, padding, dilation, backend, gen):
    """Windows whose dilated taps all miss the input: -inf and torch's index, no gradient.

    torch's own backward writes out of bounds there (1-d) or onto an unrelated element (2-d),
    so it is not called.
    """
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    d = len(kernel)
    y_ref, indices_ref = getattr(F, f"max_pool{d}d")(
        x, kernel, stride, padding, dilation, True, return_indices=True
    )
    module = kernels(backend)
    options = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    (y, indices), cache = module.max_pool_forward(as_array(x, backend), **options, ceil_mode=True)
    assert torch.equal(torch.as_tensor(y), y_ref) and y_ref.isneginf().all()
    assert torch.equal(torch.as_tensor(indices), indices_ref)
    grad = as_array(torch.ones(y_ref.shape, dtype=torch.float64), backend)
    (grad_x,) = module.max_pool_backward(cache, grad, (True,))
    assert torch.equal(torch.as_tensor(grad_x), torch.zeros_like(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_integer_input(backend, gen):
    """torch max-pools integers too: the padding is then the smallest integer, not -inf."""
    x = torch.randint(-5, 5, (2, 3, 7, 7), generator=gen)
    options = dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    (y, indices), _ = kernels(backend).max_pool_forward(
        as_array(x, backend), **options, ceil_mode=True
    )
    y_ref, indices_ref = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    assert torch.equal(torch.as_tensor(y), y_ref)
    assert torch.equal(torch.as_tensor(indices), indices_ref)


# --- Average pooling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AvgCase:
    name: str
    shape: tuple[int, ...]
    kernel: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None  # None: the kernel, as torch
    padding: int | tuple[int, ...] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    layout: str = "contiguous"


AVG_CASES = [
    # the last ceil-mode window along H hangs past the padding: it counts less with padding
    AvgCase(
        f"k3-s2-p1-{'ceil' if ceil else 'floor'}-{'pad' if cip else 'nopad'}-div{div}",
        (2, 3, 6, 7),
        3,
        2,
        1,
        ceil,
        cip,
        div,
    )
    for ceil, cip, div in itertools.product([False, True], [True, False], [None, 5])
] + [
    AvgCase("k2-stride-default", (2, 3, 8, 8), 2),
    AvgCase("k2x3-s3x1-p1x0-nonsquare", (2, 3, 8, 9), (2, 3), (3, 1), (1, 0)),
    AvgCase("k2-s2-p1-ceil-last-window-dropped", (2, 3, 5, 5), 2, 2, 1, True),
    AvgCase("kernel-eq-input", (2, 3, 5, 7), (5, 7)),
    AvgCase("batch1", (1, 4, 8, 8), 2),
    AvgCase("noncontiguous-transposed-k3-s2-p1", (2, 3, 9, 8), 3, 2, 1, layout="transposed"),
    AvgCase("1d-k3-s2-p1-ceil-nopad", (2, 3, 10), 3, 2, 1, True, False),
    AvgCase("1d-k2-strided", (2, 3, 9), 2, layout="strided"),
    AvgCase("3d-k3-s2-p1-ceil-pad", (2, 2, 6, 7, 8), 3, 2, 1, True, True),
    AvgCase(
        "3d-k2x3x2-s1x2x2-nopad-div7", (2, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2), 1, False, False, 7
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize(
    "case", AVG_CASES, ids=lambda c: row_id("avgpool", len(c.shape) - 2, c.name)
)
def test_avg_pool(case: AvgCase, dtype, backend, gen):
    d = len(case.shape) - 2
    x = _input(case.shape, "randn", case.layout, dtype, gen)
    kernel = _tuple(case.kernel, d)
    options = dict(
        kernel_size=kernel,
        stride=kernel if case.stride is None else _tuple(case.stride, d),
        padding=_tuple(case.padding, d),
        ceil_mode=case.ceil_mode,
        count_include_pad=case.count_include_pad,
        divisor_override=case.divisor_override,
    )
    pool = getattr(F, f"avg_pool{d}d")
    args = (case.kernel, case.stride, case.padding, case.ceil_mode, case.count_include_pad)
    if d > 1:  # avg_pool1d has no divisor_override
        args += (case.divisor_override,)
    _check(backend, "avg_pool", x, options, lambda t: pool(t, *args), gen)


# --- Adaptive average pooling -------------------------------------------------------------------


ADAPTIVE_CASES = {
    "8x8-to-4x4-dividing": ((2, 3, 8, 8), (4, 4)),
    "9x7-to-4x3-not-dividing": ((2, 3, 9, 7), (4, 3)),
    "3x2-to-5x7-larger": ((2, 3, 3, 2), (5, 7)),
    "5x5-to-5x5-same": ((2, 3, 5, 5), (5, 5)),
    "7x6-to-1x1-global": ((2, 3, 7, 6), (1, 1)),
    "batch1-6x6-to-4x4": ((1, 3, 6, 6), (4, 4)),
    "1d-10-to-3": ((2, 3, 10), (3,)),
    "1d-4-to-6-larger": ((2, 3, 4), (6,)),
    "3d-5x6x7-to-2x3x4": ((2, 2, 5, 6, 7), (2, 3, 4)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize(
    "case",
    ADAPTIVE_CASES.items(),
    ids=[row_id("adaptiveavgpool", len(out), name) for name, (_, out) in ADAPTIVE_CASES.items()],
)
def test_adaptive_avg_pool(case, layout, dtype, backend, gen):
    shape, output_size = case[1]
    x = _input(shape, "randn", layout, dtype, gen)
    pool = getattr(F, f"adaptive_avg_pool{len(output_size)}d")
    options = dict(output_size=output_size)
    _check(backend, "adaptive_avg_pool", x, options, lambda t: pool(t, output_size), gen)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d", [2, 3])
def test_adaptive_avg_pool_global_is_torchs_mean(d, backend):
    """Output size 1: torch takes one mean() over the window, in whose order 1e30 and -1e30
    cancel before 0.75 and 0.875 are added; averaging one dim after another loses them."""
    x = torch.tensor([1e30, -1e30, 0.75, 0.875]).reshape(1, 1, *[1] * (d - 2), 2, 2)
    grad_y = torch.ones(1, 1, *[1] * d)
    (y,), _ = run_pair(backend, "adaptive_avg_pool", [x], grad_y, (True,), output_size=(1,) * d)
    expected = getattr(F, f"adaptive_avg_pool{d}d")(x, 1)
    assert expected.item() == (0.75 + 0.875) / 4  # torch's order, as read
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize(
    "shape, output_size",
    [
        ((2, 3, 9, 7), (4, 3)),
        ((2, 3, 3, 2), (5, 7)),
        ((2, 2, 8, 6), (4, 3)),
        ((2, 2, 5, 6, 7), (2, 3, 4)),
    ],
    ids=["overlapping", "upsampling", "dividing", "3d"],
)
def test_adaptive_avg_pool_bit_for_bit_in_torchs_order(shape, output_size, dtype, backend, gen):
    """Each window summed tap by tap in torch's row-major order and divided one dim at a time,
    each gradient added window by window: where +1e30 and -1e30 cancel within a window, and NaN
    or inf sit in some, forward and backward are torch's to the bit (NaN where torch's are)."""
    x = torch.randn(shape, generator=gen, dtype=dtype)
    flat = x.view(-1)
    flat[0], flat[1], flat[shape[-1]] = 1e30, -1e30, 1e30  # a window's first taps cancel
    flat[-1], flat[-3] = math.nan, math.inf
    d = len(output_size)
    grad_y = torch.randn(*shape[:-d], *output_size, generator=gen, dtype=dtype)
    (y,), (grad,) = run_pair(
        backend, "adaptive_avg_pool", [x], grad_y, (True,), output_size=output_size
    )
    leaf = x.clone().requires_grad_()
    expected = getattr(F, f"adaptive_avg_pool{d}d")(leaf, output_size)
    (expected_grad,) = torch.autograd.grad(expected, leaf, grad_y)
    torch.testing.assert_close(y, expected.detach(), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "shape, output_size",
    [((2, 3, 8), (0,)), ((2, 3, 8, 8), (0, 4)), ((2, 3, 4, 8, 8), (2, 0, 3))],
    ids=["1d", "2d", "3d"],
)
def test_adaptive_avg_pool_empty_output_as_torch(shape, output_size, backend):
    """An empty output size: torch's forward gives the empty output, its backward refuses it
    with a RuntimeError; so do ours."""
    name = f"adaptive_avg_pool{len(output_size)}d"
    x = torch.randn(shape, requires_grad=True)
    expected = getattr(F, name)(x, output_size)
    actual = getattr(SF, name)(x, output_size, backend=backend)
    assert actual.shape == expected.shape
    with pytest.raises(RuntimeError, match="non-zero size for non-batch dimensions"):
        expected.sum().backward()
    with pytest.raises(RuntimeError, match="non-zero size for non-batch dimensions"):
        actual.sum().backward()


# --- The kernel contract ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "op, options",
    [
        (
            "max_pool",
            dict(
                kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False
            ),
        ),
        (
            "avg_pool",
            dict(
                kernel_size=(2, 2),
                stride=(2, 2),
                padding=(0, 0),
                ceil_mode=False,
                count_include_pad=True,
                divisor_override=None,
            ),
        ),
        ("adaptive_avg_pool", dict(output_size=(3, 3))),
    ],
    ids=["maxpool2d", "avgpool2d", "adaptiveavgpool2d"],
)
def test_backward_skips_unneeded_grad(op, options, backend, gen):
    module = kernels(backend)
    x = as_array(torch.randn(2, 3, 6, 6, generator=gen), backend)
    outputs, cache = getattr(module, f"{op}_forward")(x, **options)
    y = outputs[0] if isinstance(outputs, tuple) else outputs
    assert getattr(module, f"{op}_backward")(cache, y, (False,)) == (None,)
