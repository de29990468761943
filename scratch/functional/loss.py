"""Losses, shaped like `torch.nn.functional`: cross entropy, NLL, MSE, BCE (+ with logits).

Each function checks its arguments as torch does (same exception types, messages that name
the shapes), maps the legacy `size_average` / `reduce` onto `reduction` as torch does, and
hands plain options to its kernel pair.
"""

from __future__ import annotations

import warnings

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor, check_values, int_arg
from scratch.functional._loss_args import (
    _check_broadcast_to,
    _check_inputs,
    _class_target,
    _probability_target,
    _promoted,
    _reduction_of,
    _type_name,
)
from scratch.kernels import DEFAULT_BACKEND, Backend

__all__ = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
]

_CrossEntropy = kernel_function("cross_entropy")
_NllLoss = kernel_function("nll_loss")
_MseLoss = kernel_function("mse_loss")
_BinaryCrossEntropy = kernel_function("binary_cross_entropy")
_BinaryCrossEntropyWithLogits = kernel_function("binary_cross_entropy_with_logits")


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """log_softmax + NLL, with label smoothing, as `torch.nn.functional.cross_entropy`.

    Shapes: input (N, C, d1, ..., dk) or (C,); target class indices (N, d1, ..., dk) or (),
    or class probabilities of the input's shape; weight (C,) -> (N, d1, ...) for 'none', else ().
    """
    reduction = _reduction_of(size_average, reduce, reduction)  # torch's Python checks first
    ignore_index = int_arg(ignore_index, "ignore_index", "cross_entropy_loss", allow_bool=True)
    _check_inputs("cross_entropy", input, target)
    if label_smoothing > 1.0:  # torch ignores a smoothing <= 0, so only this end is checked
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.shape == target.shape:  # torch's rule: same shape means class probabilities
        _probability_target(input, target, weight, ignore_index)
        input, target, weight = _promoted(input, target, weight)
    else:
        target = _class_target(input, target, weight, ignore_index)
    options = dict(
        ignore_index=int(ignore_index),
        reduction=reduction,
        # torch smooths only when label_smoothing > 0: a NaN or negative value means none
        label_smoothing=float(label_smoothing) if label_smoothing > 0 else 0.0,
    )
    return _CrossEntropy.apply(Call.of(backend, **options), input, target, weight)


def nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Negative log-likelihood of log-probabilities, as `torch.nn.functional.nll_loss`.

    Shapes: input (N, C, d1, ..., dk) or (C,); target (N, d1, ..., dk) or (); weight (C,)
    -> (N, d1, ...) for 'none', else ().
    """
    reduction = _reduction_of(size_average, reduce, reduction)  # torch's Python checks first
    ignore_index = int_arg(ignore_index, "ignore_index", "nll_loss_nd", allow_bool=True)
    _check_inputs("nll_loss", input, target)
    target = _class_target(input, target, weight, ignore_index)
    call = Call.of(backend, ignore_index=int(ignore_index), reduction=reduction)
    return _NllLoss.apply(call, input, target, weight)


def mse_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: torch.Tensor | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Squared error, as `torch.nn.functional.mse_loss` (which broadcasts, with a warning).

    Shapes: input, target broadcastable; weight of the input's shape -> broadcast shape or ().
    """
    check_tensor(input, "input")
    check_tensor(target, "target")
    if target.size() != input.size():
        warnings.warn(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=2,
        )
    reduction = _reduction_of(size_average, reduce, reduction)
    _check_inputs("mse_loss", input, target)
    torch.broadcast_shapes(input.shape, target.shape)  # torch's RuntimeError if they don't
    if weight is not None and weight.size() != input.size():
        raise ValueError(
            f"Weights and input must have the same size: weight {list(weight.shape)}, "
            f"input {list(input.shape)}"
        )
    input, target, weight = _promoted(input, target, weight)
    return _MseLoss.apply(Call.of(backend, reduction=reduction), input, target, weight)


def binary_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Binary cross entropy of probabilities, as `torch.nn.functional.binary_cross_entropy`.

    Each log is clamped at -100, as torch. Shapes: input, target (*); weight broadcastable to
    the target -> (*) for 'none', else ().
    """
    reduction = _reduction_of(size_average, reduce, reduction)  # torch's Python checks first
    _check_inputs("binary_cross_entropy", input, target)
    if target.size() != input.size():
        raise ValueError(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}) is deprecated. Please ensure they have the same size."
        )
    if weight is not None:
        weight = weight.expand(torch.broadcast_shapes(target.shape, weight.shape))
        _check_broadcast_to(input.shape, weight=weight)
    for t in (target, weight):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"Found dtype {_type_name(t)} but expected {_type_name(input)}")
    for name, t in (("input", input), ("target", target)):
        check_values(
            ~((t >= 0) & (t <= 1)),  # nan is outside too
            RuntimeError,
            lambda outside, name=name, t=t: (
                f"all elements of {name} should be between 0 and 1 "
                f"({name} of shape {list(t.shape)} holds {t[outside].flatten()[0].item()})"
            ),
            f"all elements of {name} should be between 0 and 1",
        )
    call = Call.of(backend, reduction=reduction)
    return _BinaryCrossEntropy.apply(call, input, target, weight)


def binary_cross_entropy_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: torch.Tensor | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Sigmoid + binary cross entropy in one stable formula, as
    `torch.nn.functional.binary_cross_entropy_with_logits`.

    Shapes: input, target (*); weight and pos_weight broadcastable to it -> (*) or ().
    """
    reduction = _reduction_of(size_average, reduce, reduction)  # torch's Python checks first
    _check_inputs("binary_cross_entropy_with_logits", input, target)
    if target.size() != input.size():
        raise ValueError(
            f"Target size ({target.size()}) must be the same as input size ({input.size()})"
        )
    _check_broadcast_to(input.shape, weight=weight, pos_weight=pos_weight)
    # torch's rule: the loss takes the target's dtype (it computes in it): so do we
    input, weight, pos_weight = (
        None if t is None else t.to(target.dtype) for t in (input, weight, pos_weight)
    )
    call = Call.of(backend, reduction=reduction)
    return _BinaryCrossEntropyWithLogits.apply(call, input, target, weight, pos_weight)
