"""Padding and the two column orders of the NumPy conv kernels (conv.py, _grid.py)."""

from __future__ import annotations

from itertools import chain

import numpy as np

from scratch.kernels import Pads
from scratch.kernels.conv_plan import cols_dims, slab_rows
from scratch.kernels.windows import pad_index

__all__ = ["from_batch_channel", "interior", "pad", "to_batch_channel", "unpad"]


def from_batch_channel(a, batch_last: bool):
    """View (N, C, *spatial) -> (C, *_columns)."""
    spatial = range(2, a.ndim)
    return a.transpose(1, *spatial, 0) if batch_last else a.transpose(1, 0, *spatial)


def to_batch_channel(a, batch_last: bool):
    """View (C, *_columns) -> (N, C, *spatial): the inverse of `_from_batch_channel`."""
    d = a.ndim - 2
    return a.transpose(d + 1, 0, *range(1, 1 + d)) if batch_last else a.swapaxes(0, 1)


def pad(x, padding: Pads, mode: str, batch_last: bool, slab: tuple[int, int] | None = None):
    """(N, C, *spatial) -> (N, C, *padded), as `F.pad(x, padding, mode)` ('zeros' = constant 0).

    With batch_last the result is a view of a (C, *padded, N) buffer, so that im2col's copy
    reads (and writes) runs of N * out[-1]. `slab` (a, b): only the padded rows [a, b) of the
    first spatial dim (a block of output rows reads no others).
    """
    if slab is not None:
        x, padding = _slab(x, padding, mode, slab)
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(x.shape[2:], padding))
    if mode != "zeros":
        for axis, (size, (lo, hi)) in enumerate(zip(x.shape[2:], padding), start=2):
            if lo or hi:
                x = np.take(x, pad_index(size, lo, hi, mode), axis=axis)  # one gather per dim
        padding = tuple((0, 0) for _ in padding)  # x is padded now
    zeros = any(lo or hi for lo, hi in padding)
    if not (zeros or batch_last):
        return x
    shape = (x.shape[1], *cols_dims(x.shape[0], padded, batch_last))
    buffer = np.zeros(shape, x.dtype) if zeros else np.empty(shape, x.dtype)
    xp = to_batch_channel(buffer, batch_last)  # (N, C, *padded) view
    xp[(..., *interior(x.shape[2:], padding))] = x
    return xp


def _slab(x, padding: Pads, mode: str, slab: tuple[int, int]):
    """The rows of x and the padding along the first spatial dim that make padded rows [a, b)."""
    (a, b), size, (lo, hi) = slab, x.shape[2], padding[0]
    if mode != "zeros":  # the rows gathered, padding included: nothing left to pad along it
        x = np.take(x, pad_index(size, lo, hi, mode)[a:b], axis=2)
        return x, ((0, 0), *padding[1:])
    start, stop, zeros = slab_rows(slab, size, lo)
    return x[:, :, start:stop], (zeros, *padding[1:])


def unpad(grad_p, first: int, spatial, padding: Pads, mode: str):
    """Adjoint of `_pad` on the spatial axes first, first + 1, ...: fold padded back to spatial.

    A non-zero mode gathered padded position j from source index `pad_index(...)[j]`: one slice
    holds the positions gathered one to one (the interior, or the crop of a negative padding),
    the few padding positions are added one by one.
    """
    if mode == "zeros":
        return grad_p[(slice(None),) * first + interior(spatial, padding)]
    for axis, (size, (lo, hi)) in enumerate(zip(spatial, padding), start=first):
        if not (lo or hi):
            continue
        source = pad_index(size, lo, hi, mode)
        padded = np.moveaxis(grad_p, axis, 0)  # the folded axis first: (size + lo + hi, ...)
        start, stop = max(lo, 0), min(lo + size, len(source))  # j gathered from j - lo
        folded = np.zeros((size, *padded.shape[1:]), dtype=padded.dtype)
        folded[start - lo : stop - lo] = padded[start:stop]
        for j in chain(range(start), range(stop, len(source))):  # the padding positions
            folded[source[j]] += padded[j]
        grad_p = np.moveaxis(folded, 0, axis)
    return grad_p


def interior(spatial, padding: Pads) -> tuple[slice, ...]:
    return tuple(slice(lo, lo + size) for size, (lo, _) in zip(spatial, padding))
