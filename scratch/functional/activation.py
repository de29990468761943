"""Activations, softmax and dropout, shaped like `torch.nn.functional`."""

from __future__ import annotations

import torch

from scratch.autograd import Call, kernel_function
from scratch.functional._checks import check_inplace, check_tensor, softmax_dim, wrap_dim
from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.kernels.dtypes import check_dtype

__all__ = [
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    "log_softmax",
    "dropout",
]

_ReLU = kernel_function("relu")
_LeakyReLU = kernel_function("leaky_relu")
_Sigmoid = kernel_function("sigmoid")
_Tanh = kernel_function("tanh")
_GELU = kernel_function("gelu")
_Softmax = kernel_function("softmax")
_LogSoftmax = kernel_function("log_softmax")
_Dropout = kernel_function("dropout")


def relu(
    input: torch.Tensor, inplace: bool = False, *, backend: Backend = DEFAULT_BACKEND
) -> torch.Tensor:
    """max(x, 0), as `torch.nn.functional.relu`; relu'(0) = 0. Shapes: any -> same."""
    check_tensor(input, "input")
    if inplace:
        check_inplace(input)
    return _ReLU.apply(Call.of(backend, inplace=inplace), input)


def leaky_relu(
    input: torch.Tensor,
    negative_slope: float = 0.01,
    inplace: bool = False,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """x if x > 0 else negative_slope * x, as `torch.nn.functional.leaky_relu`."""
    check_tensor(input, "input")
    check_dtype("leaky_relu", backend, (input,))  # torch refuses the dtype before the slope
    if inplace:
        check_inplace(input)
        if negative_slope < 0:
            raise RuntimeError("leaky_relu: in-place with a negative slope is not supported")
    call = Call.of(backend, inplace=inplace, negative_slope=float(negative_slope))
    return _LeakyReLU.apply(call, input)


def _float_of(input: torch.Tensor) -> torch.Tensor:
    """Integer and bool inputs in the default float dtype, as torch's unary float ops promote."""
    if input.is_floating_point() or input.is_complex():
        return input
    return input.to(torch.get_default_dtype())


def sigmoid(input: torch.Tensor, *, backend: Backend = DEFAULT_BACKEND) -> torch.Tensor:
    """1 / (1 + exp(-x)), as `torch.sigmoid` (integers give the default float dtype)."""
    check_tensor(input, "input")
    return _Sigmoid.apply(Call.of(backend), _float_of(input))


def tanh(input: torch.Tensor, *, backend: Backend = DEFAULT_BACKEND) -> torch.Tensor:
    """As `torch.tanh` (integers give the default float dtype)."""
    check_tensor(input, "input")
    return _Tanh.apply(Call.of(backend), _float_of(input))


def gelu(
    input: torch.Tensor, approximate: str = "none", *, backend: Backend = DEFAULT_BACKEND
) -> torch.Tensor:
    """x * Phi(x), or torch's tanh approximation, as `torch.nn.functional.gelu`."""
    check_tensor(input, "input")
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return _GELU.apply(Call.of(backend, approximate=approximate), input)


def _softmax_like(fn, name, input, dim, stacklevel, dtype, backend):
    check_tensor(input, "input")
    if dim is None:
        dim = softmax_dim(name, input.dim(), stacklevel + 1)
    dim = wrap_dim(dim, input.dim())
    if dtype is not None:
        input = input.to(dtype)
    if input.dim() == 0:  # a scalar is a 1-element row
        return fn.apply(Call.of(backend, dim=0), input.reshape(1)).reshape(())
    return fn.apply(Call.of(backend, dim=dim), input)


def softmax(
    input: torch.Tensor,
    dim: int | None = None,
    _stacklevel: int = 3,
    dtype: torch.dtype | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """exp(x) / sum(exp(x)) along dim, as `torch.nn.functional.softmax`.

    dim=None applies torch's deprecated implicit rule (0 for 0-, 1- and 3-d inputs, else 1).
    """
    return _softmax_like(_Softmax, "softmax", input, dim, _stacklevel, dtype, backend)


def log_softmax(
    input: torch.Tensor,
    dim: int | None = None,
    _stacklevel: int = 3,
    dtype: torch.dtype | None = None,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """log(softmax(x)) computed stably, as `torch.nn.functional.log_softmax`."""
    return _softmax_like(_LogSoftmax, "log_softmax", input, dim, _stacklevel, dtype, backend)


def dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p), as `F.dropout`.

    The mask is drawn from torch's generator exactly as torch does on the CPU
    (`empty_like(input).bernoulli_(1 - p)`), so a seeded run gives torch's very mask there;
    backward reuses that mask. Identity when not training or p == 0.
    """
    check_tensor(input, "input")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0 or input.numel() == 0:
        return input
    if inplace:
        check_inplace(input)
    with torch.no_grad():
        mask = torch.zeros_like(input) if p == 1 else torch.empty_like(input).bernoulli_(1 - p)
    return _Dropout.apply(Call.of(backend, inplace=inplace, p=float(p)), input, mask)
