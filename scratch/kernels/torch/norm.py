"""Batch-norm kernels (torch backend).

Per-channel sums use torch's own reductions in at least float32 (cascade sums on the CPU, tree
sums on CUDA: as accurate as torch's float64 accumulators at float32 tolerances, and ~10x faster
than `sum(dtype=float64)` of a float32 tensor); the per-channel arithmetic after them is float64.
Everything full-size stays in the input's dtype, but for the variance of a strided input on the
CPU (see `_batch_stats`) and for a dense float16 / bfloat16 input, computed in float32 and
rounded once around a batch mean and invstd rounded to the dtype, as torch's kernel keeps them
(a strided one rounds each step in its dtype, as torch's strided path). The bridge leaves batch
norm's precision to these kernels (scratch.kernels.dtypes).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from scratch.kernels.shared import batch_norm_needs, channels_last_dense

__all__ = ["batch_norm_forward", "batch_norm_backward"]


class BatchNormCache(NamedTuple):
    x: torch.Tensor  # (N, C, *)
    mean: torch.Tensor  # (C,) the mean x was centred with (batch or running), x's dtype
    invstd: torch.Tensor  # (C,) 1 / sqrt(var + eps), x's dtype
    weight: torch.Tensor | None  # (C,)
    has_bias: bool
    training: bool


def _channel(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """(C,) -> (C, 1, ..., 1), to broadcast against (N, C, *)."""
    return v.reshape((-1,) + (1,) * (ndim - 2))


def _count(x) -> int:
    """Values per channel, N * prod(*); at least 1: an empty batch has zero sums, zero grads."""
    return max(1, x.shape[0] * math.prod(x.shape[2:]))


_HALF = (torch.float16, torch.bfloat16)


def _channel_sum(a: torch.Tensor) -> torch.Tensor:
    """Sum over every dim but 1: (N, C, *) -> (C,) float64 (half / bfloat16 sum in float32)."""
    # float32 sums in float64, as torch's CPU kernels (at::acc_type): six equal 1e30 sum to
    # 6e30 exactly, so their mean is 1e30 and their variance 0 (in float32 it overflowed)
    acc = torch.float32 if a.dtype in _HALF else torch.float64
    return a.sum(dim=(0, *range(2, a.ndim)), dtype=acc).to(torch.float64)


def _acc(dtype: torch.dtype) -> torch.dtype:
    """The type torch's CPU kernel computes `dtype` in: float32 for half types, else itself."""
    return torch.promote_types(dtype, torch.float32)


def _up(dtype: torch.dtype, *tensors) -> list:
    """The tensors (or None) as `dtype`, uncopied where they are already."""
    return [None if t is None else t.to(dtype) for t in tensors]


def _strided_on_cpu(x: torch.Tensor) -> bool:
    """Whether torch's CPU batch norm takes its strided path: x neither contiguous nor densely
    channels-last (torch's CUDA kernels have one path, in float32)."""
    if not x.is_cpu or x.is_contiguous():
        return False
    return not channels_last_dense(x.shape, x.stride())


def _batch_stats(x: torch.Tensor, eps: float, strided: bool):
    """Batch mean, 1/sqrt(biased var + eps), unbiased var, all (C,) in x's dtype.

    The variance where torch's CPU kernels compute it: a dense x (contiguous or channels-last)
    is centred and squared in x's dtype and the sum stored in x's dtype (float32 for float16;
    bfloat16 rounds its centre, sum and variance, all in float32 else); any other strides take
    torch's strided path, which centres and squares in its CPU accumulate type: float64, but
    float32 for float16 and bfloat16. So float32 |x - mean| > 1.8e19 overflows to an infinite
    variance (a zero output) for a dense x and not for a transposed one, and bfloat16's does for
    both, as in torch.
    """
    m, acc = _count(x), _acc(x.dtype)
    # torch centres with the mean rounded to the type it computes in (float32 for float16)
    mean = (_channel_sum(x) / m).to(acc)
    if strided:  # centred on the mean in x's dtype, as torch's strided path
        wide = torch.float32 if x.dtype in _HALF else torch.float64  # at::acc_type on the CPU
        d = x.to(wide) - _channel(mean.to(x.dtype), x.ndim)  # (N, C, *)
        var_sum = _channel_sum(d.square_())
        var = var_sum / m
    else:
        # bfloat16's dense kernel rounds its centre, sum of squares and variance to bfloat16
        stat = x.dtype if x.dtype == torch.bfloat16 else acc
        d = x.to(acc) - _channel(mean.to(stat).to(acc), x.ndim)  # (N, C, *)
        var_sum = _channel_sum(d.square_()).to(stat).to(torch.float64)
        var = (var_sum / m).to(stat).to(torch.float64)
    invstd = (var + eps).rsqrt()
    # m == 1 leaves no unbiased variance: NaN, as torch (the functional refuses it anyway)
    var_unbiased = var_sum / (m - 1) if m > 1 else torch.full_like(var_sum, float("nan"))
    return mean.to(x.dtype), invstd.to(x.dtype), var_unbiased.to(x.dtype)


