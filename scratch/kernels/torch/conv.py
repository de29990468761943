"""Convolution kernels in any number of spatial dims (torch backend: tensor ops, no autograd).

im2col as in the NumPy backend: `cols` has one row per (input channel, kernel tap) and one
column per (batch element, output position), (C_in * prod(kernel), N * prod(out)), built from a
strided window view by ONE copy; then one GEMM per group for each product:

    forward      y      = W   @ cols        (then (C_out, <columns>) -> (N, C_out, P))
    grad_weight  dW     = gy  @ cols.T      (one GEMM over all N * prod(out) columns)
    grad_x       dcols  = W.T @ gy          (a kernel row at a time, or whole into rebuilt
                                             cols, each tap added back by one strided add)

im2col runs in the NumPy backend's blocks (`conv_plan.BLOCK_BYTES` of cols at most, or twice
the weight's bytes: whole batch elements, or rows of one element), and with several blocks the
cache keeps x instead of cols (also for a large block with a small weight, whose dW backward
takes from x's windows a kernel row at a time: `conv_plan.grad_weight_by_taps`); dW
accumulates in place (baddbmm_, BLAS's beta = 1), grad_x's taps add straight into grad_x
where they can. Columns come in the NumPy backend's two orders,
batch first (N, *out) or batch last (*out, N) for small maps in big batches: torch's strided
copies and adds also pay per short run. Stride-1 convs with few output channels on the CPU
build their cols over the full padded grid instead, as the NumPy backend (`_grid`, chosen by
`conv_plan.full_grid`; where the first dim's sizes are even, two output rows a column), and
2-d ones with 9 to 64 over short rows in a big batch by row taps
(`_rows`, chosen by `conv_plan.row_taps`): im2col over the last kernel dim alone, one GEMM per
tap of the first. Runs on any device the tensors live on (CPU, CUDA, MPS).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch

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
    grid_grad_input,
    grid_input_plan,
    per_element_grad_weight,
    row_taps,
    tap_targets,
)
from scratch.kernels.torch._grid import forward_grid, grad_weight_grid, paired
from scratch.kernels.torch._layout import from_batch_channel, pad, to_batch_channel, unpad
from scratch.kernels.torch._rows import backward_rows, forward_rows
from scratch.kernels.torch._window import window_view

__all__ = ["conv_forward", "conv_backward"]


class ConvCache(NamedTuple):
    x: torch.Tensor | None  # the input (N, C_in, *spatial) unless one block's cols are kept
    cols: torch.Tensor | None  # one block: (C_in * prod(kernel), N * prod(out)), else None
    weight: torch.Tensor  # (C_out, C_in / groups, *kernel)
    geometry: ConvGeometry
    has_bias: bool
    grid: Grid | None = None  # the full-grid plan the forward ran (dW from it too), else None
    rows: bool = False  # the forward ran by row taps (`_rows`): x kept, no cols


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
    plan = full_grid(geo, c_out, x.element_size())
    if plan is not None and x.is_cpu:  # few output channels at stride 1 (see conv_backward)
        xp = pad(x, geo.padding, geo.padding_mode, False)
        pairs = paired(geo)
        if pairs > 1 and not bool(x.sum().isfinite()):  # see paired
            pairs = 1
        y = forward_grid(xp, weight, bias, plan, geo, pairs)
        return y, ConvCache(x, None, weight, geo, bias is not None, plan)
    if x.is_cpu and row_taps(geo, c_out, x.element_size()):  # 2-d, short rows, big batch
        y = forward_rows(x, weight, bias, geo)
        return y, ConvCache(x, None, weight, geo, bias is not None, rows=True)
    y = x.new_empty((n, c_out, math.prod(geo.out)))
    fwd = forward_blocks(geo, x.element_size(), weight.shape)  # smaller for dW by taps
    blocks, buffer = conv_blocks(fwd), _cols_buffer(fwd, x)  # one buffer for every block
    for batch, rows in blocks:
        cols = _im2col(x[batch], fwd, buffer, rows)
        _forward_gemm(cols, weight, bias, fwd, y[batch, :, block_positions(fwd, rows)])
    # One block: backward reuses its cols. Several, or dW by taps: keep x (autograd keeps it
    # alive anyway) and rebuild each block's cols in backward (or each tap's window), so no
    # layer holds more than a block of cols.
    one = len(blocks) == 1 and not geo.taps
    cache = ConvCache(None if one else x, cols if one else None, weight, geo, bias is not None)
    return y.view(n, c_out, *geo.out), cache


def conv_backward(cache: ConvCache, grad_y, needs):
    """Gradients of `conv_forward` w.r.t. (x, weight, bias); None where not needed or absent.

    Shapes: grad_y (N, C_out, *out) -> grad_x (N, C_in, *spatial), grad_weight like weight,
    grad_bias (C_out,).
    """
    geo, weight = cache.geometry, cache.weight
    if cache.rows:
        return backward_rows(cache.x, weight, grad_y, geo, needs, cache.has_bias)
    (n, c_out), g = grad_y.shape[:2], geo.groups
    need_bias = cache.has_bias and needs[2]
    # The full grid's garbage outputs have zero gradient, times the input they read: a NaN or
    # inf there would spread NaN into dW (0 * inf), so only for a finite input (on the CPU
    # alone, where asking costs no wait for a device); else im2col's blocks, rebuilt from x. A
    # finite sum means no NaN or inf (an overflow only costs the faster path): 0.03 ms on
    # LeNet's conv1 input against 0.46 ms for isfinite().all() (measured here).
    grid = needs[1] and cache.grid is not None and bool(cache.x.sum().isfinite())
    # grad_x over the full grid too where its GEMMs are small (on the CPU); its zeros times a
    # NaN or inf in W would spread NaN, so only for a finite weight
    grid_x = needs[0] and grid_grad_input(geo, c_out) and weight.is_cpu
    grid_x = grid_x and bool(weight.sum().isfinite())
    from_cols = needs[1] and not grid and not geo.taps  # dW from cols, by block
    by_taps = needs[1] and not grid and geo.taps  # dW from x's windows, by kernel row
    if from_cols:  # accumulated in place below
        grad_weight = grad_y.new_zeros(weight.shape)
    elif grid:  # grad_x and grad_b below
        xp = pad(cache.x, geo.padding, geo.padding_mode, False)
        grad_weight = grad_weight_grid(xp, grad_y, cache.grid, geo, weight.shape)
    elif by_taps:  # one block, the whole batch: first, so that no gy below is held beside it
        grad_weight = _grad_weight_taps(cache.x, grad_y, geo, weight.shape)
    else:
        grad_weight = None
    if not (needs[0] or from_cols):  # nothing left for the blocks below
        grad_bias = grad_y.sum(dim=(0, *range(2, grad_y.dim()))) if need_bias else None
        return None, grad_weight, grad_bias
    grad_y = grad_y.reshape(n, c_out, math.prod(geo.out))  # (N, C_out, P)
    # the taps add into grad_x itself, or into accumulators each folded into its whole block of
    # grad_x (whose pages are then first touched: not held beside the accumulator's GEMMs)
    fresh = grad_y.new_zeros if adds_into_grad_x(geo) else grad_y.new_empty
    grad_x = fresh(geo.x_shape) if needs[0] else None
    grad_bias = grad_y.new_zeros(c_out) if need_bias else None
    rebuild = from_cols and cache.cols is None
    buffer = _cols_buffer(geo, grad_y) if rebuild else None
    # rebuilt cols, once dW has read them, take the block's dcols in one GEMM (no W.T copy, no
    # tap buffer); kept ones are the cache's, so their taps' dcols come a kernel row at a time
    w_t = _weight_taps(weight, geo) if needs[0] and not (grid_x or rebuild) else None
    for batch, rows in conv_blocks(geo):
        if grid_x:  # whole elements: gy on the padded grid, for grad_x and the bias
            full = _on_grid(grad_y[batch], geo)
            _grad_input_grid(weight, full, geo, grad_x[batch])
            if need_bias:
                grad_bias += full.sum(dim=1)
            if not from_cols:  # nothing left that needs gy
                continue
        # cols first: the padded input rows they are copied from are freed before gy is made
        cols = _im2col(cache.x[batch], geo, buffer, rows) if rebuild else cache.cols
        # (n, C_out, P) -> (C_out, <columns>) -> (g, C_out/g, n * P): the column order of cols
        gy = from_batch_channel(grad_y[batch, :, block_positions(geo, rows)], geo.batch_last)
        gy = gy.contiguous()
        if need_bias and not grid_x:
            grad_bias += gy.view(c_out, -1).sum(dim=1)
        gy = gy.view(g, c_out // g, -1)
        if from_cols:
            _add_grad_weight(grad_weight, cols, gy, geo)
        if grid_x:  # grad_x done above
            continue
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
    y_cols = torch.matmul(w, cols.view(g, w.shape[2], n * positions))  # (g, C_out/g, n * P)
    columns = cols_dims(n, (positions,), geo.batch_last)
    y_cols = to_batch_channel(y_cols.view(c_out, *columns), geo.batch_last)  # (n, C_out, P)
    if bias is None:
        y.copy_(y_cols)
    else:  # the reordering copy adds the bias on the way
        torch.add(y_cols, bias[:, None], out=y)


def _add_grad_weight(grad_weight, cols, gy, geo: ConvGeometry) -> None:
    """dW += gy @ cols.T as ONE GEMM over the block's columns, accumulated in place (BLAS's
    beta = 1: no dW-sized temporary), or per batch element (`per_element_grad_weight`).

    Shapes: gy (g, C_out/g, <columns>).
    """
    g, c_out_g, columns = gy.shape
    cols = cols.view(g, cols.shape[0] // g, columns)  # (g, C_in/g * K, <columns>)
    size = c_out_g * cols.shape[1]
    grad = grad_weight.view(g, c_out_g, cols.shape[1])
    if per_element_grad_weight(geo, size):
        positions = math.prod(geo.out)  # per batch element: the block holds whole ones
        n = columns // positions  # explicit sizes, no -1: C_in * K may be 0 (in_channels=0)
        # (C_in * K, n, P) -> (n, P, C_in * K), gy (C_out, n, P) -> (n, C_out, P)
        per_n = cols[0].view(cols.shape[1], n, positions).permute(1, 2, 0)
        gy_n = gy[0].view(c_out_g, n, positions).transpose(0, 1)
        grad[0] += torch.bmm(gy_n, per_n).sum(dim=0)
    elif 1024 < size <= 65536 and columns <= 8 * size:
        # A small dW over a short reduction: (cols @ gy.T).T runs 1.35x faster (LeNet's conv2,
        # 16 x 150 over 6400 columns: 0.31 ms against 0.42 ms, one thread, measured here). Not
        # over a long one: VGG's conv1_1 (64 x 27 over 50176) takes 29.6 ms that way against
        # 10.8 ms; LeNet's conv1 (6 x 75) and VGG's conv1_2 (64 x 576) measured the same.
        grad.transpose(1, 2).baddbmm_(cols, gy.transpose(1, 2))
    else:
        grad.baddbmm_(gy, cols.transpose(1, 2))


def _grad_weight_taps(x, grad_y, geo: ConvGeometry, shape):
    """dW by taps (`conv_plan.grad_weight_by_taps`), a kernel row at a time: dW_i.T = window_i @
    gy.T, x's windows for the kW taps of leading tap i copied once into one (C_in * kW,
    <columns>) buffer, in cols' column order. One GEMM per tap, as the NumPy backend's, runs
    2.5x slower through MKL on an AMD EPYC (LeNet's conv2: 1.75 against 0.70 ms; dW from kept
    cols 0.45 ms; one thread, measured here).

    Shapes: x (N, C_in, *spatial), grad_y (N, C_out, *out) -> like weight.
    """
    d, g, c_in, kw = len(geo.kernel), geo.groups, x.shape[1], geo.kernel[-1]
    n, c_out_g = grad_y.shape[0], grad_y.shape[1] // g
    # (g, <columns>, C_out/g): grad_y copied in cols' column order, transposed. MKL takes
    # LeNet conv2's GEMMs (30 x 6400 @ 6400 x 16) in 60 us from it against 85 us from a
    # transposed view of gy (one thread, measured here).
    positions = math.prod(geo.out)  # explicit sizes, no -1: any may be 0
    gy = grad_y.reshape(n, g, c_out_g, positions)
    gy_t = gy.permute(1, 3, 0, 2) if geo.batch_last else gy.permute(1, 0, 3, 2)
    gy_t = gy_t.reshape(g, n * positions, c_out_g)
    xp = pad(x, geo.padding, geo.padding_mode, geo.batch_last)
    windows = window_view(xp, geo.kernel, geo.stride, geo.dilation, geo.out)  # (n, C, *out, *k)
    tail = (*range(2, 2 + d), 0) if geo.batch_last else (0, *range(2, 2 + d))
    windows = windows.permute(1, *range(2 + d, 2 + 2 * d), *tail)  # (C, *kernel, <columns>)
    window = x.new_empty((c_in, kw, *windows.shape[1 + d :]))  # a kernel row's (C, kW, <cols>)
    leading = geo.kernel[:-1]
    grad_t = x.new_empty((math.prod(leading), g, c_in // g * kw, c_out_g))
    for t, lead in enumerate(itertools.product(*map(range, leading))):  # row-major, as W's
        window.copy_(windows[(slice(None), *lead)])
        torch.matmul(window.view(g, c_in // g * kw, -1), gy_t, out=grad_t[t])
    # (lead taps, g, C_in/g, kW, C_out/g) -> (g, C_out/g, C_in/g, lead taps, kW)
    grad = grad_t.view(len(grad_t), g, c_in // g, kw, -1).permute(1, 4, 2, 0, 3)
    return grad.reshape(shape)


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
    taps = math.prod(geo.kernel)  # explicit sizes, no -1: C_in/g may be 0 (in_channels=0)
    # (C_out, C_in/g, *kernel) -> (g, C_out/g, K, C_in/g): one copy, as the NumPy backend's,
    # each GEMM's W.T a transposed block of it, which MKL reads as it is. A view of W itself
    # strides both dims, and torch.matmul copied it transposed for every tap: VGG16's conv5_1
    # (batch 8) 163 -> 148 ms fwd+bwd, `features` (batch 2) 1691 -> 1471 ms (one thread,
    # measured here), for the copy held through backward. Layers whose cols backward rebuilds
    # (conv5_1) need neither: `_dcols_taps`.
    w = weight.reshape(g, c_out // g, c_in_g, taps).transpose(2, 3).contiguous()
    # -> (K / per_gemm, g, per_gemm * C_in/g, C_out/g): views
    return w.view(g, c_out // g, taps // per_gemm, per_gemm * c_in_g).permute(2, 0, 3, 1)


def _accumulator(geo: ConvGeometry, grad_x) -> torch.Tensor:
    """(g, C_in/g, <columns>) where `_grad_input` adds a block's taps: a view of grad_x (n,
    C_in, *spatial) itself, or zeros, unpadded or padded, for `_fold_into` (adds_into_grad_x)."""
    (n, c_in, *spatial), g = grad_x.shape, geo.groups
    if adds_into_grad_x(geo):  # (n, C_in, *spatial) -> (g, C_in/g, n, *spatial)
        return grad_x.view(n, g, c_in // g, *spatial).permute(1, 2, 0, *range(3, 3 + len(spatial)))
    if geo.padding_mode != "zeros":  # folded back after: the padded input
        spatial = geo.padded
    return grad_x.new_zeros((g, c_in // g, *cols_dims(n, spatial, geo.batch_last)))


def _gemm_taps(w_t, gy, geo: ConvGeometry, rows: slice):
    """Each kernel tap's dcols (g, C_in/g, <columns>), row-major: W.T @ gy a kernel row of taps
    per GEMM into one reused buffer, so the extra memory stays at a kernel row's (C_in,
    <columns>) blocks instead of a second im2col-sized matrix.

    Shapes: w_t from `_weight_taps`, gy (g, C_out/g, <columns of the block>).
    """
    g, c_in_g = geo.groups, geo.x_shape[1] // geo.groups
    per_gemm = w_t.shape[2] // c_in_g if c_in_g else 1  # taps per GEMM (in_channels=0: any)
    block = gy.new_empty((g, per_gemm, c_in_g, *block_columns(geo, rows, gy.shape[2])))
    block_2d = block.view(g, per_gemm * c_in_g, gy.shape[2])  # the GEMM's view of it
    taps = block.unbind(1)  # each tap's (g, C_in/g, <columns>)
    for index in range(math.prod(geo.kernel)):
        if index % per_gemm == 0:
            torch.matmul(w_t[index // per_gemm], gy, out=block_2d)
        yield taps[index % per_gemm]


def _dcols_taps(weight, gy, cols, geo: ConvGeometry, rows: slice):
    """Each kernel tap's dcols (g, C_in/g, <columns>), row-major, from dcols = W.T @ gy as one
    GEMM per group written over `cols` (this block's, rebuilt, dW already taken from them):
    no copy of W.T, whose transposed view MKL reads as it is, and no buffer beyond the cols.
    VGG16's conv5_1 at batch 8: the step's peak 45.7 -> 36.6 MiB (torch.nn: 24.1).

    Shapes: weight (C_out, C_in/g, *kernel), gy (g, C_out/g, <columns>), cols (C_in * K,
    <columns>).
    """
    (g, c_out_g, columns), taps = gy.shape, math.prod(geo.kernel)
    c_in_g = weight.shape[1]  # explicit sizes, no -1: any may be 0
    w_t = weight.reshape(g, c_out_g, c_in_g * taps).transpose(1, 2)  # (g, C_in/g * K, C_out/g)
    dcols = cols.view(g, c_in_g * taps, columns)
    torch.matmul(w_t, gy, out=dcols)
    # rows (channel, tap), as im2col's: (g, C_in/g, K, <columns>), one view per tap
    return dcols.view(g, c_in_g, taps, *block_columns(geo, rows, gy.shape[2])).unbind(2)


def _grad_input(taps, geo: ConvGeometry, acc, rows: slice) -> None:
    """Each tap's dcols (from `_gemm_taps` or `_dcols_taps`) added into acc in place, where the
    tap's outputs read the input (`tap_targets`).

    Shapes: taps yield (g, C_in/g, <columns of the block>), acc from `_accumulator`.
    """
    if acc.numel() == 0:  # in_channels=0 or an empty batch: nothing to add back
        return
    # add_ into a view of acc (`acc[to] += ...` copies the sum in again), the view sliced from
    # the last tap's in the dims they share: torch's ops cost microseconds each, in a loop over
    # the kernel's taps. LeNet's conv2 (25 taps): 0.99 -> 0.72 ms (one thread, measured here).
    views, last = [acc], ()
    first = 2 if geo.batch_last else 3  # the first spatial dim of acc and of a tap's block
    whole = tuple(slice(0, size) for size in (rows.stop - rows.start, *geo.out[1:]))
    for tap, target in zip(taps, tap_targets(geo, rows)):  # row-major, as cols' rows
        if target is None:  # every output's tap lands in the padding
            continue
        to, of = target
        if of != whole:  # some of the tap's outputs land in the padding
            tap = tap[(slice(None),) * first + of]
        _tap_view(views, last, to, first).add_(tap)
        last = to


def _tap_view(views: list, last: tuple, to: tuple, first: int) -> torch.Tensor:
    """acc (views[0]) sliced by `to` from spatial dim `first` on. views[d] holds it sliced by
    the last tap's `last[:d]`: kept up to the first dim where the two differ, then rebuilt."""
    d = 0
    while d < len(last) and to[d] == last[d]:
        d += 1
    del views[d + 1 :]
    for i in range(d, len(to)):
        views.append(views[i][(slice(None),) * (first + i) + (to[i],)])
    return views[-1]


def _on_grid(grad_y, geo: ConvGeometry) -> torch.Tensor:
    """A block's grad_y (n, C_out, P) placed on the full padded grid of `_grad_input_grid`:
    (C_out, L), its columns (out[0], *padded[1:], n), zeros past `out`."""
    n, c_out = grad_y.shape[:2]
    plan = grid_input_plan(geo, n)
    full = grad_y.new_zeros((c_out, geo.out[0], *geo.padded[1:], n))
    inner = full[(slice(None), slice(None), *map(slice, geo.out[1:]))]
    inner.copy_(from_batch_channel(grad_y.reshape(n, c_out, *geo.out), True))
    return full.view(c_out, plan.length)


def _grad_input_grid(weight, full, geo: ConvGeometry, grad_x) -> None:
    """grad_x over the full padded grid (`conv_plan.grid_grad_input`): with gy on the padded
    input's grid (`_on_grid`), tap t's dcols = W_t.T @ gy adds into the flat padded
    accumulator at offset o_t, one contiguous run per input channel, by the GEMM itself
    (addmm_, BLAS's beta = 1); then the padding is dropped or folded, and the order restored.

    Shapes: weight (C_out, C_in, *kernel), full (C_out, L) from `_on_grid`, grad_x (n, C_in,
    *spatial), written whole.
    """
    (n, c_in, *spatial), c_out = grad_x.shape, weight.shape[0]
    plan = grid_input_plan(geo, n)
    w_t = weight.reshape(c_out, c_in, len(plan.offsets)).permute(2, 1, 0).contiguous()
    acc = full.new_zeros((c_in, plan.size))
    for tap, offset in zip(w_t, plan.offsets):  # tap: (C_in, C_out)
        acc[:, offset : offset + plan.length].addmm_(tap, full)
    acc = acc[:, : math.prod(geo.padded) * n].view(c_in, *geo.padded, n)
    acc = unpad(acc, 1, spatial, geo.padding, geo.padding_mode)  # (C_in, *spatial, n)
    grad_x.copy_(to_batch_channel(acc, True))


def _fold_into(acc, geo: ConvGeometry, grad_x) -> None:
    """grad_x (n, C_in, *spatial) from `_accumulator`'s buffer: padding folded, order restored."""
    acc = acc.view(grad_x.shape[1], *acc.shape[2:])  # (C_in, <columns>)
    if geo.padding_mode != "zeros":
        first = 1 if geo.batch_last else 2  # the first spatial dim of acc
        acc = unpad(acc, first, grad_x.shape[2:], geo.padding, geo.padding_mode)
    grad_x.copy_(to_batch_channel(acc, geo.batch_last))


def _cols_buffer(geo: ConvGeometry, like: torch.Tensor) -> torch.Tensor:
    """Flat memory for the cols of one block, (C_in * K * min(block, N) * rows * ...,)."""
    n, c_in = geo.x_shape[:2]
    rows = min(geo.rows, geo.out[0]) * math.prod(geo.out[1:])
    return like.new_empty(c_in * math.prod(geo.kernel) * min(geo.block, n) * rows)


def _im2col(x, geo: ConvGeometry, buffer, rows: slice):
    """(n, C, *spatial) -> cols (C * K, <columns of the block's output rows>), rows ordered
    (channel, tap), written into the front of the flat `buffer` by ONE copy from a strided
    window view of the padded rows they read."""
    d, kernel, out = len(geo.kernel), geo.kernel, (rows.stop - rows.start, *geo.out[1:])
    slab = block_slab(geo, rows)
    xp = pad(x, geo.padding, geo.padding_mode, geo.batch_last, slab)  # (n, C, *padded slab)
    windows = window_view(xp, kernel, geo.stride, geo.dilation, out)  # (n, C, *out, *kernel)
    tail = (*range(2, 2 + d), 0) if geo.batch_last else (0, *range(2, 2 + d))
    windows = windows.permute(1, *range(2 + d, 2 + 2 * d), *tail)  # (C, *kernel, <columns>)
    cols = buffer[: windows.numel()].view(windows.shape)
    cols.copy_(windows)
    return cols.view(x.shape[1] * math.prod(kernel), x.shape[0] * math.prod(out))
