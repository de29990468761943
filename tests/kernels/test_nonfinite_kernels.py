"""Kernel rows for non-finite values: a NaN or inf reaches exactly what torch lets it reach."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import scratch.functional as SF
from scratch.kernels import BACKENDS

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x, out, grad",
    [
        ([INF, 1, 2, 3], 2, [1.0, 2.0]),  # the example: torch gives [inf, 2.5]
        ([1, 2, 3, 4, 5], 3, [INF, 1.0, -1.0]),  # an inf upstream gradient, overlapping windows
        ([NAN, 1, -INF, 2, 0, 1, 3], 4, [NAN, 1.0, 2.0, 3.0]),
        ([INF] * 4, 3, [1.0, 2.0, 3.0]),
    ],
    ids=["inf-input", "inf-grad", "nan-and-inf", "all-inf"],
)
def test_adaptive_avg_pool_nonfinite(backend, x, out, grad):
    """adaptive_avg_pool1d forward and backward with non-finite input or upstream gradient."""
    leaf = torch.tensor([[x]], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[grad]], dtype=torch.float64)
    expected = F.adaptive_avg_pool1d(leaf, out)
    actual = SF.adaptive_avg_pool1d(leaf, out, backend=backend)
    torch.testing.assert_close(actual, expected, equal_nan=True)
    (want,) = torch.autograd.grad(expected, leaf, g)
    (got,) = torch.autograd.grad(actual, leaf, g)
    torch.testing.assert_close(got, want, equal_nan=True)
