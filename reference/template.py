"""Template (pattern) detection: the normalized cross-correlation map, through the scratch conv.

`match_template(image, pattern)[i, j]` is the Pearson correlation between `pattern` and the
window of `image` whose top-left corner is `(i, j)` (skimage's `match_template` without padding):
+1 where the window is an exact positive multiple of the pattern plus a constant, about 0 over
unrelated texture. `find_template` returns the corner of the best window.
"""

from __future__ import annotations

import numpy as np
import torch

import scratch.functional as SF
from scratch.kernels import DEFAULT_BACKEND, Backend

__all__ = ["find_template", "match_template"]


def match_template(
    image: np.ndarray | torch.Tensor,
    pattern: np.ndarray | torch.Tensor,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> np.ndarray | torch.Tensor:
    """The normalized cross-correlation of `pattern` over every full window of `image`.

    Shapes: image (H, W), pattern (h, w) -> (H - h + 1, W - w + 1), values in [-1, 1]. A flat
    window (zero variance) or a flat pattern scores 0. All sums are 'valid' scratch
    convolutions: with the zero-mean pattern, and with a box of ones (separable: a column, then
    a row) over x and x² for each window's sum of squares about its own mean.
    """
    is_numpy = not isinstance(image, torch.Tensor)
    x = torch.as_tensor(np.asarray(image) if is_numpy else image)
    t = torch.as_tensor(pattern)
    if x.dim() != 2 or t.dim() != 2 or any(p > s for p, s in zip(t.shape, x.shape)):
        raise ValueError(
            f"match_template: expected a 2-d image and a 2-d pattern no larger than it, got "
            f"image {tuple(x.shape)} and pattern {tuple(t.shape)}"
        )
    dtype = x.dtype if x.is_floating_point() else torch.float64
    x = x.to(dtype)
    x = (x - x.mean())[None, None]  # (1, 1, H, W); the shift changes no correlation, eases rounding
    t = t.to(dtype)
    t0 = (t - t.mean())[None, None]  # (1, 1, h, w)
    n = t.numel()
    num = SF.conv2d(x, t0, backend=backend)  # sum over the window of x * (t - mean t)
    s1, s2 = _window_sum(x, t.shape, backend), _window_sum(x * x, t.shape, backend)
    window_ss = (s2 - s1 * s1 / n).clamp_min(0)  # sum over the window of (x - window mean)²
    pattern_ss = (t0 * t0).sum()
    # A spread at the level of the rounding in s2 - s1²/n is no spread: such a window (or a
    # flat pattern) has no defined correlation and scores 0.
    flat = (window_ss <= 1e-11 * s2) | (pattern_ss <= 1e-11 * (t * t).sum())
    denom = torch.sqrt(torch.where(flat, 1, window_ss * pattern_ss))
    response = torch.where(flat, 0, num / denom)
    response = response[0, 0]
    return response.detach().numpy() if is_numpy else response


def _window_sum(x: torch.Tensor, shape: tuple[int, int], backend: Backend) -> torch.Tensor:
    """The sum over every full h x w window: a box is separable, so a column of ones then a row
    of ones (h + w taps instead of h * w). Shapes: (1, 1, H, W) -> (1, 1, H - h + 1, W - w + 1)."""
    h, w = shape
    column = SF.conv2d(x, x.new_ones(1, 1, h, 1), backend=backend)
    return SF.conv2d(column, x.new_ones(1, 1, 1, w), backend=backend)


def find_template(
    image: np.ndarray | torch.Tensor,
    pattern: np.ndarray | torch.Tensor,
    *,
    backend: Backend = DEFAULT_BACKEND,
) -> tuple[int, int]:
    """`(row, col)` of the top-left corner of the window that best matches `pattern`."""
    response = torch.as_tensor(match_template(image, pattern, backend=backend))
    flat = int(torch.argmax(response))
    return divmod(flat, response.shape[1])
