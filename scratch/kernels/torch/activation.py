"""Elementwise activations and (log-)softmax (torch backend)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = [
    "relu_forward",
    "relu_forward_",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "gelu_forward",
    "gelu_backward",
    "softmax_forward",
    "softmax_backward",
    "log_softmax_forward",
    "log_softmax_backward",
]

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_KAPPA = 0.044715


_INTS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
         torch.float64: torch.int64}  # fmt: skip


_SMALL = 4096  # elements: below, relu_backward's masked_fill beats its bit trick


class ReLUCache(NamedTuple):
    # bool, as torch's threshold_backward `y <= 0 ? 0 : grad` (NaN is not <= 0: its grad
    # passes): below _SMALL elements where grad_y is dropped (y == 0), for masked_fill; from
    # there where it passes (y != 0), for the bit trick. Each is the faster to make for its
    # use: `bool` on LeNet's conv1 output (64, 6, 28, 28) in 0.06 ms against 0.20 ms for
    # `logical_not`, which is as fast on 8x8 and saves masked_fill a negation (one thread).
    mask: torch.Tensor


class MaskCache(NamedTuple):
    positive: torch.Tensor  # bool, where grad_y passes unscaled: the kink at 0 takes the left slope
    negative_slope: float


def relu_forward(x):
    """max(x, 0) (NaN stays NaN), as `torch.relu`. Shapes: any -> same."""
    # clamp_min keeps NaN (as np.maximum): 0.07 ms on LeNet's conv1 output (64, 6, 28, 28)
    # against 3.4 ms for the nested torch.where it replaces (one thread, measured here).
    y = x.clamp_min(0)
    return y, _relu_cache(y)


def relu_forward_(x):
    """`relu_forward` written into x itself (`inplace=True`, see scratch.kernels): its cache."""
    return _relu_cache(x.clamp_min_(0))


def _relu_cache(y) -> ReLUCache:
    # y is >= 0 or NaN, so y <= 0 is y == 0 (`logical_not`) and its negation y != 0 (`bool`),
    # both faster than comparing with a Python 0 (0.85 against 2.1 us on 8x8)
    return ReLUCache(y.logical_not() if y.numel() < _SMALL else y.bool())


def relu_backward(cache: ReLUCache, grad_y, needs):
    """grad_y, +0.0 where dropped (a NaN or inf gradient too), as torch's threshold_backward."""
    if grad_y.numel() < _SMALL:  # cache.mask: where dropped
        return (grad_y.masked_fill(cache.mask, 0),)
    # Branch-free on large maps: grad_y's bits and-ed with -1 or 0: 0.06 ms against 1.1 ms for
    # masked_fill and 1.0 ms for torch.where on a random mask, LeNet's conv1 output (one thread,
    # measured here). Three ops, so on small tensors one masked_fill is faster (2.9 us against
    # 7.8 us on 8x8, even at about 5000 elements; at 8192 9.7 against 24.8 us).
    ints = _INTS[grad_y.dtype]
    mask = cache.mask.to(ints).neg_()  # -1 (all bits set) where grad_y passes, else 0
    return (mask.bitwise_and_(grad_y.view(ints)).view(grad_y.dtype),)


def leaky_relu_forward(x, *, negative_slope: float):
    """x if x > 0 else slope * x, as `torch.nn.functional.leaky_relu`. Shapes: any -> same."""
    positive = x > 0
    return torch.where(positive, x, x * negative_slope), MaskCache(positive, negative_slope)


def leaky_relu_backward(cache: MaskCache, grad_y, needs):
    return (torch.where(cache.positive, grad_y, grad_y * cache.negative_slope),)


class OutputCache(NamedTuple):
    y: torch.Tensor  # the forward's output, all these derivatives are written in terms of it


def sigmoid_forward(x):
    """1 / (1 + exp(-x)) without overflow at |x| = 1e4, as `torch.sigmoid`."""
    e = torch.exp(-x.abs())  # in (0, 1]: never overflows
    y = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, OutputCache(y)


