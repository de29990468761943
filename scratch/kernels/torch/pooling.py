"""Pooling kernels, any number of spatial dims (torch backend): max, average, adaptive average.

The same algorithms as the NumPy backend (a loop over the kernel taps, never over pixels, batch
elements or channels), written with plain tensor ops on the input's device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from scratch.kernels import Ints
from scratch.kernels.shared import (
    avg_pool_adds_into_zero,
    avg_pool_plan,
    check_adaptive_grad,
    max_pool_plan,
    steps_in_order,
)
from scratch.kernels.torch._window import on_device
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


def _can_read(t: torch.Tensor) -> bool:
    """Whether reading a value of `t` back is cheap: on the CPU. On a GPU it waits for the
    device, so the kernels take the path that is right for any value instead."""
    return t.is_cpu


def _grid(vectors: Sequence[Ints], combine, like: torch.Tensor, dtype) -> torch.Tensor:
    """(*out) tensor combine(v_1[o_1], v_2[o_2], ..) of one vector per spatial dim (an outer op).

    Read-only: with one dim it is the cached vector itself.
    """
    d = len(vectors)
    axes = [
        on_device(tuple(v), dtype, like.device).reshape([-1 if i == j else 1 for j in range(d)])
        for i, v in enumerate(vectors)
    ]
    return functools.reduce(combine, axes)


def _pad(x: torch.Tensor, lo: Ints, hi: Ints, value: float) -> torch.Tensor:
    """Pad the trailing len(lo) dims with a constant (a copy), or return x itself if no padding."""
    if not any(lo) and not any(hi):
        return x
    xp = x.new_full(
        tuple(x.shape[: -len(lo)])
        + tuple(n + a + b for n, a, b in zip(x.shape[-len(lo) :], lo, hi)),
        value,
    )
    xp[(Ellipsis, *[slice(a, a + n) for a, n in zip(lo, x.shape[-len(lo) :])])] = x
    return xp


def _crop(xp: torch.Tensor, lo: Ints, spatial: Ints) -> torch.Tensor:
    """Undo _pad: the unpadded part of the trailing dims, contiguous (as torch's gradients)."""
    if tuple(xp.shape[-len(spatial) :]) == tuple(spatial):
        return xp
    return xp[(Ellipsis, *[slice(a, a + n) for a, n in zip(lo, spatial)])].contiguous()


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Sums of half-precision values accumulate in float32, as torch's own kernels."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


# --- Max pooling ----------------------------------------------------------------------------------


class MaxPoolCache(NamedTuple):
    route: torch.Tensor  # (N, C, *out) int32 (int64 for huge planes): where each window's
    # gradient goes in its plane; scatter_add_ takes int32 indices as they are (torch >= 2.8)
    shape: tuple[int, ...]  # the input's shape
    hollow: bool  # some windows pool padding alone: their gradient goes to one extra slot


def max_pool_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True):
    """Max over each window, with torch's argmax.

    As `torch.nn.functional.max_pool1d`, `max_pool2d` and `max_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *out) and indices (N, C, *out) int64, the flat index
    into each unpadded (N, C) plane, equal to torch's `return_indices=True`. Without
    return_indices: y alone, and no int64 index is built (the cache keeps them as int32).
    """
    spatial = tuple(x.shape[-len(kernel_size) :])
    plan = max_pool_plan(spatial, kernel_size, stride, padding, dilation, ceil_mode)
    # -inf never beats a real element, not even a real -inf (torch max-pools integers too)
    lowest = -math.inf if x.is_floating_point() else torch.iinfo(x.dtype).min
    xp, taps, offsets = _pad(x, plan.lo, plan.hi, lowest), plan.taps, plan.offsets
    # flat indices fit int32 unless a padded plane is huge: half the memory traffic of int64
    kind = torch.int32 if math.prod(xp.shape[2:]) < 2**31 else torch.int64
    starts = _grid(plan.bases, torch.add, x, kind)  # (*out) flat index of each window's tap 0
    first = _grid(plan.first, torch.add, x, torch.int64)  # (*out) where torch's argmax starts
    start = starts + on_device(tuple(offsets), kind, x.device)[first]  # (*out)
    if x.is_floating_point() and not _can_read(x):
        # asking whether a NaN is there would wait for the device: the scan that handles one
        y, indices = _first_max_nan(xp, taps, starts, offsets, start)
    else:
        y, indices = _first_max(xp, taps, starts, offsets, start)
        if y.is_floating_point() and y.sum().isnan():  # a NaN in some window (or inf - inf)
            y, indices = _first_max_nan(xp, taps, starts, offsets, start)
        elif y.is_floating_point() and 1 in stride:
            # torch.maximum keeps its first operand at a +0.0 / -0.0 tie where it runs
            # elementwise (strided taps, tails) and its second where it vectorizes (a stride-1
            # tap's contiguous rows): zeros take the sign of x at torch's argmax (a hollow
            # window's index may lie past the plane: clamped, its -inf is no zero)
            planes, size = math.prod(x.shape[:2]), math.prod(spatial)  # explicit: any may be 0
            at = indices.expand(y.shape).reshape(planes, math.prod(plan.out))
            picked = x.reshape(planes, size).gather(1, at.clamp(max=max(size - 1, 0)))
            y = torch.where(y == 0, picked.view(y.shape), y)
    outputs = (y, indices.to(torch.int64)) if return_indices else y
    if not any(map(any, plan.hollow)):
        return outputs, MaxPoolCache(indices, tuple(x.shape), False)
    # torch's index of a hollow window lies past the input (or on the wrong element): route
    # its gradient to a slot one past the plane, dropped in backward
    hollow = _grid(plan.hollow, torch.logical_or, x, torch.bool)  # (*out)
    route = torch.where(hollow, math.prod(spatial), indices)
    return outputs, MaxPoolCache(route, tuple(x.shape), True)


