"""Convolution kernels in any number of spatial dims (torch backend: tensor ops, no autograd).

im2col as in the NumPy backend: `cols` has one row per (input channel, kernel tap) and one
column per (batch element, output position), (C_in * prod(kernel), N * prod(out)), built from a
strided window view by ONE contiguous copy; then one GEMM per group for each product:

    forward      y      = W   @ cols        (then (C_out, N, P) -> (N, C_out, P))
    grad_weight  dW     = gy  @ cols.T      (one GEMM over all N * prod(out) columns)
    grad_x       dcols  = W.T @ gy          (tap by tap, each added back by one strided add)

Runs on any device the tensors live on (CPU, CUDA, MPS).
"""

from __future__ import annotations

import math
from itertools import chain, product
from typing import NamedTuple

import torch

from scratch.kernels.torch._window import window_view
from scratch.kernels.windows import conv_out_size, pad_index

__all__ = ["conv_forward", "conv_backward"]

Pads = tuple[tuple[int, int], ...]


class ConvCache(NamedTuple):
    cols: torch.Tensor  # (C_in * prod(kernel), N * prod(out)), rows (channel, tap)
    weight: torch.Tensor  # (C_out, C_in / groups, *kernel)
    x_shape: tuple[int, ...]  # (N, C_in, *spatial)
    out: tuple[int, ...]  # output spatial sizes
    stride: tuple[int, ...]
    padding: Pads  # (lo, hi) per spatial dim
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    has_bias: bool


