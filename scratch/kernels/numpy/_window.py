"""Strided window views over NumPy arrays: no copy, shared by conv and pooling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided


def window_view(
    x: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
) -> np.ndarray:
    """Read-only view `(..., *out, *kernel)` of the last `len(kernel)` dims of a padded `x`.

    Element `[..., o_1.., k_1..]` is `x[..., o_1 * stride_1 + k_1 * dilation_1, ..]`.
    """
    d = len(kernel)
    spatial_strides = x.strides[-d:]
    for n, o, k, s, dl in zip(x.shape[-d:], out, kernel, stride, dilation):
        if (o - 1) * s + (k - 1) * dl >= n:
            raise ValueError(f"window out of bounds: size {n}, out {o}, kernel {k}, stride {s}")
    shape = x.shape[:-d] + tuple(out) + tuple(kernel)
    strides = (
        x.strides[:-d]
        + tuple(st * s for st, s in zip(spatial_strides, stride))
        + tuple(st * dl for st, dl in zip(spatial_strides, dilation))
    )
    return as_strided(x, shape, strides, writeable=False)
