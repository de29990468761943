"""Stride-1 convolution over the full padded grid (NumPy backend): im2col with long rows.

With stride 1, tap (i_1, ..., i_d) of the kernel reads the padded input, flattened to
P = prod(padded) positions per (n, c), at q + sum_d i_d * dilation_d * step_d for the output
at flat position q, when outputs are computed over the whole padded grid (q = sum_d r_d *
step_d; the positions past `out` in a dim are garbage, dropped at the end). So one element's
cols over the grid, (C_in * K, M), are a strided view of its flat input whose every row is one
contiguous run of M positions: one copy at memory speed (im2col's runs are output rows), for
M - prod(out) garbage columns (LeNet's conv1: 892 against 784), each row padded with zeros to
whole 64-byte lines (`Grid.row`, 896). Built a block of elements at a time into one buffer
that stays in cache (`conv_plan.GRID_BYTES`), rebuilt in backward:

    forward      y_full[n] = W @ cols[n]                    (one batched GEMM per block)
    grad_weight  dW        = sum_n gy_full[n] @ cols[n].T   (gy_full: zeros at the garbage)

grad_x needs no cols: conv.py's tap-by-tap `W.T @ gy` serves both paths. Chosen by
`conv_plan.full_grid` (few output channels, where building the cols dominates).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratch.kernels.conv_plan import ConvGeometry, Grid

__all__ = ["forward_grid", "grad_weight_grid"]


def _blocks(xp: np.ndarray, plan: Grid, geo: ConvGeometry):
    """Per block of `plan.block` elements: (its batch slice, its cols (n, C * K, row)), the cols
    written into one buffer reused by every block (read each before the next is built)."""
    n, c = xp.shape[:2]
    flat = xp.reshape(n, c, math.prod(xp.shape[2:]))  # (N, C, P); a copy if xp is strided
    s_n, s_c, s_p = flat.strides
    taps = [dl * st * s_p for dl, st in zip(geo.dilation, plan.steps)]
    windows = as_strided(flat, (n, c, *geo.kernel, plan.positions), (s_n, s_c, *taps, s_p))
    buffer = np.empty((min(plan.block, n), *windows.shape[1:-1], plan.row), xp.dtype)
    buffer[..., plan.positions :] = 0  # the pad of each row (see conv_plan.ROW_BYTES)
    for start in range(0, n, plan.block):
        batch = slice(start, start + plan.block)
        cols = buffer[: len(windows[batch])]
        np.copyto(cols[..., : plan.positions], windows[batch])
        yield batch, cols.reshape(len(cols), -1, plan.row)


def _real(a: np.ndarray, plan: Grid, out) -> np.ndarray:
    """The view (n, C_out, *out) of the real outputs in a (n, C_out, row) full-grid array: the
    output at (r_1, ...) sits at q = sum_d r_d * steps_d < M."""
    s_n, s_c, s_q = a.strides
    return as_strided(a, (*a.shape[:2], *out), (s_n, s_c, *(st * s_q for st in plan.steps)))


def forward_grid(xp, weight, bias, plan: Grid, geo: ConvGeometry) -> np.ndarray:
    """y = conv(x, W) + b. Shapes: xp (N, C_in, *padded) -> y (N, C_out, *out)."""
    n, c_out = xp.shape[0], weight.shape[0]
    w = weight.reshape(c_out, -1)  # (C_out, C_in * K), taps in cols' row order
    y = np.empty((n, c_out, *geo.out), xp.dtype)
    acc = np.empty((min(plan.block, n), c_out, plan.row), xp.dtype)
    for batch, cols in _blocks(xp, plan, geo):
        full = np.matmul(w, cols, out=acc[: len(cols)])  # (n, C_out, M)
        if bias is not None:  # 0.09 ms here against 0.22 ms on the strided copy (measured here)
            full += bias[:, None]
        np.copyto(y[batch], _real(full, plan, geo.out))
    return y


def grad_weight_grid(xp, grad_y, plan: Grid, geo: ConvGeometry, shape) -> np.ndarray:
    """dW = sum_n gy_full[n] @ cols[n].T. Shapes: xp (N, C_in, *padded), grad_y (N, C_out,
    *out) -> dW like the weight."""
    n, c_out = grad_y.shape[:2]
    full = np.zeros((min(plan.block, n), c_out, plan.row), grad_y.dtype)  # 0 at the garbage
    grad = np.zeros((c_out, math.prod(shape[1:])), grad_y.dtype)
    for batch, cols in _blocks(xp, plan, geo):
        block = full[: len(cols)]
        _real(block, plan, geo.out)[...] = grad_y[batch]  # the garbage stays 0
        # per batch element (n small GEMMs, summed): OpenBLAS runs LeNet's conv1 in 0.43 ms
        # that way against 2.3 ms for one (C_out, n * M) @ (n * M, C_in * K) GEMM (measured here)
        grad += np.matmul(block, cols.transpose(0, 2, 1)).sum(axis=0)
    return grad.reshape(shape)
