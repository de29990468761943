"""Convolution kernels of both backends against torch.nn.functional.conv{1,2,3}d and autograd."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratch.functional as SF
from scratch.kernels import kernels
from scratch.kernels.conv_plan import conv_blocks, conv_geometry, forward_blocks
from scratch.kernels.torch._grid import paired
from scratch.kernels.windows import same_padding

from .conftest import (
    BACKENDS,
    DTYPES,
    as_array,
    assert_close,
    assert_grads,
    assert_untouched,
    row_id,
    run_pair,
)


@dataclass(frozen=True)
class Case:
    name: str
    x: tuple[int, ...]  # (N, C_in, *spatial)
    c_out: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None = None  # None: all 1
    padding: tuple[int, ...] | str = 0  # as torch takes it: ints per dim, 'same' or 'valid'
    dilation: tuple[int, ...] | None = None
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    layout: str = "contiguous"  # or "strided": x a transposed view, weight every other element
    # batch elements per im2col block, forced (a fraction: rows of one element's output at a
    # time); None: the kernels' own
    block: float | None = None

    def ntuple(self, value) -> tuple[int, ...]:
        d = len(self.kernel)
        return (1,) * d if value is None else (value,) * d if isinstance(value, int) else value

    def pads(self) -> tuple[tuple[int, int], ...]:
        """The kernels' padding: (lo, hi) per dim, resolved as the functional layer does."""
        if self.padding == "same":
            return same_padding(self.kernel, self.ntuple(self.dilation))
        if self.padding == "valid":
            return ((0, 0),) * len(self.kernel)
        return tuple((p, p) for p in self.ntuple(self.padding))

    def options(self) -> dict:
        return dict(
            stride=self.ntuple(self.stride), padding=self.pads(),
            dilation=self.ntuple(self.dilation), groups=self.groups,
            padding_mode=self.padding_mode,
        )  # fmt: skip