def sigmoid_backward(cache: OutputCache, grad_y, needs):
    y = cache.y
    return (grad_y * (1 - y) * y,)


def tanh_forward(x):
    """(e^2x - 1) / (e^2x + 1) by the library's tanh, as `torch.tanh`."""
    y = x.tanh()
    return y, OutputCache(y)


def tanh_backward(cache: OutputCache, grad_y, needs):
    y = cache.y
    return (grad_y * (1 - y * y),)


class GeluCache(NamedTuple):
    x: torch.Tensor
    approximate: str


def gelu_forward(x, *, approximate: str):
    """x * Phi(x), exact ('none') or with torch's tanh formula, as `torch.nn.functional.gelu`."""
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x)
        y = 0.5 * x * (1 + inner.tanh())
    else:
        y = x * 0.5 * (1 + torch.special.erf(x * (1 / math.sqrt(2.0))))
    return y, GeluCache(x, approximate)


def gelu_backward(cache: GeluCache, grad_y, needs):
    x = cache.x
    if cache.approximate == "tanh":
        # The same expression tree as torch's GeluBackward, so float32 rounds alike.
        t = (SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x)).tanh()
        left_derivative = 0.5 * (1 + t)
        inner_derivative = SQRT_2_OVER_PI * (1 + 3 * GELU_KAPPA * x * x)
        right_derivative = 0.5 * x * (1 - t * t) * inner_derivative
        return (grad_y * (left_derivative + right_derivative),)
    cdf = 0.5 * (1 + torch.special.erf(x * (1 / math.sqrt(2.0))))
    pdf = torch.exp(-0.5 * x * x) * INV_SQRT_2PI
    return (grad_y * (cdf + x * pdf),)


class SoftmaxCache(NamedTuple):
    y: torch.Tensor  # softmax or log-softmax output
    dim: int


def _row_max(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The max along dim, kept; an empty dim (amax refuses it) gives an empty result."""
    if x.shape[dim] == 0:
        return x.sum(dim=dim, keepdim=True)  # any value: it is subtracted from nothing
    return x.amax(dim=dim, keepdim=True)


def softmax_forward(x, *, dim: int):
    """exp(x - max) / sum, stable for logits of +-1e4, as `torch.softmax`."""
    e = torch.exp(x - _row_max(x, dim))
    y = e / e.sum(dim=dim, keepdim=True)
    return y, SoftmaxCache(y, dim)


def softmax_backward(cache: SoftmaxCache, grad_y, needs):
    y, dim = cache
    return (y * (grad_y - _row_sum(grad_y * y, dim)),)


def log_softmax_forward(x, *, dim: int):
    """x - max - log(sum(exp(x - max))), as `torch.log_softmax`."""
    shifted = x - _row_max(x, dim)
    y = shifted - shifted.exp().sum(dim=dim, keepdim=True).log()
    return y, SoftmaxCache(y, dim)


def log_softmax_backward(cache: SoftmaxCache, grad_y, needs):
    y, dim = cache
    return (grad_y - y.exp() * _row_sum(grad_y, dim),)


def _row_sum(t, dim: int):
    """t's sums along dim as torch's softmax backward reduces them: along the last dim (its
    lastdim kernel) from the first term, so a row of -0.0 sums to -0.0 (the sum's true
    identity; torch.sum starts from +0.0) and a -0.0 gradient comes back +0.0; along any other
    dim from +0.0. The zero test reads the row sums only, on the CPU (on a GPU it would wait)."""
    total = t.sum(dim=dim, keepdim=True)
    if dim < t.dim() - 1 or (t.is_cpu and bool(total.ne(0).all())):
        return total
    all_negative_zero = (t.signbit() & (t == 0)).all(dim=dim, keepdim=True)
    return torch.where(all_negative_zero, -0.0, total)
