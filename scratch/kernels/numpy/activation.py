"""Elementwise activations and (log-)softmax (NumPy backend)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import erf

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


_INTS = {2: np.int16, 4: np.int32, 8: np.int64}  # signed integers by width in bytes


_SMALL = 2048  # elements: below, relu_backward's putmask beats its bit trick


class ReLUCache(NamedTuple):
    # bool, where grad_y is dropped. torch's threshold_backward: `y <= 0 ? 0 : grad`; NaN is
    # not <= 0, so its grad passes. Kept as computed: negating it would cost one more pass.
    nonpositive: np.ndarray


class MaskCache(NamedTuple):
    positive: np.ndarray  # bool, where grad_y passes unscaled: the kink at 0 takes the left slope
    negative_slope: float


def relu_forward(x):
    """max(x, 0) (NaN stays NaN, -0.0 stays -0.0), as `torch.relu`. Shapes: any -> same."""
    # Against the scalar 0: NumPy 2.4 on an Intel Xeon, one thread, takes LeNet's conv1 output
    # (64, 6, 28, 28) in 0.10 ms, where an array of zeros takes 0.21 ms (an older NumPy on an AMD
    # EPYC had run the array faster: 0.054 against 0.136 ms); 2x at every size measured here.
    # 0 first: at a tie np.maximum returns its second operand, so -0.0 stays -0.0 as torch's.
    y = np.maximum(0, x)
    return y, ReLUCache(y <= 0)


def relu_forward_(x):
    """`relu_forward` written into x itself (`inplace=True`, see scratch.kernels): its cache."""
    np.maximum(0, x, out=x)
    return ReLUCache(x <= 0)


def relu_backward(cache: ReLUCache, grad_y, needs):
    # grad_y's bits where positive, +0.0 elsewhere: np.where(positive, grad_y, 0) exactly (a
    # NaN or inf gradient is dropped where masked). Small: a copy, zeros put by the mask (8x8
    # in 1.0 us against 5.3 us for the bit trick below, one thread, measured here).
    if grad_y.size < _SMALL:
        grad_x = np.array(grad_y)  # a copy; a 0-d grad_y stays an array
        np.putmask(grad_x, cache.nonpositive, 0)
        return (grad_x,)
    # Large: branch-free, LeNet's conv1 output (64, 6, 28, 28) in 0.12 ms against 1.6 ms for
    # np.where or 2.1 ms for the masked put on a random mask (measured here).
    ints = _INTS[grad_y.itemsize]  # a lookup, not a dtype built from a string per call
    # -1 (all bits set) where grad_y passes, else 0: as int8 then widened, 0.025 ms against
    # 0.082 ms for one subtract into the wide type (LeNet's conv1 output, measured here)
    mask = (cache.nonpositive.view(np.int8) - np.int8(1)).astype(ints)
    return (np.bitwise_and(grad_y.view(ints), mask, out=mask).view(grad_y.dtype),)


def leaky_relu_forward(x, *, negative_slope: float):
    """x if x > 0 else slope * x, as `torch.nn.functional.leaky_relu`. Shapes: any -> same."""
    positive = x > 0
    return np.where(positive, x, x * negative_slope), MaskCache(positive, negative_slope)


def leaky_relu_backward(cache: MaskCache, grad_y, needs):
    return (np.where(cache.positive, grad_y, grad_y * cache.negative_slope),)


class OutputCache(NamedTuple):
    y: np.ndarray  # the forward's output, all these derivatives are written in terms of it


def sigmoid_forward(x):
    """1 / (1 + exp(-x)) without overflow at |x| = 1e4, as `torch.sigmoid`."""
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, OutputCache(y)


def sigmoid_backward(cache: OutputCache, grad_y, needs):
    y = cache.y
    return (grad_y * (1 - y) * y,)


def tanh_forward(x):
    """As `torch.tanh`."""
    y = np.tanh(x)
    return y, OutputCache(y)


def tanh_backward(cache: OutputCache, grad_y, needs):
    y = cache.y
    return (grad_y * (1 - y * y),)


class GeluCache(NamedTuple):
    x: np.ndarray
    approximate: str


def gelu_forward(x, *, approximate: str):
    """x * Phi(x), exact ('none') or with torch's tanh formula, as `torch.nn.functional.gelu`."""
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x)
        y = 0.5 * x * (1 + np.tanh(inner))
    else:
        y = x * 0.5 * (1 + erf(x * (1 / math.sqrt(2.0))))
    return y.astype(x.dtype, copy=False), GeluCache(x, approximate)


def gelu_backward(cache: GeluCache, grad_y, needs):
    x = cache.x
    if cache.approximate == "tanh":
        # The same expression tree as torch's GeluBackward, so float32 rounds alike.
        t = np.tanh(SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x))
        left_derivative = 0.5 * (1 + t)
        inner_derivative = SQRT_2_OVER_PI * (1 + 3 * GELU_KAPPA * x * x)
        right_derivative = 0.5 * x * (1 - t * t) * inner_derivative
        grad = grad_y * (left_derivative + right_derivative)
    else:
        cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2.0))))
        pdf = np.exp(-0.5 * x * x) * INV_SQRT_2PI
        grad = grad_y * (cdf + x * pdf)
    return (grad.astype(x.dtype, copy=False),)


class SoftmaxCache(NamedTuple):
    y: np.ndarray  # softmax or log-softmax output
    dim: int


def softmax_forward(x, *, dim: int):
    """exp(x - max) / sum, stable for logits of +-1e4, as `torch.softmax`."""
    e = np.exp(x - x.max(axis=dim, keepdims=True, initial=-np.inf))
    y = e / e.sum(axis=dim, keepdims=True)
    return y, SoftmaxCache(y, dim)


def softmax_backward(cache: SoftmaxCache, grad_y, needs):
    y, dim = cache
    return (y * (grad_y - (grad_y * y).sum(axis=dim, keepdims=True, initial=_start(y, dim))),)


def log_softmax_forward(x, *, dim: int):
    """x - max - log(sum(exp(x - max))), as `torch.log_softmax`."""
    shifted = x - x.max(axis=dim, keepdims=True, initial=-np.inf)
    y = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    return y, SoftmaxCache(y, dim)


def log_softmax_backward(cache: SoftmaxCache, grad_y, needs):
    y, dim = cache
    return (grad_y - np.exp(y) * grad_y.sum(axis=dim, keepdims=True, initial=_start(y, dim)),)


def _start(y, dim: int) -> float:
    """Where torch's softmax backward starts its row sums: along the last dim (its lastdim
    kernel) from the first term, as -0.0 (the sum's true identity; a row of -0.0 gradients then
    comes back +0.0), along any other from +0.0, as NumPy's sum."""
    return -0.0 if dim >= y.ndim - 1 else 0.0
