"""Argument checks shared by the functionals: torch's exception types, messages with shapes."""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence

import torch


def wrap_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """A dim in [-ndim, ndim) made non-negative; a 0-d tensor takes dims -1 and 0, as torch."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(
            f"{name} out of range (expected to be in range of [{-rank}, {rank - 1}], but got {dim})"
        )
    return dim % rank


def check_values(outside: torch.Tensor, error: type[Exception], message, where: str) -> None:
    """Refuse the values marked by the bool tensor `outside`, as torch does on each device.

    On the CPU torch raises at once, and so do we: `error(message(first value outside))`. On
    other devices torch asserts inside its kernel, without waiting for the device; so do we,
    with `torch._assert_async` (RuntimeError `where`, raised when the device reaches it), so the
    hot path never synchronizes with a GPU to read a value back.
    """
    if outside.is_cpu:
        if outside.any():
            raise error(message(outside))
    else:
        torch._assert_async(outside.logical_not().all(), where)


def softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's implicit dim for softmax-like ops called without one (deprecated, so it warns)."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def check_inplace(input: torch.Tensor) -> None:
    """torch's refusal of an in-place op on a leaf that requires grad, or on a view of one,
    where grad is recorded: raised before anything is written (autograd's own check, after
    the op, would leave the tensor changed)."""
    if not (input.requires_grad and torch.is_grad_enabled()):
        return
    if input.is_leaf:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    base = input._base
    if base is not None and base.is_leaf and base.requires_grad:
        raise RuntimeError(
            "a view of a leaf Variable that requires grad is being used in an in-place operation."
        )


def check_tensor(value, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a Tensor, not {type(value).__name__}")


def int_arg(value, name: str, op: str, allow_bool: bool = False) -> int:
    """An integer argument (a Python, NumPy or 0-d tensor int, not a bool unless allowed), else
    TypeError: a float such as `ignore_index=1.0` is refused, as torch's argument parser does."""
    kind = "bool" if isinstance(value, bool) and not allow_bool else None
    try:
        if kind is None:
            return operator.index(value)
    except TypeError:
        kind = type(value).__name__
    raise TypeError(f"{op}(): argument '{name}' must be an int or tuple of ints, not {kind}")


def bool_arg(value, name: str, op: str) -> bool:
    """A bool argument (a Python bool or a one-element bool tensor), else torch's TypeError.

    torch's argument parser takes no int for a bool: `ceil_mode=1` is a TypeError there.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1:
        return bool(value)
    raise TypeError(f"{op}(): argument '{name}' must be bool, not {type(value).__name__}")


def int_args(value, name: str, op: str) -> int | tuple[int, ...]:
    """An int or a sequence of ints (TypeError otherwise, as torch's argument parser)."""
    if isinstance(value, Sequence | torch.Size):
        return tuple(int_arg(v, name, op) for v in value)
    return int_arg(value, name, op)


def expand(value: int | tuple[int, ...], d: int, name: str, op: str) -> tuple[int, ...]:
    """torch's int-list argument: an int, or a sequence of 1 or d ints, as a d-tuple."""
    if isinstance(value, int):
        return (value,) * d
    if len(value) not in {1, d}:
        raise RuntimeError(
            f"{op}: expected {name} to be a single integer value or a list of {d} values, "
            f"but got {name}={list(value)}"
        )
    return value * d if len(value) == 1 else value
