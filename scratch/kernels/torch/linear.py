"""Linear and flatten kernels (torch backend)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from scratch.kernels import shared

__all__ = ["linear_forward", "linear_backward", "flatten_forward", "flatten_backward"]


class LinearCache(NamedTuple):
    x: torch.Tensor  # (*, in_features)
    weight: torch.Tensor  # (out_features, in_features)
    bias_shape: tuple[int, ...] | None  # (out,), or one y broadcasts from ((), (1,), (N, 1)...)


def linear_forward(x, weight, bias):
    """y = x W^T + b, as `torch.nn.functional.linear`.

    Shapes: x (*, in), weight (out, in), bias (out,) (or broadcast into y) or None -> y (*, out).
    """
    bias_shape = None if bias is None else tuple(bias.shape)
    if bias is not None and x.dim() == 2:  # one op and one allocation, as F.linear's addmm
        return torch.addmm(bias, x, weight.T), LinearCache(x, weight, bias_shape)
    y = x @ weight.T
    if bias is not None:
        y += bias  # y is fresh: added in place, no second output-sized tensor
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
            grad_bias = grad_2d.sum(dim=0)
        else:  # a broadcast bias: summed where it was broadcast
            axes = shared.broadcast_axes(tuple(grad_2d.shape), bias_shape)
            summed = grad_2d.sum(dim=axes, keepdim=True) if axes else grad_2d  # dim=(): all
            grad_bias = summed.reshape(bias_shape)
    return grad_x, grad_weight, grad_bias


class FlattenCache(NamedTuple):
    shape: tuple[int, ...]  # the input's shape


def flatten_forward(x, *, start_dim: int, end_dim: int):
    """Merge dims start_dim..end_dim (already non-negative), as `torch.flatten`."""
    merged = math.prod(x.shape[start_dim : end_dim + 1])
    shape = tuple(x.shape[:start_dim]) + (merged,) + tuple(x.shape[end_dim + 1 :])
    return x.reshape(shape), FlattenCache(tuple(x.shape))


def flatten_backward(cache: FlattenCache, grad_y, needs):
    return (grad_y.reshape(cache.shape),)
