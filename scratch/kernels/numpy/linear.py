"""Linear and flatten kernels (NumPy backend)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from scratch.kernels import shared

__all__ = ["linear_forward", "linear_backward", "flatten_forward", "flatten_backward"]


class LinearCache(NamedTuple):
    x: np.ndarray  # (*, in_features)
    weight: np.ndarray  # (out_features, in_features)
    bias_shape: tuple[int, ...] | None  # (out,), or one y broadcasts from ((), (1,), (N, 1)...)


def linear_forward(x, weight, bias):
    """y = x W^T + b, as `torch.nn.functional.linear`.

    Shapes: x (*, in), weight (out, in), bias (out,) (or broadcast into y) or None -> y (*, out).
    """
    bias_shape = None if bias is None else bias.shape
    if min(weight.shape) >= 256 and x.dtype == np.float32 and x.size <= 64 * x.shape[-1]:
        # A few rows through a wide layer: OpenBLAS (SkylakeX kernels, one thread) runs the
        # transposed product W x^T 14-40% faster, and its transposing copy is small: the MLP's
        # 64x3072 -> 256 0.99 -> 0.85 ms, VGG16's classifier at batch 8 66.8 -> 57 ms (25088 ->
        # 4096) and 10.9 -> 7.7 ms (4096 -> 4096); slower below 256 features (64x120 -> 84:
        # 1.03x) or past 64 rows (128x3072 -> 256: 1.04x), and in float64 (1.06-1.5x).
        (out, features), rows = weight.shape, x.size // x.shape[-1]  # rows <= 64
        y = np.empty((*x.shape[:-1], out), x.dtype)
        y_t = (weight @ x.reshape(rows, features).T).T  # (rows, out), a transposed view
        y_2d = y.reshape(rows, out)
        if bias is None:
            np.copyto(y_2d, y_t)
        else:  # added on the way
            np.add(y_t, bias, out=y_2d)
        return y, LinearCache(x, weight, bias_shape)
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y, LinearCache(x, weight, bias_shape)


def linear_backward(cache: LinearCache, grad_y, needs):
    x, weight, bias_shape = cache  # x None unless dW is asked for, W unless grad_x (keep)
    grad_2d, x_2d = grad_y, x  # (prod(*), out), (prod(*), in)
    if grad_y.ndim != 2:  # a batch of one dim needs no reshape (~1 us each, torch)
        rows = math.prod(grad_y.shape[:-1])  # explicit, no -1: out or in may be 0
        grad_2d = grad_y.reshape(rows, grad_y.shape[-1])
        x_2d = None if x is None else x.reshape(rows, x.shape[-1])
    grad_x = grad_y @ weight if needs[0] else None
    grad_weight = grad_2d.T @ x_2d if needs[1] else None
    grad_bias = None
    if bias_shape is not None and needs[2]:
        if bias_shape == (grad_y.shape[-1],):
            grad_bias = grad_2d.sum(axis=0)
        else:  # a broadcast bias: summed where it was broadcast
            axes = shared.broadcast_axes(grad_2d.shape, bias_shape)
            grad_bias = grad_2d.sum(axis=axes, keepdims=True).reshape(bias_shape)
    return grad_x, grad_weight, grad_bias


class FlattenCache(NamedTuple):
    shape: tuple[int, ...]  # the input's shape


def flatten_forward(x, *, start_dim: int, end_dim: int):
    """Merge dims start_dim..end_dim (already non-negative), as `torch.flatten`."""
    merged = math.prod(x.shape[start_dim : end_dim + 1])
    shape = x.shape[:start_dim] + (merged,) + x.shape[end_dim + 1 :]
    return x.reshape(shape), FlattenCache(x.shape)


def flatten_backward(cache: FlattenCache, grad_y, needs):
    return (grad_y.reshape(cache.shape),)
