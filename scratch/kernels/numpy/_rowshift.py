"""Stride-1 convolution by shifted rows (NumPy backend): im2col over the last kernel dim only.

With stride 1, tap (i_1, ..., j) of the kernel reads the padded input, flattened to
P = prod(padded) positions per (n, c), at q + offset(i_1, ...) + shift(j) for the output at
flat position q, when outputs are computed over the whole padded grid (q = sum_d r_d *
step_d; the positions past `out` in a dim are garbage, dropped at the end). So the matrix
`rows` needs only the last kernel dim's taps, (N, C_in * kW, P) from kW shifted copies of the
input (kW times the input, against prod(kernel) times for im2col's cols), and every leading
tap is one GEMM on an offset window of it, accumulated:

    forward      y_full[n] += W_i @ rows[n, :, off_i : off_i + M]       (per leading tap i)
    grad_weight  dW_i       = sum_n gy_full[n] @ rows[n, :, off_i : off_i + M].T

grad_x needs no cols: conv.py's tap-by-tap `W.T @ gy` serves both paths. Chosen by
`conv_plan.row_shift` (few output channels, where im2col's copy dominates).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratch.kernels.conv_plan import ConvGeometry, RowShift

__all__ = ["rows_of", "forward_rows", "grad_weight_rows"]


def rows_of(xp: np.ndarray, plan: RowShift) -> np.ndarray:
    """(N, C, *padded) -> rows (N, C * kW, P): row (c, j) is channel c shifted by j taps."""
    n, c = xp.shape[:2]
    flat = xp.reshape(n, c, -1)  # (N, C, P), a copy if xp is a strided view
    p, kw = flat.shape[2], len(plan.shifts)
    rows = np.empty((n, c, kw, p), xp.dtype)
    for j, shift in enumerate(plan.shifts):  # kW copies of the whole batch, no per-pixel loop
        rows[:, :, j, : p - shift] = flat[:, :, shift:]
        rows[:, :, j, p - shift :] = 0  # read only by garbage outputs
    return rows.reshape(n, c * kw, p)


def _valid(a: np.ndarray, plan: RowShift, out) -> np.ndarray:
    """The view (N, C_out, *out) of the real outputs in a (N, C_out, M) full-grid array: the
    output at (r_1, ...) sits at q = sum_d r_d * steps_d < M."""
    n, c_out, m = a.shape
    strides = tuple(v * a.itemsize for v in (c_out * m, m, *plan.steps))
    return as_strided(a, (n, c_out, *out), strides)


def forward_rows(rows, weight, bias, plan: RowShift, geo: ConvGeometry) -> np.ndarray:
    """y = conv(x, W) + b from `rows`. Shapes: rows (N, C_in * kW, P) -> y (N, C_out, *out)."""
    n, c_out, m = rows.shape[0], weight.shape[0], plan.positions
    # (C_out, C_in, *lead, kW) -> (lead taps, C_out, C_in * kW): one GEMM's weights per tap
    taps = len(plan.offsets)
    w = weight.reshape(c_out, weight.shape[1], taps, len(plan.shifts)).transpose(2, 0, 1, 3)
    w = w.reshape(taps, c_out, rows.shape[1])
    acc = np.matmul(w[0], rows[:, :, :m])  # (N, C_out, M); offsets[0] is 0
    for t, offset in enumerate(plan.offsets[1:], start=1):
        acc += np.matmul(w[t], rows[:, :, offset : offset + m])
    y = np.empty((n, c_out, *geo.out), rows.dtype)
    real = _valid(acc, plan, geo.out)
    if bias is None:
        np.copyto(y, real)
    else:
        np.add(real, bias.reshape(c_out, *(1,) * len(geo.out)), out=y)
    return y


def grad_weight_rows(rows, grad_y, plan: RowShift, shape) -> np.ndarray:
    """dW = sum_n gy_full[n] @ rows_i[n].T per leading tap. Shapes: grad_y (N, C_out, *out)."""
    n, c_out, m = grad_y.shape[0], grad_y.shape[1], plan.positions
    full = np.zeros((n, c_out, m), grad_y.dtype)  # zeros at the garbage outputs
    _valid(full, plan, grad_y.shape[2:])[...] = grad_y
    taps, kw = len(plan.offsets), len(plan.shifts)
    grad_t = np.empty((taps, c_out, rows.shape[1]), grad_y.dtype)  # (lead taps, C_out, C * kW)
    for t, offset in enumerate(plan.offsets):
        # per batch element (N small GEMMs, summed): 2-3x faster than one long GEMM here
        window = rows[:, :, offset : offset + m].transpose(0, 2, 1)  # (N, M, C * kW)
        np.matmul(full, window).sum(axis=0, out=grad_t[t])
    # (lead taps, C_out, C_in, kW) -> (C_out, C_in, *lead, kW)
    grad = grad_t.reshape(taps, c_out, -1, kw).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(grad).reshape(shape)
