"""Backend-free pieces both backends' kernels share: axes, shapes and option handling.

Only what needs no array library: integer arithmetic on shapes, and operators every array type
has (`*`, `/`, `.reshape`), so one definition serves NumPy arrays and tensors alike.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scratch.kernels import Array, Ints
from scratch.kernels.windows import (
    Step,
    avg_pool_counts,
    first_real_taps,
    flat_index_parts,
    hollow_windows,
    pool_geometry,
    tap_slices,
)

__all__ = [
    "is_one_of",
    "linear_keep",
    "steps_in_order",
    "BCE_EPSILON",
    "AvgPoolPlan",
    "avg_pool_adds_into_zero",
    "ClassTargets",
    "MaxPoolPlan",
    "avg_pool_plan",
    "max_pool_plan",
    "along_classes",
    "batch_norm_needs",
    "bce_chain",
    "broadcast_axes",
    "check_adaptive_grad",
    "channels_last_dense",
    "class_axis",
    "l2_penalty_backward",
    "l2_penalty_forward",
    "mse_denominator",
    "mse_grad",
    "rows",
    "weighted",
]

# torch's `constexpr float EPSILON = 1e-12` floors x (1 - x): a float32, so not 1e-12 in float64
BCE_EPSILON = 9.999999960041972e-13


def class_axis(ndim: int) -> int:
    """The class axis of class scores: 1 for (N, C, d1, ...), 0 for an unbatched (C,)."""
    return 0 if ndim == 1 else 1


class ClassTargets(NamedTuple):
    """What both losses over class indices (cross entropy, NLL) keep of their targets."""

    # each sample's target class, ignored ones -> 0: torch (N, 1, d1, ...) for gather/scatter,
    # NumPy the index tuple of the targets' entries (numpy/loss.py's _at_targets)
    index: Array | tuple
    valid: Array  # (N, d1, ...) bool: target != ignore_index
    w_t: Array  # (N, d1, ...): weight[target], 0 where ignored
    total: Array  # (): sum of w_t, the 'mean' denominator (torch's total_weight)


def broadcast_axes(shape: Ints, operand: Ints) -> tuple[int, ...]:
    """The axes of a broadcast result `shape` to sum for a gradient of `operand`'s shape."""
    lead = len(shape) - len(operand)
    return tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(operand) if n == 1 and shape[lead + i] != 1
    )


def rows(shape: Ints, cdim: int) -> int:
    """The number of rows (all dims but the class dim): numel // C fails for C = 0."""
    return math.prod(tuple(shape[:cdim]) + tuple(shape[cdim + 1 :]))


def along_classes(v, ndim: int, cdim: int):
    """A (C,) vector as (C, 1, ..., 1), to broadcast along the class axis of an ndim-d array."""
    return v.reshape(tuple(v.shape) + (1,) * (ndim - cdim - 1))


def weighted(a, w):
    """a times the weights w, or a itself when unweighted (w is None)."""
    return a if w is None else a * w


def mse_denominator(reduction: str, shape: tuple[int, ...], weight):
    """MSE's 'mean' denominator: the element count, or sum(weight) when weighted; else None."""
    if reduction != "mean":
        return None
    return math.prod(shape) if weight is None else weight.sum()


def mse_grad(diff, grad_y, weight, denominator):
    """MSE's gradient before any broadcast sum: 2 diff g, times the weight, over the 'mean'
    denominator (a zero total weight gives torch's inf / nan). diff is x - t for the input's,
    t - x for the target's (as torch's own, not its negation: +0.0 where x == t)."""
    grad = 2 * diff * grad_y
    if weight is not None:
        grad = grad * weight
    return grad if denominator is None else grad / denominator


def bce_chain(local, grad_y, cache):
    """torch's order for a BCE grad: local derivative times grad_y, times the cache's weight,
    over the input's numel for 'mean' (`cache` a BceCache of either backend)."""
    grad = weighted(local * grad_y, cache.weight)
    if cache.reduction == "mean":
        grad = grad / math.prod(cache.x.shape)
    return grad


def batch_norm_needs(needs, has_weight: bool, has_bias: bool, training: bool):
    """Which grads batch norm's backward computes: (x, weight, bias, project), `project` when
    grad_x goes through the batch statistics (training)."""
    need_x = needs[0]
    return need_x, has_weight and needs[1], has_bias and needs[2], training and need_x


def channels_last_dense(shape: Ints, strides: Ints) -> bool:
    """Whether element `strides` lay a 4-d or 5-d `shape` out densely in channels-last order
    (N, *spatial, C), as torch's `is_contiguous(memory_format=channels_last[_3d])`: dims of
    size 1 may have any stride."""
    if len(shape) not in (4, 5):
        return False
    expected = 1
    for d in (1, *range(len(shape) - 1, 1, -1), 0):  # innermost first: C, spatial, N
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def avg_pool_adds_into_zero(divisor_override: int | None, shape: Ints, strides: Ints) -> bool:
    """Whether torch's avg-pool writes `0 + sum / divisor` (its channels-first kernels, which
    add each mean into a zeroed output) where only a negative divisor_override makes that
    differ from `sum / divisor`: +0.0 for a zero sum, not -0.0. Its 2-d channels-last kernel
    (a channels-last 4-d input that is not also contiguous) writes the quotient itself."""
    if divisor_override is None or divisor_override >= 0:
        return False
    contiguous = all(
        n == 1 or s == math.prod(shape[d + 1 :]) for d, (n, s) in enumerate(zip(shape, strides))
    )
    return contiguous or not (len(shape) == 4 and channels_last_dense(shape, strides))


