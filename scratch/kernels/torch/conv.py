"""Convolution kernels in any number of spatial dims (torch backend: tensor ops, no autograd).

im2col as in the NumPy backend: `cols` has one row per (input channel, kernel tap) and one
column per (batch element, output position), (C_in * prod(kernel), N * prod(out)), built from a
strided window view by ONE copy; then one GEMM per group for each product:

    forward      y      = W   @ cols        (then (C_out, <columns>) -> (N, C_out, P))
    grad_weight  dW     = gy  @ cols.T      (one GEMM over all N * prod(out) columns)
    grad_x       dcols  = W.T @ gy          (tap by tap, each added back by one strided add)

Large inputs run in blocks of batch elements (`BLOCK_BYTES` of cols at most), and then the
cache keeps x instead of cols. Columns come in the NumPy backend's two orders, batch first
(N, *out) or batch last (*out, N) for small maps in big batches: torch's strided copies and
adds also pay per short run. Runs on any device the tensors live on (CPU, CUDA, MPS).
"""

from __future__ import annotations

import math
from itertools import chain, product
from typing import NamedTuple

import torch

from scratch.kernels import Pads
from scratch.kernels.torch._window import window_view
from scratch.kernels.windows import (
    BLOCK_BYTES,
    ConvGeometry,
    cols_dims,
    conv_blocks,
    conv_geometry,
    pad_index,
)

__all__ = ["conv_forward", "conv_backward"]


class ConvCache(NamedTuple):
    x: torch.Tensor | None  # the input (N, C_in, *spatial) when im2col runs in blocks, else None
    cols: torch.Tensor | None  # one block: (C_in * prod(kernel), N * prod(out)), else None
    weight: torch.Tensor  # (C_out, C_in / groups, *kernel)
    geometry: ConvGeometry
    has_bias: bool


def conv_forward(
    x, weight, bias, *, stride, padding, dilation, groups, padding_mode, block_bytes=BLOCK_BYTES
):
    """N-d convolution (cross-correlation).

    As `torch.nn.functional.conv1d`, `conv2d` and `conv3d` (nn.Conv1d/2d/3d).

    Shapes: x (N, C_in, *spatial), weight (C_out, C_in / groups, *kernel), bias (C_out,) or None
    -> y (N, C_out, *out), out per torch's formula on the padded input. padding_mode 'zeros',
    'reflect', 'replicate' or 'circular' pads as `F.pad(mode=...)` does before convolving.
    """
    geo = conv_geometry(
        x.shape,
        x.element_size(),
        weight.shape,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        block_bytes,
    )
    n, c_out = x.shape[0], weight.shape[0]
    y = x.new_empty((n, c_out, math.prod(geo.out)))
    buffer = _cols_buffer(geo, x)  # reused by every block
    for batch in conv_blocks(geo):
        cols = _im2col(x[batch], geo, buffer)
        _forward_gemm(cols, weight, bias, geo, y[batch])
    # One block: backward reuses its cols. Several: keep x (autograd keeps it alive anyway)
    # and rebuild each block's cols in backward, so no layer holds an im2col-sized matrix.
    one = n <= geo.block
    cache = ConvCache(None if one else x, cols if one else None, weight, geo, bias is not None)
    return y.view(n, c_out, *geo.out), cache


