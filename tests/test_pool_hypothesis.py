"""Random pooling configurations, valid or not, through scratch.functional and torch.

Hypothesis draws a pool (max / avg / adaptive avg, 1-d to 3-d, batched or not) with sizes that
are often invalid (stride 0, padding over half the kernel, output too small, negative output
size). Torch decides: if it raises, scratch must raise the same exception type; otherwise the
outputs, the max-pool indices and the gradients of (out * g).sum() must match.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import scratch.functional as SF
from scratch.kernels import BACKENDS
from scratch.verify.parity import TOLERANCES


def _sizes(d: int, low: int, high: int):
    """An int, or a tuple of d ints (torch takes both)."""
    return st.integers(low, high) | st.tuples(*[st.integers(low, high)] * d)


@st.composite
def pools(draw):
    """(name, input shape, positional args) of one functional call, possibly invalid."""
    kind = draw(st.sampled_from(["max_pool", "avg_pool", "adaptive_avg_pool"]))
    d = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)),) if draw(st.booleans()) else ()  # batched or not
    shape += (draw(st.integers(1, 3)),) + tuple(draw(st.integers(1, 7 - d)) for _ in range(d))
    if kind == "adaptive_avg_pool":
        entry = st.integers(-1, 6) | (st.none() if d > 1 else st.nothing())
        size = st.integers(-1, 6) | st.tuples(*[entry] * d)
        return f"adaptive_avg_pool{d}d", shape, (draw(size),)
    kernel, stride = draw(_sizes(d, 0, 4)), draw(st.none() | _sizes(d, 0, 4))
    padding, ceil_mode = draw(_sizes(d, 0, 2)), draw(st.booleans())
    if kind == "max_pool":
        dilation = draw(_sizes(d, 0, 3))
        return f"max_pool{d}d", shape, (kernel, stride, padding, dilation, ceil_mode, True)
    args = (kernel, stride, padding, ceil_mode, draw(st.booleans()))
    if d > 1:  # avg_pool1d has no divisor_override
        args += (draw(st.none() | st.integers(-2, 5)),)
    return f"avg_pool{d}d", shape, args


@settings(max_examples=40, deadline=None)
@given(
    pool=pools(),
    backend=st.sampled_from(BACKENDS),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 2**16),
)
def test_pool_matches_torch(pool, backend, dtype, seed):
    name, shape, args = pool
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    x_torch, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    try:
        expected = getattr(F, name)(x_torch, *args)
    except Exception as error:  # noqa: BLE001 - torch says the configuration is invalid
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the type is checked below
            getattr(SF, name)(x_ours, *args, backend=backend)
        assert type(raised.value) is type(error), f"torch: {error!r}; scratch: {raised.value!r}"
        return
    got = getattr(SF, name)(x_ours, *args, backend=backend)
    if name.startswith("max_pool"):  # return_indices=True: (output, indices)
        (expected, indices), (got, got_indices) = expected, got
        assert torch.equal(got_indices, indices)
    rtol, atol = TOLERANCES[dtype]
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)
    if expected.numel() == 0:  # torch's backward refuses an empty adaptive-pool output
        return
    g = torch.randn(expected.shape, generator=gen, dtype=dtype)
    (got * g).sum().backward()
    if expected.isneginf().any():  # dilated taps that all miss the input: see max_pool kernels
        assert torch.equal(x_ours.grad, torch.zeros_like(x)), "no gradient from padding alone"
        return  # torch's own backward would write out of bounds
    (expected * g).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_torch.grad, rtol=rtol, atol=atol)
