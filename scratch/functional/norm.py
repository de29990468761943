"""Batch normalization, shaped like `torch.nn.functional.batch_norm`."""

from __future__ import annotations

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor
from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.kernels.dtypes import check_dtype

__all__ = ["batch_norm"]

_BatchNorm = kernel_function("batch_norm")


def _check(input, running_mean, running_var, weight, bias, training, eps, backend) -> None:
    """torch's checks, in torch's order, with its exception types."""
    check_tensor(input, "input")
    if training:
        if input.shape[0] * input.shape[2:].numel() == 1:  # N * prod(*), as torch counts
            raise ValueError(
                "Expected more than 1 value per channel when training, got input size "
                f"{input.size()}"
            )
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if input.dim() < 2:  # torch fails reading size(1): IndexError in training, else RuntimeError
        kind = IndexError if training else RuntimeError
        raise kind(f"batch_norm expects input (N, C, *), got shape {tuple(input.shape)}")
    if input.shape[1] == 0 and (weight is not None or bias is not None):  # torch reads w[0]
        raise IndexError(
            f"batch_norm: input of shape {tuple(input.shape)} has no channels, but a per-channel "
            "weight or bias is given (index 0 out of range)"
        )
    # torch's order: each per-channel tensor's presence and shape, both running stats or
    # neither, then the input's dtype, then theirs
    stats = {"running_mean": running_mean, "running_var": running_var}
    tensors = {**stats, "weight": weight, "bias": bias}
    for name, t in tensors.items():
        if t is None:
            if name in stats and not training:
                raise RuntimeError(f"{name} must be defined in evaluation mode")
        elif tuple(t.shape) != (input.shape[1],):
            raise RuntimeError(
                f"{name} should contain {input.shape[1]} elements not {t.numel()} "
                f"(shape {tuple(t.shape)}, input {tuple(input.shape)})"
            )
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    check_dtype("batch_norm", backend, (input,))
    for name, t in tensors.items():
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"batch_norm: {name} is {t.dtype} but input is {input.dtype}")


def batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Normalize each channel, then scale and shift, as `torch.nn.functional.batch_norm`.

    training=True normalizes with the batch statistics and, like torch, updates the running
    buffers that are given in place: `running = (1 - momentum) * running + momentum * stat`,
    with the unbiased batch variance (an empty batch leaves them alone). training=False
    normalizes with running_mean / running_var.

    Shapes: input (N, C, *), running_mean / running_var / weight / bias (C,) -> (N, C, *).
    """
    _check(input, running_mean, running_var, weight, bias, training, eps, backend)
    call = Call.of(backend, training=bool(training), eps=float(eps))
    if not training:
        return _BatchNorm.apply(call, input, weight, bias, running_mean, running_var)
    y, batch_mean, batch_var = _BatchNorm.apply(call, input, weight, bias, None, None)
    if input.numel() > 0:
        with torch.no_grad():
            for running, stat in ((running_mean, batch_mean), (running_var, batch_var)):
                if running is not None:
                    running.mul_(1 - momentum).add_(stat, alpha=momentum)
    return y
