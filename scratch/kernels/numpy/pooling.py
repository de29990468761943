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
from scratch.kernels.shared import avg_pool_plan, max_pool_plan
from scratch.kernels.windows import (
    adaptive_bounds,
    adaptive_input_windows,
    adaptive_lengths,
    adaptive_window_taps,
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
        np.maximum(best, value, out=best)  # NaN propagates, as torch's max
        # taps come in increasing order, so the last tap that moved the max is the largest:
        # a branch-free max instead of a masked copy (4x slower on a random mask)
        np.maximum(tap, np.multiply(moved, kind.type(t), out=step), out=tap)
    return best, tap


def max_pool_backward(cache: MaxPoolCache, grad_y, needs):
    """grad_x: each grad_y goes to its window's argmax, added where windows overlap."""
    if not needs[0]:
        return (None,)
    grad_xp = np.zeros(cache.padded, grad_y.dtype)
    bits = _bits(grad_y)
    mask = np.empty(grad_y.shape, bits.dtype)
    picked = None if cache.disjoint else np.empty(grad_y.shape, bits.dtype)
    for t, index in enumerate(cache.taps):
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
    y = xp[taps[0]].astype(wide)  # (N, C, *out): the window sums (float16: in float32)
    for index in taps[1:]:
        y += xp[index]
    if divisor_override is not None:
        divisor = divisor_override
    else:
        divisor = _grid(plan.counts, np.multiply, np.int64).astype(wide)  # exact: small ints
    y /= divisor
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


def _wide(dtype) -> type:
    """The dtype sums and divisions run in: float32 for float16, as torch's CPU kernels."""
    return np.float32 if dtype == np.float16 else dtype


# --- Adaptive average pooling ---------------------------------------------------------------------


class AdaptiveAvgPoolCache(NamedTuple):
    means: list[np.ndarray]  # per spatial dim, (out_d, size_d): row i averages window i


def adaptive_avg_pool_forward(x, *, output_size):
    """Mean over torch's adaptive windows.

    As `torch.nn.functional.adaptive_avg_pool1d`, `adaptive_avg_pool2d` and `adaptive_avg_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *output_size). Applies one averaging matrix per dim
    (separable); along a dim whose values are not all finite it sums each window's own members
    instead, so a NaN or inf reaches only the windows that hold it (0 * inf would spread it).
    float16 follows torch's CPU kernel step by step instead (`_torch_order_forward`).
    """
    spatial = x.shape[-len(output_size) :]
    means = [_mean_matrix(n, o, x.dtype) for n, o in zip(spatial, output_size)]
    cache = AdaptiveAvgPoolCache(means)
    glob = all(o == 1 for o in output_size) and x.size  # torch's shortcut: one mean, its order
    if glob:
        wide = np.float32 if x.dtype == np.float16 else None  # float16: summed in float32
        y = x.mean(axis=tuple(range(-len(spatial), 0)), keepdims=True, dtype=wide)
        return y.astype(x.dtype, copy=False), cache
    if x.dtype == np.float16:
        return _torch_order_forward(x, tuple(output_size)), cache
    return _contract(x, means), cache


def adaptive_avg_pool_backward(cache: AdaptiveAvgPoolCache, grad_y, needs):
    """grad_x: the transposed averaging matrices applied to grad_y (float16: in torch's order)."""
    if not needs[0]:
        return (None,)
    if grad_y.dtype != np.float16:
        return (_contract(grad_y, cache.means, transpose=True),)
    spatial = tuple(m.shape[1] for m in cache.means)
    out = grad_y.shape[-len(spatial) :]
    if all(o == 1 for o in out):  # the mean's gradient: one division, rounded once
        share = (grad_y.astype(np.float32) / math.prod(spatial)).astype(np.float16)
        return (np.ascontiguousarray(np.broadcast_to(share, grad_y.shape[: -len(out)] + spatial)),)
    return (_torch_order_backward(grad_y, spatial),)


def _axis_array(values: tuple, axis: int, d: int, dtype) -> np.ndarray:
    """A per-window (or per-position) vector along spatial axis `axis` of d, to broadcast."""
    return np.asarray(values, dtype).reshape([-1 if a == axis else 1 for a in range(d)])


def _torch_order_forward(x: np.ndarray, out: tuple) -> np.ndarray:
    """torch's CPU float16 forward, bit for bit: each window summed in row-major order and
    divided by its length one dim at a time; in float32, rounded once, for 1-d and 2-d; in
    float16, rounded at every step, for 3-d (torch 2.14's kernels, measured)."""
    d, spatial = len(out), x.shape[-len(out) :]
    acc_type = np.float16 if d == 3 else np.float32
    wide = x.astype(acc_type, copy=False)
    acc = np.zeros(x.shape[:-d] + out, acc_type)
    for tap in adaptive_window_taps(spatial, out):
        acc += np.where(_valid(tap, d), wide[_index(tap, d)], acc_type(0))
    for a, lengths in enumerate(adaptive_lengths(spatial, out)):
        acc /= _axis_array(lengths, a, d, acc_type)
    return acc.astype(np.float16)


def _index(step, d: int) -> tuple:
    """The advanced index of one step of a windowed sum (`windows.Gather`), broadcast."""
    return (Ellipsis, *(_axis_array(v, a, d, np.int64) for a, v in enumerate(step.index)))


def _valid(step, d: int) -> np.ndarray:
    """Where the targets of one step of a windowed sum have it (`windows.Gather`)."""
    masks = [_axis_array(v, a, d, bool) for a, v in enumerate(step.valid)]
    return functools.reduce(np.logical_and, masks)


def _torch_order_backward(grad_y: np.ndarray, spatial: tuple) -> np.ndarray:
    """torch's CPU float16 backward: each window's share g / k_1 / k_2 ... divided in float16,
    added into grad_x in float16 window by window in row-major order; bit for bit torch's."""
    d, out = len(spatial), grad_y.shape[-len(spatial) :]
    share = grad_y
    for a, lengths in enumerate(adaptive_lengths(spatial, out)):
        share = share / _axis_array(lengths, a, d, np.float16)  # rounded each time
    grad_x = np.zeros(grad_y.shape[:-d] + spatial, np.float16)
    for step in adaptive_input_windows(spatial, out):
        grad_x += np.where(_valid(step, d), share[_index(step, d)], np.float16(0))
    return grad_x


def _mean_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size) matrix whose row i averages torch's adaptive window i."""
    start, end = np.array(adaptive_bounds(size, out), np.int64).reshape(out, 2).T  # (out,) each
    j = np.arange(size)
    inside = (start[:, None] <= j) & (j < end[:, None])  # (out, size)
    return (inside / (end - start)[:, None]).astype(dtype)


