"""Pooling kernels, any number of spatial dims (NumPy backend): max, average, adaptive average.

Every op loops over the kernel taps (prod(kernel) strided views of the padded input), never over
pixels, batch elements or channels. The integer window arithmetic is in `scratch.kernels.windows`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from scratch.kernels import Ints
from scratch.kernels.shared import avg_pool_plan, max_pool_plan
from scratch.kernels.windows import adaptive_bounds

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
    xp, taps = _pad(x, plan.lo, plan.hi, 0), plan.taps
    y = np.array(xp[taps[0]])  # (N, C, *out): the window sums
    for index in taps[1:]:
        y += xp[index]
    if divisor_override is not None:
        divisor = divisor_override
    else:
        divisor = _grid(plan.counts, np.multiply, np.int64).astype(x.dtype)  # exact: small ints
    y /= divisor
    return y, AvgPoolCache(divisor, xp.shape, plan.lo, spatial, taps)


def avg_pool_backward(cache: AvgPoolCache, grad_y, needs):
    """grad_x: each window spreads grad_y / divisor over its taps (padding then cropped)."""
    if not needs[0]:
        return (None,)
    share = grad_y / cache.divisor
    grad_xp = np.zeros(cache.padded, grad_y.dtype)
    for index in cache.taps:
        grad_xp[index] += share
    return (_crop(grad_xp, cache.lo, cache.spatial),)


# --- Adaptive average pooling ---------------------------------------------------------------------


class AdaptiveAvgPoolCache(NamedTuple):
    means: list[np.ndarray]  # per spatial dim, (out_d, size_d): row i averages window i


def adaptive_avg_pool_forward(x, *, output_size):
    """Mean over torch's adaptive windows.

    As `torch.nn.functional.adaptive_avg_pool1d`, `adaptive_avg_pool2d` and `adaptive_avg_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *output_size). Applies one averaging matrix per dim
    (separable); along a dim whose values are not all finite it sums each window's own members
    instead, so a NaN or inf reaches only the windows that hold it (0 * inf would spread it).
    """
    spatial = x.shape[-len(output_size) :]
    means = [_mean_matrix(n, o, x.dtype) for n, o in zip(spatial, output_size)]
    if all(o == 1 for o in output_size) and x.size:  # torch's shortcut: one mean, in its order
        return x.mean(axis=tuple(range(-len(spatial), 0)), keepdims=True), AdaptiveAvgPoolCache(
            means
        )
    return _contract(x, means), AdaptiveAvgPoolCache(means)


def adaptive_avg_pool_backward(cache: AdaptiveAvgPoolCache, grad_y, needs):
    """grad_x: the transposed averaging matrices applied to grad_y."""
    if not needs[0]:
        return (None,)
    return (_contract(grad_y, cache.means, transpose=True),)


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
