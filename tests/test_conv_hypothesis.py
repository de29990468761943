"""Random convolution configurations, valid or not, through scratch and torch.

Hypothesis draws a convolution (1-d to 3-d, batched or not) whose sizes are often invalid:
groups not dividing the channels, a weight / input channel mismatch, a kernel larger than the
padded input, stride or dilation 0, negative padding, padding='same' with a stride, reflect or
circular padding wider than the input. Torch decides: if it raises, scratch must raise the same
exception type; otherwise outputs and the gradients of (out * g).sum() must match. padding_mode
'zeros' goes through the functionals (F.conv*d), the other modes through the modules (only
nn.Conv*d takes a padding_mode).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import scratch.functional as SF
import scratch.nn
from scratch.functional.conv import PADDING_MODES
from scratch.kernels import BACKENDS
from scratch.verify.parity import TOLERANCES


def _sizes(d: int, values: list[int]):
    """An int, or a tuple of d ints (torch takes both), each drawn from `values`."""
    value = st.sampled_from(values)
    return value | st.tuples(*[value] * d)


@st.composite
def convs(draw):
    """(d, input shape, weight shape, bias, options) of one convolution, invalid about half the
    time: each argument below is off now and then (the values after the valid ones)."""
    d = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1] * 4 + [2, 2, 3, 3, 0]))
    g = max(groups, 1)
    c_in = g * draw(st.integers(1, 2)) + draw(st.sampled_from([0] * 9 + [1]))
    c_out = g * draw(st.integers(1, 2)) + draw(st.sampled_from([0] * 9 + [1]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    weight = (c_out, draw(st.sampled_from([c_in // g] * 9 + [c_in + 1])), *kernel)
    batch = (draw(st.sampled_from([1, 2, 2, 0])),) if draw(st.booleans()) else ()
    shape = (*batch, c_in, *(draw(st.integers(1, 6 - d)) for _ in range(d)))
    padding = draw(_sizes(d, [0, 1, 2] * 3 + [-1]) | st.sampled_from(["same", "valid"]))
    options = {
        "stride": draw(_sizes(d, [1, 1, 2] * 3 + [0])),
        "padding": padding,
        "dilation": draw(_sizes(d, [1, 1, 2] * 3 + [0])),
        "groups": groups,
        "padding_mode": draw(st.sampled_from(["zeros", *PADDING_MODES])),  # 'zeros' twice as often
    }
    return d, shape, weight, draw(st.booleans()), options


@st.composite
def batched_convs(draw):
    """(d, input shape, weight shape, bias, options) of a 2-d convolution of short rows in a
    batch of 8 to 64, mostly valid: the shapes that take batch-last columns, the full grid (at
    most 8 output channels) and the torch backend's row taps (9 to 64, stride 1 down the rows)
    or im2col, at their boundaries."""
    groups = draw(st.sampled_from([1] * 5 + [2]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.sampled_from([4, 8, 9, 12, 16, 24, 33]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (
        draw(st.sampled_from([8, 16, 64])),
        c_in,
        draw(st.integers(2, 7)),
        draw(st.integers(2, 9)),
    )
    options = {
        "stride": draw(_sizes(2, [1, 1, 1, 2])),
        "padding": draw(_sizes(2, [0, 1, 2]) | st.sampled_from(["same", "valid"])),
        "dilation": draw(_sizes(2, [1, 1, 2])),
        "groups": groups,
        "padding_mode": draw(st.sampled_from(["zeros", *PADDING_MODES])),
    }
    return 2, shape, (c_out, c_in // groups, *kernel), draw(st.booleans()), options


def convolve(nn, functional, d, x, weight, bias, options, **backend):
    """One side's convolution: F.conv*d for 'zeros', else an nn.Conv*d holding weight and bias.

    Returns the output and the (weight, bias) tensors whose gradients are compared.
    """
    options = dict(options)
    mode = options.pop("padding_mode")
    if mode == "zeros":
        weight, bias = (None if t is None else t.clone().requires_grad_() for t in (weight, bias))
        out = getattr(functional, f"conv{d}d")(x, weight, bias, **options, **backend)
        return out, (weight, bias)
    layer = getattr(nn, f"Conv{d}d")(
        weight.shape[1] * options["groups"], weight.shape[0], weight.shape[2:], **options,
        bias=bias is not None, padding_mode=mode, dtype=weight.dtype, **backend,
    )  # fmt: skip
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer(x), (layer.weight, layer.bias)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@settings(max_examples=60, deadline=None)
@given(
    conv=convs() | batched_convs(),
    backend=st.sampled_from(BACKENDS),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 2**16),
)
def test_conv_matches_torch(conv, backend, dtype, seed):
    """Torch raises and scratch raises the same type, or both give the same output and the
    same gradients of (out * g).sum()."""
    d, shape, weight_shape, has_bias, options = conv
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    weight = torch.randn(weight_shape, generator=gen, dtype=dtype)
    weight /= math.sqrt(math.prod(weight_shape[1:]) or 1)  # outputs O(1)
    bias = torch.randn(weight_shape[0], generator=gen, dtype=dtype) if has_bias else None
    x_torch, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    try:
        expected, params_torch = convolve(torch.nn, F, d, x_torch, weight, bias, options)
    except Exception as error:  # noqa: BLE001 - torch says the configuration is invalid
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the type is checked below
            convolve(scratch.nn, SF, d, x_ours, weight, bias, options, backend=backend)
        assert type(raised.value) is type(error), f"torch: {error!r}; scratch: {raised.value!r}"
        return
    got, params_ours = convolve(scratch.nn, SF, d, x_ours, weight, bias, options, backend=backend)
    rtol, atol = TOLERANCES[dtype]
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)
    # g scaled so that the weight gradient, a sum over N * prod(out) terms, stays O(1)
    g = torch.randn(expected.shape, generator=gen, dtype=dtype)
    g /= math.sqrt(expected.numel() // weight_shape[0] or 1)
    (expected * g).sum().backward()
    (got * g).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_torch.grad, rtol=rtol, atol=atol)
    for ours, theirs in zip(params_ours, params_torch):
        if theirs is not None:
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=rtol, atol=atol)
