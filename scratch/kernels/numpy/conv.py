"""Convolution kernels in any number of spatial dims (NumPy backend).

im2col: `cols` has one row per (input channel, kernel tap) and one column per (batch element,
output position), (C_in * prod(kernel), N * prod(out)), built from a strided window view by ONE
contiguous copy. Every product is then one BLAS GEMM per group:

    forward      y      = W   @ cols
    grad_weight  dW     = gy  @ cols.T      (one GEMM over all N * prod(out) columns)
    grad_x       dcols  = W.T @ gy          (tap by tap, each added back by one strided add)

Columns come in one of two orders, picked by `_batch_last` from the shape. NumPy pays per
innermost run, so the copies and the strided adds want long runs:
  (N, *out)  batch first: runs are output rows; with groups=1 the forward GEMM writes y in
             place. Large images.
  (*out, N)  batch last: runs are whole rows times N, at the price of transposing x, y, grad_y
             and grad_x. Small feature maps (LeNet's 10x10, VGG's last 14x14) in big batches.
Other shape dispatches (each measured with OpenBLAS, one thread) are commented where they are.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import NamedTuple

import numpy as np

from scratch.kernels.numpy._window import window_view
from scratch.kernels.windows import conv_out_size, pad_index

__all__ = ["conv_forward", "conv_backward"]

Pads = tuple[tuple[int, int], ...]


class ConvCache(NamedTuple):
    cols: np.ndarray  # (C_in * prod(kernel), N * prod(out)), rows (channel, tap)
    weight: np.ndarray  # (C_out, C_in / groups, *kernel)
    x_shape: tuple[int, ...]  # (N, C_in, *spatial)
    out: tuple[int, ...]  # output spatial sizes
    stride: tuple[int, ...]
    padding: Pads  # (lo, hi) per spatial dim
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    has_bias: bool
    batch_last: bool  # column order of cols: (*out, N) if True, else (N, *out)


def conv_forward(x, weight, bias, *, stride, padding, dilation, groups, padding_mode):
    """N-d convolution (cross-correlation), as `torch.nn.functional.conv{1,2,3}d` / nn.Conv*d.

    Shapes: x (N, C_in, *spatial), weight (C_out, C_in / groups, *kernel), bias (C_out,) or None
    -> y (N, C_out, *out), out per torch's formula on the padded input. padding_mode 'zeros',
    'reflect', 'replicate' or 'circular' pads as `F.pad(mode=...)` does before convolving.
    """
    n, c_out, kernel = x.shape[0], weight.shape[0], weight.shape[2:]
    out = tuple(
        conv_out_size(size, k, s, lo, hi, dl)
        for size, k, s, (lo, hi), dl in zip(x.shape[2:], kernel, stride, padding, dilation)
    )
    batch_last = _batch_last(n, out, stride)
    xp = _pad(x, padding, padding_mode, batch_last)  # (N, C_in, *padded)
    cols = _im2col(xp, kernel, stride, dilation, out, batch_last)
    y = _forward_gemm(cols, weight, bias, groups, (n, math.prod(out)), batch_last)
    cache = ConvCache(
        cols, weight, x.shape, out, tuple(stride), tuple(padding), tuple(dilation), groups,
        padding_mode, bias is not None, batch_last,
    )  # fmt: skip
    return y.reshape(n, c_out, *out), cache


def conv_backward(cache: ConvCache, grad_y, needs):
    """Gradients of `conv_forward` w.r.t. (x, weight, bias); None where not needed or absent.

    Shapes: grad_y (N, C_out, *out) -> grad_x (N, C_in, *spatial), grad_weight like weight,
    grad_bias (C_out,).
    """
    c_out, g = grad_y.shape[1], cache.groups
    need_bias = cache.has_bias and needs[2]
    if not (needs[0] or needs[1]):
        return None, None, grad_y.sum(axis=(0, *range(2, grad_y.ndim))) if need_bias else None
    # (N, C_out, *out) -> (C_out, <columns>) -> (g, C_out/g, N * P): the column order of cols
    columns = grad_y.shape[0] * math.prod(cache.out)  # N * P
    gy = np.ascontiguousarray(_from_batch_channel(grad_y, cache.batch_last))
    grad_bias = gy.reshape(c_out, columns).sum(axis=1) if need_bias else None
    gy = gy.reshape(g, c_out // g, columns)
    grad_weight = _grad_weight(cache, gy) if needs[1] else None
    grad_x = _grad_input(cache, gy) if needs[0] else None
    return grad_x, grad_weight, grad_bias


def _forward_gemm(cols, weight, bias, groups: int, batch: tuple[int, int], batch_last: bool):
    """y = W @ cols + b per group. Shapes: cols (C_in * K, <columns>) -> y (N, C_out, P)."""
    (n, positions), c_out = batch, weight.shape[0]
    w = weight.reshape(groups, c_out // groups, -1)  # (g, C_out/g, C_in/g * K)
    if groups == 1 and not batch_last:
        # per batch element a strided (C_in * K, P) block of cols: y written in place, no copy
        y = np.empty((n, c_out, positions), dtype=cols.dtype)
        np.matmul(w[0], cols.reshape(w.shape[2], n, positions).transpose(1, 0, 2), out=y)
        if bias is not None:
            y += bias[:, None]
        return y
    y_cols = np.matmul(w, cols.reshape(groups, w.shape[2], n * positions))  # (g, C_out/g, N * P)
    columns = _columns(n, (positions,), batch_last)
    y_cols = _to_batch_channel(y_cols.reshape(c_out, *columns), batch_last)  # (N, C_out, P)
    y = np.empty(y_cols.shape, dtype=cols.dtype)
    if bias is None:
        np.copyto(y, y_cols)
    else:  # the reordering copy adds the bias on the way
        np.add(y_cols, bias[:, None], out=y)
    return y


def _grad_weight(cache: ConvCache, gy):
    """dW = gy @ cols.T as ONE GEMM over the N * P columns. Shapes: gy (g, C_out/g, N * P)."""
    g, c_out_g, columns = gy.shape
    cols = cache.cols.reshape(g, cache.cols.shape[0] // g, columns)  # (g, C_in/g * K, N * P)
    if c_out_g * cols.shape[1] > 65536:
        return np.matmul(gy, cols.transpose(0, 2, 1)).reshape(cache.weight.shape)
    # A small dW: OpenBLAS is up to 1.6x faster at (cols @ gy.T).T, the transpose is cheap.
    n, positions = cache.x_shape[0], math.prod(cache.out)
    if g == 1 and c_out_g * cols.shape[1] <= 1024 and not cache.batch_last and positions >= 256:
        # A tiny dW over a long reduction (LeNet's first layer) runs 2-3x faster as one small
        # GEMM per batch element, summed.
        # cols (g, C_in/g * K, N, P) -> (g, N, C_in/g * K, P), gy -> (g, N, P, C_out/g)
        per_n = cols.reshape(g, cols.shape[1], n, positions).transpose(0, 2, 1, 3)
        gy_t = gy.reshape(g, c_out_g, n, positions).transpose(0, 2, 3, 1)
        grad_t = np.matmul(per_n, gy_t).sum(axis=1)  # (g, C_in/g * K, C_out/g)
    else:
        grad_t = np.matmul(cols, gy.transpose(0, 2, 1))  # (g, C_in/g * K, C_out/g)
    return np.ascontiguousarray(grad_t.transpose(0, 2, 1)).reshape(cache.weight.shape)


def _grad_input(cache: ConvCache, gy):
    """grad_x: dcols = W.T @ gy a few kernel taps at a time, each tap added back in place.

    Shapes: gy (g, C_out/g, N * P) -> (N, C_in, *spatial). Going a kernel row (many channels)
    or a single tap (few channels, where OpenBLAS prefers the smaller GEMM) at a time keeps
    the extra memory far below a second im2col-sized matrix.
    """
    n, c_in, *spatial = cache.x_shape
    kernel, out, batch_last = cache.weight.shape[2:], cache.out, cache.batch_last
    g, c_out_g, c_in_g = cache.groups, gy.shape[1], c_in // cache.groups
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, cache.padding))
    per_gemm = kernel[-1] if c_in_g >= 32 else 1  # taps per GEMM
    # (C_out, C_in/g, *kernel) -> (g, C_out/g, C_in/g, K) -> (g, K / per_gemm, per_gemm * C_in/g,
    # C_out/g): the rows of W.T for per_gemm consecutive taps
    w_t = cache.weight.reshape(g, c_out_g, c_in_g, -1).transpose(0, 3, 2, 1)
    w_t = w_t.reshape(g, -1, per_gemm * c_in_g, c_out_g)
    grad_p = np.zeros((g, c_in_g, *_columns(n, padded, batch_last)), dtype=gy.dtype)
    block = np.empty((g, per_gemm, c_in_g, *_columns(n, out, batch_last)), dtype=gy.dtype)
    block_2d = block.reshape(g, per_gemm * c_in_g, gy.shape[2])  # the GEMM's view of it
    for index, tap in enumerate(np.ndindex(*kernel)):
        if index % per_gemm == 0 and c_out_g == 1:  # depthwise: W.T @ gy scales gy's rows
            np.multiply(w_t[:, index // per_gemm], gy, out=block_2d)
        elif index % per_gemm == 0:
            np.matmul(w_t[:, index // per_gemm], gy, out=block_2d)
        window = tuple(
            slice(k * dl, k * dl + (o - 1) * s + 1, s)
            for k, dl, o, s in zip(tap, cache.dilation, out, cache.stride)
        )
        at = (..., *window, slice(None)) if batch_last else (..., *window)
        grad_p[at] += block[:, index % per_gemm]
    grad_p = grad_p.reshape(c_in, *grad_p.shape[2:])  # (C_in, <padded columns>)
    first = 1 if batch_last else 2  # the first spatial axis of grad_p
    grad_p = _unpad(grad_p, first, spatial, cache.padding, cache.padding_mode)
    return np.ascontiguousarray(_to_batch_channel(grad_p, batch_last))


def _batch_last(n: int, out, stride) -> bool:
    """Columns (*out, N) when output rows are short (numpy's per-run cost) and the batch long."""
    return out[-1] < 16 and n >= 8 and n * (out[-1] if stride[-1] == 1 else 1) >= 64


def _columns(n: int, spatial, batch_last: bool) -> tuple[int, ...]:
    return (*spatial, n) if batch_last else (n, *spatial)


def _from_batch_channel(a, batch_last: bool):
    """View (N, C, *spatial) -> (C, *_columns)."""
    spatial = range(2, a.ndim)
    return a.transpose(1, *spatial, 0) if batch_last else a.transpose(1, 0, *spatial)


def _to_batch_channel(a, batch_last: bool):
    """View (C, *_columns) -> (N, C, *spatial): the inverse of `_from_batch_channel`."""
    d = a.ndim - 2
    return a.transpose(d + 1, 0, *range(1, 1 + d)) if batch_last else a.swapaxes(0, 1)


def _im2col(xp, kernel, stride, dilation, out, batch_last: bool):
    """(N, C, *padded) -> cols (C * prod(kernel), N * prod(out)), rows ordered (channel, tap)."""
    d = len(kernel)
    windows = window_view(xp, kernel, stride, dilation, out)  # (N, C, *out, *kernel)
    tail = (*range(2, 2 + d), 0) if batch_last else (0, *range(2, 2 + d))
    order = (1, *range(2 + d, 2 + 2 * d), *tail)  # -> (C, *kernel, <columns>)
    rows, columns = xp.shape[1] * math.prod(kernel), xp.shape[0] * math.prod(out)
    return np.ascontiguousarray(windows.transpose(order)).reshape(rows, columns)


def _pad(x, padding: Pads, mode: str, batch_last: bool):
    """(N, C, *spatial) -> (N, C, *padded), as `F.pad(x, padding, mode)` ('zeros' = constant 0).

    With batch_last the result is a view of a (C, *padded, N) buffer, so that im2col's copy
    reads (and writes) runs of N * out[-1].
    """
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(x.shape[2:], padding))
    if mode != "zeros":
        for axis, (size, (lo, hi)) in enumerate(zip(x.shape[2:], padding), start=2):
            if lo or hi:
                x = np.take(x, pad_index(size, lo, hi, mode), axis=axis)  # one gather per dim
        padding = tuple((0, 0) for _ in padding)  # x is padded now
    zeros = any(lo or hi for lo, hi in padding)
    if not (zeros or batch_last):
        return x
    shape = (x.shape[1], *_columns(x.shape[0], padded, batch_last))
    buffer = np.zeros(shape, x.dtype) if zeros else np.empty(shape, x.dtype)
    xp = _to_batch_channel(buffer, batch_last)  # (N, C, *padded) view
    xp[(..., *_interior(x.shape[2:], padding))] = x
    return xp


def _unpad(grad_p, first: int, spatial, padding: Pads, mode: str):
    """Adjoint of `_pad` on the spatial axes first, first + 1, ...: fold padded back to spatial.

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
        padded = np.moveaxis(grad_p, axis, 0)  # the folded axis first: (size + lo + hi, ...)
        start, stop = max(lo, 0), min(lo + size, len(source))  # j gathered from j - lo
        folded = np.zeros((size, *padded.shape[1:]), dtype=padded.dtype)
        folded[start - lo : stop - lo] = padded[start:stop]
        for j in chain(range(start), range(stop, len(source))):  # the padding positions
            folded[source[j]] += padded[j]
        grad_p = np.moveaxis(folded, 0, axis)
    return grad_p


def _interior(spatial, padding: Pads) -> tuple[slice, ...]:
    return tuple(slice(lo, lo + size) for size, (lo, _) in zip(spatial, padding))