def conv_backward(cache: ConvCache, grad_y, needs):
    """Gradients of `conv_forward` w.r.t. (x, weight, bias); None where not needed or absent.

    Shapes: grad_y (N, C_out, *out) -> grad_x (N, C_in, *spatial), grad_weight like weight,
    grad_bias (C_out,).
    """
    geo, weight = cache.geometry, cache.weight
    (n, c_out), g = grad_y.shape[:2], geo.groups
    need_bias = cache.has_bias and needs[2]
    if not (needs[0] or needs[1]):
        return None, None, grad_y.sum(dim=(0, *range(2, grad_y.dim()))) if need_bias else None
    grad_y = grad_y.reshape(n, c_out, math.prod(geo.out))  # (N, C_out, P)
    grad_x = grad_y.new_empty(geo.x_shape) if needs[0] else None
    grad_weight = grad_y.new_zeros(weight.shape) if needs[1] else None
    grad_bias = grad_y.new_zeros(c_out) if need_bias else None
    rebuild = needs[1] and cache.cols is None
    buffer = _cols_buffer(geo, grad_y) if rebuild else None
    w_t = _weight_taps(weight, g) if needs[0] else None
    for batch in conv_blocks(geo):
        # (n, C_out, P) -> (C_out, <columns>) -> (g, C_out/g, n * P): the column order of cols
        gy = _from_batch_channel(grad_y[batch], geo.batch_last).contiguous()
        if need_bias:
            grad_bias += gy.view(c_out, -1).sum(dim=1)
        gy = gy.view(g, c_out // g, -1)
        if needs[1]:
            cols = _im2col(cache.x[batch], geo, buffer) if rebuild else cache.cols
            cols = cols.view(g, cols.shape[0] // g, gy.shape[2])  # (g, C_in/g * K, n * P)
            grad_weight += torch.matmul(gy, cols.transpose(1, 2)).view(weight.shape)
        if needs[0]:
            _grad_input(w_t, gy, geo, grad_x[batch])
    return grad_x, grad_weight, grad_bias


def _forward_gemm(cols, weight, bias, geo: ConvGeometry, y) -> None:
    """y = W @ cols + b per group, written into y.

    Shapes: cols (C_in * K, <columns of n>), y (n, C_out, P).
    """
    (n, c_out, positions), g = y.shape, geo.groups
    # explicit sizes, no -1: C_in/g * K may be 0 (in_channels=0)
    w = weight.reshape(g, c_out // g, math.prod(weight.shape[1:]))  # (g, C_out/g, C_in/g * K)
    y_cols = torch.matmul(w, cols.view(g, w.shape[2], n * positions))  # (g, C_out/g, n * P)
    columns = cols_dims(n, (positions,), geo.batch_last)
    y_cols = _to_batch_channel(y_cols.view(c_out, *columns), geo.batch_last)  # (n, C_out, P)
    if bias is None:
        y.copy_(y_cols)
    else:  # the reordering copy adds the bias on the way
        torch.add(y_cols, bias[:, None], out=y)


def _weight_taps(weight, groups: int):
    """W.T per kernel tap: (C_out, C_in/g, *kernel) -> (K, g, C_in/g, C_out/g), one copy."""
    c_out, c_in_g = weight.shape[:2]
    # (C_out, C_in/g, *kernel) -> (g, C_out/g, C_in/g, K) -> (K, g, C_in/g, C_out/g)
    taps = math.prod(weight.shape[2:])  # explicit sizes, no -1: C_in/g may be 0
    w = weight.reshape(groups, c_out // groups, c_in_g, taps)
    return w.permute(3, 0, 2, 1).contiguous()


def _grad_input(w_t, gy, geo: ConvGeometry, grad_x) -> None:
    """grad_x: per kernel tap, dcols_tap = W_tap.T @ gy, added into the padded-input gradient.

    Shapes: w_t (K, g, C_in/g, C_out/g), gy (g, C_out/g, n * P) -> grad_x (n, C_in, *spatial),
    written in place. Going tap by tap keeps the extra memory at one (C_in, n * P) block
    instead of a second im2col-sized matrix.
    """
    (n, c_in, *spatial), out, batch_last = grad_x.shape, geo.out, geo.batch_last
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, geo.padding))
    grad_p = gy.new_zeros((c_in, *cols_dims(n, padded, batch_last)))
    block = gy.new_empty((geo.groups, c_in // geo.groups, gy.shape[2]))
    block_nd = block.view(c_in, *cols_dims(n, out, batch_last))
    for index, tap in enumerate(product(*map(range, geo.kernel))):  # row-major, as cols' rows
        torch.matmul(w_t[index], gy, out=block)  # (g, C_in/g, n * P)
        window = tuple(
            slice(k * dl, k * dl + (o - 1) * s + 1, s)
            for k, dl, o, s in zip(tap, geo.dilation, out, geo.stride)
        )
        at = (slice(None), *window) if batch_last else (slice(None), slice(None), *window)
        grad_p[at] += block_nd
    first = 1 if batch_last else 2  # the first spatial dim of grad_p
    grad_p = _unpad(grad_p, first, spatial, geo.padding, geo.padding_mode)
    grad_x.copy_(_to_batch_channel(grad_p, batch_last))


def _cols_buffer(geo: ConvGeometry, like: torch.Tensor) -> torch.Tensor:
    """Flat memory for the cols of one block, (C_in * K * min(block, N) * P,)."""
    n, c_in = geo.x_shape[:2]
    return like.new_empty(c_in * math.prod(geo.kernel) * min(geo.block, n) * math.prod(geo.out))


def _from_batch_channel(a, batch_last: bool):
    """View (N, C, *spatial) -> (C, *_columns)."""
    spatial = range(2, a.dim())
    return a.permute(1, *spatial, 0) if batch_last else a.transpose(0, 1)


def _to_batch_channel(a, batch_last: bool):
    """View (C, *_columns) -> (N, C, *spatial): the inverse of `_from_batch_channel`."""
    d = a.dim() - 2
    return a.permute(d + 1, 0, *range(1, 1 + d)) if batch_last else a.transpose(0, 1)


def _im2col(x, geo: ConvGeometry, buffer):
    """(n, C, *spatial) -> cols (C * K, n * prod(out)), rows ordered (channel, tap), written
    into the front of the flat `buffer` by ONE copy from a strided window view."""
    d, kernel, out = len(geo.kernel), geo.kernel, geo.out
    xp = _pad(x, geo.padding, geo.padding_mode, geo.batch_last)  # (n, C, *padded)
    windows = window_view(xp, kernel, geo.stride, geo.dilation, out)  # (n, C, *out, *kernel)
    tail = (*range(2, 2 + d), 0) if geo.batch_last else (0, *range(2, 2 + d))
    windows = windows.permute(1, *range(2 + d, 2 + 2 * d), *tail)  # (C, *kernel, <columns>)
    cols = buffer[: windows.numel()].view(windows.shape)
    cols.copy_(windows)
    return cols.view(x.shape[1] * math.prod(kernel), x.shape[0] * math.prod(out))


def _pad(x, padding: Pads, mode: str, batch_last: bool):
    """(N, C, *spatial) -> (N, C, *padded), as `F.pad(x, padding, mode)` ('zeros' = constant 0).

    With batch_last the result is a view of a (C, *padded, N) buffer, so that im2col's copy
    reads (and writes) runs of N * out[-1].
    """
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(x.shape[2:], padding))
    if mode != "zeros":
        for axis, (size, (lo, hi)) in enumerate(zip(x.shape[2:], padding), start=2):
            if lo or hi:
                index = torch.tensor(pad_index(size, lo, hi, mode), device=x.device)
                x = x.index_select(axis, index)  # one gather per dim
        padding = tuple((0, 0) for _ in padding)  # x is padded now
    zeros = any(lo or hi for lo, hi in padding)
    if not (zeros or batch_last):
        return x
    shape = (x.shape[1], *cols_dims(x.shape[0], padded, batch_last))
    buffer = x.new_zeros(shape) if zeros else x.new_empty(shape)
    xp = _to_batch_channel(buffer, batch_last)  # (N, C, *padded) view
    xp[(..., *_interior(x.shape[2:], padding))] = x
    return xp


def _unpad(grad_p, first: int, spatial, padding: Pads, mode: str):
    """Adjoint of `_pad` on the spatial dims first, first + 1, ...: fold padded back to spatial.

    A non-zero mode gathered padded position j from source index `pad_index(...)[j]`: one slice
    holds the positions gathered one to one (the interior, or the crop of a negative padding),
    the few padding positions are added one by one.
    """
    if mode == "zeros":
        return grad_p[(slice(None),) * first + _interior(spatial, padding)]
    for axis, (size, (lo, hi)) in enumerate(zip(spatial, padding), start=first):
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
