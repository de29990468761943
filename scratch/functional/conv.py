"""Convolutions (1-d, 2-d, 3-d), shaped like `torch.nn.functional.conv{1,2,3}d`.

Arguments are checked as torch checks them, with torch's exception types (TypeError for an
argument of the wrong type, RuntimeError for a bad value or shape). `padding` is resolved here
to one (lo, hi) pair per dim ('same' puts the odd extra element at the end, as torch); an
unbatched input (C, *spatial) gets a batch dim for the kernel and loses it again. The keyword-only
`padding_mode` (a scratch extension, used by the nn.Conv*d twins) pads as `F.pad(mode=...)`.
"""

from __future__ import annotations

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_tensor, expand, int_arg, int_args
from scratch.kernels import DEFAULT_BACKEND, Backend, IntOrInts, Pads
from scratch.kernels.dtypes import check_dtype
from scratch.kernels.windows import same_padding

__all__ = ["conv1d", "conv2d", "conv3d"]

_Conv = kernel_function("conv")  # ConvFunction of conv1d, conv2d, conv3d

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def conv1d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrInts = 1,
    padding: IntOrInts | str = 0,
    dilation: IntOrInts = 1,
    groups: int = 1,
    *,
    backend: Backend = DEFAULT_BACKEND,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """1-d convolution, as `torch.nn.functional.conv1d`.

    Shapes: input (N, C_in, L) or (C_in, L), weight (C_out, C_in / groups, kL), bias (C_out,)
    -> (N, C_out, L_out) or (C_out, L_out).
    """
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, backend, padding_mode)


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrInts = 1,
    padding: IntOrInts | str = 0,
    dilation: IntOrInts = 1,
    groups: int = 1,
    *,
    backend: Backend = DEFAULT_BACKEND,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """2-d convolution, as `torch.nn.functional.conv2d`.

    Shapes: input (N, C_in, H, W) or (C_in, H, W), weight (C_out, C_in / groups, kH, kW),
    bias (C_out,) -> (N, C_out, out_h, out_w) or (C_out, out_h, out_w).
    """
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, backend, padding_mode)


def conv3d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrInts = 1,
    padding: IntOrInts | str = 0,
    dilation: IntOrInts = 1,
    groups: int = 1,
    *,
    backend: Backend = DEFAULT_BACKEND,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """3-d convolution, as `torch.nn.functional.conv3d`.

    Shapes: input (N, C_in, D, H, W) or (C_in, D, H, W), weight (C_out, C_in / groups, kD, kH,
    kW), bias (C_out,) -> (N, C_out, out_d, out_h, out_w) or (C_out, out_d, out_h, out_w).
    """
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, backend, padding_mode)


def _conv(d, input, weight, bias, stride, padding, dilation, groups, backend, padding_mode):
    op = f"conv{d}d"
    for value, name in ((input, "input"), (weight, "weight")):
        check_tensor(value, name)
    if bias is not None:
        check_tensor(bias, "bias")
    parsed = {"stride": stride, "dilation": dilation}
    parsed = {name: int_args(value, name, op) for name, value in parsed.items()}
    padding = padding if isinstance(padding, str) else int_args(padding, "padding", op)
    groups = int_arg(groups, "groups", op)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    x, unbatched = _batched(input, weight, d, op)
    check_dtype("conv", backend, (x, weight, bias))  # torch checks dtypes before the kernel
    if 0 in weight.shape[2:]:  # torch: a RuntimeError, an IndexError for an empty input
        kind = IndexError if x.numel() == 0 else RuntimeError
        raise kind(
            f"{op}: kernel size should be greater than zero, but got weight of size "
            f"{list(weight.shape)}"
        )
    if x.numel() == 0 and x.shape[0] and x.shape[1]:  # an empty plane, not an empty batch
        raise RuntimeError(
            "Only zero batch or zero channel inputs are supported, but got input shape: "
            f"{list(x.shape)}"
        )
    stride, dilation = (expand(value, d, name, op) for name, value in parsed.items())
    pads = _padding(padding, tuple(weight.shape[2:]), stride, dilation, d)
    _check_values(stride, pads, dilation, groups, padding_mode, empty=x.numel() == 0)
    _check_shapes(x, weight, bias, groups)
    _check_sizes(x, weight, pads, dilation, padding_mode)
    call = Call.of(
        backend, stride=stride, padding=pads, dilation=dilation, groups=groups,
        padding_mode=padding_mode,
    )  # fmt: skip
    y = _Conv.apply(call, x, weight, bias)
    if x.shape[1] == 0:  # torch: in_channels=0 gives an empty (N, 0, *out), zero gradients
        y = y[:, :0]
    return y.squeeze(0) if unbatched else y


