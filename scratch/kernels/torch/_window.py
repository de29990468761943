"""Strided window views over torch tensors (no copy; the geometry is `windows.window_layout`)
and the plans' small integer constants on a tensor's device."""

from __future__ import annotations

import functools

import torch

from scratch.kernels.windows import window_layout


def window_view(x: torch.Tensor, kernel, stride, dilation, out) -> torch.Tensor:
    """View `(..., *out, *kernel)` of the last `len(kernel)` dims of an (already padded) `x`."""
    shape, strides = window_layout(x.shape, x.stride(), kernel, stride, dilation, out)
    return x.as_strided(shape, strides, x.storage_offset())


@functools.lru_cache(maxsize=512)
def on_device(values: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small constant of a plan (indices, counts, gather positions) on `device`, made once
    per geometry.

    Made per call, `torch.tensor(list, device=...)` copies from the host each time, which on a
    GPU waits for the device: cached, the hot path never copies to the device. Read-only.
    """
    return torch.tensor(values, dtype=dtype, device=device)
