"""Max, average and adaptive average pooling (1-d, 2-d, 3-d), shaped like `torch.nn.functional`.

Arguments are checked as torch checks them, with torch's exception types (TypeError for a
non-integer size, RuntimeError for a bad value or shape); an unbatched input (C, *spatial) gets
a batch dim for the kernel and loses it again.
"""

from __future__ import annotations

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor, int_arg
from scratch.functional._pool_args import batched, check_output, output_size_arg, window_args
from scratch.kernels import DEFAULT_BACKEND, Backend, IntOrInts
from scratch.kernels.dtypes import check_dtype

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
]

_MaxPool = kernel_function("max_pool")  # MaxPoolFunction of max_pool1d, max_pool2d, max_pool3d
_AvgPool = kernel_function("avg_pool")  # AvgPoolFunction of avg_pool1d, avg_pool2d, avg_pool3d
# AdaptiveAvgPoolFunction of adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d
_AdaptiveAvgPool = kernel_function("adaptive_avg_pool")

# --- Max pooling ----------------------------------------------------------------------------------


def _max_pool(d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, backend):
    op = f"max_pool{d}d"
    check_tensor(input, "input")
    window = window_args(op, d, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
    kernel, stride, padding, dilation = window
    x, unbatched = batched(input, d, op)
    check_output(op, x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    call = Call.of(
        backend,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=bool(ceil_mode),
        return_indices=bool(return_indices),  # else the kernel builds no int64 indices
    )
    if not return_indices:
        y = _MaxPool.apply(call, x)
        return y.squeeze(0) if unbatched else y
    y, indices = _MaxPool.apply(call, x)
    if unbatched:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return y, indices


def max_pool1d(
    input: torch.Tensor,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    backend: Backend = DEFAULT_BACKEND,
):
    """Max over windows, as `torch.nn.functional.max_pool1d`.

    Shapes: input (N, C, L) or (C, L) -> (N, C, out_l) or (C, out_l); with return_indices,
    also the int64 indices of the maxima, flat in each input plane.
    """
    args = (kernel_size, stride, padding, dilation, ceil_mode, return_indices, backend)
    return _max_pool(1, input, *args)


def max_pool2d(
    input: torch.Tensor,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    backend: Backend = DEFAULT_BACKEND,
):
    """Max over windows, as `torch.nn.functional.max_pool2d`.

    Shapes: input (N, C, H, W) or (C, H, W) -> (N, C, out_h, out_w) or (C, out_h, out_w); with
    return_indices, also the int64 indices of the maxima, flat in each (H, W) plane.
    """
    args = (kernel_size, stride, padding, dilation, ceil_mode, return_indices, backend)
    return _max_pool(2, input, *args)


def max_pool3d(
    input: torch.Tensor,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    backend: Backend = DEFAULT_BACKEND,
):
    """Max over windows, as `torch.nn.functional.max_pool3d`.

    Shapes: input (N, C, D, H, W) or (C, D, H, W) -> (N, C, out_d, out_h, out_w) or unbatched;
    with return_indices, also the int64 indices of the maxima, flat in each (D, H, W) volume.
    """
    args = (kernel_size, stride, padding, dilation, ceil_mode, return_indices, backend)
    return _max_pool(3, input, *args)


# --- Average pooling ------------------------------------------------------------------------------


def _avg_pool(
    d, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor, backend
):
    op = f"avg_pool{d}d"
    check_tensor(input, "input")
    divisor = None if divisor is None else int_arg(divisor, "divisor_override", op)
    flags = {"ceil_mode": ceil_mode, "count_include_pad": count_include_pad}
    kernel, stride, padding, ones = window_args(op, d, kernel_size, stride, padding, 1, **flags)
    x, unbatched = batched(input, d, op)
    check_output(op, x.shape[2:], kernel, stride, padding, ones, bool(ceil_mode))
    if d == 3 and any(n < k for n, k in zip(x.shape[2:], kernel)):  # torch's avg_pool3d only
        raise RuntimeError(
            f"{op}: input of spatial size {tuple(x.shape[2:])} is smaller than kernel_size={kernel}"
        )
    if divisor == 0:
        raise RuntimeError(f"{op}: divisor_override must be not zero")
    call = Call.of(
        backend,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
        divisor_override=divisor,
    )
    y = _AvgPool.apply(call, x)
    return y.squeeze(0) if unbatched else y


def avg_pool1d(
    input: torch.Tensor,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Mean over windows, as `torch.nn.functional.avg_pool1d`.

    Shapes: input (N, C, L) or (C, L) -> (N, C, out_l) or (C, out_l).
    """
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, None, backend)
    return _avg_pool(1, input, *args)


def avg_pool2d(
    input: torch.Tensor,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Mean over windows, as `torch.nn.functional.avg_pool2d`.

    Shapes: input (N, C, H, W) or (C, H, W) -> (N, C, out_h, out_w) or (C, out_h, out_w).
    """
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend)
    return _avg_pool(2, input, *args)


def avg_pool3d(
    input: torch.Tensor,
    kernel_size: IntOrInts,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Mean over windows, as `torch.nn.functional.avg_pool3d`.

    Shapes: input (N, C, D, H, W) or (C, D, H, W) -> (N, C, out_d, out_h, out_w) or unbatched.
    """
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend)
    return _avg_pool(3, input, *args)


# --- Adaptive average pooling ---------------------------------------------------------------------


def _adaptive_avg_pool(d: int, input, output_size, backend: Backend) -> torch.Tensor:
    op = f"adaptive_avg_pool{d}d"
    check_tensor(input, "input")
    size = output_size_arg(op, d, output_size, input)
    check_dtype("adaptive_avg_pool", backend, (input,))  # torch: the dtype before the shape
    x, unbatched = batched(input, d, op, channels=d < 3)
    y = _AdaptiveAvgPool.apply(Call.of(backend, output_size=size), x)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool1d(
    input: torch.Tensor, output_size: IntOrInts, *, backend: Backend = DEFAULT_BACKEND
) -> torch.Tensor:
    """Mean over torch's adaptive windows, as `torch.nn.functional.adaptive_avg_pool1d`.

    Shapes: input (N, C, L) or (C, L) -> (N, C, output_size) or (C, output_size).
    """
    return _adaptive_avg_pool(1, input, output_size, backend)


def adaptive_avg_pool2d(
    input: torch.Tensor, output_size: IntOrInts, *, backend: Backend = DEFAULT_BACKEND
) -> torch.Tensor:
    """Mean over torch's adaptive windows, as `torch.nn.functional.adaptive_avg_pool2d`.

    Shapes: input (N, C, H, W) or (C, H, W) -> (N, C, *output_size) or (C, *output_size); a None
    in output_size keeps that input size.
    """
    return _adaptive_avg_pool(2, input, output_size, backend)


def adaptive_avg_pool3d(
    input: torch.Tensor, output_size: IntOrInts, *, backend: Backend = DEFAULT_BACKEND
) -> torch.Tensor:
    """Mean over torch's adaptive windows, as `torch.nn.functional.adaptive_avg_pool3d`.

    Shapes: input (N, C, D, H, W) or (C, D, H, W) -> (N, C, *output_size) or unbatched; a None
    in output_size keeps that input size.
    """
    return _adaptive_avg_pool(3, input, output_size, backend)
