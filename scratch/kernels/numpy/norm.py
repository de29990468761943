"""Batch-norm kernels (NumPy backend).

Per-channel sums accumulate in float64 whatever the input dtype, as torch's CPU kernels do
(their accumulate type for float32 is double); everything full-size stays in the input's dtype,
but for the variance of a strided input (see `_batch_stats`) and for a dense float16 input,
computed in float32 and rounded once around a batch mean and invstd rounded to float16, as
torch's kernel keeps them (a strided one rounds each step in float16, as torch's strided path).
The bridge leaves batch norm's precision to these kernels (scratch.kernels.dtypes).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from scratch.kernels.shared import batch_norm_needs, channels_last_dense

__all__ = ["batch_norm_forward", "batch_norm_backward"]


class BatchNormCache(NamedTuple):
    x: np.ndarray  # (N, C, *)
    mean: np.ndarray  # (C,) the mean x was centred with (batch or running), x's dtype
    invstd: np.ndarray  # (C,) 1 / sqrt(var + eps), x's dtype
    weight: np.ndarray | None  # (C,)
    has_bias: bool
    training: bool


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (C, 1, ..., 1), to broadcast against (N, C, *)."""
    return v.reshape((-1,) + (1,) * (ndim - 2))


def _count(x) -> int:
    """Values per channel, N * prod(*); at least 1: an empty batch has zero sums, zero grads."""
    return max(1, x.shape[0] * math.prod(x.shape[2:]))


def _channel_sum(a: np.ndarray) -> np.ndarray:
    """Sum over every dim but 1, accumulated in float64: (N, C, *) -> (C,) float64."""
    return np.sum(a, axis=(0, *range(2, a.ndim)), dtype=np.float64)


def _acc(dtype) -> np.dtype:
    """The type torch's CPU kernel computes `dtype` in: float32 for float16, else itself."""
    return np.promote_types(dtype, np.float32)


def _up(dtype, *arrays) -> list:
    """The arrays (or None) as `dtype`, uncopied where they are already."""
    return [None if a is None else a.astype(dtype, copy=False) for a in arrays]


