"""Losses, shaped like `torch.nn.functional`: cross entropy, NLL, MSE, BCE (+ with logits).

Each function checks its arguments as torch does (same exception types, messages that name
the shapes), maps the legacy `size_average` / `reduce` onto `reduction` as torch does, and
hands plain options to its kernel pair.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch.nn import _reduction

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor, int_arg
from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.kernels.dtypes import DtypeNotSupported

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


def _reduction_of(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's legacy arguments win (with its deprecation warning); a bad name is a ValueError."""
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    _reduction.get_enum(reduction)  # raises ValueError, warns on 'elementwise_mean'
    return "mean" if reduction == "elementwise_mean" else reduction


def _type_name(t: torch.Tensor) -> str:
    """torch's scalar type name in its messages: Float, Double, Long, Int, ..."""
    return t.type().rsplit(".", 1)[-1].removesuffix("Tensor")


def _check_inputs(name: str, input: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor(input, "input")
    check_tensor(target, "target")
    if not input.is_floating_point():
        raise DtypeNotSupported(f'"{name}" not implemented for {_type_name(input)!r}')


def _promoted(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """torch's type promotion across float operands (float32 with float64 -> float64)."""
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors if t is not None))
    return [None if t is None else t.to(dtype) for t in tensors]


def _check_broadcast_to(shape: torch.Size, **others: torch.Tensor | None) -> None:
    """weight-like tensors must broadcast to `shape` without growing it (torch's in-place op)."""
    for name, t in others.items():
        if t is not None and torch.broadcast_shapes(shape, t.shape) != shape:
            raise RuntimeError(
                f"output with shape {list(shape)} doesn't match the broadcast shape "
                f"{list(torch.broadcast_shapes(shape, t.shape))} ({name} of shape {list(t.shape)})"
            )


def _check_class_weight(weight, n_classes: int, prefix: str = "") -> None:
    if weight is not None and (weight.dim() != 1 or weight.numel() != n_classes):
        raise RuntimeError(
            f"{prefix}weight tensor should be defined either for all {n_classes} classes or no "
            f"classes but got weight tensor of shape: {list(weight.shape)}"
        )


def _check_target_shape(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class-index target shape checks of torch's nll_loss_nd; (C,) input takes () or (1,)."""
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    batch = target.shape[0] if target.dim() else 0
    if input.dim() != 1 and input.shape[0] != batch:
        raise ValueError(
            f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({batch})."
        )
    if target.dtype not in (torch.int64, torch.uint8):
        raise RuntimeError(
            f"expected target dtype to be Long or Byte, but got {_type_name(target)}"
        )
    if input.dim() == 1 and target.dim() == 1:
        if target.numel() != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.numel()}"
            )
        return target.reshape(())
    if input.dim() <= 2 and target.dim() > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if target.shape[1:] != input.shape[2:]:
        raise RuntimeError(
            f"Expected target size {[input.shape[0], *input.shape[2:]]}, "
            f"got {list(target.shape)} (input of shape {list(input.shape)})"
        )
    return target


def _class_target(input, target, weight, ignore_index: int) -> torch.Tensor:
    """torch's nll_loss checks, in its order; returns the target as int64 (Byte is allowed)."""
    target = _check_target_shape(input, target)
    n_classes = input.shape[0 if input.dim() == 1 else 1]
    _check_class_weight(weight, n_classes)
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(
            f"expected scalar type {_type_name(input)} but found {_type_name(weight)} (weight)"
        )
    if n_classes == 0 and input.dim() > 2:  # torch's nd path cannot view (N, 0, ...)
        raise RuntimeError(
            f"size mismatch (got input: {list(input.shape)}, target: {list(target.shape)})"
        )
    target = target.long()
    counted = target != ignore_index
    outside = counted & ((target < 0) | (target >= n_classes))
    if outside.any():
        raise IndexError(
            f"Target {target[outside].flatten()[0].item()} is out of bounds "
            f"(input of shape {list(input.shape)}: {n_classes} classes)."
        )
    return target


def _probability_target(input, target, weight, ignore_index: int) -> None:
    """torch's checks on class-probability targets (target of the input's shape)."""
    if not target.is_floating_point():
        raise RuntimeError(
            "Expected floating point type for target with class probabilities, "
            f"got {_type_name(target)}"
        )
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    if input.dim() == 0:
        raise IndexError("Dimension specified as 1 but tensor has no dimensions")
    _check_class_weight(weight, input.shape[0 if input.dim() == 1 else 1], "cross_entropy: ")


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
        outside = ~((t >= 0) & (t <= 1))  # nan is outside too
        if outside.any():
            raise RuntimeError(
                f"all elements of {name} should be between 0 and 1 ({name} of shape "
                f"{list(t.shape)} holds {t[outside].flatten()[0].item()})"
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
