"""Max, average and adaptive average pooling (1-d, 2-d, 3-d), shaped like `torch.nn.functional`.

Arguments are checked as torch checks them, with torch's exception types (TypeError for a
non-integer size, RuntimeError for a bad value or shape); an unbatched input (C, *spatial) gets
a batch dim for the kernel and loses it again.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import bool_arg, check_tensor, expand, int_arg, int_args
from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.kernels.dtypes import check_dtype
from scratch.kernels.windows import pool_out_size

__all__ = [
    *(f"max_pool{d}d" for d in (1, 2, 3)),
    *(f"avg_pool{d}d" for d in (1, 2, 3)),
    *(f"adaptive_avg_pool{d}d" for d in (1, 2, 3)),
]

_MaxPool = kernel_function("max_pool")
_AvgPool = kernel_function("avg_pool")
_AdaptiveAvgPool = kernel_function("adaptive_avg_pool")

IntOrInts = int | Sequence[int]


# --- Argument checks ------------------------------------------------------------------------------


def _windows(op: str, d: int, kernel_size, stride, padding, dilation=1, **flags):
    """kernel, stride (default: the kernel), padding, dilation as d-tuples, checked as torch:
    the types of all arguments (`flags` are the bools) before any value."""
    no_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
    args = {
        "kernel_size": kernel_size,
        "stride": kernel_size if no_stride else stride,
        "padding": padding,
        "dilation": dilation,
    }
    parsed = {name: int_args(value, name, op) for name, value in args.items()}  # TypeErrors first
    for name, value in flags.items():
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


def _batched(input: torch.Tensor, d: int, op: str, channels=False) -> tuple[torch.Tensor, bool]:
    """(input with a batch dim, whether one was added); torch's checks of the input's shape.

    `channels`: an empty channel dim is allowed (torch's adaptive_avg_pool1d/2d allow it).
    """
    checked = input.shape[-d:] if channels else input.shape[-(d + 1) :]
    if input.dim() not in (d + 1, d + 2) or 0 in checked:
        raise RuntimeError(
            f"{op}: expected a {d + 1}-d (C, *spatial) or {d + 2}-d (N, C, *spatial) input with "
            f"non-zero sizes except the batch, but got input of shape {tuple(input.shape)}"
        )
    return (input.unsqueeze(0), True) if input.dim() == d + 1 else (input, False)


def _check_output(op: str, spatial, kernel, stride, padding, dilation, ceil_mode) -> None:
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


# --- Max pooling ----------------------------------------------------------------------------------


def _max_pool(d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, backend):
    op = f"max_pool{d}d"
    check_tensor(input, "input")
    flags = {"ceil_mode": ceil_mode}
    kernel, stride, padding, dilation = _windows(
        op, d, kernel_size, stride, padding, dilation, **flags
    )
    x, unbatched = _batched(input, d, op)
    _check_output(op, x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    call = Call.of(
        backend,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=bool(ceil_mode),
    )
    y, indices = _MaxPool.apply(call, x)
    if unbatched:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return (y, indices) if return_indices else y


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
    kernel, stride, padding, ones = _windows(op, d, kernel_size, stride, padding, 1, **flags)
    x, unbatched = _batched(input, d, op)
    _check_output(op, x.shape[2:], kernel, stride, padding, ones, bool(ceil_mode))
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


def _output_size(op: str, d: int, output_size, input: torch.Tensor) -> tuple[int, ...]:
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


def _adaptive_avg_pool(d: int, input, output_size, backend: str) -> torch.Tensor:
    op = f"adaptive_avg_pool{d}d"
    check_tensor(input, "input")
    size = _output_size(op, d, output_size, input)
    check_dtype("adaptive_avg_pool", backend, (input,))  # torch: the dtype before the shape
    x, unbatched = _batched(input, d, op, channels=d < 3)
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
