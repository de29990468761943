"""Dropout kernels (numpy backend): the random mask is an input, drawn by the functional layer."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["dropout_forward", "dropout_backward"]


class DropoutCache(NamedTuple):
    noise: object  # mask / (1 - p), in the input's dtype


def dropout_forward(x, mask, *, p: float):
    """x * mask / (1 - p), computed as torch does on the CPU: noise = mask / (1 - p); x * noise.

    Shapes: x any, mask (0/1 in x's dtype) broadcastable to x -> same as x.
    """
    noise = mask / (1 - p) if p < 1 else mask  # p == 1: the mask is all zeros
    return x * noise, DropoutCache(noise)


def dropout_backward(cache: DropoutCache, grad_y, needs):
    return grad_y * cache.noise, None
