"""The explicit L2 regularizer term of a loss: lam * sum of squares, hand-written backward."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor
from scratch.kernels import DEFAULT_BACKEND, Backend

__all__ = ["l2_penalty"]

_L2Penalty = kernel_function("l2_penalty")


def l2_penalty(
    tensors: Iterable[torch.Tensor], lam: float, *, backend: Backend = DEFAULT_BACKEND
) -> torch.Tensor:
    """lam * sum over `tensors` of sum(w^2), equal to `lam * sum(w.pow(2).sum() for w in ...)`.

    Unlike an optimizer's weight decay, this is a term of the loss: it shows in the loss value
    and reaches the weights through backward (2 lam w). Shapes: each tensor any -> ().
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("l2_penalty: expected at least one tensor")
    call = Call.of(backend, lam=float(lam))
    total = None
    for i, w in enumerate(tensors):
        check_tensor(w, f"tensors[{i}]")
        term = _L2Penalty.apply(call, w)
        total = term if total is None else total + term
    return total
