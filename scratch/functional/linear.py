"""Linear and flatten, shaped like `torch.nn.functional.linear` / `torch.flatten`."""

from __future__ import annotations

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor, wrap_dim
from scratch.kernels import DEFAULT_BACKEND, Backend

__all__ = ["linear", "flatten"]

_Linear = kernel_function("linear")
_Flatten = kernel_function("flatten")


def linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """y = x W^T + b, as `torch.nn.functional.linear`.

    Shapes: input (*, in_features), weight (out_features, in_features), bias (out_features,)
    -> (*, out_features).
    """
    check_tensor(input, "input")
    check_tensor(weight, "weight")
    if bias is not None:
        check_tensor(bias, "bias")
    if input.dim() == 0 or weight.dim() == 0:
        raise RuntimeError(
            "both arguments to linear need to be at least 1D, but they are "
            f"{input.dim()}D and {weight.dim()}D"
        )
    if weight.dim() == 1 and bias is None:  # torch: a vector weight gives one output, squeezed
        return linear(input, weight.unsqueeze(0), backend=backend).squeeze(-1)
    if weight.dim() != 2 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(
            f"linear: input of shape {tuple(input.shape)} cannot be multiplied with weight of "
            f"shape {tuple(weight.shape)}: expected input (*, {weight.shape[-1]}) and a 2-d weight"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        _check_broadcast_bias(input, weight, bias)
    return _Linear.apply(Call.of(backend), input, weight, bias)


def _check_broadcast_bias(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """A bias other than (out_features,) that torch broadcasts on every path: () or (1,) for
    any input, or for a 2-d input one that expands to (N, out_features), as torch's addmm.

    Where torch's answer depends on its internal path (a 2-d bias with another input rank:
    (1, out) passes with a 1-d input, (1, 1) does not), scratch refuses, naming both shapes.
    """
    out, shape = weight.shape[0], tuple(bias.shape)
    if bias.dim() <= 1 and bias.numel() in (1, out):
        return
    rows = input.shape[0] if input.dim() == 2 else None
    if bias.dim() == 2 and rows is not None:
        if all(b in (1, n) for b, n in zip(shape, (rows, out))):
            return
        raise RuntimeError(
            f"linear: bias of shape {shape} cannot be expanded to the output's ({rows}, {out})"
        )
    if bias.dim() <= 1:
        raise RuntimeError(
            f"linear: bias of shape {shape} does not match weight of shape "
            f"{tuple(weight.shape)}: expected ({out},), (1,) or ()"
        )
    raise RuntimeError(
        f"scratch linear: a bias of shape {shape} with an input of shape "
        f"{tuple(input.shape)} is not supported (torch's result depends on its internal path): "
        f"use a bias of shape ({out},), (1,) or (), or a 2-d input"
    )


def flatten(
    input: torch.Tensor,
    start_dim: int = 0,
    end_dim: int = -1,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Merge dims start_dim..end_dim into one, as `torch.flatten`.

    Shapes: (*a, d_start, ..., d_end, *b) -> (*a, d_start * ... * d_end, *b).
    """
    check_tensor(input, "input")
    start, end = wrap_dim(start_dim, input.dim()), wrap_dim(end_dim, input.dim())
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    return _Flatten.apply(Call.of(backend, start_dim=start, end_dim=end), input)
