"""Loss kernels (torch backend): cross entropy, NLL, MSE, binary cross entropy (+ with logits).

Class scores put classes on axis 1, or axis 0 when unbatched: x (N, C, d1, ..., dk) or (C,).
Every loss ends in `_reduce`: 'none' keeps the per-element loss, 'sum' adds it up, 'mean'
divides the sum by torch's denominator (the summed weight of the non-ignored targets for
class-index targets, the element count otherwise).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

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
    """torch's reduction of a per-element loss; 'mean' divides the sum by `denominator`. A half
    loss (a loss torch computes in it) is summed and divided in float32, rounded once."""
    if reduction == "none":
        return loss
    total = loss.sum(dtype=torch.promote_types(loss.dtype, torch.float32))
    return (total if reduction == "sum" else total / denominator).to(loss.dtype)


def _sum_to(grad, shape):
    """Sum a broadcast gradient back to an operand's `shape` (autograd's `sum_to_size`)."""
    return grad.sum_to_size(shape) if grad.shape != shape else grad


def _class_targets(target, weight, ignore_index: int, cdim: int, dtype) -> shared.ClassTargets:
    """What both losses over class indices need: safe indices, the mask, w[t], its sum."""
    valid = target != ignore_index
    safe = torch.where(valid, target, 0)
    if weight is not None and weight.numel() == 0:  # no classes: every target is ignored
        weight = None
    w_t = torch.where(valid, weight[safe], 0) if weight is not None else valid.to(dtype)
    return shared.ClassTargets(safe.unsqueeze(cdim), valid, w_t, w_t.sum())


def _neg_pick(a, targets: shared.ClassTargets, cdim: int):
    """-a[i, t_i] weight[t_i], t_i on the class axis, as torch's NLL; +0.0 at ignored targets
    (torch writes 0 there), even if a is -inf."""
    if a.shape[cdim] == 0:  # no classes (every target ignored): nothing to pick
        return torch.zeros_like(targets.w_t)
    picked = torch.gather(a, cdim, targets.index).squeeze(cdim)  # (N, d1, ...)
    picked = targets.w_t * torch.where(targets.valid, -picked, 0)
    return picked + 0 if cdim == 0 else picked  # unbatched: torch sums from 0 (-0.0 -> +0.0)


def _class_grad_scale(g, targets: shared.ClassTargets, reduction: str, cdim: int):
    """(N, 1, d1, ...): dL/d(per-sample loss), 0 at ignored targets even when 1/total is inf."""
    scaled = g / targets.total if reduction == "mean" else g
    return torch.where(targets.valid, scaled, 0).unsqueeze(cdim)


def _log_softmax(x, cdim: int):
    # Subtracting the max keeps exp() <= 1: logits of +-1e4 give exact log-probabilities.
    # C may be 0: amax refuses an empty dim, and any value does for no classes
    logp = x - (x.amax(dim=cdim, keepdim=True) if x.shape[cdim] else x.sum(cdim, keepdim=True))
    return logp.sub_(torch.log(torch.exp(logp).sum(dim=cdim, keepdim=True)))


class CrossEntropyCache(NamedTuple):
    logp: torch.Tensor  # (N, C, d1, ...) log_softmax(x) over the class axis
    targets: shared.ClassTargets | torch.Tensor  # class indices, or smoothed probabilities
    weight: torch.Tensor | None  # (C, 1, ..., 1), broadcasting along the class axis
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
    if target.is_floating_point():
        # torch: smoothed target t (1 - eps) + eps / C; 'mean' divides by the sample count
        t = target * (1 - eps) + eps / max(n_classes, 1) if eps > 0 else target
        loss = _reduce(-(weighted(logp, w) * t).sum(dim=cdim), reduction, n_rows)
        return loss, CrossEntropyCache(logp, t, w, eps, reduction, cdim)
    targets = _class_targets(target, weight, ignore_index, cdim, x.dtype)
    loss = _reduce(_neg_pick(logp, targets, cdim), reduction, targets.total)
    if eps > 0:
        # torch: (1 - eps) nll + eps / C * smooth, both parts over the same denominator
        # C = 0: eps / C is inf, as in torch, and the empty smoothing sum times it is NaN
        spread = eps / n_classes if n_classes else math.inf
        smooth = torch.where(targets.valid, -weighted(logp, w).sum(dim=cdim), 0)
        loss = (1 - eps) * loss + _reduce(smooth, reduction, targets.total) * spread
    return loss, CrossEntropyCache(logp, targets, w, eps, reduction, cdim)


def cross_entropy_backward(cache: CrossEntropyCache, grad_y, needs):
    """With loss = -sum q * logp: grad_x = (sum_c q) softmax - q, times dL/d(sample loss)."""
    logp, targets, w, eps, reduction, cdim = cache
    if isinstance(targets, shared.ClassTargets):
        return (_class_ce_grad(cache, grad_y) if needs[0] else None), None, None
    scale = grad_y / shared.rows(logp.shape, cdim) if reduction == "mean" else grad_y
    c = scale.unsqueeze(cdim) if reduction == "none" else scale  # (N, 1, d1, ...) or ()
    q = weighted(targets, w)  # (N, C, d1, ...)
    grad_x = torch.exp(logp) * (q.sum(dim=cdim, keepdim=True) * c) - q * c if needs[0] else None
    grad_t = None
    if needs[1]:
        grad_t = -(1 - eps) * weighted(logp, w) * c
    return grad_x, grad_t, None


def _class_ce_grad(cache: CrossEntropyCache, grad_y):
    # q_ic = (1 - eps) w_t_i [c == t_i] + eps / C w_c, so sum_c q_ic = (1 - eps) w_t_i + eps/C sum w
    logp, targets, w, eps, reduction, cdim = cache
    n_classes = logp.shape[cdim]
    c = _class_grad_scale(grad_y, targets, reduction, cdim)  # (N, 1, d1, ...)
    if eps == 0 and n_classes:
        # torch's two steps: NLL's gradient h = -w_t c at the target (0 elsewhere), then
        # log_softmax's g - softmax * sum(g), the sum h + 0: the same values, and NaN, inf and
        # signed zeros where torch has them (an inf upstream gradient: NaN at the target only)
        valid = targets.valid.unsqueeze(cdim)
        hit = torch.where(valid, -targets.w_t.unsqueeze(cdim) * c, 0)  # (N, 1, d1, ...)
        grad_x = torch.exp(logp)
        grad_x *= hit + 0  # softmax * sum(g)
        at_target = hit - torch.gather(grad_x, cdim, targets.index)
        return torch.sub(0, grad_x, out=grad_x).scatter_(cdim, targets.index, at_target)
    hit = (1 - eps) * targets.w_t.unsqueeze(cdim) * c
    spread = eps if w is None else eps / max(n_classes, 1) * w.sum()
    grad_x = torch.exp(logp)  # softmax (N, C, d1, ...), ours to update in place
    grad_x *= hit + spread * c
    # minus hit at the target class (an ignored sample points at class 0 with hit = 0)
    if n_classes:  # no classes: an empty gradient
        grad_x.scatter_add_(cdim, targets.index, -hit)
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
    return loss, NllLossCache(targets, tuple(x.shape), reduction, cdim)


def nll_loss_backward(cache: NllLossCache, grad_y, needs):
    targets, shape, reduction, cdim = cache
    if not needs[0]:
        return None, None, None
    c = _class_grad_scale(grad_y, targets, reduction, cdim)  # (N, 1, d1, ...)
    # Only the target entries get a gradient, as torch: elsewhere 0, even where c is inf.
    grad_x = torch.zeros(shape, dtype=c.dtype, device=c.device)
    if not shape[cdim]:  # no classes: an empty gradient
        return grad_x, None, None
    # an ignored sample's safe index is class 0: +0.0 stays there, as torch leaves it
    hit = torch.where(targets.valid.unsqueeze(cdim), -targets.w_t.unsqueeze(cdim) * c, 0)
    return grad_x.scatter_(cdim, targets.index, hit), None, None


class MseLossCache(NamedTuple):
    diff: torch.Tensor  # x - target, broadcast
    weight: torch.Tensor | None  # like x
    denominator: torch.Tensor | int | None  # 'mean' only: numel, or sum(weight)
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
    cache = MseLossCache(diff, weight, denominator, tuple(x.shape), tuple(target.shape))
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
    x: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None
    pos_weight: torch.Tensor | None  # with logits only
    reduction: str


def binary_cross_entropy_forward(x, target, weight, *, reduction):
    """Binary cross entropy of probabilities, as `torch.nn.functional.binary_cross_entropy`.

    Shapes: x, target (*); weight broadcastable to target or None -> loss (*) or ().
    """
    # torch clamps each log at -100: x exactly 0 or 1 costs 100, not inf
    log_x = torch.log(x).clamp(min=-100)
    log_1mx = torch.log1p(-x).clamp(min=-100)
    loss = (target - 1) * log_1mx - target * log_x
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, loss.numel()), BceCache(x, target, weight, None, reduction)


def binary_cross_entropy_backward(cache: BceCache, grad_y, needs):
    x, target = cache.x, cache.target
    grad_x = grad_t = None
    if needs[0]:
        # the floor keeps x = 0 or 1 finite, as torch (not the clamped log's true 0 slope)
        local = (x - target) / ((1 - x) * x).clamp(min=shared.BCE_EPSILON)
        grad_x = bce_chain(local, grad_y, cache)
    if needs[1]:
        grad_t = bce_chain(-torch.log(x / (1 - x)), grad_y, cache)  # -logit
    return grad_x, grad_t, None


def _log_sigmoid(x):
    # min(x, 0) - log1p(exp(-|x|)): exp never overflows, so |x| = 1e4 stays exact
    return x.clamp(max=0) - torch.log1p(torch.exp(-x.abs()))


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
    return _reduce(loss, reduction, loss.numel()), cache


def binary_cross_entropy_with_logits_backward(cache: BceCache, grad_y, needs):
    x, target, pos_weight = cache.x, cache.target, cache.pos_weight
    grad_x = grad_t = None
    if needs[0]:
        sig = 1 / (1 + torch.exp(-x))  # exp overflows to inf at x = -1e4: sig = 0, exactly
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