def _contract(a: np.ndarray, matrices: list[np.ndarray], transpose: bool = False) -> np.ndarray:
    """Apply matrix d, (m_d, n_d) (or its transpose), along spatial dim d, contiguous result."""
    for d, m in enumerate(matrices):
        axis = a.ndim - len(matrices) + d
        if np.isfinite(a).all():
            m = m.T if transpose else m
            a = np.moveaxis(np.moveaxis(a, axis, -1) @ m.T, -1, axis)
        else:
            a = np.moveaxis(_window_sums(np.moveaxis(a, axis, 0), m, transpose), 0, axis)
    return np.ascontiguousarray(a)


def _window_sums(a: np.ndarray, m: np.ndarray, transpose: bool) -> np.ndarray:
    """`m @ a` (or `m.T @ a`) along axis 0, adding only each window's members, tap by tap.

    Shapes: a (n, ...) -> (out, ...) with m (out, size); n is size (or out if transposed).
    """
    out, size = m.shape
    inside = m != 0  # (out, size): each window a run of consecutive members
    start, length = inside.argmax(axis=1), inside.sum(axis=1)
    weight = m[np.arange(out), start].reshape((-1,) + (1,) * (a.ndim - 1))  # 1 / length
    result = np.zeros((size if transpose else out, *a.shape[1:]), a.dtype)
    for k in range(int(length.max(initial=0))):
        valid = (k < length).reshape(weight.shape)
        member = np.minimum(start + k, size - 1)
        if transpose:  # window i gives a[i] / length_i to each of its members
            np.add.at(result, member, np.where(valid, a * weight, 0))
        else:
            result += np.where(valid, a[member], 0)
    return result if transpose else result * weight