def _dense(x: np.ndarray) -> bool:
    """Whether x is contiguous in torch's sense, or densely channels-last."""
    if x.flags.c_contiguous:
        return True
    return channels_last_dense(x.shape, [s // x.itemsize for s in x.strides])


def _batch_stats(x: np.ndarray, eps: float, dense: bool):
    """Batch mean, 1/sqrt(biased var + eps), unbiased var, all (C,) in x's dtype.

    The variance where torch's CPU kernels compute it: a dense x (contiguous or channels-last)
    is centred and squared in x's dtype, the squares summed in float64 and the sum stored in
    x's dtype; any other strides take torch's strided path, which centres and squares in its
    CPU accumulate type: float64, but float32 for float16. So float32 |x - mean| > 1.8e19
    overflows to an infinite variance for a dense x and not for a transposed one, as in torch.
    """
    m, acc = _count(x), _acc(x.dtype)
    # torch centres with the mean rounded to the type it computes in (float32 for float16)
    mean = (_channel_sum(x) / m).astype(acc)
    if dense:  # the sum of squares and the variance in the type torch computes in
        d = np.subtract(x, _channel(mean, x.ndim), dtype=acc)  # (N, C, *)
        var_sum = _channel_sum(np.square(d, out=d)).astype(acc).astype(np.float64)
        var = (var_sum / m).astype(acc).astype(np.float64)
    else:  # centred on the mean in x's dtype, as torch's strided path
        wide = np.float32 if x.dtype == np.float16 else np.float64  # at::acc_type on the CPU
        d = x.astype(wide) - _channel(mean.astype(x.dtype), x.ndim)  # (N, C, *)
        var_sum = _channel_sum(np.square(d, out=d))
        var = var_sum / m
    invstd = 1.0 / np.sqrt(var + eps)
    # m == 1 leaves no unbiased variance: NaN, as torch (the functional refuses it anyway)
    var_unbiased = var_sum / (m - 1) if m > 1 else np.full_like(var_sum, np.nan)
    return mean.astype(x.dtype), invstd.astype(x.dtype), var_unbiased.astype(x.dtype)


def _normalize(x, mean, invstd, weight, bias, dense: bool) -> np.ndarray:
    """y in torch's CPU form: x * alpha + beta per channel for a dense x (one pass over x), the
    strided path's ((x - mean) * invstd) * weight + bias otherwise (a missing bias is 0, added).
    A dense float16 x is computed in float32 and rounded once; a strided one in float16, each
    step rounded, as torch's strided path does."""
    acc = _acc(x.dtype) if dense else x.dtype
    mean, invstd, weight, bias = _up(acc, mean, invstd, weight, bias)
    if not dense:
        y = np.subtract(x, _channel(mean, x.ndim), dtype=acc) * _channel(invstd, x.ndim)
        if weight is not None:
            y *= _channel(weight, x.ndim)
        y += 0 if bias is None else _channel(bias, x.ndim)  # torch adds a 0 bias: -0.0 -> +0.0
    else:
        alpha = invstd if weight is None else invstd * weight  # (C,)
        beta = (0 if bias is None else bias) - mean * alpha  # (C,): 0 - 0 is +0.0
        if acc == np.float32:
            # torch's vectorized kernel fuses the multiply-add, one rounding: a product of two
            # float32 values is exact in float64, so this is its result where 1e30 * alpha and
            # beta cancel to a residue (-2.3e24 for two equal 1e30, not 0; found by the fuzz)
            wide = np.multiply(x, _channel(alpha, x.ndim), dtype=np.float64)
            y = np.add(wide, _channel(beta, x.ndim), out=wide).astype(np.float32)
        else:
            y = np.multiply(x, _channel(alpha, x.ndim), dtype=acc) + _channel(beta, x.ndim)
    return y.astype(x.dtype, copy=False)


def batch_norm_forward(x, weight, bias, running_mean, running_var, *, training: bool, eps: float):
    """Normalize each channel of x, then scale and shift, as `torch.nn.functional.batch_norm`.

    training=True normalizes with the batch statistics (biased variance) and returns
    `(y, batch_mean, batch_var_unbiased)` for the caller's running-stat update; training=False
    normalizes with running_mean / running_var and returns `y`.

    Shapes: x (N, C, *), weight / bias / running_mean / running_var (C,) or None
    -> y (N, C, *), batch_mean (C,), batch_var_unbiased (C,).
    """
    dense = _dense(x)  # torch's CPU kernels take another path for other strides
    if training:
        mean, invstd, var_unbiased = _batch_stats(x, eps, dense)
    else:
        mean = running_mean.copy()  # the buffer may move before backward
        # in the type torch computes in: a dense float16 x's invstd stays float32 here
        acc = _acc(x.dtype) if dense else x.dtype
        invstd = (1.0 / np.sqrt(running_var.astype(np.float64) + eps)).astype(acc)
    y = _normalize(x, mean, invstd, weight, bias, dense)
    cache = BatchNormCache(x, mean, invstd, weight, bias is not None, training)
    return ((y, mean, var_unbiased) if training else y), cache


def batch_norm_backward(cache: BatchNormCache, grad_y, needs):
    """Grads of `batch_norm_forward`: (grad_x, grad_weight, grad_bias, None, None).

    Training: grad_x = w * invstd / M * (M * g - sum(g) - xhat * sum(g * xhat)), the closed form
    through the batch statistics; eval: grad_x = w * invstd * g.

    Shapes: grad_y (N, C, *) -> grad_x (N, C, *), grad_weight (C,), grad_bias (C,).
    """
    if cache.x.dtype == np.float16 and _dense(cache.x):  # float32 on float16 statistics, as torch
        x, mean, invstd, weight = _up(np.float32, *cache[:4])
        up = cache._replace(x=x, mean=mean, invstd=invstd, weight=weight)
        grads = batch_norm_backward(up, grad_y.astype(np.float32), needs)
        return tuple(None if g is None else g.astype(np.float16) for g in grads)
    x, mean, invstd, weight, has_bias, training = cache
    strided = not _dense(x)  # torch's strided path
    need_x, need_weight, need_bias, project = batch_norm_needs(
        needs, weight is not None, has_bias, training
    )  # project: grad_x goes through the batch statistics
    grad_x = grad_weight = grad_bias = None
    sum_g = _channel_sum(grad_y) if need_bias or project else None  # (C,) float64
    if need_weight or project:
        d = x - _channel(mean, x.ndim)  # (N, C, *): xhat / invstd
        dot = _channel_sum(d * grad_y)  # (C,) float64: sum(g * xhat) / invstd
        grad_weight = (dot * invstd).astype(x.dtype) if need_weight else None
    if strided and sum_g is not None:
        sum_g = sum_g.astype(x.dtype)  # the strided path's sum(g) is a tensor of x's dtype
    if project:
        m = _count(x)
        if strided:  # each step in x's dtype, in torch's order: ((dot * invstd) * invstd) / M
            k, mean_g = dot.astype(x.dtype) * invstd * invstd / m, sum_g / m
        else:
            k, mean_g = (dot * invstd * invstd / m).astype(x.dtype), (sum_g / m).astype(x.dtype)
        grad_x = grad_y - _channel(mean_g, x.ndim)  # (C,) k: the projection on xhat
        grad_x -= np.multiply(d, _channel(k, x.ndim), out=d)
        grad_x = _scaled(grad_x, invstd, weight, strided, out=grad_x)
    elif need_x:
        grad_x = _scaled(grad_y, invstd, weight, strided)
    if need_bias:
        grad_bias = sum_g.astype(x.dtype)
    return grad_x, grad_weight, grad_bias, None, None


def _scaled(g, invstd, weight, strided: bool, out=None):
    """g * invstd * w per channel (into `out`): in one product for a dense x, in torch's two for
    a strided one (each rounded in x's dtype)."""
    if not strided:
        return np.multiply(
            g, _channel(invstd if weight is None else invstd * weight, g.ndim), out=out
        )
    g = np.multiply(g, _channel(invstd, g.ndim), out=out)
    return g if weight is None else np.multiply(g, _channel(weight, g.ndim), out=g)
