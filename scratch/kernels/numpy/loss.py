"""Loss kernels (NumPy backend): cross entropy, NLL, MSE, binary cross entropy (+ with logits).

Class scores put classes on axis 1, or axis 0 when unbatched: x (N, C, d1, ..., dk) or (C,).
Every loss ends in `_reduce`: 'none' keeps the per-element loss, 'sum' adds it up, 'mean'
divides the sum by torch's denominator (the summed weight of the non-ignored targets for
class-index targets, the element count otherwise). torch's NaN / inf come silently ('mean'
over nothing, log(0) at BCE's clamp, exp overflow at logits of -1e4): like every kernel of this
backend these run under `np.errstate(all="ignore")` (scratch/kernels/numpy/__init__.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from scratch.kernels import shared
from scratch.kernels.shared import along_classes, bce_chain, class_axis, mse_denominator, weighted

__all__ = [
    "cross_entropy_forward",
    "cross_entropy_backward",
    "nll_loss_forward",
    "nll_loss_backward",
    "mse_loss_forward",
    "mse_loss_backward",
    "binary_cross_entropy_forward",
    "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits_forward",
    "binary_cross_entropy_with_logits_backward",
]


def _reduce(loss, reduction: str, denominator):
    """torch's reduction of a per-element loss; 'mean' divides the sum by `denominator`. A
    float16 loss (a loss torch computes in it) is summed and divided in float32, rounded once."""
    if reduction == "none":
        return loss
    total = loss.sum(dtype=np.promote_types(loss.dtype, np.float32))
    return (total if reduction == "sum" else total / denominator).astype(loss.dtype)


def _sum_to(grad, shape):
    """Sum a broadcast gradient back to an operand's `shape` (autograd's `sum_to_size`)."""
    axes = shared.broadcast_axes(grad.shape, shape)
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad


def _class_targets(target, weight, ignore_index: int, cdim: int, dtype) -> shared.ClassTargets:
    """What both losses over class indices need: safe indices, the mask, w[t], its sum."""
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    if weight is not None and weight.size == 0:  # no classes: every target is ignored
        weight = None
    w_t = np.where(valid, weight[safe], 0) if weight is not None else valid.astype(dtype)
    return shared.ClassTargets(_at_targets(safe, cdim), valid, w_t, w_t.sum(dtype=dtype))


def _at_targets(safe, cdim: int) -> tuple:
    """The index of each target's entry in an (N, C, d1, ...) array, so a[index] reads them
    (N, d1, ...) and a[index] = v writes them: `safe` on the class axis, open grids on the
    others. What take_along_axis builds per call, built once (LeNet's (64, 10) loss: take
    4.3 -> 1.0 us, take-and-put 9.2 -> 2.4 us, one thread, measured here)."""
    if cdim == 0:  # unbatched (C,): one target
        return (safe,)
    ndim = safe.ndim
    grids = [np.arange(size).reshape((1,) * d + (size,) + (1,) * (ndim - d - 1))
             for d, size in enumerate(safe.shape)]  # fmt: skip
    return (grids[0], safe, *grids[1:])


def _on_class_axis(a, cdim: int):
    """(N, d1, ...) -> (N, 1, d1, ...): a size-1 class axis to broadcast along (a reshape:
    np.expand_dims costs about 2 us a call, measured here)."""
    shape = np.shape(a)
    return np.reshape(a, shape[:cdim] + (1,) + shape[cdim:])


def _neg_pick(a, targets: shared.ClassTargets, cdim: int):
    """-a[i, t_i] weight[t_i], t_i on the class axis, as torch's NLL; +0.0 at ignored targets
    (torch writes 0 there), even if a is -inf."""
    if a.shape[cdim] == 0:  # no classes (every target ignored): nothing to pick
        return np.zeros_like(targets.w_t)
    picked = targets.w_t * np.where(targets.valid, -a[targets.index], 0)  # (N, d1, ...)
    return picked + 0 if cdim == 0 else picked  # unbatched: torch sums from 0 (-0.0 -> +0.0)


def _class_grad_scale(g, targets: shared.ClassTargets, reduction: str):
    """(N, d1, ...): dL/d(per-sample loss), 0 at ignored targets even when 1/total is inf."""
    scaled = g / targets.total if reduction == "mean" else g
    return np.where(targets.valid, scaled, 0)


def _log_softmax(x, cdim: int):
    # Subtracting the max keeps exp() <= 1: logits of +-1e4 give exact log-probabilities.
    logp = x - x.max(axis=cdim, keepdims=True, initial=-np.inf)  # C may be 0
    logp -= np.log(np.exp(logp).sum(axis=cdim, keepdims=True))
    return logp


class CrossEntropyCache(NamedTuple):
    logp: np.ndarray  # (N, C, d1, ...) log_softmax(x) over the class axis
    targets: shared.ClassTargets | np.ndarray  # class indices, or smoothed probabilities
    weight: np.ndarray | None  # (C, 1, ..., 1), broadcasting along the class axis
    label_smoothing: float
    reduction: str
    cdim: int  # the class axis: 1, or 0 when unbatched


def cross_entropy_forward(x, target, weight, *, ignore_index, reduction, label_smoothing):
    """log_softmax + NLL with label smoothing, as `torch.nn.functional.cross_entropy`.

    Shapes: x (N, C, d1, ...) or (C,); target int64 (N, d1, ...) or () (class indices), or
    float like x (probabilities); weight (C,) or None -> loss (N, d1, ...) or ().
    """
    cdim = class_axis(x.ndim)
    n_classes, eps, n_rows = x.shape[cdim], label_smoothing, shared.rows(x.shape, cdim)
    logp = _log_softmax(x, cdim)
    w = None if weight is None else along_classes(weight, x.ndim, cdim)
    if target.dtype.kind == "f":  # class probabilities
        # torch: smoothed target t (1 - eps) + eps / C; 'mean' divides by the sample count
        t = target * (1 - eps) + eps / max(n_classes, 1) if eps > 0 else target
        loss = _reduce(-(weighted(logp, w) * t).sum(axis=cdim), reduction, n_rows)
        return loss, CrossEntropyCache(logp, t, w, eps, reduction, cdim)
    targets = _class_targets(target, weight, ignore_index, cdim, x.dtype)
    loss = _reduce(_neg_pick(logp, targets, cdim), reduction, targets.total)
    if eps > 0:
        # torch: (1 - eps) nll + eps / C * smooth, both parts over the same denominator
        # C = 0: eps / C is inf, as in torch, and the empty smoothing sum times it is NaN
        spread = eps / n_classes if n_classes else math.inf
        smooth = np.where(targets.valid, -weighted(logp, w).sum(axis=cdim), 0)
        loss = (1 - eps) * loss + _reduce(smooth, reduction, targets.total) * spread
    return loss, CrossEntropyCache(logp, targets, w, eps, reduction, cdim)


def cross_entropy_backward(cache: CrossEntropyCache, grad_y, needs):
    """With loss = -sum q * logp: grad_x = (sum_c q) softmax - q, times dL/d(sample loss)."""
    logp, targets, w, eps, reduction, cdim = cache
    if isinstance(targets, shared.ClassTargets):
        return (_class_ce_grad(cache, grad_y) if needs[0] else None), None, None
    scale = grad_y / shared.rows(logp.shape, cdim) if reduction == "mean" else grad_y
    c = np.expand_dims(scale, cdim) if reduction == "none" else scale  # (N, 1, d1, ...) or ()
    q = weighted(targets, w)  # (N, C, d1, ...)
    grad_x = np.exp(logp) * (q.sum(axis=cdim, keepdims=True) * c) - q * c if needs[0] else None
    grad_t = None
    if needs[1]:
        grad_t = -(1 - eps) * weighted(logp, w) * c
    return grad_x, grad_t, None


def _class_ce_grad(cache: CrossEntropyCache, grad_y):
    # q_ic = (1 - eps) w_t_i [c == t_i] + eps / C w_c, so sum_c q_ic = (1 - eps) w_t_i + eps/C sum w
    logp, targets, w, eps, reduction, cdim = cache
    n_classes = logp.shape[cdim]
    c = _class_grad_scale(grad_y, targets, reduction)  # (N, d1, ...)
    if eps == 0 and n_classes:
        # torch's two steps: NLL's gradient h = -w_t c at the target (0 elsewhere), then
        # log_softmax's g - softmax * sum(g), the sum h + 0: the same values, and NaN, inf and
        # signed zeros where torch has them (an inf upstream gradient: NaN at the target only)
        hit = np.where(targets.valid, -targets.w_t * c, 0)  # (N, d1, ...)
        total = _on_class_axis(hit + 0, cdim)
        grad_x = np.exp(logp)
        grad_x *= total  # softmax * sum(g)
        at_target = hit - grad_x[targets.index]
        np.subtract(0, grad_x, out=grad_x)
        grad_x[targets.index] = at_target
        return grad_x
    hit = (1 - eps) * targets.w_t * c
    spread = eps if w is None else eps / max(n_classes, 1) * w.sum()
    c = _on_class_axis(c, cdim)  # (N, 1, d1, ...)
    grad_x = np.exp(logp)  # softmax (N, C, d1, ...), ours to update in place
    grad_x *= _on_class_axis(hit, cdim) + spread * c
    # minus hit at the target class (an ignored sample points at class 0 with hit = 0)
    if n_classes:
        grad_x[targets.index] -= hit
    if eps > 0:
        grad_x -= eps / max(n_classes, 1) * weighted(c, w)
    return grad_x


class NllLossCache(NamedTuple):
    targets: shared.ClassTargets
    shape: tuple[int, ...]  # the input's shape
    reduction: str
    cdim: int


def nll_loss_forward(x, target, weight, *, ignore_index, reduction):
    """Negative log-likelihood of log-probabilities, as `torch.nn.functional.nll_loss`.

    Shapes: x (N, C, d1, ...) or (C,); target int64 (N, d1, ...) or (); weight (C,) or None
    -> loss (N, d1, ...) or () for 'none', else ().
    """
    cdim = class_axis(x.ndim)
    targets = _class_targets(target, weight, ignore_index, cdim, x.dtype)
    loss = _reduce(_neg_pick(x, targets, cdim), reduction, targets.total)
    return loss, NllLossCache(targets, x.shape, reduction, cdim)


def nll_loss_backward(cache: NllLossCache, grad_y, needs):
    targets, shape, reduction, cdim = cache
    if not needs[0]:
        return None, None, None
    c = _class_grad_scale(grad_y, targets, reduction)  # (N, d1, ...)
    # Only the target entries get a gradient, as torch: elsewhere 0, even where c is inf.
    grad_x = np.zeros(shape, dtype=c.dtype)
    if shape[cdim]:  # no classes: an empty gradient
        # an ignored sample's safe index is class 0: +0.0 stays there, as torch leaves it
        grad_x[targets.index] = np.where(targets.valid, -targets.w_t * c, 0)
    return grad_x, None, None


class MseLossCache(NamedTuple):
    diff: np.ndarray  # x - target, broadcast
    weight: np.ndarray | None  # like x
    denominator: np.ndarray | int | None  # 'mean' only: numel, or sum(weight)
    x_shape: tuple[int, ...]
    target_shape: tuple[int, ...]


def mse_loss_forward(x, target, weight, *, reduction):
    """Squared error, optionally weighted, as `torch.nn.functional.mse_loss`.

    torch broadcasts x and target; with a weight, 'mean' is sum(w (x - t)^2) / sum(w).
    Shapes: x, target broadcastable; weight like x or None -> loss (broadcast shape) or ().
    """
    diff = x - target
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    denominator = mse_denominator(reduction, diff.shape, weight)
    cache = MseLossCache(diff, weight, denominator, x.shape, target.shape)
    return _reduce(loss, reduction, denominator), cache


def mse_loss_backward(cache: MseLossCache, grad_y, needs):
    diff, weight, denominator, x_shape, target_shape = cache
    grad_x = grad_t = None
    if needs[0]:
        grad_x = _sum_to(shared.mse_grad(diff, grad_y, weight, denominator), x_shape)
    if needs[1]:  # torch's own target gradient, from t - x = 0 - diff (+0.0 where x == t)
        grad_t = _sum_to(shared.mse_grad(0 - diff, grad_y, weight, denominator), target_shape)
    return grad_x, grad_t, None


class BceCache(NamedTuple):
    x: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None
    pos_weight: np.ndarray | None  # with logits only
    reduction: str


def binary_cross_entropy_forward(x, target, weight, *, reduction):
    """Binary cross entropy of probabilities, as `torch.nn.functional.binary_cross_entropy`.

    Shapes: x, target (*); weight broadcastable to target or None -> loss (*) or ().
    """
    # torch clamps each log at -100: x exactly 0 or 1 costs 100, not inf
    log_x = np.maximum(np.log(x), -100)
    log_1mx = np.maximum(np.log1p(-x), -100)
    loss = (target - 1) * log_1mx - target * log_x
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, loss.size), BceCache(x, target, weight, None, reduction)


def binary_cross_entropy_backward(cache: BceCache, grad_y, needs):
    x, target = cache.x, cache.target
    grad_x = grad_t = None
    if needs[0]:
        # the floor keeps x = 0 or 1 finite, as torch (not the clamped log's true 0 slope)
        local = (x - target) / np.maximum((1 - x) * x, shared.BCE_EPSILON)
        grad_x = bce_chain(local, grad_y, cache)
    if needs[1]:
        grad_t = bce_chain(-np.log(x / (1 - x)), grad_y, cache)  # -logit(x)
    return grad_x, grad_t, None


def _log_sigmoid(x):
    # min(x, 0) - log1p(exp(-|x|)): exp never overflows, so |x| = 1e4 stays exact
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits_forward(x, target, weight, pos_weight, *, reduction):
    """Sigmoid + BCE, one stable formula, as `torch.nn.functional.binary_cross_entropy_with_logits`.

    Shapes: x, target (*); weight and pos_weight broadcastable to it or None -> loss (*) or ().
    """
    log_sig = _log_sigmoid(x)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * x - log_sig
    if weight is not None:
        loss = loss * weight
    cache = BceCache(x, target, weight, pos_weight, reduction)
    return _reduce(loss, reduction, loss.size), cache


def binary_cross_entropy_with_logits_backward(cache: BceCache, grad_y, needs):
    x, target, pos_weight = cache.x, cache.target, cache.pos_weight
    grad_x = grad_t = None
    if needs[0]:
        sig = 1 / (1 + np.exp(-x))  # exp overflows to inf at x = -1e4: sig = 0, exactly
        if pos_weight is None:
            local = sig - target
        else:
            pt = pos_weight * target
            local = (pt + 1 - target) * sig - pt
        grad_x = bce_chain(local, grad_y, cache)
    if needs[1]:
        if pos_weight is None:
            local = -x
        else:
            local = _log_sigmoid(-x) - _log_sigmoid(x) * pos_weight
        grad_t = bce_chain(local, grad_y, cache)
    return grad_x, grad_t, None, None