class MaxPoolPlan(NamedTuple):
    """Every integer of one max pooling (kernels.windows has the meaning of each part)."""

    out: tuple[int, ...]  # output size per dim
    lo: tuple[int, ...]  # padding before, per dim
    hi: tuple[int, ...]  # padding after, per dim (room for a last ceil-mode window)
    taps: list[tuple]  # tap_slices: tap t of every window in the padded input
    first: list  # first_real_taps: per dim, where torch's argmax starts
    bases: list  # flat_index_parts: flat index of each window's tap 0, per dim ...
    offsets: list[int]  # ... plus each tap's offset
    hollow: list[list[bool]]  # hollow_windows: per dim, windows that miss the input
    disjoint: bool  # no padded element lies in two windows: backward may assign, not add


def max_pool_plan(
    spatial: Ints, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, ceil_mode: bool
) -> MaxPoolPlan:
    """The geometry of `max_pool_forward` on an input of spatial size `spatial`."""
    out, lo, hi = pool_geometry(spatial, kernel, stride, padding, dilation, ceil_mode)
    args = (kernel, stride, lo, dilation, out)
    bases, offsets = flat_index_parts(spatial, *args)
    disjoint = all(
        o == 1 or k == 1 or s >= dl * (k - 1) + 1
        for k, s, dl, o in zip(kernel, stride, dilation, out)
    )
    taps = tap_slices(kernel, stride, dilation, out)
    hollow = hollow_windows(spatial, *args)
    return MaxPoolPlan(out, lo, hi, taps, first_real_taps(*args), bases, offsets, hollow, disjoint)


class AvgPoolPlan(NamedTuple):
    """Every integer of one average pooling (kernels.windows has the meaning of each part)."""

    out: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    taps: list[tuple]  # tap_slices: tap t of every window in the padded input
    counts: list[list[int]]  # avg_pool_counts: per dim, each window's factor of the divisor


def avg_pool_plan(
    spatial: Ints, kernel: Ints, stride: Ints, padding: Ints, ceil_mode: bool, count_pad: bool
) -> AvgPoolPlan:
    """The geometry of `avg_pool_forward`; `count_pad` is torch's count_include_pad."""
    ones = (1,) * len(kernel)
    out, lo, hi = pool_geometry(spatial, kernel, stride, padding, ones, ceil_mode)
    windows = zip(spatial, kernel, stride, padding, out)
    counts = [avg_pool_counts(*window, count_pad) for window in windows]
    return AvgPoolPlan(out, lo, hi, tap_slices(kernel, stride, ones, out), counts)


class L2PenaltyCache(NamedTuple):
    w: Array  # the penalised array
    lam: float


def check_adaptive_grad(shape: Ints, d: int) -> None:
    """torch refuses an adaptive average pool's backward when an output dim is empty (its
    forward gives the empty output): so do we, with its RuntimeError."""
    for i in range(len(shape) - d, len(shape)):
        if shape[i] == 0:
            raise RuntimeError(
                f"adaptive_avg_pool{d}d_backward(): Expected grad_output to have non-zero size "
                f"for non-batch dimensions, but grad_output has sizes {list(shape)} with "
                f"dimension {i} being empty"
            )


def l2_penalty_forward(w, *, lam: float):
    """lam * sum(w * w), the explicit regularizer term of a loss (`scratch train --l2`).

    Shapes: w any -> (). Operators only, so this one pair is both backends' kernel.
    """
    return lam * (w * w).sum(), L2PenaltyCache(w, lam)


def l2_penalty_backward(cache: L2PenaltyCache, grad_y, needs):
    """d/dw lam * sum(w^2) = 2 lam w, times the incoming scalar gradient."""
    return (grad_y * (2 * cache.lam) * cache.w if needs[0] else None,)


def steps_in_order(a, per_dim: tuple[tuple[Step, ...], ...], mask, gather):
    """(gathered, valid) of each step of a windowed sum (`windows.Step`s per dim), in torch's
    row-major order: `a` read at every target's position for the step, by one `gather(g, axis,
    index)` per dim (shared by the steps after it; a strided view where the positions are
    evenly spaced), and where the targets have the step, `mask(valid, level)` of each dim
    combined by & (None: all do). The backends pass their own gather and mask."""
    d = len(per_dim)

    def walk(g, valid, level):
        if level == d:
            yield g, valid
            return
        for step in per_dim[level]:
            m = valid
            if not all(step.valid):
                v = mask(step.valid, level)
                m = v if m is None else m & v
            evenly = step.evenly  # equal windows: a view, no gather
            if evenly is None:
                g_next = gather(g, g.ndim - d + level, step.index)
            else:
                g_next = g[(Ellipsis, evenly) + (slice(None),) * (d - 1 - level)]
            yield from walk(g_next, m, level + 1)

    return walk(a, None, 0)


def linear_keep(cache, needs):
    """A linear cache (x, weight, bias_shape) as its backward reads it for `needs` (x, W, b):
    x for dW alone, W for grad_x alone. torch saves no more: an in-place change of x after a
    linear whose weight is frozen is no error there, and x may be freed before backward."""
    if needs[0] and needs[1]:  # the common case, at no cost (_replace takes ~1.5 us)
        return cache
    x, weight, bias_shape = cache
    return type(cache)(x if needs[1] else None, weight if needs[0] else None, bias_shape)


def is_one_of(a, items) -> bool:
    """Whether `a` is one of `items` by identity (`in` would compare arrays' values); a loop,
    not any(generator): half the cost, paid on every output."""
    for item in items:
        if item is a:
            return True
    return False