def _first_max(xp, taps, starts, offsets, start):
    """Running max over the taps in row-major order with torch's argmax, for NaN-free windows.

    Returns y (N, C, *out) and each window's flat index `starts + offsets[t]` of its first max,
    counted from `start`, its first real tap (padding taps never move the max). The max only
    grows, so tap t moved it iff the new max differs from the old: a compare of contiguous
    buffers, not of a strided view. A later tap has a larger flat index, so the argmax is a
    running max of `moved * index`: vectorized, unlike a masked write. Wrong only where a
    window holds a NaN.
    """
    y = xp[taps[0]].clone(memory_format=torch.contiguous_format)  # (N, C, *out)
    indices = start.expand(y.shape).clone()
    y_new, moved = torch.empty_like(y), torch.empty_like(indices)
    for index, offset in zip(taps[1:], offsets[1:]):
        torch.maximum(y, xp[index], out=y_new)
        torch.ne(y_new, y, out=moved)  # 0 or 1
        moved *= starts + offset
        torch.maximum(indices, moved, out=indices)
        y, y_new = y_new, y
    return y, indices


def _first_max_nan(xp, taps, starts, offsets, start):
    """_first_max for windows holding a NaN, as torch: `value > max or isnan(value)` moves it.

    Ties keep the first max, a NaN wins and the last NaN wins.
    """
    y, indices = xp[taps[0]], start
    for index, offset in zip(taps[1:], offsets[1:]):
        value = xp[index]
        moved = (value > y) | value.isnan()
        y = torch.where(moved, value, y)
        indices = torch.where(moved, starts + offset, indices)
    return y.contiguous(), indices.expand(y.shape).contiguous()


def max_pool_backward(cache: MaxPoolCache, grad_y, needs):
    """grad_x: each grad_y goes to its window's argmax (a scatter-add per chunk of planes)."""
    if not needs[0]:
        return (None,)
    planes, size = math.prod(cache.shape[:2]), math.prod(cache.shape[2:])  # N * C, plane
    grad_x = grad_y.new_zeros(planes, size + cache.hollow)  # (N * C, prod(spatial) [+ 1])
    windows = (planes, math.prod(grad_y.shape[2:]))  # (N * C, prod(out))
    # int32 indices as they are, no transient int64 copy (it was widened 4 MiB at a time): the
    # scatter as fast, LeNet's pool2 0.081 against 0.085 ms, VGG16's pool1 at batch 8 143
    # against 146 ms (one thread, measured here); the step's peak memory unchanged
    grad_x.scatter_add_(1, cache.route.reshape(windows), grad_y.reshape(windows))
    grad_x = grad_x[:, :size] if cache.hollow else grad_x
    return (grad_x.reshape(cache.shape),)