# --- Argument checks ------------------------------------------------------------------------------


def _padding(padding, kernel, stride, dilation, d: int) -> Pads:
    """(lo, hi) per dim from an int, ints, 'valid' or 'same' (odd extra at the end, as torch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: {padding!r}")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        return same_padding(kernel, dilation)
    return tuple((p, p) for p in expand(padding, d, "padding", f"conv{d}d"))


def _batched(input: torch.Tensor, weight: torch.Tensor, d: int, op: str):
    """(input with a batch dim, whether one was added); torch's checks of both tensors' ranks."""
    if weight.dim() != d + 2:
        raise RuntimeError(
            f"{op}: expected a {d + 2}-d weight (C_out, C_in / groups, *kernel), but got weight "
            f"of size {list(weight.shape)}"
        )
    if input.dim() not in (d + 1, d + 2):
        raise RuntimeError(
            f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to {op}, but got input "
            f"of size: {list(input.shape)}"
        )
    return (input.unsqueeze(0), True) if input.dim() == d + 1 else (input, False)


def _check_values(stride, pads, dilation, groups: int, padding_mode: str, empty: bool) -> None:
    """torch's value checks, quirks included: a negative padding with a non-zero padding_mode
    crops (as F.pad does), and an empty input takes dilation 0."""
    if min(stride) <= 0:
        raise RuntimeError(f"non-positive stride is not supported, got stride={stride}")
    if padding_mode == "zeros" and min(p for pair in pads for p in pair) < 0:
        raise RuntimeError(f"negative padding is not supported, got padding={pads}")
    if min(dilation) < (0 if empty else 1):
        raise RuntimeError(f"non-positive dilation is not supported, got dilation={dilation}")
    if groups <= 0:
        raise RuntimeError(f"non-positive groups is not supported, got groups={groups}")


def _check_shapes(x: torch.Tensor, weight: torch.Tensor, bias, groups: int) -> None:
    """Channels and groups agree between input, weight and bias, with torch's messages."""
    c_out, c_in_g = weight.shape[:2]
    if c_out < groups or c_out % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be at least {groups} and divisible by "
            f"{groups} at dimension 0, but got weight of size {list(weight.shape)} instead"
        )
    if x.shape[1] != c_in_g * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
            f"input{list(x.shape)} to have {c_in_g * groups} channels, but got {x.shape[1]} "
            "channels instead"
        )
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise RuntimeError(
            f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional with "
            f"{c_out} elements, but got bias of size {list(bias.shape)} instead"
        )


def _check_sizes(x: torch.Tensor, weight: torch.Tensor, pads, dilation, padding_mode) -> None:
    """Padding fits the input (F.pad's rules per mode); the dilated kernel fits the padded input."""
    spatial = tuple(x.shape[2:])
    if padding_mode in ("reflect", "replicate") and 0 in x.shape[1:]:
        raise RuntimeError(
            f"padding_mode={padding_mode!r}: expected non-zero sizes except the batch, but got "
            f"input of shape {list(x.shape)}"
        )
    for dim, (size, (lo, hi)) in enumerate(zip(spatial, pads), start=2):
        if padding_mode == "reflect" and max(lo, hi) >= size:
            raise RuntimeError(
                f"padding_mode='reflect': padding size should be less than the corresponding "
                f"input dimension, but got padding {(lo, hi)} at dimension {dim} of input "
                f"{list(x.shape)}"
            )
        if padding_mode == "circular" and max(lo, hi) > size:
            raise RuntimeError(
                f"padding_mode='circular': padding {(lo, hi)} at dimension {dim} of input "
                f"{list(x.shape)} wraps around more than once"
            )
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(spatial, pads))
    kernel = tuple(dl * (k - 1) + 1 for k, dl in zip(weight.shape[2:], dilation))
    if any(k > p for k, p in zip(kernel, padded)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, kernel))}). Kernel size can't be greater than "
            "actual input size"
        )
