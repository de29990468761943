"""Backend-free pieces both backends' kernels share: axes, shapes and option handling.

Only what needs no array library: integer arithmetic on shapes, and operators every array type
has (`*`, `/`, `.reshape`), so one definition serves NumPy arrays and tensors alike.
"""

from __future__ import annotations

import math

__all__ = [
    "BCE_EPSILON",
    "along_classes",
    "batch_norm_needs",
    "bce_chain",
    "class_axis",
    "mse_denominator",
    "weighted",
]

# torch's `constexpr float EPSILON = 1e-12` floors x (1 - x): a float32, so not 1e-12 in float64
BCE_EPSILON = 9.999999960041972e-13


def class_axis(ndim: int) -> int:
    """The class axis of class scores: 1 for (N, C, d1, ...), 0 for an unbatched (C,)."""
    return 0 if ndim == 1 else 1


def along_classes(v, ndim: int, cdim: int):
    """A (C,) vector as (C, 1, ..., 1), to broadcast along the class axis of an ndim-d array."""
    return v.reshape(tuple(v.shape) + (1,) * (ndim - cdim - 1))


def weighted(a, w):
    """a times the weights w, or a itself when unweighted (w is None)."""
    return a if w is None else a * w


def mse_denominator(reduction: str, shape: tuple[int, ...], weight):
    """MSE's 'mean' denominator: the element count, or sum(weight) when weighted; else None."""
    if reduction != "mean":
        return None
    return math.prod(shape) if weight is None else weight.sum()


def bce_chain(local, grad_y, cache):
    """torch's order for a BCE grad: local derivative times grad_y, times the cache's weight,
    over the input's numel for 'mean' (`cache` a BceCache of either backend)."""
    grad = weighted(local * grad_y, cache.weight)
    if cache.reduction == "mean":
        grad = grad / math.prod(cache.x.shape)
    return grad


def batch_norm_needs(needs, has_weight: bool, has_bias: bool, training: bool):
    """Which grads batch norm's backward computes: (x, weight, bias, project), `project` when
    grad_x goes through the batch statistics (training)."""
    need_x = needs[0]
    return need_x, has_weight and needs[1], has_bias and needs[2], training and need_x
