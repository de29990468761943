"""L2 penalty kernels (torch backend): lam * sum(w^2), the explicit regularizer term of a loss."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["l2_penalty_forward", "l2_penalty_backward"]


class L2PenaltyCache(NamedTuple):
    w: object  # the penalised array
    lam: float


def l2_penalty_forward(w, *, lam: float):
    """lam * sum(w * w). Shapes: w any -> ()."""
    return lam * (w * w).sum(), L2PenaltyCache(w, lam)


def l2_penalty_backward(cache: L2PenaltyCache, grad_y, needs):
    """d/dw lam * sum(w^2) = 2 lam w, times the incoming scalar gradient."""
    return (grad_y * (2 * cache.lam) * cache.w if needs[0] else None,)
