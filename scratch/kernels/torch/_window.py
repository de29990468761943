"""Strided window views over torch tensors: no copy, shared by conv and pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def window_view(
    x: torch.Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
) -> torch.Tensor:
    """View `(..., *out, *kernel)` of the last `len(kernel)` dims of an (already padded) `x`.

    Element `[..., o_1.., k_1..]` is `x[..., o_1 * stride_1 + k_1 * dilation_1, ..]`.
    """
    d = len(kernel)
    spatial_strides = x.stride()[-d:]
    for n, o, k, s, dl in zip(x.shape[-d:], out, kernel, stride, dilation):
        if (o - 1) * s + (k - 1) * dl >= n:
            raise ValueError(f"window out of bounds: size {n}, out {o}, kernel {k}, stride {s}")
    shape = tuple(x.shape[:-d]) + tuple(out) + tuple(kernel)
    strides = (
        tuple(x.stride()[:-d])
        + tuple(st * s for st, s in zip(spatial_strides, stride))
        + tuple(st * dl for st, dl in zip(spatial_strides, dilation))
    )
    return x.as_strided(shape, strides, x.storage_offset())
