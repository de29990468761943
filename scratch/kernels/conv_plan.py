"""The plan of one convolution, shared by both backends' conv kernels: integer arithmetic only.

Output sizes, the im2col blocks (whole batch elements, or rows of one element's output) and
their column order, the full-grid plan, and where each kernel tap of a block adds
into grad_x. The window arithmetic it builds on is in `scratch.kernels.windows`.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

from scratch.kernels import Pads
from scratch.kernels.windows import conv_out_size, plane_strides

# The most bytes of im2col built at once, unless twice the weight's are more. Blocks of 4 MiB
# stay in the cache between im2col's copy and the GEMM that reads them, and take no fresh pages
# per call: LeNet's conv1 (batch 64, 14.7 MiB of cols) runs fwd+bwd as fast or faster in 4
# blocks, rebuilt in backward, than in one kept (one thread, measured here). But every block's
# GEMMs stream the whole weight (W, W.T and dW): VGG16's conv4_2 (9 MiB of weight, batch 2)
# takes 128 ms (NumPy) and 278 ms (torch) in 4 MiB blocks against 118 and 240 in 18 MiB ones.
BLOCK_BYTES = 4 * 2**20


# The runs a cols copy writes start on a 64-byte line where the layout allows: torch's strided
# copy_ writes runs that start off a line at half speed (NumPy's np.copyto runs the same either
# way). So the full grid pads its rows to whole lines (`Grid.row`, the pad columns zero), and a
# block of batch-last columns holds whole lines of elements. One thread, an Intel Xeon, torch
# backend: LeNet's conv1 cols (4 elements, rows of 892 floats) 67 -> 29 us a block padded to
# 896, its fwd + dW 5.4 -> 4.1 ms; LeNet's conv2 forward (batch-last blocks of 17 elements, 68
# bytes a run) 1.18 -> 0.88 ms in blocks of 16.
ROW_BYTES = 64


class ConvGeometry(NamedTuple):
    """Everything about one convolution that is not an array: forward and backward share it."""

    x_shape: tuple[int, ...]  # (N, C_in, *spatial)
    kernel: tuple[int, ...]
    out: tuple[int, ...]  # output spatial sizes
    stride: tuple[int, ...]
    padding: Pads  # (lo, hi) per spatial dim
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    block: int  # batch elements per im2col block; >= N: the whole batch
    rows: int  # output rows (first spatial dim) per block: out[0] unless one element is too big
    batch_last: bool  # column order of cols: (*out, N) if True, else (N, *out)
    block_bytes: int  # the most bytes of cols built at once
    taps: bool = False  # dW tap by tap from x's windows, no cols kept (`grad_weight_by_taps`)

    @property
    def padded(self) -> tuple[int, ...]:
        """The padded input's spatial sizes."""
        return tuple(size + lo + hi for size, (lo, hi) in zip(self.x_shape[2:], self.padding))


