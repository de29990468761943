"""Dropout kernels (numpy backend): the random mask is an input, drawn by the functional layer."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["dropout_forward", "dropout_backward"]


class DropoutCache(NamedTuple):
    noise: object  # mask / (1 - p), in the input's dtype


def dropout_forward(x, mask, *, p: float):
    """x * mask / (1 - p), computed as torch does on the CPU: noise = mask / (1 - p); x * noise.

    Shapes: x any, mask (0/1 in x's dtype) broadcastable to x -> same as x.
    """
    if p >= 1:
        return x * mask, DropoutCache(mask)  # p == 1: the mask is all zeros
    # torch divides in float32 at least (its opmath type), then rounds the noise to x's dtype;
    # `mask / (1 - p)` would round the Python float to float16 first (NumPy's scalar rule)
    acc = np.promote_types(mask.dtype, np.float32)
    noise = np.divide(mask, 1 - p, dtype=acc).astype(mask.dtype, copy=False)
    return x * noise, DropoutCache(noise)


def dropout_backward(cache: DropoutCache, grad_y, needs):
    return grad_y * cache.noise, None