def conv_forward(x, weight, bias, *, stride, padding, dilation, groups, padding_mode):
    """N-d convolution (cross-correlation), as `torch.nn.functional.conv{1,2,3}d` / nn.Conv*d.

    Shapes: x (N, C_in, *spatial), weight (C_out, C_in / groups, *kernel), bias (C_out,) or None
    -> y (N, C_out, *out), out per torch's formula on the padded input. padding_mode 'zeros',
    'reflect', 'replicate' or 'circular' pads as `F.pad(mode=...)` does before convolving.
    """
    n, c_out, kernel = x.shape[0], weight.shape[0], tuple(weight.shape[2:])
    out = tuple(
        conv_out_size(size, k, s, lo, hi, dl)
        for size, k, s, (lo, hi), dl in zip(x.shape[2:], kernel, stride, padding, dilation)
    )
    cols = _im2col(_pad(x, padding, padding_mode), kernel, stride, dilation, out)
    w = weight.reshape(groups, c_out // groups, -1)  # (g, C_out/g, C_in/g * K)
    positions = math.prod(out)
    y_cols = torch.matmul(w, cols.reshape(groups, w.shape[2], n * positions))  # (g, C_out/g, N * P)
    y_cols = y_cols.view(c_out, n, positions).transpose(0, 1)  # (N, C_out, P) view
    y = torch.empty(y_cols.shape, dtype=x.dtype, device=x.device)
    if bias is None:
        y.copy_(y_cols)
    else:  # the transposing copy adds the bias on the way
        torch.add(y_cols, bias[:, None], out=y)
    cache = ConvCache(
        cols, weight, tuple(x.shape), out, tuple(stride), tuple(padding), tuple(dilation),
        groups, padding_mode, bias is not None,
    )  # fmt: skip
    return y.view(n, c_out, *out), cache


def conv_backward(cache: ConvCache, grad_y, needs):
    """Gradients of `conv_forward` w.r.t. (x, weight, bias); None where not needed or absent.

    Shapes: grad_y (N, C_out, *out) -> grad_x (N, C_in, *spatial), grad_weight like weight,
    grad_bias (C_out,).
    """
    n, c_out, g = grad_y.shape[0], grad_y.shape[1], cache.groups
    need_bias = cache.has_bias and needs[2]
    if not (needs[0] or needs[1]):
        return None, None, grad_y.sum(dim=(0, *range(2, grad_y.dim()))) if need_bias else None
    # (N, C_out, *out) -> (C_out, N, P) -> (g, C_out/g, N * P): the column order of cols
    positions = math.prod(cache.out)
    gy = grad_y.reshape(n, c_out, positions).transpose(0, 1).contiguous()
    grad_bias = gy.view(c_out, n * positions).sum(dim=1) if need_bias else None
    gy = gy.view(g, c_out // g, n * positions)
    grad_weight = None
    if needs[1]:
        # (C_in * K, N * P) -> (g, C_in/g * K, N * P)
        cols = cache.cols.reshape(g, cache.cols.shape[0] // g, gy.shape[2])
        grad_weight = torch.matmul(gy, cols.transpose(1, 2)).reshape(cache.weight.shape)
    grad_x = _grad_input(cache, gy) if needs[0] else None
    return grad_x, grad_weight, grad_bias


def _grad_input(cache: ConvCache, gy):
    """grad_x: per kernel tap, dcols_tap = W_tap.T @ gy, added into the padded-input gradient.

    Shapes: gy (g, C_out/g, N * P) -> (N, C_in, *spatial). Going tap by tap keeps the extra
    memory at one (C_in, N * P) block instead of a second im2col-sized matrix.
    """
    n, c_in, *spatial = cache.x_shape
    kernel, out, g = tuple(cache.weight.shape[2:]), cache.out, cache.groups
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, cache.padding))
    # (C_out, C_in/g, *kernel) -> (g, C_out/g, C_in/g, K) -> (K, g, C_in/g, C_out/g): W.T per tap
    w_t = cache.weight.reshape(g, gy.shape[1], c_in // g, -1).permute(3, 0, 2, 1).contiguous()
    grad_p = torch.zeros((c_in, n, *padded), dtype=gy.dtype, device=gy.device)
    for index, tap in enumerate(product(*map(range, kernel))):  # row-major, as cols' rows
        block = torch.matmul(w_t[index], gy)  # (g, C_in/g, N * P)
        window = tuple(
            slice(k * dl, k * dl + (o - 1) * s + 1, s)
            for k, dl, o, s in zip(tap, cache.dilation, out, cache.stride)
        )
        grad_p[(slice(None), slice(None), *window)] += block.view(c_in, n, *out)
    grad_p = _unpad(grad_p, spatial, cache.padding, cache.padding_mode)  # (C_in, N, *spatial)
    return grad_p.transpose(0, 1).contiguous()


def _im2col(xp, kernel, stride, dilation, out):
    """(N, C, *padded) -> cols (C * prod(kernel), N * prod(out)), rows ordered (channel, tap)."""
    d = len(kernel)
    windows = window_view(xp, kernel, stride, dilation, out)  # (N, C, *out, *kernel)
    order = (1, *range(2 + d, 2 + 2 * d), 0, *range(2, 2 + d))  # -> (C, *kernel, N, *out)
    rows, columns = xp.shape[1] * math.prod(kernel), xp.shape[0] * math.prod(out)
    return windows.permute(order).reshape(rows, columns)  # one copy


def _pad(x, padding: Pads, mode: str):
    """(N, C, *spatial) -> (N, C, *padded), as `F.pad(x, padding, mode)` ('zeros' = constant 0)."""
    if not any(lo or hi for lo, hi in padding):
        return x
    if mode == "zeros":
        padded = tuple(size + lo + hi for size, (lo, hi) in zip(x.shape[2:], padding))
        xp = torch.zeros((*x.shape[:2], *padded), dtype=x.dtype, device=x.device)
        xp[(..., *_interior(x.shape[2:], padding))] = x
        return xp
    for axis, (size, (lo, hi)) in enumerate(zip(x.shape[2:], padding), start=2):
        if lo or hi:
            index = torch.tensor(pad_index(size, lo, hi, mode), device=x.device)
            x = x.index_select(axis, index)  # one gather per dim
    return x


def _unpad(grad_p, spatial, padding: Pads, mode: str):
    """Adjoint of `_pad` on the spatial dims 2..: (A, B, *padded) -> (A, B, *spatial).

    A non-zero mode gathered padded position j from source index `pad_index(...)[j]`: one slice
    holds the positions gathered one to one (the interior, or the crop of a negative padding),
    the few padding positions are added one by one.
    """
    if mode == "zeros":
        return grad_p[(..., *_interior(spatial, padding))]
    for axis, (size, (lo, hi)) in enumerate(zip(spatial, padding), start=2):
        if not (lo or hi):
            continue
        source = pad_index(size, lo, hi, mode)
        padded = grad_p.movedim(axis, 0)  # the folded dim first: (size + lo + hi, ...)
        start, stop = max(lo, 0), min(lo + size, len(source))  # j gathered from j - lo
        folded = padded.new_zeros((size, *padded.shape[1:]))
        folded[start - lo : stop - lo] = padded[start:stop]
        for j in chain(range(start), range(stop, len(source))):  # the padding positions
            folded[source[j]] += padded[j]
        grad_p = folded.movedim(0, axis)
    return grad_p


def _interior(spatial, padding: Pads) -> tuple[slice, ...]:
    return tuple(slice(lo, lo + size) for size, (lo, _) in zip(spatial, padding))
