"""Convolution kernels in any number of spatial dims (NumPy backend).

im2col: `cols` has one row per (input channel, kernel tap) and one column per (batch element,
output position), (C_in * prod(kernel), N * prod(out)), built from a strided window view by ONE
contiguous copy. Every product is then one BLAS GEMM per group:

    forward      y      = W   @ cols
    grad_weight  dW     = gy  @ cols.T      (one GEMM over all N * prod(out) columns)
    grad_x       dcols  = W.T @ gy          (a few taps at a time, or whole into rebuilt cols,
                                             each tap added back by one strided add)

Columns come in one of two orders, picked by `_batch_last` from the shape. NumPy pays per
innermost run, so the copies and the strided adds want long runs:
  (N, *out)  batch first: runs are output rows; with groups=1 the forward GEMM writes y in
             place. Large images.
  (*out, N)  batch last: runs are whole rows times N, at the price of transposing x, y, grad_y
             and grad_x. Small feature maps (LeNet's 10x10, VGG's last 14x14) in big batches.

Memory: im2col multiplies the input by prod(kernel) (VGG16's 13 convs at batch 8: 2.6 GB of
cols, against torch's 0.8 GB peak for the whole model), so it runs in blocks of at most
`conv_plan.BLOCK_BYTES` of cols (or twice the weight's bytes), built one after another into one
reused buffer: whole batch elements, or rows of one element's output where one element alone is
too big (VGG's 224x224 layers). Each block pads only the input rows it reads. A layer of one
block keeps its cols for backward; with several the cache keeps x, which autograd keeps alive
anyway, and backward rebuilds each block's cols, then (dW taken) writes the block's dcols over
them, so no copy of W.T or tap buffer is held beside them. A large block with a small weight
keeps x too, and backward takes dW tap by tap from x's windows (`conv_plan.grad_weight_by_taps`).
grad_x's taps add straight into grad_x (zero padding, batch first: the taps that land in the padding
are clipped off), else into a buffer. Stride-1 convs with few output channels build their cols
over the full padded grid instead, in long contiguous rows (`_grid`, chosen by
`conv_plan.full_grid`), and keep x too.
Other shape dispatches (each measured with OpenBLAS, one thread) are commented where they are.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from scratch.kernels.conv_plan import (
    ConvGeometry,
    Grid,
    adds_into_grad_x,
    block_columns,
    block_positions,
    block_slab,
    cols_dims,
    conv_blocks,
    conv_geometry,
    forward_blocks,
    full_grid,
    per_element_grad_weight,
    tap_targets,
)
from scratch.kernels.numpy._grid import forward_grid, grad_weight_grid
from scratch.kernels.numpy._layout import (
    from_batch_channel,
    pad,
    to_batch_channel,
    unpad,
)
from scratch.kernels.numpy._window import window_view

__all__ = ["conv_forward", "conv_backward"]


class ConvCache(NamedTuple):
    x: np.ndarray | None  # the input (N, C_in, *spatial) unless one block's cols are kept
    cols: np.ndarray | None  # one block: (C_in * prod(kernel), N * prod(out)), else None
    weight: np.ndarray  # (C_out, C_in / groups, *kernel)
    geometry: ConvGeometry
    has_bias: bool
    grid: Grid | None = None  # the full-grid plan the forward ran (dW from it too), else None


def conv_forward(
    x, weight, bias, *, stride, padding, dilation, groups, padding_mode, block_bytes=None
):
    """N-d convolution (cross-correlation).

    As `torch.nn.functional.conv1d`, `conv2d` and `conv3d` (nn.Conv1d/2d/3d).

    Shapes: x (N, C_in, *spatial), weight (C_out, C_in / groups, *kernel), bias (C_out,) or None
    -> y (N, C_out, *out), out per torch's formula on the padded input. padding_mode 'zeros',
    'reflect', 'replicate' or 'circular' pads as `F.pad(mode=...)` does before convolving.
    """
    geo = conv_geometry(
        x.shape,
        x.itemsize,
        weight.shape,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        block_bytes,
    )
    n, c_out = x.shape[0], weight.shape[0]
    plan = full_grid(geo, c_out, x.itemsize)
    if plan is not None:  # few output channels at stride 1
        y = forward_grid(pad(x, geo.padding, geo.padding_mode, False), weight, bias, plan, geo)
        return y, ConvCache(x, None, weight, geo, bias is not None, plan)
    y = np.empty((n, c_out, math.prod(geo.out)), dtype=x.dtype)
    fwd = forward_blocks(geo, x.itemsize, weight.shape)  # geo, or smaller for dW by taps
    blocks, buffer = conv_blocks(fwd), _cols_buffer(fwd, x.dtype)  # one buffer for every block
    for batch, rows in blocks:
        cols = _im2col(x[batch], fwd, buffer, rows)
        _forward_gemm(cols, weight, bias, fwd, y[batch, :, block_positions(fwd, rows)])
    # One block: backward reuses its cols. Several, or dW by taps: keep x (autograd keeps it
    # alive anyway) and rebuild each block's cols in backward (or each tap's window), so no
    # layer holds more than a block of cols.
    one = len(blocks) == 1 and not geo.taps
    cache = ConvCache(None if one else x, cols if one else None, weight, geo, bias is not None)
    return y.reshape(n, c_out, *geo.out), cache


def conv_backward(cache: ConvCache, grad_y, needs):
    """Gradients of `conv_forward` w.r.t. (x, weight, bias); None where not needed or absent.

    Shapes: grad_y (N, C_out, *out) -> grad_x (N, C_in, *spatial), grad_weight like weight,
    grad_bias (C_out,).
    """
    geo, weight = cache.geometry, cache.weight
    (n, c_out), g, dtype = grad_y.shape[:2], geo.groups, grad_y.dtype
    need_bias = cache.has_bias and needs[2]
    grad_weight = None  # over the full grid, else the sum of every block's dW (or by taps)
    # The full grid's garbage outputs have zero gradient, times the input they read: a NaN or
    # inf there would spread NaN into dW (0 * inf), so only for a finite input (the test: 0.02
    # ms on LeNet's conv1 input, measured here); else im2col's blocks, rebuilt from x.
    grid = needs[1] and cache.grid is not None and bool(np.isfinite(cache.x).all())
    if grid:  # grad_x and grad_b below
        xp = pad(cache.x, geo.padding, geo.padding_mode, False)
        grad_weight = grad_weight_grid(xp, grad_y, cache.grid, geo, weight.shape)
    from_cols = needs[1] and not grid and not geo.taps  # dW from cols, by block
    by_taps = needs[1] and not grid and geo.taps  # dW from x's windows, tap by tap
    if not (needs[0] or from_cols or by_taps):  # nothing left for the blocks below
        grad_bias = grad_y.sum(axis=(0, *range(2, grad_y.ndim))) if need_bias else None
        return None, grad_weight, grad_bias
    grad_y = grad_y.reshape(n, c_out, math.prod(geo.out))  # (N, C_out, P)
    # the taps add into grad_x itself (zeros), or into accumulators each copied into its whole
    # block of grad_x
    fresh = np.zeros if adds_into_grad_x(geo) else np.empty
    grad_x = fresh(geo.x_shape, dtype) if needs[0] else None
    grad_bias = np.zeros(c_out, dtype) if need_bias else None
    rebuild = from_cols and cache.cols is None
    buffer = _cols_buffer(geo, dtype) if rebuild else None
    # rebuilt cols, once dW has read them, take the block's dcols in one GEMM (no W.T copy, no
    # tap buffer); kept ones are the cache's, so their taps' dcols come a few at a time
    w_t = _weight_taps(weight, geo) if needs[0] and not rebuild else None
    for batch, rows in conv_blocks(geo):
        # cols first: the padded input rows they are copied from are freed before gy is made
        cols = _im2col(cache.x[batch], geo, buffer, rows) if rebuild else cache.cols
        # (n, C_out, P) -> (C_out, <columns>) -> (g, C_out/g, n * P): the column order of cols
        gy = from_batch_channel(grad_y[batch, :, block_positions(geo, rows)], geo.batch_last)
        gy = np.ascontiguousarray(gy)
        if need_bias:
            grad_bias += gy.reshape(c_out, -1).sum(axis=1)
        gy = gy.reshape(g, c_out // g, -1)
        if from_cols:
            grad_weight = _grad_weight(cols, gy, geo, weight.shape, grad_weight)
        elif by_taps:  # one block: the whole batch
            grad_weight = _grad_weight_taps(cache.x, gy, geo, weight.shape)
        if needs[0] and rows.start == 0:  # the block's first rows: where their taps add
            acc = _accumulator(geo, grad_x[batch])
        if needs[0]:
            if rebuild:
                taps = _dcols_taps(weight, gy, cols, geo, rows)
            else:
                taps = _gemm_taps(w_t, gy, geo, rows)
            _grad_input(taps, geo, acc, rows)
        if needs[0] and rows.stop == geo.out[0] and not adds_into_grad_x(geo):
            _fold_into(acc, geo, grad_x[batch])  # the block's last rows: padding folded back
    return grad_x, grad_weight, grad_bias


def _forward_gemm(cols, weight, bias, geo: ConvGeometry, y) -> None:
    """y = W @ cols + b per group, written into y.

    Shapes: cols (C_in * K, <columns of n>), y (n, C_out, P).
    """
    (n, c_out, positions), g = y.shape, geo.groups
    # explicit sizes, no -1: C_in/g * K may be 0 (in_channels=0)
    w = weight.reshape(g, c_out // g, math.prod(weight.shape[1:]))  # (g, C_out/g, C_in/g * K)
    if g == 1 and not geo.batch_last:
        # per batch element a strided (C_in * K, P) block of cols: y written in place, no copy
        np.matmul(w[0], cols.reshape(w.shape[2], n, positions).transpose(1, 0, 2), out=y)
        if bias is not None:
            y += bias[:, None]
        return
    y_cols = np.matmul(w, cols.reshape(g, w.shape[2], n * positions))  # (g, C_out/g, n * P)
    columns = cols_dims(n, (positions,), geo.batch_last)
    y_cols = to_batch_channel(y_cols.reshape(c_out, *columns), geo.batch_last)  # (n, C_out, P)
    if bias is None:
        np.copyto(y, y_cols)
    else:  # the reordering copy adds the bias on the way
        np.add(y_cols, bias[:, None], out=y)


def _grad_weight(cols, gy, geo: ConvGeometry, shape, total=None):
    """dW = gy @ cols.T as ONE GEMM over the n * P columns, added into the dW of the blocks
    before (`total`, updated in place) if any. Shapes: gy (g, C_out/g, n * P)."""
    g, c_out_g, columns = gy.shape
    cols = cols.reshape(g, cols.shape[0] // g, columns)  # (g, C_in/g * K, n * P)
    if c_out_g * cols.shape[1] > 65536 and total is not None and 2 * total.nbytes >= cols.nbytes:
        # A dW of at least half a block (blocks sized by the weight) added into the total a
        # quarter of cols' rows at a time: NumPy's GEMM cannot add into its output, and a
        # second whole dW would sit beside the total. VGG16's conv5_1 at batch 8 (9 MiB of dW
        # over 2 blocks): the step's peak 41.5 -> 34.7 MiB, its time unchanged (one thread).
        grad, rows = total.reshape(g, c_out_g, cols.shape[1]), cols.shape[1]
        step = max(1, -(-rows // 4))
        for r in range(0, rows, step):
            grad[:, :, r : r + step] += np.matmul(gy, cols[:, r : r + step].transpose(0, 2, 1))
        return total
    if c_out_g * cols.shape[1] > 65536:
        return _summed(np.matmul(gy, cols.transpose(0, 2, 1)).reshape(shape), total)
    # A small dW: OpenBLAS is up to 1.6x faster at (cols @ gy.T).T, the transpose is cheap.
    if per_element_grad_weight(geo, c_out_g * cols.shape[1]):  # blocks of whole elements
        positions = math.prod(geo.out)
        n = columns // positions
        # cols (g, C_in/g * K, n, P) -> (g, n, C_in/g * K, P), gy -> (g, n, P, C_out/g)
        per_n = cols.reshape(g, cols.shape[1], n, positions).transpose(0, 2, 1, 3)
        gy_t = gy.reshape(g, c_out_g, n, positions).transpose(0, 2, 3, 1)
        grad_t = np.matmul(per_n, gy_t).sum(axis=1)  # (g, C_in/g * K, C_out/g)
    else:
        grad_t = np.matmul(cols, gy.transpose(0, 2, 1))  # (g, C_in/g * K, C_out/g)
    return _summed(np.ascontiguousarray(grad_t.transpose(0, 2, 1)).reshape(shape), total)


def _summed(grad, total):
    """A block's dW `grad` plus the blocks' before (`total`), into grad; grad if none."""
    return grad if total is None else np.add(total, grad, out=grad)


def _grad_weight_taps(x, gy, geo: ConvGeometry, shape):
    """dW tap by tap (`conv_plan.grad_weight_by_taps`): dW[..., t] = gy @ window_t.T, each of
    x's windows for tap t copied once into one (C_in, <columns>) buffer, in cols' column order.

    Shapes: x (N, C_in, *spatial), gy (g, C_out/g, <columns>) -> like weight.
    """
    d, g, c_in = len(geo.kernel), geo.groups, x.shape[1]
    xp = pad(x, geo.padding, geo.padding_mode, geo.batch_last)
    windows = window_view(xp, geo.kernel, geo.stride, geo.dilation, geo.out)  # (n, C, *out, *k)
    tail = (*range(2, 2 + d), 0) if geo.batch_last else (0, *range(2, 2 + d))
    windows = windows.transpose(1, *tail, *range(2 + d, 2 + 2 * d))  # (C, <columns>, *kernel)
    window = np.empty(windows.shape[: 2 + d], x.dtype)  # one tap's (C, <columns>)
    grad = np.empty((g, gy.shape[1], c_in // g, math.prod(geo.kernel)), x.dtype)
    for t, tap in enumerate(itertools.product(*map(range, geo.kernel))):  # row-major, as W's
        np.copyto(window, windows[(..., *tap)])
        grad[..., t] = np.matmul(gy, window.reshape(g, c_in // g, -1).transpose(0, 2, 1))
    return grad.reshape(shape)


def _weight_taps(weight, geo: ConvGeometry):
    """The rows of W.T for `_grad_input`'s GEMMs, a few kernel taps at a time.

    Shapes: (C_out, C_in/g, *kernel) -> (g, K / per_gemm, per_gemm * C_in/g, C_out/g). A kernel
    row per GEMM with many channels, a single tap with few (OpenBLAS prefers the smaller GEMM).
    """
    (c_out, c_in_g), g = weight.shape[:2], geo.groups
    per_gemm = geo.kernel[-1] if c_in_g >= 32 else 1  # taps per GEMM
    taps = math.prod(geo.kernel)  # explicit sizes, no -1: C_in/g may be 0
    # (C_out, C_in/g, *kernel) -> (g, C_out/g, K, C_in/g): one copy, each output channel's
    # (C_in/g, K) transposed within its own few KiB. Each GEMM's W.T is then a transposed
    # block of it, which BLAS reads as it is: VGG16's 512 x 512 x 3x3 in 0.9 ms against 8.7 ms
    # for W.T itself copied in tap order, the GEMMs as fast (NumPy, one thread, measured here).
    w = weight.reshape(g, c_out // g, c_in_g, taps).transpose(0, 1, 3, 2).copy()
    # -> (g, K / per_gemm, per_gemm * C_in/g, C_out/g): views
    return w.reshape(g, c_out // g, taps // per_gemm, per_gemm * c_in_g).transpose(0, 2, 3, 1)


def _accumulator(geo: ConvGeometry, grad_x) -> np.ndarray:
    """(g, C_in/g, <columns>) where `_grad_input` adds a block's taps: a view of grad_x (n,
    C_in, *spatial) itself, or zeros, unpadded or padded, for `_fold_into` (adds_into_grad_x)."""
    (n, c_in, *spatial), g = grad_x.shape, geo.groups
    if adds_into_grad_x(geo):  # (n, C_in, *spatial) -> (g, C_in/g, n, *spatial)
        return grad_x.reshape(n, g, c_in // g, *spatial).transpose(
            1, 2, 0, *range(3, 3 + len(spatial))
        )
    if geo.padding_mode != "zeros":  # folded back after: the padded input
        spatial = geo.padded
    return np.zeros((g, c_in // g, *cols_dims(n, spatial, geo.batch_last)), grad_x.dtype)


def _gemm_taps(w_t, gy, geo: ConvGeometry, rows: slice):
    """Each kernel tap's dcols (g, C_in/g, <columns>), row-major: W.T @ gy a few taps per GEMM
    into one reused buffer, so the extra memory stays at a few taps' (C_in, <columns>) blocks
    instead of a second im2col-sized matrix.

    Shapes: w_t from `_weight_taps`, gy (g, C_out/g, <columns of the block>).
    """
    g, c_out_g, c_in_g = geo.groups, gy.shape[1], geo.x_shape[1] // geo.groups
    per_gemm = w_t.shape[2] // c_in_g if c_in_g else 1  # taps per GEMM (in_channels=0: any)
    block = np.empty((g, per_gemm, c_in_g, *block_columns(geo, rows, gy.shape[2])), dtype=gy.dtype)
    block_2d = block.reshape(g, per_gemm * c_in_g, gy.shape[2])  # the GEMM's view of it
    for index in range(math.prod(geo.kernel)):
        if index % per_gemm == 0 and c_out_g == 1:  # depthwise: W.T @ gy scales gy's rows
            np.multiply(w_t[:, index // per_gemm], gy, out=block_2d)
        elif index % per_gemm == 0:
            np.matmul(w_t[:, index // per_gemm], gy, out=block_2d)
        yield block[:, index % per_gemm]


def _dcols_taps(weight, gy, cols, geo: ConvGeometry, rows: slice):
    """Each kernel tap's dcols (g, C_in/g, <columns>), row-major, from dcols = W.T @ gy as one
    GEMM per group written over `cols` (this block's, rebuilt, dW already taken from them):
    no copy of W.T and no buffer beyond the cols. VGG16's conv5_1 at batch 8: the step's peak
    50.4 -> 41.5 MiB, its time unchanged (one thread, measured here).

    Shapes: weight (C_out, C_in/g, *kernel), gy (g, C_out/g, <columns>), cols (C_in * K,
    <columns>).
    """
    (g, c_out_g, columns), taps = gy.shape, math.prod(geo.kernel)
    c_in_g = weight.shape[1]  # explicit sizes, no -1: any may be 0
    w_t = weight.reshape(g, c_out_g, c_in_g * taps).transpose(0, 2, 1)  # (g, C_in/g * K, C_out/g)
    dcols = cols.reshape(g, c_in_g * taps, columns)
    np.matmul(w_t, gy, out=dcols)
    # rows (channel, tap), as im2col's: (g, C_in/g, K, <columns>) -> (K, g, C_in/g, <columns>)
    dcols = dcols.reshape(g, c_in_g, taps, *block_columns(geo, rows, gy.shape[2]))
    return np.moveaxis(dcols, 2, 0)


def _grad_input(taps, geo: ConvGeometry, acc, rows: slice) -> None:
    """Each tap's dcols (from `_gemm_taps` or `_dcols_taps`) added into acc in place, where the
    tap's outputs read the input (`tap_targets`).

    Shapes: taps yield (g, C_in/g, <columns of the block>), acc from `_accumulator`.
    """
    tail = (slice(None),) if geo.batch_last else ()
    for tap, target in zip(taps, tap_targets(geo, rows)):
        if target is None:  # every output's tap lands in the padding
            continue
        to, of = target
        acc[(..., *to, *tail)] += tap[(slice(None), slice(None), ..., *of, *tail)]


def _fold_into(acc, geo: ConvGeometry, grad_x) -> None:
    """grad_x (n, C_in, *spatial) from `_accumulator`'s buffer: padding folded, order restored."""
    acc = acc.reshape(grad_x.shape[1], *acc.shape[2:])  # (C_in, <columns>)
    if geo.padding_mode != "zeros":
        first = 1 if geo.batch_last else 2  # the first spatial axis of acc
        acc = unpad(acc, first, grad_x.shape[2:], geo.padding, geo.padding_mode)
    np.copyto(grad_x, to_batch_channel(acc, geo.batch_last))


def _cols_buffer(geo: ConvGeometry, dtype) -> np.ndarray:
    """Flat memory for the cols of one block, (C_in * K * min(block, N) * rows * ...,)."""
    n, c_in = geo.x_shape[:2]
    rows = min(geo.rows, geo.out[0]) * math.prod(geo.out[1:])
    return np.empty(c_in * math.prod(geo.kernel) * min(geo.block, n) * rows, dtype)


def _im2col(x, geo: ConvGeometry, buffer, rows: slice):
    """(n, C, *spatial) -> cols (C * K, <columns of the block's output rows>), rows ordered
    (channel, tap), written into the front of the flat `buffer` by ONE copy from a strided
    window view of the padded rows they read."""
    d, kernel, out = len(geo.kernel), geo.kernel, (rows.stop - rows.start, *geo.out[1:])
    slab = block_slab(geo, rows)
    xp = pad(x, geo.padding, geo.padding_mode, geo.batch_last, slab)  # (n, C, *padded slab)
    windows = window_view(xp, kernel, geo.stride, geo.dilation, out)  # (n, C, *out, *kernel)
    tail = (*range(2, 2 + d), 0) if geo.batch_last else (0, *range(2, 2 + d))
    windows = windows.transpose(1, *range(2 + d, 2 + 2 * d), *tail)  # (C, *kernel, <columns>)
    cols = buffer[: windows.size].reshape(windows.shape)
    np.copyto(cols, windows)
    return cols.reshape(x.shape[1] * math.prod(kernel), x.shape[0] * math.prod(out))
