"""Argument checks of the pooling functionals, as torch checks them (types first, then values)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scratch.functional._checks import bool_arg, expand, int_args
from scratch.kernels.windows import pool_out_size

__all__ = ["batched", "check_output", "output_size_arg", "window_args"]


def window_args(op: str, d: int, kernel_size, stride, padding, dilation=1, **flags):
    """kernel, stride (default: the kernel), padding, dilation as d-tuples, checked as torch."""
    no_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
    args = {
        "kernel_size": kernel_size,
        "stride": kernel_size if no_stride else stride,
        "padding": padding,
        "dilation": dilation,
    }
    parsed = {name: int_args(value, name, op) for name, value in args.items()}  # TypeErrors first
    for name, value in flags.items():  # the bools (ceil_mode=1 is a TypeError in torch)
        bool_arg(value, name, op)
    kernel, stride, padding, dilation = (expand(v, d, name, op) for name, v in parsed.items())
    for name, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(values) <= 0:
            raise RuntimeError(f"{op}: {name} must be greater than zero, but got {name}={values}")
    if min(padding) < 0:
        raise RuntimeError(f"{op}: padding must be non-negative, but got padding={padding}")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise RuntimeError(
            f"{op}: padding should be at most half of kernel size, but got padding={padding} "
            f"and kernel_size={kernel}"
        )
    return kernel, stride, padding, dilation


def batched(input: torch.Tensor, d: int, op: str, channels=False) -> tuple[torch.Tensor, bool]:
    """(input with a batch dim, whether one was added); torch's checks of the input's shape."""
    # channels: an empty channel dim is allowed (torch's adaptive_avg_pool1d/2d allow it)
    checked = input.shape[-d:] if channels else input.shape[-(d + 1) :]
    if input.dim() not in (d + 1, d + 2) or 0 in checked:
        raise RuntimeError(
            f"{op}: expected a {d + 1}-d (C, *spatial) or {d + 2}-d (N, C, *spatial) input with "
            f"non-zero sizes except the batch, but got input of shape {tuple(input.shape)}"
        )
    return (input.unsqueeze(0), True) if input.dim() == d + 1 else (input, False)


def check_output(op: str, spatial, kernel, stride, padding, dilation, ceil_mode) -> None:
    """torch's output sizes (windows.pool_out_size) must all be positive."""
    out = tuple(
        pool_out_size(n, k, s, p, dl, ceil_mode)
        for n, k, s, p, dl in zip(spatial, kernel, stride, padding, dilation)
    )
    if min(out) <= 0:
        raise RuntimeError(
            f"{op}: given input size {tuple(spatial)}, the calculated output size {out} is too "
            f"small (kernel_size={kernel}, stride={stride}, padding={padding}, "
            f"dilation={dilation}, ceil_mode={ceil_mode})"
        )


def output_size_arg(op: str, d: int, output_size, input: torch.Tensor) -> tuple[int, ...]:
    """output_size as a d-tuple, checked as torch; from 2-d on, None keeps that input size."""
    if d > 1 and not isinstance(output_size, int):  # torch's Python wrapper, then its parser
        if not isinstance(output_size, Sequence | torch.Size):
            raise TypeError(
                f"{op}: output_size must be an int or a sequence of {d} ints or None, "
                f"not {type(output_size).__name__}"
            )
        if input.dim() <= len(output_size):
            raise ValueError(
                f"{op}: input dimension should be at least {len(output_size) + 1}, got input "
                f"of shape {tuple(input.shape)}"
            )
        spatial = input.shape[-len(output_size) :]
        output_size = [n if v is None else v for v, n in zip(output_size, spatial)]
    sizes = int_args(output_size, "output_size", op)
    if isinstance(sizes, int):
        sizes = (sizes,) * d
    if len(sizes) != d:
        raise RuntimeError(f"{op}: output_size must be an int or {d} ints, got {sizes}")
    if min(sizes) < 0:
        raise RuntimeError(
            f"{op}: elements of output_size must be greater than or equal to 0, got {sizes}"
        )
    return sizes