CASES = [
    Case("2d-k3", (2, 3, 7, 6), 4, (3, 3)),
    Case("2d-k3-p1", (2, 3, 6, 6), 5, (3, 3), padding=(1, 1)),
    Case("2d-stride2", (2, 3, 9, 8), 4, (3, 3), stride=(2, 2), padding=(1, 1)),
    Case("2d-stride-gt-kernel", (2, 2, 9, 9), 3, (2, 2), stride=(3, 3)),
    Case("2d-nonsquare", (2, 3, 8, 5), 4, (3, 2), stride=(2, 1), padding=(1, 0)),
    Case("2d-dilation", (2, 2, 9, 8), 3, (3, 2), dilation=(2, 3), padding=(2, 1)),
    Case("2d-groups2", (2, 4, 6, 5), 6, (3, 3), groups=2, padding=(1, 1)),
    Case("2d-depthwise", (2, 4, 6, 5), 4, (3, 3), groups=4, padding=(1, 1)),
    Case("2d-depthwise-multiplier", (2, 3, 6, 5), 6, (3, 2), groups=3),
    Case("2d-bias-none", (2, 3, 6, 6), 4, (3, 3), bias=False),
    Case("2d-1x1", (2, 5, 4, 3), 3, (1, 1)),
    Case("2d-kernel-is-input", (2, 3, 5, 4), 4, (5, 4)),
    Case("2d-batch1", (1, 3, 6, 5), 4, (3, 3), padding=(1, 1)),
    Case("2d-empty-batch", (0, 3, 6, 5), 4, (3, 3), padding=(1, 1)),
    Case("2d-same-even-kernel", (2, 3, 7, 6), 4, (4, 2), padding="same"),
    Case("2d-same-dilated", (2, 2, 7, 6), 3, (2, 3), padding="same", dilation=(3, 2)),
    Case("2d-valid", (2, 3, 6, 5), 4, (3, 3), padding="valid"),
    Case("2d-reflect", (2, 3, 6, 5), 4, (3, 3), padding=(2, 1), padding_mode="reflect"),
    Case("2d-replicate", (2, 3, 6, 5), 4, (3, 2), padding=(2, 3), padding_mode="replicate"),
    Case("2d-circular", (2, 3, 6, 5), 4, (3, 3), padding=(2, 1), padding_mode="circular"),
    Case("2d-reflect-same-even", (2, 3, 6, 5), 4, (4, 3), padding="same", padding_mode="reflect"),
    Case("2d-strided-views", (2, 3, 7, 6), 4, (3, 2), padding=(1, 1), layout="strided"),
    Case("2d-many-channels", (2, 40, 5, 4), 6, (3, 2), padding=(1, 0)),  # tap rows per GEMM
    Case("2d-big-weight", (1, 80, 4, 4), 96, (3, 3), padding=(1, 1)),  # dW > 65536: gy @ cols.T
    Case("2d-lenet-like", (2, 3, 18, 18), 4, (3, 3)),  # the full grid: at most 8 channels
    # the full grid in blocks of 2 or 3 elements (float64 or float32: GRID_BYTES), the last short
    Case("2d-grid-blocks", (5, 3, 32, 32), 6, (5, 5), padding=(1, 1), dilation=(1, 2)),
    Case("2d-grid-blocks-strided", (5, 3, 32, 32), 6, (5, 5), padding=(1, 1), dilation=(1, 2),
         layout="strided"),
    Case("2d-tiny-weight", (2, 3, 18, 18), 9, (3, 3)),  # im2col, dW split per batch element
    # the torch backend's full grid by row pairs: even padded and output sizes in the first dim
    Case("2d-row-pairs", (4, 3, 12, 12), 6, (5, 5)),  # LeNet's conv1, smaller
    Case("2d-row-pairs-dilated", (3, 2, 8, 9), 4, (3, 3), padding=(1, 2), dilation=(1, 2)),
    Case("2d-row-pairs-reflect", (2, 3, 8, 9), 4, (3, 3), padding=(1, 2), padding_mode="reflect",
         layout="strided"),
    Case("3d-row-pairs", (2, 2, 6, 5, 4), 3, (3, 2, 2), dilation=(1, 2, 1)),
    # batch >= 8 and short output rows: columns ordered (*out, N)
    Case("2d-batch-last", (16, 3, 6, 7), 4, (3, 3), padding=(1, 1)),
    Case("2d-batch-last-stride2", (64, 4, 9, 8), 6, (3, 2), stride=(2, 2), groups=2),
    Case("2d-batch-last-circular", (8, 3, 5, 6), 4, (3, 3), padding=(1, 2),
         padding_mode="circular"),
    Case("2d-batch-last-many-channels", (16, 32, 4, 4), 5, (2, 3), padding=(1, 1),
         layout="strided"),
    Case("1d", (2, 3, 11), 4, (3,), padding=(1,)),
    Case("1d-stride-dilation-groups", (2, 4, 13), 6, (3,), stride=(2,), dilation=(2,), groups=2),
    Case("1d-reflect", (2, 3, 9), 4, (4,), padding=(3,), padding_mode="reflect"),
    Case("1d-batch-last", (16, 2, 10), 3, (3,)),
    Case("3d", (2, 2, 5, 4, 6), 3, (3, 2, 3), padding=(1, 0, 1)),
    Case("3d-stride-dilation", (2, 2, 7, 6, 5), 3, (2, 2, 2), stride=(2, 1, 2), dilation=(1, 2, 1)),
    Case("3d-replicate-groups", (2, 4, 4, 5, 3), 4, (3, 3, 2), padding=(1, 2, 1), groups=2,
         padding_mode="replicate"),
    Case("3d-same-even", (2, 2, 5, 4, 4), 3, (2, 3, 2), padding="same"),
    Case("3d-batch-last", (16, 2, 4, 4, 4), 3, (3, 3, 3), padding=(1, 1, 1)),
    # im2col in blocks of batch elements (as for large images), the cache keeps x, not cols;
    # at stride 1 more than 8 output channels, or both take the full grid
    Case("2d-blocks", (5, 3, 8, 7), 4, (3, 3), padding=(1, 1), block=2),
    Case("2d-blocks-of-one", (3, 2, 6, 5), 3, (3, 2), stride=(2, 1), block=1),
    Case("2d-blocks-groups-dilation", (5, 4, 9, 8), 6, (3, 2), dilation=(2, 1), groups=2,
         padding=(2, 1), block=3, layout="strided"),
    Case("2d-blocks-many-channels", (3, 40, 5, 4), 9, (3, 2), padding=(1, 0), block=2),
    # a dW of over 65536 values in several blocks: the NumPy backend adds each block's in
    # quarters of cols' rows (567 rows here: the last quarter short)
    Case("2d-blocks-big-weight", (3, 63, 4, 4), 130, (3, 3), padding=(1, 1), block=1),
    Case("2d-row-blocks-big-weight-groups", (2, 256, 4, 3), 130, (3, 3), groups=2,
         padding=(1, 1), block=0.5),
    Case("2d-blocks-depthwise-reflect", (4, 3, 6, 5), 3, (3, 3), groups=3, padding=(1, 2),
         padding_mode="reflect", block=3),
    Case("1d-blocks", (4, 3, 11), 4, (3,), padding=(1,), block=3),
    Case("3d-blocks-circular", (3, 2, 4, 5, 4), 9, (2, 3, 2), padding=(1, 1, 0),
         padding_mode="circular", block=2),
    Case("2d-batch-last-blocks", (32, 3, 6, 7), 4, (3, 3), padding=(1, 1), block=16),
    # one element's cols over the budget: blocks of output rows of one element
    Case("2d-row-blocks", (2, 3, 8, 7), 4, (3, 3), padding=(1, 1), block=0.4),
    # a tiny dW over >= 256 positions, but in rows of one element (a large image): one GEMM
    Case("2d-tiny-weight-row-blocks", (2, 3, 18, 18), 9, (3, 3), block=0.4),
    Case("2d-row-blocks-of-one-row", (2, 3, 6, 5), 4, (3, 3), padding=(1, 1), block=0.01),
    Case("2d-row-blocks-stride-dilation-groups", (2, 4, 11, 9), 6, (3, 2), stride=(2, 1),
         dilation=(2, 1), padding=(2, 1), groups=2, block=0.3, layout="strided"),
    Case("2d-row-blocks-reflect", (2, 3, 7, 6), 4, (3, 3), padding=(2, 1),
         padding_mode="reflect", block=0.5),
    Case("2d-row-blocks-many-channels", (2, 40, 5, 4), 9, (3, 2), padding=(1, 0), block=0.5),
    Case("1d-row-blocks", (2, 3, 11), 4, (3,), padding=(1,), block=0.3),
    Case("3d-row-blocks-replicate", (2, 2, 5, 4, 6), 9, (3, 2, 3), padding=(1, 0, 1),
         padding_mode="replicate", block=0.5),
    # one block of cols over a quarter of the budget, a small weight: dW tap by tap from x,
    # the forward in blocks of a quarter (LeNet's conv2 at batch 64)
    Case("2d-taps-batch-last", (16, 3, 6, 7), 10, (3, 3), padding=(1, 1), block=16),
    Case("2d-batch-last-dilation-reflect", (16, 3, 8, 9), 5, (3, 2), dilation=(2, 1),
         padding=(2, 1), padding_mode="reflect"),  # fmt: skip
    Case("2d-taps", (3, 4, 9, 8), 10, (3, 2), padding=(1, 0), block=3),
    Case("2d-taps-groups-dilation-reflect", (3, 4, 9, 8), 10, (3, 3), dilation=(2, 1),
         padding=(2, 1), groups=2, padding_mode="reflect", block=3),
    Case("2d-taps-stride-circular", (3, 3, 9, 8), 6, (3, 3), stride=(2, 1), padding=(1, 1),
         padding_mode="circular", block=3, layout="strided"),
    Case("2d-taps-bias-none", (16, 6, 8, 8), 16, (5, 5), bias=False, block=16),
    Case("1d-taps", (4, 3, 20), 9, (4,), padding=(2,), block=4),
    # 9 to 64 output channels over short rows in a batch, stride 1 along the first dim: the
    # torch backend's row taps (im2col over the last kernel dim, a GEMM per tap of the first)
    Case("2d-row-taps", (16, 3, 6, 7), 10, (3, 3), padding=(1, 1)),
    Case("2d-row-taps-stride-dilation", (64, 2, 9, 11), 12, (3, 2), stride=(1, 2),
         dilation=(2, 3), padding=(2, 1)),
    Case("2d-row-taps-reflect-strided", (16, 3, 7, 6), 9, (3, 3), padding=(2, 1),
         padding_mode="reflect", layout="strided"),
    Case("2d-row-taps-circular-bias-none", (8, 2, 5, 6), 16, (2, 3), padding=(1, 2),
         padding_mode="circular", bias=False),
    Case("2d-row-taps-same-even", (16, 3, 6, 5), 10, (4, 2), padding="same"),
    Case("3d-taps", (2, 2, 5, 6, 4), 9, (2, 3, 2), padding=(1, 1, 0), block=2),
]  # fmt: skip
TAPS = [c for c in CASES if "-taps" in c.name and "-row-taps" not in c.name]
ROW_TAPS = [c for c in CASES if "-row-taps" in c.name]
# rows above that take dW by taps in the NumPy backend, by row taps in the torch backend's
TAPS_OR_ROW_TAPS = [c for c in TAPS if c.name in ("2d-taps-batch-last", "2d-taps-bias-none")]
ALL = (True, True, True)


