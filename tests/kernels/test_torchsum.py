"""The NumPy backend's `torch_sum` against torch.sum itself, bit for bit (one torch thread).

Drawn shapes cross each of torch's orders (rows shorter than a SIMD vector, rows of whole and
partial vectors, rows long enough for the cascade's levels, reductions across rows), in every
memory layout the bridge hands a kernel, with terms of every magnitude, so that the order of
the additions shows in the result: 1e30 cancelling -1e30 one way, not another.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from scratch.kernels.numpy._torchsum import _vector_bytes, as_torch_float, torch_sum

from .conftest import BACKENDS, run_pair

SPECIALS = [1e30, -1e30, 3e38, -3e38, 1e7, -1e7, 1e-30, math.inf, -math.inf, math.nan, -0.0]
LAYOUTS = ["contiguous", "transposed", "channels_last", "expanded", "sliced", "permuted"]


@st.composite
def inputs(draw):
    """(x, reduced dims): x of 2 to 5 dims in a drawn layout, summed over its trailing 1-3."""
    d = draw(st.integers(1, 3))
    lead = draw(st.lists(st.integers(1, 5), min_size=1, max_size=2))
    big = draw(st.booleans())
    spatial = draw(st.lists(st.integers(1, 40 if big else 7), min_size=d, max_size=d))
    shape = (*lead, *spatial)
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16]))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**31))
    specials = draw(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(SPECIALS))))
    scale = draw(st.sampled_from([1.0, 1e3]))
    gen = torch.Generator().manual_seed(seed)

    def values(s):
        x = torch.randn(s, generator=gen, dtype=torch.float64) * scale
        flat = x.view(-1)
        for i, v in specials[:4]:
            flat[i % flat.numel()] = v
        return x.to(dtype)

    if layout == "expanded":  # the last dim of stride 0
        x = values((*shape[:-1], 1)).expand(shape)
    elif layout == "sliced":  # holes between the elements
        x = values((*shape[:-1], 2 * shape[-1]))[..., ::2]
    else:
        x = values(shape)
    if layout == "transposed":
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif layout == "channels_last" and x.dim() in (4, 5):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        x = x.contiguous(memory_format=fmt)
    elif layout == "permuted":
        order = draw(st.permutations(range(x.dim())))
        x = x.permute(order).contiguous().permute([order.index(i) for i in range(x.dim())])
    return x, tuple(range(-d, 0))


@settings(max_examples=300, deadline=None)
@given(inputs())
def test_torch_sum_is_torchs_bits(case):
    """float32 and float64 sums as torch.sum; float16 means as torch's (a float32 sum of a
    float32 copy, divided, rounded once), NaN where torch's are."""
    x, dims = case
    a = x.numpy()
    with np.errstate(all="ignore"):  # overflow to inf, inf - inf: as torch, silently
        if x.dtype == torch.float16:
            ours = (torch_sum(as_torch_float(a), dims) / math.prod(x.shape[-len(dims) :])).astype(
                np.float16
            )
            expected = x.mean(dims, keepdim=True)
        else:
            ours, expected = torch_sum(a, dims), x.sum(dims, keepdim=True)
    torch.testing.assert_close(torch.from_numpy(ours), expected, rtol=0, atol=0, equal_nan=True)


def test_vector_width_is_found():
    """The probe finds a width whose order reproduces torch's sums (not the fallback's guess):
    a row of 67 terms spanning 12 orders of magnitude tells 16, 32 and 64 bytes apart."""
    assert _vector_bytes() in (16, 32, 64)
    probe = np.random.default_rng(0).standard_normal((8, 67)) * np.logspace(-6, 6, 67)
    probe = probe.astype(np.float32)
    want = torch.from_numpy(probe).sum(1, keepdim=True)
    torch.testing.assert_close(torch.from_numpy(torch_sum(probe, (1,))), want, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
@pytest.mark.parametrize("spatial", [(3, 2), (7, 7), (17, 19), (64, 70), (2, 9, 9)], ids=str)
def test_global_adaptive_avg_pool_bit_for_bit(spatial, layout, dtype, backend, gen):
    """Output size 1 (ResNet's head): torch takes x.mean(), whose sum adds in its own order;
    where 1e30 and -1e30 cancel, and NaN sits in a plane, ours are its bits, both backends."""
    d = len(spatial)
    x = torch.randn(2, 5, *spatial, generator=gen, dtype=torch.float64) * 100
    flat = x.view(-1)
    flat[3], flat[40], flat[-2] = 1e30, -1e30, math.nan
    x = x.to(dtype)
    if layout == "channels_last" and x.dim() in (4, 5):
        x = x.contiguous(memory_format=torch.channels_last if d == 2 else torch.channels_last_3d)
    elif layout == "transposed":
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    grad_y = torch.randn(2, 5, *[1] * d, generator=gen, dtype=torch.float64).to(dtype)
    (y,), (grad,) = run_pair(
        backend, "adaptive_avg_pool", [x], grad_y, (True,), output_size=(1,) * d
    )
    leaf = x.clone().requires_grad_()
    expected = getattr(F, f"adaptive_avg_pool{d}d")(leaf, 1)
    (expected_grad,) = torch.autograd.grad(expected, leaf, grad_y)
    torch.testing.assert_close(y, expected.detach(), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0, equal_nan=True)
