"""Pooling kernels, any number of spatial dims (NumPy backend): max, average, adaptive average.

Every op loops over the kernel taps (prod(kernel) strided views of the padded input), never over
pixels, batch elements or channels. The integer window arithmetic is in `scratch.kernels.windows`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from scratch.kernels import Ints
from scratch.kernels.numpy._torchsum import as_torch_float, torch_sum
from scratch.kernels.shared import (
    avg_pool_adds_into_zero,
    avg_pool_plan,
    check_adaptive_grad,
    max_pool_plan,
    steps_in_order,
)
from scratch.kernels.windows import (
    adaptive_input_windows,
    adaptive_lengths,
    adaptive_window_taps,
    disjoint_blocks,
)

__all__ = [
    "max_pool_forward",
    "max_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "adaptive_avg_pool_forward",
    "adaptive_avg_pool_backward",
]

# --- Array helpers --------------------------------------------------------------------------------


def _grid(vectors: Sequence[Ints], combine, dtype) -> np.ndarray:
    """(*out) array combine(v_1[o_1], v_2[o_2], ..) of one vector per spatial dim (an outer op)."""
    d = len(vectors)
    axes = [
        np.asarray(v, dtype).reshape([-1 if i == j else 1 for j in range(d)])
        for i, v in enumerate(vectors)
    ]
    return functools.reduce(combine, axes)


def _pad(x: np.ndarray, lo: Ints, hi: Ints, value: float) -> np.ndarray:
    """Pad the trailing len(lo) dims with a constant (a copy), or return x itself if no padding."""
    if not any(lo) and not any(hi):
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - len(lo)) + list(zip(lo, hi)), constant_values=value)


def _crop(xp: np.ndarray, lo: Ints, spatial: Ints) -> np.ndarray:
    """Undo _pad: the unpadded part of the trailing dims, contiguous (as torch's gradients)."""
    if xp.shape[-len(spatial) :] == tuple(spatial):
        return xp
    return np.ascontiguousarray(xp[(Ellipsis, *[slice(a, a + n) for a, n in zip(lo, spatial)])])


def _lowest(dtype) -> float | int:
    """The max-pool padding: -inf, or the smallest integer (torch max-pools integers too)."""
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _bits(a: np.ndarray) -> np.ndarray:
    """The same memory as signed integers of the same width (any strides)."""
    return a.view(f"i{a.itemsize}")


# --- Max pooling ----------------------------------------------------------------------------------


class MaxPoolCache(NamedTuple):
    tap: np.ndarray  # (N, C, *out) small uint: row-major kernel tap of each window's max
    padded: tuple[int, ...]  # shape of the padded input
    lo: tuple[int, ...]  # padding before, per dim
    spatial: tuple[int, ...]  # the input's spatial shape
    taps: list[tuple]  # tap_slices: tap t of every window in the padded input
    disjoint: bool  # no padded element lies in two windows: backward assigns instead of adding


def max_pool_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True):
    """Max over each window, with torch's argmax.

    As `torch.nn.functional.max_pool1d`, `max_pool2d` and `max_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *out) and indices (N, C, *out) int64, the flat index
    into each unpadded (N, C) plane, equal to torch's `return_indices=True`. Without
    return_indices: y alone, and no int64 index is built (the cache keeps each window's tap).
    """
    spatial = x.shape[-len(kernel_size) :]
    plan = max_pool_plan(spatial, kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad(x, plan.lo, plan.hi, _lowest(x.dtype))  # never beats a real element, nor real -inf
    y, tap = _first_max(xp, plan.taps, _grid(plan.first, np.add, np.int64))
    cache = MaxPoolCache(tap, xp.shape, plan.lo, spatial, plan.taps, plan.disjoint)
    if not return_indices:
        return y, cache
    indices = np.array(plan.offsets)[tap]  # (N, C, *out) int64
    indices += _grid(plan.bases, np.add, np.int64)
    return (y, indices), cache


def _first_max(xp: np.ndarray, taps: list[tuple], first_tap: np.ndarray):
    """Running max over the taps in row-major order, keeping torch's argmax: (y, tap).

    torch moves its argmax when `value > max or isnan(value)`, from the first real tap of the
    window: ties keep the first max, a NaN wins and the last NaN wins. Each tap is copied once
    from its strided view, so the five passes over it run on contiguous memory.
    """
    best = np.array(xp[taps[0]])  # (N, C, *out)
    kind = np.min_scalar_type(len(taps) - 1)
    tap = np.broadcast_to(first_tap.astype(kind), best.shape).copy()
    value, moved, nan = np.empty_like(best), np.empty(best.shape, bool), np.empty(best.shape, bool)
    step = np.empty(best.shape, kind)
    for t, index in enumerate(taps[1:], start=1):
        np.copyto(value, xp[index])
        np.greater(value, best, out=moved)
        moved |= np.isnan(value, out=nan)
        # NaN propagates, as torch's max; at a tie (+0.0 and -0.0) np.maximum returns its second
        # operand, the earlier max, which torch keeps; of two NaNs its first, the later NaN
        np.maximum(value, best, out=best)
        # taps come in increasing order, so the last tap that moved the max is the largest:
        # a branch-free max instead of a masked copy (4x slower on a random mask)
        np.maximum(tap, np.multiply(moved, kind.type(t), out=step), out=tap)
    return best, tap


def max_pool_backward(cache: MaxPoolCache, grad_y, needs):
    """grad_x: each grad_y goes to its window's argmax, added where windows overlap.

    Bit for bit torch's CPU kernel, which adds each window's gradient into zeros, window by
    window in row-major order: where windows overlap, the taps are added in reverse (a later
    tap belongs to an earlier window); where they are disjoint, each is assigned 0 + grad_y
    (so -0.0 arrives as +0.0).
    """
    if not needs[0]:
        return (None,)
    grad_xp = np.zeros(cache.padded, grad_y.dtype)
    bits = _bits(grad_y + 0 if cache.disjoint else grad_y)  # the sum with zeros, once
    mask = np.empty(grad_y.shape, bits.dtype)
    picked = None if cache.disjoint else np.empty(grad_y.shape, bits.dtype)
    for t, index in reversed(list(enumerate(cache.taps))):
        # grad_y's bits where tap t is the argmax, +0.0 elsewhere: branch-free, and a NaN or inf
        # gradient stays where torch puts it (grad_y * mask would spread NaN to the other taps)
        np.negative(np.equal(cache.tap, t, out=mask), out=mask)  # 0 or -1 (all bits set)
        if cache.disjoint:
            np.bitwise_and(bits, mask, out=_bits(grad_xp[index]))
        else:
            np.bitwise_and(bits, mask, out=picked)
            grad_xp[index] += picked.view(grad_xp.dtype)
    return (_crop(grad_xp, cache.lo, cache.spatial),)


# --- Average pooling ------------------------------------------------------------------------------


class AvgPoolCache(NamedTuple):
    divisor: np.ndarray | int  # (*out) divisor of each window, or divisor_override
    padded: tuple[int, ...]  # shape of the zero-padded input
    lo: tuple[int, ...]  # padding before, per dim
    spatial: tuple[int, ...]  # the input's spatial shape
    taps: list[tuple]  # tap_slices: tap t of every window in the padded input


def avg_pool_forward(
    x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    """Mean over each window.

    As `torch.nn.functional.avg_pool1d`, `avg_pool2d` and `avg_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *out).
    """
    spatial = x.shape[-len(kernel_size) :]
    plan = avg_pool_plan(spatial, kernel_size, stride, padding, ceil_mode, count_include_pad)
    xp, taps, wide = _pad(x, plan.lo, plan.hi, 0), plan.taps, _wide(x.dtype)
    # (N, C, *out): the window sums (float16: in float32), from 0 as torch's (-0.0 + 0 is +0.0)
    y = np.add(xp[taps[0]], 0, dtype=wide)
    for index in taps[1:]:
        y += xp[index]
    if divisor_override is not None:
        divisor = divisor_override
    else:
        divisor = _grid(plan.counts, np.multiply, np.int64).astype(wide)  # exact: small ints
    y /= divisor
    if avg_pool_adds_into_zero(divisor_override, x.shape, [s // x.itemsize for s in x.strides]):
        y += 0
    return y.astype(x.dtype, copy=False), AvgPoolCache(divisor, xp.shape, plan.lo, spatial, taps)


def avg_pool_backward(cache: AvgPoolCache, grad_y, needs):
    """grad_x: each window spreads grad_y / divisor over its taps (padding then cropped).

    As torch's CPU kernel: the share g / divisor rounded once to the dtype (the divisor
    converted to the dtype first, as c10's Half / int64: 529 is 528 in bfloat16), then added
    window by window in row-major order (taps in reverse: a later tap belongs to an earlier
    window), in the dtype.
    """
    if not needs[0]:
        return (None,)
    share = grad_y / np.asarray(cache.divisor, grad_y.dtype)  # rounded once, as torch's
    grad_xp = np.zeros(cache.padded, grad_y.dtype)
    for index in reversed(cache.taps):
        grad_xp[index] += share
    return (_crop(grad_xp, cache.lo, cache.spatial),)


def _wide(dtype) -> np.dtype:
    """The dtype sums and divisions run in: float32 for float16, as torch's CPU kernels."""
    return np.dtype(np.float32 if dtype == np.float16 else dtype)


# --- Adaptive average pooling ---------------------------------------------------------------------


class AdaptiveAvgPoolCache(NamedTuple):
    spatial: tuple[int, ...]  # the input's spatial shape


def adaptive_avg_pool_forward(x, *, output_size):
    """Mean over torch's adaptive windows, bit for bit torch's CPU kernels.

    As `torch.nn.functional.adaptive_avg_pool1d`, `adaptive_avg_pool2d` and `adaptive_avg_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *output_size). Each window is summed tap by tap in
    torch's row-major order and divided by its length one dim at a time (`_torch_order_forward`),
    so where +1e30 and -1e30 cancel, or NaN and inf meet, the result is torch's own. An output
    of all ones is torch's shortcut, one mean: its sum in torch's order (`_torchsum`).
    """
    spatial = tuple(x.shape[-len(output_size) :])
    cache = AdaptiveAvgPoolCache(spatial)
    # torch's x.mean(): its sum in its order, / count. The order costs: 0.64 ms on ResNet's
    # head (8x512x7x7) against 0.21 ms for np.mean (torch: 0.14 ms; one thread, measured here)
    if all(o == 1 for o in output_size) and x.size:
        wide = as_torch_float(x) if x.dtype == np.float16 else x  # float16: a float32 copy
        y = torch_sum(wide, tuple(range(-len(spatial), 0))) / math.prod(spatial)
        return y.astype(x.dtype, copy=False), cache
    return _torch_order_forward(x, tuple(output_size)), cache


def adaptive_avg_pool_backward(cache: AdaptiveAvgPoolCache, grad_y, needs):
    """grad_x: each window's share of grad_y added into its members, in torch's order."""
    if not needs[0]:
        return (None,)
    spatial = cache.spatial
    check_adaptive_grad(tuple(grad_y.shape), len(spatial))
    out = grad_y.shape[-len(spatial) :]
    if all(o == 1 for o in out):  # the mean's gradient: one division, in float32 for float16
        share = (grad_y.astype(_wide(grad_y.dtype)) / math.prod(spatial)).astype(grad_y.dtype)
        return (np.ascontiguousarray(np.broadcast_to(share, grad_y.shape[: -len(out)] + spatial)),)
    return (_torch_order_backward(grad_y, spatial),)


def _axis_array(values: tuple, axis: int, d: int, dtype) -> np.ndarray:
    """A per-window (or per-position) vector along spatial axis `axis` of d, to broadcast."""
    return np.asarray(values, dtype).reshape([-1 if a == axis else 1 for a in range(d)])


def _in_order(a: np.ndarray, per_dim: tuple):
    """`shared.steps_in_order` with NumPy's gather (`take`) and masks."""
    d = len(per_dim)
    return steps_in_order(
        a,
        per_dim,
        lambda valid, level: _axis_array(valid, level, d, bool),
        lambda g, axis, index: g.take(index, axis=axis),
    )


def _torch_order_forward(x: np.ndarray, out: tuple) -> np.ndarray:
    """torch's CPU forward, bit for bit: each window summed in row-major order and divided by
    its length one dim at a time, in the dtype; float16 in float32, rounded once, for 1-d and
    2-d, in float16, rounded at every step, for 3-d (torch 2.14's kernels, measured)."""
    d, spatial = len(out), x.shape[-len(out) :]
    acc_type = x.dtype if d == 3 else _wide(x.dtype)
    wide, acc = x.astype(acc_type, copy=False), np.zeros(x.shape[:-d] + out, acc_type)
    blocks = disjoint_blocks(spatial, out)
    if blocks is not None:  # equal disjoint windows: taps first
        for tap in _disjoint_taps(wide, blocks):  # one contiguous add per tap, in torch's order
            acc += tap.reshape(acc.shape)
    else:
        for gathered, valid in _in_order(wide, adaptive_window_taps(spatial, out)):
            np.add(acc, gathered, out=acc, where=True if valid is None else valid)
    for a, lengths in enumerate(adaptive_lengths(spatial, out)):
        acc /= _axis_array(lengths, a, d, acc_type)
    return acc.astype(x.dtype, copy=False)


def _disjoint_taps(x: np.ndarray, blocks: tuple) -> np.ndarray:
    """(prod(window), *lead, *out): x's equal disjoint windows (`windows.disjoint_blocks`) with
    their taps first, row-major, by one copy: each tap of every window is contiguous. The
    strided views instead read all of x once per tap (56x56 -> 7x7: 5.6 ms against 1 ms)."""
    d = len(blocks) // 2
    lead, first = x.shape[:-d], x.ndim - d
    taps, windows = [first + 2 * a + 1 for a in range(d)], [first + 2 * a for a in range(d)]
    split = x.reshape(lead + blocks).transpose(taps + list(range(first)) + windows)
    return np.ascontiguousarray(split).reshape(math.prod(blocks[1::2]), -1)


def _torch_order_backward(grad_y: np.ndarray, spatial: tuple) -> np.ndarray:
    """torch's CPU backward, bit for bit: each window's share g / k_1 / k_2 ... divided in the
    dtype (each length converted to it first, as c10's Half / int64), added into grad_x in the
    dtype window by window in row-major order."""
    d, out, dtype = len(spatial), grad_y.shape[-len(spatial) :], grad_y.dtype
    share = grad_y
    for a, lengths in enumerate(adaptive_lengths(spatial, out)):
        share = share / _axis_array(lengths, a, d, dtype)  # rounded each time
    lead = grad_y.shape[:-d]
    blocks = disjoint_blocks(spatial, out)
    if blocks is not None:  # equal disjoint windows: one share each
        grad_x = np.empty(lead + blocks, dtype)
        windows = tuple(v for o in out for v in (o, 1))  # broadcast over the taps
        # 0 + share, as torch adds it into zeros: -0.0 comes out +0.0
        np.add(share.reshape(lead + windows), dtype.type(0), out=grad_x)
        return grad_x.reshape(lead + spatial)
    grad_x = np.zeros(lead + spatial, dtype)
    for gathered, valid in _in_order(share, adaptive_input_windows(spatial, out)):
        np.add(grad_x, gathered, out=grad_x, where=True if valid is None else valid)
    return grad_x
