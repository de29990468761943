"""Stride-1 convolution over the full padded grid (torch backend), the NumPy backend's `_grid`
in tensor ops: each block's cols (C_in * K, n * row) are one copy of a strided view of the
flat input (each element's M positions, padded to `row`), then one GEMM per block:

    forward      y_full = W @ cols                          (C_out, n * row)
    grad_weight  dW    += gy_full @ cols.T                  (addmm_, BLAS's beta = 1)

The plan (`conv_plan.Grid`) and the arithmetic are the NumPy backend's; see its module. The
columns are (n, M) here, one 2-d GEMM per block, where NumPy runs one GEMM per element: MKL on
an Intel Xeon runs LeNet's conv1 forward GEMMs in 0.26 ms that way against 0.33 ms per element,
and its dW in 0.38 against 0.53 ms (OpenBLAS: 0.96 and 2.3 ms against 0.34 and 0.43).

Row pairs (`paired`): each column holds the outputs of two neighbouring rows of the first
spatial dim, 2h and 2h + 1, whose windows share all but one kernel row. The columns are then
(C_in * K / k0 * (k0 + 1), n * M') over the input's even and odd rows held apart (so that each
tap still reads one contiguous run, M' the positions of half the rows), and the weight
(2 * C_out, C_in * K / k0 * (k0 + 1)): W in row block e at kernel rows e .. e + k0 - 1, zeros at
the other. Twice the GEMM rows (few rows are what slows a small-M GEMM) and 0.6x the copying,
for 1.2x the multiply-adds. LeNet's conv1 (64x3x32x32, 6 x 5x5), MKL on an AMD EPYC, one
thread: its 16 forward GEMMs 1.20 -> 0.91 ms (44 -> 69 GFLOP/s at M = 6 -> 12), the module's
fwd + dW + db 4.52-4.62 -> 4.00-4.06 ms (torch.nn 2.80-2.96). Pairs of neighbouring positions
in the last dim instead measured no gain: their outputs interleave, a strided copy each way.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from scratch.kernels.conv_plan import GRID_BYTES, ConvGeometry, Grid, line_elements

__all__ = ["forward_grid", "grad_weight_grid", "paired"]


def paired(geo: ConvGeometry) -> int:
    """Rows per column: 2 where row pairs apply (see the module), else 1: even padded and
    output sizes in the first dim, undilated there (so an odd kernel: the sizes differ by
    k0 - 1). The caller also asks for a finite input: a NaN or inf times a pair's zero
    kernel row would spread NaN into an output that never reads it."""
    even = geo.padded[0] % 2 == 0 and geo.out[0] % 2 == 0 and geo.dilation[0] == 1
    return 2 if even else 1


class _Layout(NamedTuple):
    positions: int  # columns per element: M, or for pairs M' (half the rows)
    row: int  # their row stride, whole lines
    block: int  # elements per block: about GRID_BYTES of cols


def _layout(plan: Grid, pairs: int, geo: ConvGeometry, itemsize: int) -> _Layout:
    """The plan's columns and blocks, or for pairs those of half the rows: smaller columns,
    so more elements a block. LeNet's conv1: 6 against the plan's 4, the kernels' fwd + dW
    3.80-3.95 -> 3.62-3.69 ms (blocks of 8 or 16 no faster: the cols outgrow the L2 cache)."""
    if pairs == 1:
        return _Layout(plan.positions, plan.row, plan.block)
    line = line_elements(itemsize)
    positions = plan.positions - geo.out[0] // 2 * plan.steps[0]
    taps = math.prod(geo.kernel) // geo.kernel[0] * (geo.kernel[0] + 1)
    per_element = geo.x_shape[1] * taps * positions * itemsize
    return _Layout(positions, -(-positions // line) * line, max(1, round(GRID_BYTES / per_element)))


def _blocks(xp: torch.Tensor, plan: Grid, geo: ConvGeometry, pairs: int, layout: _Layout):
    """Per block of `layout.block` elements: (its batch slice, its cols (C * K', n * row')),
    the cols written into one buffer reused by every block (read each before the next is
    built)."""
    n, c = xp.shape[:2]
    flat = xp.reshape(n, c, math.prod(xp.shape[2:]))  # (N, C, P); a copy if xp is strided
    positions, row, block = layout
    # rows of parity e apart, (N, C, pairs, P / pairs): each tap reads one run again
    flat = flat.view(n, c, -1, pairs, plan.steps[0]).transpose(2, 3).reshape(n, c, pairs, -1)
    s_n, s_c, s_e, s_p = flat.stride()
    taps = [dl * st * s_p for dl, st in zip(geo.dilation, plan.steps)]
    # (C, k0 rows as (half, parity), *kernel[1:], N, M'): kernel row i = pairs * a + e
    halves = (geo.kernel[0] + pairs - 1) // pairs
    shape = (c, halves, pairs, *geo.kernel[1:], n, positions)
    strides = (s_c, taps[0], s_e, *taps[1:], s_n, s_p)
    windows = flat.as_strided(shape, strides, flat.storage_offset())
    buffer = None
    for start in range(0, n, block):
        batch = slice(start, start + block)
        window = windows[..., batch, :]
        if buffer is None or buffer.shape[-2] != window.shape[-2]:  # the first, the last block
            buffer = xp.new_empty((*shape[:-2], window.shape[-2], row))
            buffer[..., positions:] = 0  # the pad of each row (see conv_plan.ROW_BYTES)
        buffer[..., :positions].copy_(window)
        yield batch, buffer.view(-1, window.shape[-2] * row)


def _real(a: torch.Tensor, plan: Grid, out) -> torch.Tensor:
    """The view (n, C_out, out[0] / pairs, pairs, *out[1:]) of the real outputs in a
    (pairs, C_out, n, row') full-grid tensor: row 2h + e of the outputs is row h of block e."""
    pairs, c_out, n, m = a.shape
    s_e, s_c, s_n, s_p = a.stride()
    shape = (n, c_out, out[0] // pairs, pairs, *out[1:])
    strides = (s_n, s_c, plan.steps[0] * s_p, s_e, *(st * s_p for st in plan.steps[1:]))
    return a.as_strided(shape, strides, a.storage_offset())


def _pair_weight(weight: torch.Tensor, pairs: int) -> torch.Tensor:
    """(pairs * C_out, C_in * K'): W at kernel rows e .. e + k0 - 1 of row block e, else 0."""
    c_out, c_in, k0, *rest = weight.shape
    if pairs == 1:
        return weight.reshape(c_out, -1)
    w = weight.new_zeros((pairs, c_out, c_in, k0 + pairs - 1, *rest))
    for e in range(pairs):
        w[e, :, :, e : e + k0] = weight
    return w.view(pairs * c_out, -1)


def forward_grid(xp, weight, bias, plan: Grid, geo: ConvGeometry, pairs: int) -> torch.Tensor:
    """y = conv(x, W) + b. Shapes: xp (N, C_in, *padded) -> y (N, C_out, *out)."""
    n, c_out = xp.shape[0], weight.shape[0]
    w = _pair_weight(weight, pairs)  # (pairs * C_out, C_in * K'), taps in cols' row order
    y = xp.new_empty((n, c_out, *geo.out))
    layout = _layout(plan, pairs, geo, xp.element_size())
    for batch, cols in _blocks(xp, plan, geo, pairs, layout):
        full = torch.mm(w, cols).view(pairs, c_out, -1, layout.row)  # (pairs, C_out, n, row')
        if bias is not None:
            full += bias.view(c_out, 1, 1)
        y[batch].unflatten(2, (-1, pairs)).copy_(_real(full, plan, geo.out))
    return y


def grad_weight_grid(xp, grad_y, plan: Grid, geo: ConvGeometry, shape) -> torch.Tensor:
    """dW = sum_n gy_full[n] @ cols[n].T. Shapes: xp (N, C_in, *padded), grad_y (N, C_out,
    *out) -> dW like the weight."""
    n, c_out = grad_y.shape[:2]
    pairs = paired(geo)  # x is finite: the grid's dW is only taken then (see conv_backward)
    k0 = shape[2]
    grad = grad_y.new_zeros((pairs, c_out, shape[1], k0 + pairs - 1, *shape[3:]))
    layout = _layout(plan, pairs, geo, xp.element_size())
    full = None
    for batch, cols in _blocks(xp, plan, geo, pairs, layout):
        columns = cols.shape[1] // layout.row
        if full is None or full.shape[2] != columns:  # zeros at the garbage, kept per block
            full = grad_y.new_zeros((pairs, c_out, columns, layout.row))
        _real(full, plan, geo.out).copy_(grad_y[batch].unflatten(2, (-1, pairs)))
        grad.view(pairs * c_out, -1).addmm_(full.view(pairs * c_out, -1), cols.t())
    total = grad[0, :, :, :k0]
    for e in range(1, pairs):  # row block e's dW sits e kernel rows down
        total = total + grad[e, :, :, e : e + k0]
    return total.reshape(shape)
