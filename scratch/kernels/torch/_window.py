"""Strided window views over torch tensors: no copy (the geometry is `windows.window_layout`)."""

from __future__ import annotations

import torch

from scratch.kernels.windows import window_layout


def window_view(x: torch.Tensor, kernel, stride, dilation, out) -> torch.Tensor:
    """View `(..., *out, *kernel)` of the last `len(kernel)` dims of an (already padded) `x`."""
    shape, strides = window_layout(x.shape, x.stride(), kernel, stride, dilation, out)
    return x.as_strided(shape, strides, x.storage_offset())
