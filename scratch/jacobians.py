"""Explicit Jacobians from the hand-written backwards: one backward pass per output element.

`scratch.jacobian(fn, x)` runs `fn` once and then backward once per element of its output, with
a one-hot output gradient; row `i` of the Jacobian is the input gradient that comes back. When
`fn` is built from scratch ops, every one of those rows comes from their hand-written backward
(`torch.autograd.functional.jacobian` computes the same thing from torch's). With
`batched=True` the samples of a batch are taken to be independent (as for softmax along the
classes, or a layer in eval mode), so one backward per element of *one* sample's output serves
the whole batch: the result is the per-sample Jacobian `(B, *out, *in)`, e.g. softmax's
`(B, C, C)` with entries `s_i (δ_ik - s_k)`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["jacobian"]


def jacobian(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, batched: bool = False
) -> torch.Tensor:
    """d fn(x) / d x, as `torch.autograd.functional.jacobian(fn, x)`.

    Shapes: x (*in) -> fn(x) (*out) -> J (*out, *in). With `batched=True`: x (B, *in) ->
    fn(x) (B, *out) -> J (B, *out, *in), J[b] = d fn(x)[b] / d x[b], from prod(out) backward
    passes instead of B * prod(out); only right when sample b's output depends on x[b] alone.
    An output element that does not depend on x gets a zero row.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"jacobian: x must be a floating-point tensor, got {_describe(x)}")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"jacobian: fn must return a tensor, got {type(y).__name__}")
    if batched and (x.dim() == 0 or y.dim() == 0 or y.shape[0] != x.shape[0]):
        raise ValueError(
            f"jacobian(batched=True): fn(x) and x must share the batch dim 0, got input "
            f"{tuple(x.shape)} and output {tuple(y.shape)}"
        )
    per_row = y.shape[1:].numel() if batched else y.numel()
    rows = []
    for i in range(per_row):
        one_hot = torch.zeros_like(y).reshape(y.shape[0], -1) if batched else torch.zeros_like(y)
        if batched:
            one_hot[:, i] = 1  # (B, prod(out)): element i of every sample at once
        else:
            one_hot.view(-1)[i] = 1
        rows.append(_backward(y, x, one_hot.reshape(y.shape)))
    shape = (*y.shape, *x.shape[1:]) if batched else (*y.shape, *x.shape)
    if not rows:
        return x.new_zeros(shape)
    # batched: prod(out) rows of (B, *in) -> (B, prod(out), *in) -> (B, *out, *in)
    return torch.stack(rows, dim=1 if batched else 0).reshape(shape)


def _backward(y: torch.Tensor, x: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
    """The input gradient for output gradient `grad_y`: zeros where y does not depend on x."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    (grad_x,) = torch.autograd.grad(y, x, grad_y, retain_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad_x is None else grad_x


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor"
    return type(value).__name__
