"""Argument checks shared by the functionals: torch's exception types, messages with shapes."""

from __future__ import annotations

import warnings

import torch


def wrap_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """A dim in [-ndim, ndim) made non-negative; a 0-d tensor takes dims -1 and 0, as torch."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(
            f"{name} out of range (expected to be in range of [{-rank}, {rank - 1}], but got {dim})"
        )
    return dim % rank


def softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's implicit dim for softmax-like ops called without one (deprecated, so it warns)."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def check_tensor(value, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a Tensor, not {type(value).__name__}")
