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
    w_t = _weight_taps(weight, geo) if needs[0] else None
    for batch in conv_blocks(geo):
        # (n, C_out, P) -> (C_out, <columns>) -> (g, C_out/g, n * P): the column order of cols
        gy = _from_batch_channel(grad_y[batch], geo.batch_last).contiguous()
        if need_bias:
            grad_bias += gy.view(c_out, -1).sum(dim=1)
        gy = gy.view(g, c_out // g, -1)
        if needs[1]:
            cols = _im2col(cache.x[batch], geo, buffer) if rebuild else cache.cols
            grad_weight += _grad_weight(cols, gy, weight.shape)
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


def _grad_weight(cols, gy, shape):
    """dW = gy @ cols.T as ONE GEMM over the n * P columns. Shapes: gy (g, C_out/g, n * P)."""
    g, c_out_g, columns = gy.shape
    cols = cols.view(g, cols.shape[0] // g, columns)  # (g, C_in/g * K, n * P)
    size = c_out_g * cols.shape[1]
    if 1024 < size <= 65536 and columns <= 8 * size:
        # A small dW over a short reduction: (cols @ gy.T).T runs 1.35x faster (LeNet's conv2,
        # 16 x 150 over 6400 columns: 0.31 ms against 0.42 ms, one thread, measured here). Not
        # over a long one: VGG's conv1_1 (64 x 27 over 50176) takes 29.6 ms that way against
        # 10.8 ms; LeNet's conv1 (6 x 75) and VGG's conv1_2 (64 x 576) measured the same.
        return torch.matmul(cols, gy.transpose(1, 2)).transpose(1, 2).reshape(shape)
    return torch.matmul(gy, cols.transpose(1, 2)).view(shape)


def _weight_taps(weight, geo: ConvGeometry):
    """The rows of W.T for `_grad_input`'s GEMMs, a kernel row of taps at a time.

    Shapes: (C_out, C_in/g, *kernel) -> (K / per_gemm, g, per_gemm * C_in/g, C_out/g). A row of
    taps per GEMM with few channels: LeNet's conv2 (6 <- 16 channels, 6400 columns) takes
    0.22 ms in 5 GEMMs against 0.36 ms in 25 (one thread, measured here); torch's matmul has
    more fixed cost per call than OpenBLAS's. One tap per GEMM with many (VGG16), as before.
    """
    c_out, c_in_g = weight.shape[:2]
    # taps per GEMM: with many channels each tap's GEMM is large, its fixed cost small
    g, per_gemm = geo.groups, geo.kernel[-1] if c_in_g < 32 else 1
    # (C_out, C_in/g, *kernel) -> (g, C_out/g, C_in/g, K) -> (K, g, C_in/g, C_out/g)
    taps = math.prod(geo.kernel)  # explicit sizes, no -1: C_in/g may be 0 (in_channels=0)
    w_t = weight.reshape(g, c_out // g, c_in_g, taps).permute(3, 0, 2, 1)
    rows = taps // per_gemm
    # (K / per, per, g, C_in/g, C_out/g) -> (K / per, g, per * C_in/g, C_out/g): one copy
    w_t = w_t.reshape(rows, per_gemm, g, c_in_g, c_out // g).transpose(1, 2)
    return w_t.reshape(rows, g, per_gemm * c_in_g, c_out // g)


def _grad_input(w_t, gy, geo: ConvGeometry, grad_x) -> None:
    """grad_x: dcols = W.T @ gy a kernel row of taps at a time, each tap added back in place.

    Shapes: w_t from `_weight_taps`, gy (g, C_out/g, n * P) -> grad_x (n, C_in, *spatial),
    written in place. The extra memory stays at a kernel row's (C_in, n * P) blocks instead of
    a second im2col-sized matrix.
    """
    (n, c_in, *spatial), out, batch_last = grad_x.shape, geo.out, geo.batch_last
    g, c_in_g = geo.groups, c_in // geo.groups
    if grad_x.numel() == 0:  # in_channels=0 or an empty batch: nothing to add back
        return
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, geo.padding))
    per_gemm = w_t.shape[2] // c_in_g  # taps per GEMM
    grad_p = gy.new_zeros((g, c_in_g, *cols_dims(n, padded, batch_last)))
    block = gy.new_empty((g, per_gemm, c_in_g, *cols_dims(n, out, batch_last)))
    block_2d = block.view(g, per_gemm * c_in_g, gy.shape[2])  # the GEMM's view of it
    for index, tap in enumerate(product(*map(range, geo.kernel))):  # row-major, as cols' rows
        if index % per_gemm == 0:
            torch.matmul(w_t[index // per_gemm], gy, out=block_2d)
        window = tuple(
            slice(k * dl, k * dl + (o - 1) * s + 1, s)
            for k, dl, o, s in zip(tap, geo.dilation, out, geo.stride)
        )
        at = (..., *window, slice(None)) if batch_last else (..., *window)
        grad_p[at] += block[:, index % per_gemm]
    grad_p = grad_p.view(c_in, *grad_p.shape[2:])  # (C_in, <padded columns>)
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