# --- Average pooling ------------------------------------------------------------------------------


class AvgPoolCache(NamedTuple):
    divisor: torch.Tensor | int  # (*out) divisor of each window, or divisor_override
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
    spatial = tuple(x.shape[-len(kernel_size) :])
    plan = avg_pool_plan(spatial, kernel_size, stride, padding, ceil_mode, count_include_pad)
    xp, taps = _pad(x, plan.lo, plan.hi, 0.0), plan.taps
    # the window sums, from 0 as torch's (-0.0 + 0 is +0.0), half types in float32
    acc = torch.empty(xp[taps[0]].shape, dtype=_acc_dtype(x.dtype), device=x.device)
    torch.add(xp[taps[0]], 0, out=acc)
    for index in taps[1:]:
        acc += xp[index]
    if divisor_override is not None:
        divisor = divisor_override
    else:
        divisor = _grid(plan.counts, torch.mul, x, torch.int64).to(acc.dtype)  # exact: small ints
    y = acc / divisor
    if avg_pool_adds_into_zero(divisor_override, tuple(x.shape), x.stride()):
        y += 0
    y = y.to(x.dtype)
    return y, AvgPoolCache(divisor, tuple(xp.shape), plan.lo, spatial, taps)


def avg_pool_backward(cache: AvgPoolCache, grad_y, needs):
    """grad_x: each window spreads grad_y / divisor over its taps (padding then cropped).

    As torch's CPU kernel: the share g / divisor rounded once to the dtype (the divisor
    converted to the dtype first, as c10's Half / int64: 529 is 528 in bfloat16), then added
    window by window in row-major order (taps in reverse: a later tap belongs to an earlier
    window), in the dtype.
    """
    if not needs[0]:
        return (None,)
    divisor = cache.divisor
    if not isinstance(divisor, torch.Tensor):  # divisor_override, an int: as a tensor of the
        divisor = on_device((divisor,), grad_y.dtype, grad_y.device)  # dtype, converted too
    share = grad_y / divisor.to(grad_y.dtype)  # rounded once, as torch's
    grad_xp = share.new_zeros(cache.padded)
    for index in reversed(cache.taps):
        grad_xp[index] += share
    return (_crop(grad_xp, cache.lo, cache.spatial),)


# --- Adaptive average pooling ---------------------------------------------------------------------


class AdaptiveAvgPoolCache(NamedTuple):
    spatial: tuple[int, ...]  # the input's spatial shape


def adaptive_avg_pool_forward(x, *, output_size):
    """Mean over torch's adaptive windows, bit for bit torch's CPU kernels.

    As `torch.nn.functional.adaptive_avg_pool1d`, `adaptive_avg_pool2d` and `adaptive_avg_pool3d`.

    Shapes: x (N, C, *spatial) -> y (N, C, *output_size). Each window is summed tap by tap in
    torch's row-major order and divided by its length one dim at a time (`_torch_order_forward`),
    so where +1e30 and -1e30 cancel, or NaN and inf meet, the result is torch's own. An output
    of all ones is torch's shortcut, one mean.
    """
    spatial = tuple(x.shape[-len(output_size) :])
    cache = AdaptiveAvgPoolCache(spatial)
    if all(o == 1 for o in output_size) and x.numel():
        return x.mean(dim=tuple(range(-len(spatial), 0)), keepdim=True), cache
    return _torch_order_forward(x, tuple(output_size)), cache


def adaptive_avg_pool_backward(cache: AdaptiveAvgPoolCache, grad_y, needs):
    """grad_x: each window's share of grad_y added into its members, in torch's order."""
    if not needs[0]:
        return (None,)
    spatial = cache.spatial
    check_adaptive_grad(tuple(grad_y.shape), len(spatial))
    out = tuple(grad_y.shape[-len(spatial) :])
    if all(o == 1 for o in out):  # the mean's gradient: one division (in float32 for halves)
        share = grad_y / math.prod(spatial)
        return (share.expand(*grad_y.shape[: -len(out)], *spatial).contiguous(),)
    return (_torch_order_backward(grad_y, spatial),)