def _normalize(x, mean, invstd, weight, bias, strided: bool) -> torch.Tensor:
    """y in torch's CPU form: x * alpha + beta per channel (one pass over x), or on the strided
    path ((x - mean) * invstd) * weight + bias (a missing bias is 0, added: -0.0 becomes
    +0.0). A half-type x is computed in float32 and rounded once, but on the strided path in
    its dtype, each step rounded, as torch's does."""
    acc = x.dtype if strided else _acc(x.dtype)
    mean, invstd, weight, bias = _up(acc, mean, invstd, weight, bias)
    if strided:
        y = (x - _channel(mean, x.ndim)).mul_(_channel(invstd, x.ndim))  # (N, C, *)
        if weight is not None:
            y.mul_(_channel(weight, x.ndim))
        y = y.add_(0) if bias is None else y.add_(_channel(bias, x.ndim))  # torch adds a 0 bias
    else:
        alpha = invstd if weight is None else invstd * weight  # (C,)
        beta = (0 if bias is None else bias) - mean * alpha  # (C,): 0 - 0 is +0.0
        if acc == torch.float32 and x.is_cpu:
            # torch's CPU kernel fuses the multiply-add, one rounding, which addcmul does only
            # where it vectorizes: a product of two float32 values is exact in float64, so this
            # is its result where 1e30 * alpha and beta cancel to a residue (-2.3e24, not 0)
            wide = torch.mul(x, _channel(alpha, x.ndim).double())
            y = wide.add_(_channel(beta, x.ndim)).to(torch.float32)
        else:
            y = torch.addcmul(_channel(beta, x.ndim), x, _channel(alpha, x.ndim))
    return y.to(x.dtype)


def batch_norm_forward(x, weight, bias, running_mean, running_var, *, training: bool, eps: float):
    """Normalize each channel of x, then scale and shift, as `torch.nn.functional.batch_norm`.

    training=True normalizes with the batch statistics (biased variance) and returns
    `(y, batch_mean, batch_var_unbiased)` for the caller's running-stat update; training=False
    normalizes with running_mean / running_var and returns `y`.

    Shapes: x (N, C, *), weight / bias / running_mean / running_var (C,) or None
    -> y (N, C, *), batch_mean (C,), batch_var_unbiased (C,).
    """
    strided = _strided_on_cpu(x)  # torch's CPU kernels take another path for such strides
    if training:
        mean, invstd, var_unbiased = _batch_stats(x, eps, strided)
    else:
        mean = running_mean.clone()  # the buffer may move before backward
        # in the type torch computes in: a dense half-type x's invstd stays float32 here
        acc = x.dtype if strided else _acc(x.dtype)
        invstd = (running_var.to(torch.float64) + eps).rsqrt().to(acc)
    y = _normalize(x, mean, invstd, weight, bias, strided)
    cache = BatchNormCache(x, mean, invstd, weight, bias is not None, training)
    return ((y, mean, var_unbiased) if training else y), cache


def batch_norm_backward(cache: BatchNormCache, grad_y, needs):
    """Grads of `batch_norm_forward`: (grad_x, grad_weight, grad_bias, None, None).

    Training: grad_x = w * invstd / M * (M * g - sum(g) - xhat * sum(g * xhat)), the closed form
    through the batch statistics; eval: grad_x = w * invstd * g.

    Shapes: grad_y (N, C, *) -> grad_x (N, C, *), grad_weight (C,), grad_bias (C,).
    """
    if cache.x.dtype in _HALF and not _strided_on_cpu(cache.x):  # float32 on half statistics
        x, mean, invstd, weight = _up(torch.float32, *cache[:4])
        up = cache._replace(x=x, mean=mean, invstd=invstd, weight=weight)
        grads = batch_norm_backward(up, grad_y.float(), needs)
        return tuple(None if g is None else g.to(cache.x.dtype) for g in grads)
    x, mean, invstd, weight, has_bias, training = cache
    strided = _strided_on_cpu(x)
    need_x, need_weight, need_bias, project = batch_norm_needs(
        needs, weight is not None, has_bias, training
    )  # project: grad_x goes through the batch statistics
    grad_x = grad_weight = grad_bias = None
    sum_g = _channel_sum(grad_y) if need_bias or project else None  # (C,) float64
    if need_weight or project:
        d = x - _channel(mean, x.ndim)  # (N, C, *): xhat / invstd
        dot = _channel_sum(d * grad_y)  # (C,) float64: sum(g * xhat) / invstd
        grad_weight = (dot * invstd).to(x.dtype) if need_weight else None
    if strided and sum_g is not None:
        sum_g = sum_g.to(x.dtype)  # the strided path's sum(g) is a tensor of x's dtype
    if project:
        m = _count(x)
        if strided:  # each step in x's dtype, in torch's order: ((dot * invstd) * invstd) / M
            k, mean_g = dot.to(x.dtype) * invstd * invstd / m, sum_g / m
        else:
            k, mean_g = (dot * invstd * invstd / m).to(x.dtype), (sum_g / m).to(x.dtype)
        grad_x = grad_y - _channel(mean_g, x.ndim)  # (C,) k: the projection on xhat
        grad_x -= d.mul_(_channel(k, x.ndim))
        grad_x = _scaled(grad_x, invstd, weight, strided, out=grad_x)
    elif need_x:
        grad_x = _scaled(grad_y, invstd, weight, strided)
    if need_bias:
        grad_bias = sum_g.to(x.dtype)
    return grad_x, grad_weight, grad_bias, None, None


def _scaled(g, invstd, weight, strided: bool, out=None):
    """g * invstd * w per channel (into `out`): in one product for a dense x, in torch's two for
    a strided one (each rounded in x's dtype)."""
    if not strided:
        return torch.mul(
            g, _channel(invstd if weight is None else invstd * weight, g.ndim), out=out
        )
    g = torch.mul(g, _channel(invstd, g.ndim), out=out)
    return g if weight is None else torch.mul(g, _channel(weight, g.ndim), out=g)
