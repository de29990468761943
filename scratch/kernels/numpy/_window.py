"""Strided window views over NumPy arrays: no copy (the geometry is `windows.window_layout`)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratch.kernels.windows import window_layout


def window_view(x: np.ndarray, kernel, stride, dilation, out) -> np.ndarray:
    """Read-only view `(..., *out, *kernel)` of the last `len(kernel)` dims of a padded `x`."""
    shape, strides = window_layout(x.shape, x.strides, kernel, stride, dilation, out)
    return as_strided(x, shape, strides, writeable=False)