def _axis_tensor(values: tuple, axis: int, d: int, dtype, like: torch.Tensor) -> torch.Tensor:
    """A per-window (or per-position) vector along spatial axis `axis` of d, to broadcast."""
    return on_device(values, dtype, like.device).reshape([-1 if a == axis else 1 for a in range(d)])


def _in_order(a: torch.Tensor, per_dim: tuple):
    """`shared.steps_in_order` with torch's gather (`index_select`) and masks, on a's device."""
    d = len(per_dim)
    return steps_in_order(
        a,
        per_dim,
        lambda valid, level: _axis_tensor(valid, level, d, torch.bool, a),
        lambda g, axis, index: g.index_select(axis, on_device(index, torch.int64, a.device)),
    )


def _torch_order_forward(x: torch.Tensor, out: tuple) -> torch.Tensor:
    """torch's CPU forward, bit for bit: each window summed in row-major order and divided by
    its length one dim at a time, in the dtype; float16 and bfloat16 in float32, rounded once,
    for 1-d and 2-d, in the dtype, rounded at every step, for 3-d (torch 2.14's kernels,
    measured)."""
    d, spatial = len(out), tuple(x.shape[-len(out) :])
    wide = x if d == 3 else x.to(_acc_dtype(x.dtype))
    acc = wide.new_zeros((*x.shape[:-d], *out))
    blocks = disjoint_blocks(spatial, out)
    if blocks is not None:  # equal disjoint windows: taps first
        for tap in _disjoint_taps(wide, blocks):  # one contiguous add per tap, in torch's order
            acc += tap.reshape(acc.shape)
    else:
        for gathered, valid in _in_order(wide, adaptive_window_taps(spatial, out)):
            acc += gathered if valid is None else torch.where(valid, gathered, 0)
    for a, lengths in enumerate(adaptive_lengths(spatial, out)):
        acc = acc / _axis_tensor(lengths, a, d, torch.int64, x)
    return acc.to(x.dtype)


def _disjoint_taps(x: torch.Tensor, blocks: tuple) -> torch.Tensor:
    """(prod(window), *lead, *out): x's equal disjoint windows (`windows.disjoint_blocks`) with
    their taps first, row-major, by one copy: each tap of every window is contiguous. The
    strided views instead read all of x once per tap (56x56 -> 7x7: 17 ms against 2 ms)."""
    d = len(blocks) // 2
    lead, first = tuple(x.shape[:-d]), x.dim() - d
    taps, windows = [first + 2 * a + 1 for a in range(d)], [first + 2 * a for a in range(d)]
    split = x.reshape(*lead, *blocks).permute(taps + list(range(first)) + windows)
    return split.reshape(math.prod(blocks[1::2]), -1)


def _torch_order_backward(grad_y: torch.Tensor, spatial: tuple) -> torch.Tensor:
    """torch's CPU backward, bit for bit: each window's share g / k_1 / k_2 ... divided in the
    dtype (each length converted to it first, as c10's Half / int64), added into grad_x in the
    dtype window by window in row-major order."""
    d, out = len(spatial), tuple(grad_y.shape[-len(spatial) :])
    share = grad_y
    for a, lengths in enumerate(adaptive_lengths(spatial, out)):
        share = share / _axis_tensor(lengths, a, d, torch.int64, grad_y)  # rounded each time
    lead = tuple(grad_y.shape[:-d])
    blocks = disjoint_blocks(spatial, out)
    if blocks is not None:  # equal disjoint windows: one share each
        windows = tuple(v for o in out for v in (o, 1))  # broadcast over the taps
        # 0 + share, as torch adds it into zeros: -0.0 comes out +0.0
        grad_x = share.reshape(*lead, *windows).expand(*lead, *blocks) + 0
        return grad_x.reshape(*lead, *spatial)
    grad_x = grad_y.new_zeros((*lead, *spatial))
    for gathered, valid in _in_order(share, adaptive_input_windows(spatial, out)):
        grad_x += gathered if valid is None else torch.where(valid, gathered, 0)
    return grad_x
