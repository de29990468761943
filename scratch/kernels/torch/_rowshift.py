"""Stride-1 convolution by shifted rows (torch backend), the NumPy backend's `_rowshift` in
tensor ops: im2col over the last kernel dim only, one batched GEMM per leading kernel tap.

    forward      y_full[n] += W_i @ rows[n, :, off_i : off_i + M]       (baddbmm_, in place)
    grad_weight  dW_i       = sum_n gy_full[n] @ rows[n, :, off_i : off_i + M].T

The plan (`conv_plan.RowShift`) and the layout, rows (N, C_in * kW, P), are the NumPy
backend's; see its module for the arithmetic. Measured with MKL on an Intel Xeon, one thread,
LeNet's conv1 (64x3x32x32, 6 x 5x5): fwd 1.50 + grad_weight 1.36 ms against im2col's 1.66 +
1.92 ms (on an AMD EPYC, whose MKL runs its slower kernels, it measured no gain).
"""

from __future__ import annotations

import torch

from scratch.kernels.conv_plan import ConvGeometry, RowShift

__all__ = ["rows_of", "forward_rows", "grad_weight_rows"]


def rows_of(xp: torch.Tensor, plan: RowShift) -> torch.Tensor:
    """(N, C, *padded) -> rows (N, C * kW, P): row (c, j) is channel c shifted by j taps."""
    n, c = xp.shape[:2]
    flat = xp.reshape(n, c, -1)  # (N, C, P), a copy if xp is a strided view
    p, kw = flat.shape[2], len(plan.shifts)
    rows = flat.new_empty((n, c, kw, p))
    for j, shift in enumerate(plan.shifts):  # kW copies of the whole batch, no per-pixel loop
        rows[:, :, j, : p - shift] = flat[:, :, shift:]
        rows[:, :, j, p - shift :] = 0  # read only by garbage outputs
    return rows.view(n, c * kw, p)


def _valid(a: torch.Tensor, plan: RowShift, out) -> torch.Tensor:
    """The view (N, C_out, *out) of the real outputs in a (N, C_out, M) full-grid tensor."""
    n, c_out, m = a.shape
    return a.as_strided((n, c_out, *out), (c_out * m, m, *plan.steps), a.storage_offset())


def _weight_taps(weight: torch.Tensor, plan: RowShift, depth: int) -> torch.Tensor:
    """(C_out, C_in, *lead, kW) -> (lead taps, C_out, C_in * kW): one GEMM's weights per tap."""
    c_out, taps = weight.shape[0], len(plan.offsets)
    w = weight.reshape(c_out, weight.shape[1], taps, len(plan.shifts)).permute(2, 0, 1, 3)
    return w.reshape(taps, c_out, depth)


def forward_rows(rows, weight, bias, plan: RowShift, geo: ConvGeometry) -> torch.Tensor:
    """y = conv(x, W) + b from `rows`. Shapes: rows (N, C_in * kW, P) -> y (N, C_out, *out)."""
    n, depth, m = rows.shape[0], rows.shape[1], plan.positions
    w = _weight_taps(weight, plan, depth)
    acc = torch.matmul(w[0], rows[:, :, :m]).contiguous()  # (N, C_out, M); offsets[0] is 0
    for t, offset in enumerate(plan.offsets[1:], start=1):
        acc.baddbmm_(w[t].expand(n, *w.shape[1:]), rows[:, :, offset : offset + m])
    real = _valid(acc, plan, geo.out)
    if bias is None:
        return real.contiguous()
    return torch.add(real, bias.view(-1, *(1,) * len(geo.out)))


def grad_weight_rows(rows, grad_y, plan: RowShift, shape) -> torch.Tensor:
    """dW = sum_n gy_full[n] @ rows_i[n].T per leading tap. Shapes: grad_y (N, C_out, *out)."""
    n, c_out, m = grad_y.shape[0], grad_y.shape[1], plan.positions
    full = grad_y.new_zeros((n, c_out, m))  # zeros at the garbage outputs
    _valid(full, plan, grad_y.shape[2:]).copy_(grad_y)
    taps, kw = len(plan.offsets), len(plan.shifts)
    grad_t = grad_y.new_empty((taps, rows.shape[1], c_out))  # (lead taps, C * kW, C_out)
    full_t = full.transpose(1, 2)  # (N, M, C_out)
    for t, offset in enumerate(plan.offsets):
        # per batch element (N small GEMMs, summed), as grad_weight's per-element rule, each
        # dW_i.T = rows_i[n] @ gy_full[n].T: MKL on an AMD EPYC runs LeNet's conv1 in 1.9 ms
        # that way against 3.2 ms for gy_full[n] @ rows_i[n].T (one thread, measured here)
        torch.sum(torch.bmm(rows[:, :, offset : offset + m], full_t), dim=0, out=grad_t[t])
    # (lead taps, C_in, kW, C_out) -> (C_out, C_in, *lead, kW)
    grad = grad_t.view(taps, -1, kw, c_out).permute(3, 1, 0, 2)
    return grad.reshape(shape)