def conv_id(case: Case) -> str:
    """The row's test id: conv2d-k3, conv1d-reflect, ..."""
    return row_id("conv", len(case.kernel), case.name)


def make_inputs(case: Case, dtype: torch.dtype, gen: torch.Generator):
    """x, weight, bias (or None): weights scaled by 1/sqrt(fan_in) so outputs are O(1)."""
    n, c_in, *spatial = case.x
    shape_w = (case.c_out, c_in // case.groups, *case.kernel)
    scale = 1.0 / float(np.sqrt(np.prod(shape_w[1:])))
    if case.layout == "strided":
        x = torch.randn(n, c_in, *spatial[::-1], generator=gen, dtype=dtype)
        x = x.permute(0, 1, *range(x.dim() - 1, 1, -1))  # spatial dims reversed: a transposed view
        weight = torch.randn(*shape_w[:-1], 2 * shape_w[-1], generator=gen, dtype=dtype)
        weight = weight.mul_(scale)[..., ::2]
    else:
        x = torch.randn(case.x, generator=gen, dtype=dtype)
        weight = torch.randn(shape_w, generator=gen, dtype=dtype).mul_(scale)
    bias = torch.randn(case.c_out, generator=gen, dtype=dtype) if case.bias else None
    assert x.is_contiguous() is weight.is_contiguous() is (case.layout == "contiguous")
    return x, weight, bias


def make_grad_y(y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random g, scaled so that dW (a sum over N * prod(out) terms) is O(1) like y."""
    g = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    return g / float(np.sqrt(max(y.shape[0] * np.prod(y.shape[2:]), 1)))


def block_options(case: Case, dtype: torch.dtype, out: tuple[int, ...]) -> dict:
    """The kernel's `block_bytes` that makes im2col run `case.block` batch elements at a time."""
    if case.block is None:
        return {}
    per_element = case.x[1] * np.prod(case.kernel) * np.prod(out) * dtype.itemsize  # cols bytes
    return {"block_bytes": int(case.block * per_element)}


def reference(case: Case, inputs, grad_y: torch.Tensor | None = None):
    """torch's y and the grads of (y * grad_y).sum(), as nn.Conv*d computes them."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in inputs]
    x, weight, bias = leaves
    conv = (F.conv1d, F.conv2d, F.conv3d)[len(case.kernel) - 1]
    stride, dilation = case.ntuple(case.stride), case.ntuple(case.dilation)
    if case.padding_mode == "zeros":
        y = conv(x, weight, bias, stride, case.padding, dilation, case.groups)
    else:  # nn.Conv*d: F.pad with the mode, then an unpadded convolution
        flat = tuple(p for pair in reversed(case.pads()) for p in pair)
        y = conv(F.pad(x, flat, mode=case.padding_mode), weight, bias, stride, 0, dilation,
                 case.groups)  # fmt: skip
    if grad_y is None:
        return y.detach(), None
    (y * grad_y).sum().backward()
    return y.detach(), tuple(None if t is None else t.grad for t in leaves)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES, ids=conv_id)
def test_conv_matches_torch(case: Case, dtype, backend, gen):
    inputs = make_inputs(case, dtype, gen)
    expected_y, _ = reference(case, inputs)
    blocks = block_options(case, dtype, expected_y.shape[2:])
    grad_y = make_grad_y(expected_y, gen)
    originals = [None if t is None else t.clone() for t in inputs]
    (y,), grads = run_pair(backend, "conv", inputs, grad_y, ALL, **case.options(), **blocks)
    _, expected_grads = reference(case, inputs, grad_y)
    assert_close(y, expected_y, dtype)
    assert_grads(grads, expected_grads, dtype)
    assert_untouched(inputs, originals)


NEEDS = {
    "x-only": (True, False, False),
    "weight-only": (False, True, False),
    "bias-only": (False, False, True),
    "params-only": (False, True, True),
    "x-and-bias": (True, False, True),
    "none": (False, False, False),
}
NEEDS_CASES = [
    c
    for c in CASES
    if c.name
    in (
        "2d-groups2",
        "2d-batch-last",
        "1d-reflect",
        "2d-blocks",
        "2d-row-blocks",
        "2d-grid-blocks",
        "2d-taps",
        "2d-taps-batch-last",
        "2d-taps-stride-circular",
        "2d-row-taps-stride-dilation",
        "2d-row-taps-reflect-strided",
    )
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "case", NEEDS_CASES, ids=[row_id("conv", len(c.kernel), c.name) for c in NEEDS_CASES]
)
@pytest.mark.parametrize("needs", NEEDS.values(), ids=NEEDS.keys())
def test_conv_backward_skips_unneeded_grads(needs, case, backend, gen):
    inputs = make_inputs(case, torch.float64, gen)
    expected_y, _ = reference(case, inputs)
    blocks = block_options(case, torch.float64, expected_y.shape[2:])
    grad_y = make_grad_y(expected_y, gen)
    _, grads = run_pair(backend, "conv", inputs, grad_y, needs, **case.options(), **blocks)
    _, expected_grads = reference(case, inputs, grad_y)
    for grad, expected, need in zip(grads, expected_grads, needs):
        if need:
            assert_close(grad, expected, torch.float64)
        else:
            assert grad is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "block", [None, 2, 0.4], ids=["conv2d-one-block", "conv2d-blocks", "conv2d-row-blocks"]
)
def test_conv_cache_keeps_x_instead_of_cols_in_blocks(block, backend, gen):
    """One block: the cache keeps cols for backward. Blocks: only x, which autograd keeps anyway.

    16 output channels: im2col (with at most 8 both take the full grid, tested below)."""
    case = Case("2d", (5, 3, 8, 7), 16, (3, 3), padding=(1, 1), block=block)
    inputs = make_inputs(case, torch.float32, gen)
    blocks = block_options(case, torch.float32, (8, 7))
    arrays = [as_array(t, backend) for t in inputs]
    _, cache = kernels(backend).conv_forward(*arrays, **case.options(), **blocks)
    blocks = conv_blocks(cache.geometry)
    if block is None:
        assert cache.x is None and cache.cols.shape == (3 * 9, 5 * 8 * 7) and len(blocks) == 1
    else:
        assert cache.cols is None and cache.x is arrays[0]
        assert len(blocks) == (3 if block == 2 else 5 * 3)  # 8 output rows, 3 at a time


TAPS_RUNS = [
    pytest.param(case, backend, id=f"{conv_id(case)}-{backend}")
    for case in TAPS
    for backend in BACKENDS
    if not (backend == "torch" and case in TAPS_OR_ROW_TAPS)
]


@pytest.mark.parametrize("case, backend", TAPS_RUNS)
def test_conv_grad_weight_by_taps_keeps_no_cols(case, backend, gen):
    """The rows above that take dW by taps (compared with torch in the table): the cache keeps
    x and no cols, the forward ran in blocks of a quarter of the budget (several here), and
    the same rows given more room keep their cols instead."""
    inputs = make_inputs(case, torch.float32, gen)
    arrays = [as_array(t, backend) for t in inputs]
    out = reference(case, inputs)[0].shape[2:]
    blocks = block_options(case, torch.float32, out)
    _, cache = kernels(backend).conv_forward(*arrays, **case.options(), **blocks)
    geo = cache.geometry
    assert geo.taps and cache.cols is None and cache.x is arrays[0] and cache.grid is None
    assert len(conv_blocks(geo)) == 1
    quarter = forward_blocks(geo, 4, arrays[1].shape)
    assert len(conv_blocks(quarter)) > 1
    roomy = {"block_bytes": 4 * blocks["block_bytes"] + 4}
    _, cache = kernels(backend).conv_forward(*arrays, **case.options(), **roomy)
    assert not cache.geometry.taps and cache.cols is not None  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ROW_TAPS + TAPS_OR_ROW_TAPS, ids=conv_id)
def test_conv_takes_row_taps_in_the_torch_backend(case, backend, gen):
    """The row-taps rows above (compared with torch in the table) and two that take dW by taps
    in the NumPy backend: the torch backend ran by row taps and keeps x (backward rebuilds its
    rows), no cols; the NumPy backend ran im2col (the NumPy ConvCache has no row taps)."""
    inputs = make_inputs(case, torch.float32, gen)
    arrays = [as_array(t, backend) for t in inputs]
    out = reference(case, inputs)[0].shape[2:]
    blocks = block_options(case, torch.float32, out)
    _, cache = kernels(backend).conv_forward(*arrays, **case.options(), **blocks)
    if backend == "torch":
        assert cache.rows and cache.x is arrays[0] and cache.cols is None and cache.grid is None
    else:  # im2col: its one block of cols kept, or x (dW by taps)
        assert cache.grid is None and (cache.cols is None) is (cache.x is arrays[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_no_input_channels_over_long_rows(backend, gen):
    """in_channels=0 with 256 output positions per element (dW per batch element's rule): the
    functional's outputs and grads are torch's (its empty (N, 0, *out)); the torch backend's
    kernel viewed its 0 cols by -1 and raised (found by the deep fuzz)."""
    x = torch.zeros(2, 0, 18, 18, requires_grad=True)
    weight = torch.zeros(4, 0, 3, 3, requires_grad=True)
    bias = torch.randn(4, generator=gen).requires_grad_()
    y = SF.conv2d(x, weight, bias, backend=backend)
    expected = F.conv2d(x, weight, bias)
    torch.testing.assert_close(y, expected)
    grad_y = torch.randn(expected.shape, generator=gen)
    grads = torch.autograd.grad(y, (x, weight, bias), grad_y, allow_unused=True)
    wants = torch.autograd.grad(expected, (x, weight, bias), grad_y, allow_unused=True)
    for actual, want in zip(grads, wants):
        assert (actual is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(actual, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_batch_last_in_blocks(backend, gen):
    """Short output rows in blocks of >= 8 elements: columns (*out, n) per block."""
    case = next(c for c in CASES if c.name == "2d-batch-last-blocks")
    inputs = make_inputs(case, torch.float32, gen)
    arrays = [as_array(t, backend) for t in inputs]
    blocks = block_options(case, torch.float32, (6, 7))
    _, cache = kernels(backend).conv_forward(*arrays, **case.options(), **blocks)
    assert cache.geometry.batch_last and len(conv_blocks(cache.geometry)) == 2


@pytest.mark.parametrize(
    "itemsize, fits, block", [(4, 17, 16), (8, 17, 16), (2, 40, 32), (4, 70, 70)]
)
def test_batch_last_blocks_hold_whole_lines(itemsize, fits, block):
    """A block of batch-last columns smaller than the batch holds whole 64-byte lines of
    elements (`fits` of them fit its bytes), so that each run a cols copy writes starts on a
    line. As LeNet's conv2 forward, whose quarter-size blocks would hold 17 float32 elements."""
    per_element = 6 * 5 * 5 * 10 * 10 * itemsize  # its cols' bytes
    geo = conv_geometry((64, 6, 14, 14), itemsize, (16, 6, 5, 5), (1, 1), ((0, 0),) * 2, (1, 1),
                        1, "zeros", fits * per_element)  # fmt: skip
    assert geo.batch_last and geo.block == block


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c_out, strided", [(8, False), (9, False), (4, True)])
def test_conv_takes_the_full_grid_for_few_channels(c_out, strided, backend, gen):
    """At most 8 output channels at stride 1: the forward ran over the full padded grid (10 x 9
    positions here, of which the first 90 - (2 * 9 + 1) = 71 are computed) and the cache keeps
    x, no cols; otherwise im2col, whose one block of cols is kept. (Both paths are compared
    with torch by every row of the tables above.)"""
    stride = (2, 1) if strided else (1, 1)
    case = Case("2d", (5, 3, 8, 7), c_out, (3, 2), stride=stride, padding=(1, 1))
    arrays = [as_array(t, backend) for t in make_inputs(case, torch.float32, gen)]
    _, cache = kernels(backend).conv_forward(*arrays, **case.options())
    if c_out <= 8 and not strided:  # rows padded to whole 64-byte lines: 71 -> 80 floats
        assert cache.grid.steps == (9, 1) and cache.grid.positions == 71 and cache.grid.row == 80
        assert cache.grid.block >= 5 and cache.cols is None and cache.x is arrays[0]
    else:
        assert cache.grid is None and cache.cols.shape[0] == 3 * 3 * 2


@pytest.mark.parametrize(
    "shape, kernel, padding, dilation, pairs",
    [
        ((4, 3, 12, 12), (5, 5), (0, 0), (1, 1), 2),
        ((4, 3, 11, 12), (5, 5), (0, 0), (1, 1), 1),  # odd sizes in the first dim
        ((4, 3, 12, 12), (4, 5), (0, 0), (1, 1), 1),  # an even kernel: an odd output size
        ((4, 3, 12, 11), (5, 4), (0, 0), (1, 1), 2),  # the last dim may be anything
        ((4, 3, 12, 12), (3, 5), (1, 0), (1, 1), 2),
        ((4, 3, 12, 12), (3, 5), (1, 0), (2, 1), 1),  # dilated in the first dim
    ],
)
def test_torch_full_grid_takes_row_pairs(shape, kernel, padding, dilation, pairs):
    """Two output rows a column where the first dim's padded and output sizes are even and
    undilated; rows one at a time otherwise (every such row of the tables above checks the
    values)."""
    geo = conv_geometry(shape, 4, (6, shape[1], *kernel), (1, 1), tuple((p, p) for p in padding),
                        dilation, 1, "zeros", None)  # fmt: skip
    assert paired(geo) == pairs


@pytest.mark.parametrize("special, pairs", [(0.0, 2), (math.nan, 1), (math.inf, 1)])
def test_torch_conv_runs_row_pairs_for_a_finite_input(special, pairs, gen, monkeypatch):
    """The 2d-row-pairs row: the torch backend's forward runs the full grid two rows a column,
    one at a time where the input holds a NaN or inf (values checked by the tables)."""
    import scratch.kernels.torch.conv as torch_conv

    seen = []
    run = torch_conv.forward_grid
    monkeypatch.setattr(torch_conv, "forward_grid", lambda *a: seen.append(a[-1]) or run(*a))
    case = next(c for c in CASES if c.name == "2d-row-pairs")
    x, *rest = make_inputs(case, torch.float32, gen)
    x.view(-1)[7] += special
    kernels("torch").conv_forward(x, *rest, **case.options())
    assert seen == [pairs]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_full_grid_pads_rows_with_zeros(backend, gen, monkeypatch):
    """The pad at the end of each row of the full grid's cols is zeroed, whatever fresh memory
    held: dW multiplies it by the zero gradient of the garbage outputs, and a NaN left there
    would spread. Here every fresh buffer starts as NaN."""
    case = Case("2d", (5, 3, 8, 7), 4, (3, 2), padding=(1, 1))
    inputs = make_inputs(case, torch.float32, gen)
    y, _ = reference(case, inputs)
    grad_y = make_grad_y(y, gen)
    _, want = reference(case, inputs, grad_y)
    arrays = [as_array(t, backend) for t in inputs]
    assert kernels(backend).conv_forward(*arrays, **case.options())[1].grid.row == 80  # > 71
    _fresh_memory_is_nan(backend, monkeypatch)
    _, grads = run_pair(backend, "conv", inputs, grad_y, ALL, **case.options())
    assert_grads(grads, want, torch.float32)


def _fresh_memory_is_nan(backend, monkeypatch) -> None:
    """Every buffer the backend's kernels allocate uninitialised starts as NaN."""
    if backend == "numpy":
        monkeypatch.setattr(np, "empty", lambda shape, dtype=float: np.full(shape, np.nan, dtype))
    else:
        new_empty = torch.Tensor.new_empty
        monkeypatch.setattr(torch.Tensor, "new_empty", lambda t, *a: new_empty(t, *a).fill_(np.nan))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=conv_id)
def test_conv_writes_all_of_every_uninitialised_buffer(case: Case, backend, gen, monkeypatch):
    """Whatever fresh memory holds, every row of the table gives torch's values: each buffer
    left uninitialised (grad_x filled block by block from accumulators, cols, the grid's rows)
    is written whole before it is read or returned."""
    inputs = make_inputs(case, torch.float64, gen)
    expected_y, _ = reference(case, inputs)
    blocks = block_options(case, torch.float64, expected_y.shape[2:])
    grad_y = make_grad_y(expected_y, gen)
    _, expected_grads = reference(case, inputs, grad_y)
    _fresh_memory_is_nan(backend, monkeypatch)
    (y,), grads = run_pair(backend, "conv", inputs, grad_y, ALL, **case.options(), **blocks)
    assert_close(y, expected_y, torch.float64)
    assert_grads(grads, expected_grads, torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_conv_full_grid_in_blocks(dtype, backend, gen):
    """The table's 2d-grid-blocks row runs in several blocks, the last one short."""
    case = next(c for c in CASES if c.name == "2d-grid-blocks")
    arrays = [as_array(t, backend) for t in make_inputs(case, dtype, gen)]
    _, cache = kernels(backend).conv_forward(*arrays, **case.options())
    assert 1 < cache.grid.block < 5 and 5 % cache.grid.block