def line_elements(itemsize: int) -> int:
    """Elements of `itemsize` bytes per 64-byte line (`ROW_BYTES`)."""
    return max(1, ROW_BYTES // itemsize)


def conv_geometry(
    x_shape,
    itemsize: int,
    w_shape,
    stride,
    padding,
    dilation,
    groups: int,
    mode: str,
    block_bytes: int | None = None,
) -> ConvGeometry:
    """Output sizes, blocks and column order of a convolution of x by a weight of w_shape.

    im2col runs in blocks holding at most `block_bytes` of cols (None: `BLOCK_BYTES` or twice
    the weight's bytes): whole batch elements, or rows of one element's output where one element
    alone exceeds it (a row at least).
    """
    if block_bytes is None:
        block_bytes = max(BLOCK_BYTES, 2 * math.prod(w_shape) * itemsize)
    n, c_in, *spatial = x_shape
    kernel = tuple(w_shape[2:])
    out = tuple(
        conv_out_size(size, k, s, lo, hi, dl)
        for size, k, s, (lo, hi), dl in zip(spatial, kernel, stride, padding, dilation)
    )
    per_row = c_in * math.prod(kernel) * math.prod(out[1:]) * itemsize  # cols bytes
    per_element = per_row * out[0]
    block = max(1, block_bytes // max(per_element, 1))
    rows = out[0] if per_element <= block_bytes else max(1, block_bytes // max(per_row, 1))
    batch_last = rows == out[0] and _batch_last(min(block, n), out, stride)
    line = line_elements(itemsize)
    if batch_last and line < block < n:  # its columns' runs of `block` in whole 64-byte lines
        block -= block % line
    geo = ConvGeometry(
        tuple(x_shape), kernel, out, tuple(stride), tuple(padding), tuple(dilation), groups,
        mode, block, rows, batch_last, block_bytes,
    )  # fmt: skip
    return geo._replace(taps=grad_weight_by_taps(geo, w_shape, per_element * n))


def grad_weight_by_taps(geo: ConvGeometry, w_shape, cols_bytes: int) -> bool:
    """Whether backward takes dW tap by tap, dW[..., t] = gy @ window_t(x).T, each window copied
    from x as it is needed, instead of from im2col's cols kept from the forward, which then
    builds its cols in blocks of a quarter of `block_bytes`: the layer holds a quarter of the
    cols at most instead of all of them.

    For cols of one block (the whole batch) that fill more than that quarter, and a small
    weight (at most 4096 values; not one taking `per_element_grad_weight`), whose GEMMs are
    small anyway: LeNet's conv2 (64x6x14x14, 16 x 5x5: 3.7 MiB of cols) takes its dW in 0.58 ms
    against 0.45 ms from kept cols (the torch backend, a kernel row at a time: 0.70 ms), its
    forward in 4 blocks about as fast, and its peak memory falls from 3.0x torch.nn's to 0.8x
    (NumPy; one thread, measured here). A large weight would be streamed once per tap:
    VGG16's conv5_1 (batch 2) takes 34 ms that way against 20 ms. (The torch backend now runs
    LeNet's conv2, and the shapes like it, by `row_taps`, which come first.)
    """
    weight = math.prod(w_shape) // geo.groups  # one group's C_out/g * C_in/g * K
    one_block = geo.block >= geo.x_shape[0] and geo.rows >= geo.out[0]
    big = cols_bytes > geo.block_bytes // 4
    return one_block and big and weight <= 4096 and not per_element_grad_weight(geo, weight)


def _batch_last(n: int, out, stride) -> bool:
    """Columns (*out, n) when output rows are short and the block of n elements long.

    Measured fwd+bwd, one thread, both backends: LeNet's conv2 (64x6x14x14, k5) 1.9 ms vs 2.6 ms
    batch first (torch backend), 64 channels of 8x8 in batch 32 3.8 vs 4.8 ms, VGG's conv5
    (8x512x14x14) 143 vs 149 ms; LeNet's conv1 (28x28 out) is faster batch first.
    """
    return out[-1] < 16 and n >= 8 and n * (out[-1] if stride[-1] == 1 else 1) >= 64


# The most bytes of full-grid cols built at once (`full_grid`): a block about this size stays in
# the CPU's L2 between the copy that builds it and the GEMM that reads it. LeNet's conv1
# (64x3x32x32, 6 x 5x5: 0.27 MB of cols per element), NumPy forward, one thread, an Intel Xeon
# with 2 MiB of L2: 0.95 ms in blocks of 2 elements, 0.92 of 4, 1.25 of 8, 1.50 of 16.
GRID_BYTES = 2**20


class Grid(NamedTuple):
    """The plan of a stride-1 convolution over the full padded grid (see numpy/_grid.py)."""

    steps: tuple[int, ...]  # flat stride of each padded spatial dim (the full grid's strides)
    positions: int  # M: outputs computed per (n, C_out), prod(padded) - the last tap's offset
    block: int  # batch elements per block of cols
    row: int  # M rounded up to whole 64-byte lines: the cols' row stride (see ROW_BYTES)


def full_grid(geo: ConvGeometry, c_out: int, itemsize: int) -> Grid | None:
    """The full-grid plan when it beats im2col, else None (the kernels also take dW from it
    only for a finite input: see their conv_backward).

    Stride 1 everywhere, one group, 2-d or more, nothing empty, one element's cols within
    `geo.block_bytes`, and at most 8 output channels: a GEMM that few rows deep does at most
    8 multiply-adds per element of cols, so building the cols is most of the time, and the
    full grid's rows are long contiguous runs (im2col's are output rows). Measured by `scratch
    bench` (fwd + dW + db of the module, one thread, Intel Xeon): LeNet's conv1 (64x3x32x32,
    6 x 5x5) 2.66-2.85 ms (NumPy) and 3.25-3.36 ms (torch) against 3.62-3.85 and 3.47-3.97 ms by
    shifted rows (kW shifted copies of the input kept, one GEMM per leading tap), which had
    replaced im2col (1.38 against 2.05 ms for the kernels, NumPy on an AMD EPYC), and 0.55x
    torch.nn's peak memory against 1.5-1.8x; not for more channels: LeNet's conv2 (16 x 5x5)
    takes its dW in 0.70 ms this way against 0.49 ms by taps (NumPy).
    """
    n, c_in, *spatial = geo.x_shape
    simple = all(s == 1 for s in geo.stride) and geo.groups == 1 and len(spatial) >= 2
    padded = geo.padded
    steps = tuple(plane_strides(padded))
    last = sum((k - 1) * dl * st for k, dl, st in zip(geo.kernel, geo.dilation, steps))
    positions = math.prod(padded) - last  # past the last real output: (out - 1) . steps
    per_element = c_in * math.prod(geo.kernel) * positions * itemsize  # bytes of its cols
    fits = per_element <= geo.block_bytes
    if not (simple and 0 < c_out <= 8 and n * c_in * math.prod(geo.out) and fits):
        return None
    line = line_elements(itemsize)
    row = -(-positions // line) * line
    return Grid(steps, positions, max(1, round(GRID_BYTES / per_element)), row)


def row_taps(geo: ConvGeometry, c_out: int, itemsize: int) -> bool:
    """Whether the torch backend runs a 2-d convolution by row taps (torch/_rows.py): im2col
    over the last kernel dim alone, batch last, (C_in * kW, padded[0] * out[1] * N), then one
    GEMM per tap of the first dim over a view of those rows shifted by the tap.

    One group, stride 1 along the first dim, batch-last columns (short rows, a big batch), the
    rows within `geo.block_bytes`, more than one tap in the first dim, nothing empty, and 9 to
    64 output channels (at most 8 take the full grid): it copies kW times the input where
    im2col copies kH * kW times, and adds grad_x back a kernel column at a time (kW adds of
    long runs) where im2col adds kH * kW. LeNet's conv2 (64x6x14x14, 16 x 5x5), one thread,
    MKL on an AMD EPYC: fwd 0.85 -> 0.63 ms, fwd+bwd 2.91-3.00 -> 1.87-1.89 ms (torch.nn 1.84-1.85),
    `scratch bench` 1.74-1.88x -> 1.12-1.15x, its peak 1.47x torch.nn's; 64 channels of 8x8 in
    batch 32 (3x3, padding 1): fwd+bwd 6.7 -> 6.2 ms; 128 of them: 22.7-26.8 ms by row taps
    against 22.5-23.6, no gain (the GEMMs dominate), so 64 at most. Not for the NumPy backend:
    OpenBLAS cannot add into its output, and the same plan measured fwd 0.75 -> 0.65 ms but bwd
    1.46 -> 1.54 ms (glibc's mmap threshold pinned, else page faults double both).
    """
    n, c_in, *spatial = geo.x_shape
    if len(spatial) != 2 or geo.groups != 1 or geo.stride[0] != 1 or not geo.batch_last:
        return False
    rows_bytes = c_in * geo.kernel[1] * geo.padded[0] * geo.out[1] * n * itemsize
    sized = geo.kernel[0] > 1 and 8 < c_out <= 64 and rows_bytes <= geo.block_bytes
    return sized and n * c_in * math.prod(geo.out) > 0


class GridInput(NamedTuple):
    """The plan of grad_x over the full padded grid, for a block of n batch-last elements (see
    `grid_grad_input`): flat positions (p_1, ..., p_d, i) of the padded input (*padded, n) at
    sum_d p_d * steps_d + i."""

    length: int  # L: gy's columns on the grid, out[0] rows of every padded position, times n
    offsets: tuple[int, ...]  # per kernel tap, row-major: where its L columns add in
    size: int  # the flat accumulator's columns: prod(padded) * n, and the last taps' overhang


def grid_grad_input(geo: ConvGeometry, c_out: int) -> bool:
    """Whether the torch backend's grad_x runs over the full padded grid: gy placed on the
    padded input's grid (zeros past `out` in every dim but the first), each tap's W.T @ gy
    then adds into ONE contiguous run of the flat padded accumulator, by the GEMM itself
    (BLAS's beta = 1), where `_grad_input` adds a strided block of short runs per tap.

    Stride 1, one group, batch-last columns (short rows, whole elements), nothing empty, and at
    most 16 output channels: the grid's GEMMs are prod(padded[1:]) / prod(out[1:]) times larger
    (LeNet's conv2: 14 / 10), which pays only while the adds cost as much as the GEMMs. LeNet's
    conv2, one thread, an Intel Xeon, fwd + bwd: 3.53 -> 3.26 ms. Not for NumPy, whose GEMM
    cannot add into its output: the same grid, then one add per tap, measured 3.73 -> 3.67 ms.
    """
    simple = geo.batch_last and all(s == 1 for s in geo.stride) and geo.groups == 1
    return simple and 0 < c_out <= 16 and math.prod(geo.x_shape[:2]) * math.prod(geo.out) > 0


@functools.lru_cache(maxsize=256)  # per layer and block size
def grid_input_plan(geo: ConvGeometry, n: int) -> GridInput:
    """The `GridInput` of a block of n elements of `geo` (stride 1, see `grid_grad_input`)."""
    steps = [step * n for step in plane_strides(geo.padded)]
    taps = itertools.product(*map(range, geo.kernel))  # row-major, as W's
    offsets = tuple(sum(k * dl * st for k, dl, st in zip(t, geo.dilation, steps)) for t in taps)
    length = geo.out[0] * steps[0]
    return GridInput(length, offsets, offsets[-1] + length)


def forward_blocks(geo: ConvGeometry, itemsize: int, w_shape) -> ConvGeometry:
    """The geometry the forward's im2col runs in: `geo`, or where dW is taken by taps (and no
    cols are kept for backward) `geo` in blocks of a quarter of its `block_bytes`."""
    if not geo.taps:
        return geo
    return conv_geometry(
        geo.x_shape, itemsize, w_shape, geo.stride, geo.padding, geo.dilation, geo.groups,
        geo.padding_mode, geo.block_bytes // 4,
    )  # fmt: skip


def per_element_grad_weight(geo: ConvGeometry, weight_size: int) -> bool:
    """Whether dW = gy @ cols.T runs as one small GEMM per batch element, summed: a tiny dW
    (at most 1024 values, one group) over a long reduction of batch-first columns (at least
    256 output positions per element) in blocks of whole elements, as LeNet's first layer.
    One thread, measured here: NumPy 2-3x faster; torch (MKL) 0.73 ms against 1.13 ms for
    LeNet's conv1 at batch 64.
    """
    whole = geo.rows >= geo.out[0]  # not rows of one element (a large image)
    simple = geo.groups == 1 and not geo.batch_last
    return whole and simple and weight_size <= 1024 and math.prod(geo.out) >= 256


def conv_blocks(geo: ConvGeometry) -> list[tuple[slice, slice]]:
    """The im2col blocks: (batch slice, slice of the first output dim) pairs, in order.

    Whole elements `geo.block` at a time, or one element `geo.rows` output rows at a time; one
    block for an empty batch.
    """
    n, out0 = geo.x_shape[0], geo.out[0]
    if geo.rows >= out0:
        return [(slice(i, i + geo.block), slice(0, out0)) for i in range(0, max(n, 1), geo.block)]
    return [
        (slice(i, i + 1), slice(r, min(r + geo.rows, out0)))
        for i in range(n)
        for r in range(0, out0, geo.rows)
    ]


def block_positions(geo: ConvGeometry, rows: slice) -> slice:
    """The flat output positions (of prod(out)) of a block's rows of the first output dim."""
    rest = math.prod(geo.out[1:])
    return slice(rows.start * rest, rows.stop * rest)


def block_slab(geo: ConvGeometry, rows: slice) -> tuple[int, int]:
    """The padded rows [a, b) of the first spatial dim that a block's output rows read."""
    s, k, dl = geo.stride[0], geo.kernel[0], geo.dilation[0]
    return rows.start * s, (rows.stop - 1) * s + (k - 1) * dl + 1


def slab_rows(slab: tuple[int, int], size: int, lo: int) -> tuple[int, int, tuple[int, int]]:
    """For padded rows [a, b) of a dim of `size` real rows padded by `lo` before: the real rows
    [start, stop) they read, and the zero padding (before, after) around them."""
    (a, b) = slab
    start, stop = min(max(a - lo, 0), size), min(max(b - lo, 0), size)
    before = min(max(lo - a, 0), b - a)
    return start, stop, (before, b - a - before - (stop - start))


def adds_into_grad_x(geo: ConvGeometry) -> bool:
    """Whether grad_x's taps go straight into grad_x: zero padding (taps that land in it are
    clipped off) and batch first (its layout); else into a buffer, folded or reordered after."""
    return geo.padding_mode == "zeros" and not geo.batch_last


def tap_targets(geo: ConvGeometry, rows: slice) -> tuple[tuple[tuple, tuple] | None, ...]:
    """Per kernel tap, row-major: (to, of), the slices per spatial dim of where tap t of a
    block's outputs `of` adds in grad_x's accumulator `to`, or None if it lands in padding alone.

    The accumulator is the unpadded input with zero padding (taps in the padding dropped), else
    the padded input (folded back after).
    """
    return _tap_targets(geo, rows.start, rows.stop)


@functools.lru_cache(maxsize=256)  # per layer and block: 36 us for a 5x5 kernel, in Python
def _tap_targets(geo: ConvGeometry, start: int, stop: int) -> tuple:
    clip = geo.padding_mode == "zeros"
    spatial = geo.x_shape[2:] if clip else geo.padded
    outs = (stop - start, *geo.out[1:])  # the block's outputs per dim
    starts = (start * geo.stride[0], *(0 for _ in outs[1:]))  # its first window, padded
    per_dim = []
    for n, (lo, _), a, o, s, dl, kern in zip(
        spatial, geo.padding, starts, outs, geo.stride, geo.dilation, geo.kernel
    ):
        shift = a - (lo if clip else 0)  # position of output 0, tap 0 in the accumulator
        targets = []
        for k in range(kern):
            first = shift + k * dl
            o_lo = max(0, -(first // s))  # the first output at position >= 0
            o_hi = min(o, (n - 1 - first) // s + 1)  # one past the last at position < n
            to = slice(first + o_lo * s, first + (o_hi - 1) * s + 1, s)
            targets.append((to, slice(o_lo, o_hi)) if o_lo < o_hi else None)  # None: no output
        per_dim.append(targets)
    plans: list = []
    for taps in itertools.product(*per_dim):
        hits = [t for t in taps if t is not None]
        whole = len(hits) == len(taps)
        plans.append((tuple(t for t, _ in hits), tuple(f for _, f in hits)) if whole else None)
    return tuple(plans)


def cols_dims(n: int, spatial, batch_last: bool) -> tuple[int, ...]:
    """The im2col column dims: (*spatial, N) batch last, else (N, *spatial)."""
    return (*spatial, n) if batch_last else (n, *spatial)


def block_columns(geo: ConvGeometry, rows: slice, columns: int) -> tuple[int, ...]:
    """The column dims (`cols_dims`) of a block of output `rows` that has `columns` columns."""
    out = (rows.stop - rows.start, *geo.out[1:])
    return cols_dims(columns // max(math.prod(out), 1), out, geo.batch_last)
