"""The loss functionals' argument checks: torch's exception types, messages naming shapes.

Shared by `scratch.functional.loss`; each check runs where torch's own runs.
"""

from __future__ import annotations

import functools

import torch
from torch.nn import _reduction

from scratch.functional._checks import check_tensor, check_values
from scratch.kernels.dtypes import DtypeNotSupported


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
    if target.is_cpu and target.numel():  # one pass when every target is a class (on the CPU)
        low, high = torch.aminmax(target)
        if low.item() >= 0 and high.item() < n_classes:  # none out of bounds, ignored or not
            return target
    counted = target != ignore_index
    outside = counted & ((target < 0) | (target >= n_classes))
    check_values(
        outside,
        IndexError,
        lambda outside: (
            f"Target {target[outside].flatten()[0].item()} is out of bounds "
            f"(input of shape {list(input.shape)}: {n_classes} classes)."
        ),
        f"a target is out of bounds ({n_classes} classes)",
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
