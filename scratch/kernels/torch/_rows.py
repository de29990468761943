"""2-d convolution by row taps (torch backend; chosen by `conv_plan.row_taps`).

`rows` (C_in * kW, Hp * Wo * N) is im2col over the last kernel dim alone, batch last: row
(c, j) holds channel c of the padded input at the columns tap j of each output reads, for every
padded row. ONE strided copy of kW times the input, where im2col copies kH * kW times. At
stride 1 along the first dim, output row h reads padded row h + i * dilation for tap i, so tap
i's cols are the contiguous columns [i * dl * Wo * N, (i * dl + Ho) * Wo * N) of rows: a view,
read by BLAS with its leading dimension, no copy.

    forward      y        = sum_i W_i @ rows_i        (addmm_: BLAS's beta = 1, no temporary)
    grad_weight  dW_i.T   = rows_i @ gy.T
    grad_x       drows_i += W_i.T @ gy                (addmm_ into a view of drows)
                 then each tap j of drows added into the padded grad_x, kernel column by column

W_i: the weight's taps (:, :, i, :) as (C_out, C_in * kW). The cache keeps x, which autograd
keeps anyway, not rows: backward rebuilds them (0.07 ms for LeNet's conv2), takes dW, then
writes drows over them, and frees each buffer before the next is made. LeNet's conv2 peak:
2.0 MiB, 1.47x torch.nn's 1.4 (3.4 MiB keeping rows, with a fresh drows beside them).
"""

from __future__ import annotations

import math

import torch

from scratch.kernels.conv_plan import ConvGeometry
from scratch.kernels.torch._layout import from_batch_channel, pad, to_batch_channel, unpad
from scratch.kernels.torch._window import window_view

__all__ = ["forward_rows", "backward_rows"]


def _rows_shape(geo: ConvGeometry) -> tuple[int, ...]:
    """rows as (C_in, kW, Hp, Wo, N): tap j of the last kernel dim for every padded row."""
    (n, c), hp, wo = geo.x_shape[:2], geo.padded[0], geo.out[1]
    return c, geo.kernel[1], hp, wo, n


def _rows_of(x: torch.Tensor, geo: ConvGeometry) -> torch.Tensor:
    """(N, C_in, H, W) -> rows (C_in * kW, Hp * Wo * N), by one strided copy of the padded
    input's windows along its last dim."""
    xp = pad(x, geo.padding, geo.padding_mode, True)  # a view of a (C, Hp, Wp, N) buffer
    (_, kw), (_, s), (_, dl) = geo.kernel, geo.stride, geo.dilation
    windows = window_view(xp, (kw,), (s,), (dl,), geo.out[1:])  # (N, C, Hp, Wo, kW)
    shape = _rows_shape(geo)
    rows = x.new_empty((shape[0] * shape[1], math.prod(shape[2:])))
    rows.view(shape).copy_(windows.permute(1, 4, 2, 3, 0))
    return rows


def _weight_rows(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, kH, kW) -> (kH, C_out, C_in * kW): W_i per tap i of the first dim."""
    c_out, c_in, kh, kw = weight.shape
    return weight.permute(2, 0, 1, 3).reshape(kh, c_out, c_in * kw)


def _spans(geo: ConvGeometry):
    """Per tap i of the first dim: the slice of rows' columns its GEMM reads (or adds into)."""
    (ho, wo), n = geo.out, geo.x_shape[0]
    span, step = ho * wo * n, geo.dilation[0] * wo * n
    return [slice(i * step, i * step + span) for i in range(geo.kernel[0])]


def forward_rows(x, weight, bias, geo: ConvGeometry) -> torch.Tensor:
    """y = conv(x, W) + b by row taps. Shapes: x (N, C_in, H, W) -> y (N, C_out, Ho, Wo)."""
    (ho, wo), n, c_out = geo.out, geo.x_shape[0], weight.shape[0]
    w, rows = _weight_rows(weight), _rows_of(x, geo)
    spans = _spans(geo)
    acc = torch.matmul(w[0], rows[:, spans[0]])  # (C_out, Ho * Wo * N)
    for w_i, span in zip(w[1:], spans[1:]):
        acc.addmm_(w_i, rows[:, span])
    del rows  # before y is made
    y = acc.new_empty((n, c_out, ho, wo))
    acc = to_batch_channel(acc.view(c_out, ho, wo, n), True)
    if bias is None:
        return y.copy_(acc)
    return torch.add(acc, bias.view(-1, 1, 1), out=y)  # the reordering copy adds the bias


def backward_rows(x, weight, grad_y, geo: ConvGeometry, needs, has_bias: bool):
    """Gradients of `forward_rows` w.r.t. (x, weight, bias); None where not needed or absent.

    Shapes: grad_y (N, C_out, Ho, Wo) -> grad_x (N, C_in, H, W), grad_weight like weight,
    grad_bias (C_out,).
    """
    c_out, c_in, kh, kw = weight.shape
    gy = from_batch_channel(grad_y, True).reshape(c_out, -1)  # (C_out, Ho * Wo * N), read only
    grad_bias = gy.sum(dim=1) if has_bias and needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, grad_bias
    spans = _spans(geo)
    grad_weight = grad_x = None
    rows = _rows_of(x, geo) if needs[1] else None
    if rows is not None:
        # dW_i.T = rows_i @ gy.T: LeNet's conv2 0.48 ms against 0.75 ms for gy @ rows_i.T (MKL
        # on an AMD EPYC, one thread)
        grad_t = gy.new_empty((kh, c_in * kw, c_out))
        for grad_i, span in zip(grad_t, spans):
            torch.matmul(rows[:, span], gy.t(), out=grad_i)
        grad_weight = grad_t.view(kh, c_in, kw, c_out).permute(3, 1, 0, 2).contiguous()
    if needs[0]:
        if rows is None:
            drows = gy.new_zeros((c_in * kw, math.prod(_rows_shape(geo)[2:])))
        else:  # dW taken: drows written over the rows
            drows = rows.zero_()
        del rows
        for w_i, span in zip(_weight_rows(weight), spans):
            drows[:, span].addmm_(w_i.t(), gy)
        del gy  # each buffer freed before the next is made
        grad_p = _rows_into_padded(drows, geo)
        del drows
        grad_p = unpad(grad_p, 1, geo.x_shape[2:], geo.padding, geo.padding_mode)  # (C, H, W, N)
        grad_x = to_batch_channel(grad_p, True).contiguous()
    return grad_x, grad_weight, grad_bias


def _rows_into_padded(drows, geo: ConvGeometry) -> torch.Tensor:
    """The adjoint of `_rows_of` into the padded input (C_in, Hp, Wp, N): each tap j of drows
    added where it read."""
    c, _, hp, wo, n = shape = _rows_shape(geo)
    dl, s = geo.dilation[1], geo.stride[1]
    grad_p = drows.new_zeros((c, hp, geo.padded[1], n))
    for j, tap in enumerate(drows.view(shape).unbind(1)):
        grad_p[:, :, j * dl : j * dl + (wo - 1) * s + 1 : s].add_(tap)
    return grad_p
