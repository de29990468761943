"""Bad-input fuzzer: every scratch.nn class on both backends next to torch.nn, on drawn inputs.

For each trial (tests/fuzz_specs.py: ranks, sizes incl. 0, every dtype, NaN/inf/huge/denormal
values, ties, layouts, and invalid argument types and values) torch decides what is right:
scratch must raise the same exception type, or give the same outputs (values, dtype, shape,
NaN/inf pattern), buffers and gradients, without a NumPy RuntimeWarning torch would not give.
The one allowed difference is scratch's documented refusal of a dtype torch computes
(`DtypeNotSupported`, never for float32/float64). Profiles: tests/conftest.py ("ci" default,
"deep" with `--hypothesis-profile=deep`).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from fuzz_specs import Trial, trials
from hypothesis import event, given
from hypothesis import strategies as st

import scratch.nn
from scratch.kernels import BACKENDS
from scratch.kernels.dtypes import DtypeNotSupported

NAMES = sorted(cls.__name__ for cls in scratch.nn.TWINS.values())
# float64 and float32 as tight as the parity table. float16 / bfloat16 looser, about 8 units in
# the last place: both sides compute them in float32 and round once, but torch rounds a few
# intermediates to the dtype too (batch norm's statistics), and a rounded sum of terms of
# mixed signs is exact only to the terms' magnitude (tests/test_dtypes.py is the tight check).
TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (8e-2, 1e-2),
}


def not_ours(name: str, trial: Trial, error: Exception | None) -> str | None:
    """Why a trial is skipped: a difference that is torch's and stays (README, Development)."""
    x = trial.inputs[0]
    values = {v for _, v in x.specials}
    overflows = x.dtype.is_floating_point and any(
        v > 0 and torch.tensor(v, dtype=x.dtype).isinf() for v in values
    )
    if name == "GELU" and overflows and x.dtype != torch.float64:
        return "torch's float32 GELU(+inf) is NaN; ours is +inf, the limit"
    if name.startswith("AdaptiveAvgPool") and error is None and 0 in x.shape[-int(name[-2]) - 1 :]:
        return "torch's global adaptive pool is a mean() shortcut past its own shape checks"
    classes = x.shape[len(x.shape) > 1 : 2]  # the class dim: 0 for (C,), else 1
    if name == "CrossEntropyLoss" and trial.inputs[1].shape == x.shape and 0 in classes:
        return "torch's mean over probability targets with no classes divides by numel / C"
    if name == "CrossEntropyLoss" and _huge(trial.inputs[1]):
        return "probability targets of 1e30: the gradient is a difference of 1e30-sized terms"
    half = x.dtype in (torch.float16, torch.bfloat16)
    folds = name.startswith("Conv") and trial.kwargs.get("padding_mode", "zeros") != "zeros"
    if half and folds and trial.kwargs.get("padding") in (1, 2, "same") and error is None:
        return "half types: a padding fold that cancels is off by about a unit of its terms"
    padded = trial.kwargs.get("padding", 0) not in (0, "valid")
    copies = folds and padded and bool({1e30, -1e30} & values)  # repeated in dW's sums
    if name.startswith("Conv") and ({1e30, -1e30} <= values or copies) and _huge(x):
        return "x of +-1e30: conv sums their products, to a rounding noise (~1e23) in GEMM order"
    mixed = len(trial.inputs) > 1 and trial.inputs[1].dtype != x.dtype
    if name == "BCEWithLogitsLoss" and mixed and any(abs(v) >= 1e30 for v in values):
        return "torch computes in the target's coarser dtype, where |x| = 1e30 cancels to noise"
    if name == "MaxPool3d" and error is not None and "memory format" in str(error):
        return "torch's max_pool3d takes only contiguous and channels_last_3d memory; we take any"
    if name.startswith("Conv") and 0 in x.shape and trial.args[2] == 0:
        return "torch's conv with a zero-size kernel on an empty input: no consistent answer"
    if error is not None and "in backward" in getattr(error, "__notes__", ()):
        if name.startswith("AdaptiveAvgPool"):
            return "torch's adaptive-pool backward refuses the empty channel dim its forward takes"
    if name == "MaxPool3d" and x.layout == "channels_last" and -math.inf in values:
        return "torch's channels_last max_pool3d drops the gradient of a -inf maximum"
    return None


def _huge(d) -> bool:
    """Whether float input `d` holds a value of 1e30 finite in its dtype: a gradient that is a
    difference of 1e30-sized terms is rounding noise, where torch's exp and NumPy's differing in
    the last bit give -7.6e22 and 0 (the exact value: 0)."""
    return d.dtype.is_floating_point and any(
        abs(v) == 1e30 and torch.tensor(v, dtype=d.dtype).isfinite() for _, v in d.specials
    )


def _build(cls, trial: Trial, dtype: torch.dtype, state=None, **kw):
    torch.manual_seed(0)
    layer = cls(*trial.args, **trial.kwargs, **kw)
    if dtype.is_floating_point:
        layer = layer.to(dtype)
    if state is not None:
        layer.load_state_dict(state)
    return layer.train(trial.train)


def _run(layer, trial: Trial):
    """Forward, then backward of (out * g).sum(): (outputs, buffers, grads)."""
    leaves = [d.leaf() for d in trial.inputs]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # dropout: the same mask on both sides
        out = layer(*(d.feed(t) for d, t in zip(trial.inputs, leaves)))
    outs = out if isinstance(out, tuple) else (out,)
    buffers = {n: b.detach().clone() for n, b in layer.named_buffers()}
    wrt = [t for t in leaves if t.requires_grad] + [p for p in layer.parameters()]
    grads: list = []
    if outs[0].requires_grad and wrt:
        g = torch.randn(outs[0].shape, generator=torch.Generator().manual_seed(2))
        loss = (outs[0] * g.to(outs[0].dtype)).sum()
        try:
            grads = list(torch.autograd.grad(loss, wrt, allow_unused=True))
        except Exception as e:
            e.add_note("in backward")
            raise
    return [o.detach() for o in outs], buffers, grads


def _attempt(fn):
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - the exception type is what is compared
        return None, e


def _scratch_side(trial: Trial, backend: str, name: str, dtype, state):
    """scratch's result; a NumPy RuntimeWarning is an error here (torch is silent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        layer, error = _attempt(
            lambda: _build(getattr(scratch.nn, name), trial, dtype, state, backend=backend)
        )
        if error is not None:
            return None, error
        return _attempt(lambda: _run(layer, trial))


def _close(what: str, actual, expected, least: torch.dtype) -> None:
    """Equal shape, dtype, NaN/inf pattern; values within the tolerance of the expected dtype,
    or of `least`, the least precise float operand, if coarser (mixed-precision inputs)."""
    if expected is None or actual is None:
        assert (expected is None) == (actual is None), f"{what}: {actual!r} vs torch {expected!r}"
        return
    assert (actual.shape, actual.dtype) == (expected.shape, expected.dtype), (
        f"{what}: scratch {tuple(actual.shape)} {actual.dtype}, "
        f"torch {tuple(expected.shape)} {expected.dtype}"
    )
    rtol, atol = TOLERANCES.get(expected.dtype, (None, None))
    if rtol is not None and least in TOLERANCES:
        rtol, atol = max(TOLERANCES[least], (rtol, atol))
    torch.testing.assert_close(
        actual, expected, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}: {m}"
    )


def check_trial(name: str, backend: str, trial: Trial) -> None:
    """torch and scratch agree on `trial`: the same exception type, or the same results."""
    dtype = trial.inputs[0].dtype if trial.inputs[0].dtype.is_floating_point else torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer, error = _attempt(lambda: _build(getattr(torch.nn, name), trial, dtype))
        # the state before torch's forward moves the running statistics
        state = None if layer is None else {k: v.clone() for k, v in layer.state_dict().items()}
        expected, error = (None, error) if error else _attempt(lambda: _run(layer, trial))
    actual, mine = _scratch_side(trial, backend, name, dtype, state)
    reason = not_ours(name, trial, error)
    if reason is not None:
        event(reason)
        return
    if error is not None:
        assert mine is not None, f"torch raises {error!r}, scratch does not"
        # the same type; a dtype refusal is a NotImplementedError, which is a RuntimeError
        same = (
            type(mine) is type(error)
            or isinstance(mine, DtypeNotSupported)
            and isinstance(mine, type(error))
        )
        assert same, f"torch raises {error!r}, scratch {mine!r}"
        return
    if isinstance(mine, DtypeNotSupported):  # documented refusal of a dtype torch computes
        assert trial.inputs[0].dtype not in (torch.float32, torch.float64), str(mine)
        return
    assert mine is None, f"torch computes, scratch raises {mine!r}"
    floats = [d.dtype for d in trial.inputs if d.dtype.is_floating_point] + [dtype]
    least = max(floats, key=lambda t: TOLERANCES.get(t, (0, 0)))
    for part, (a, e) in zip(("output", "buffer", "grad"), zip(actual, expected)):
        if isinstance(e, dict):
            a, e = [a.get(k) for k in e], list(e.values())
        assert len(a) == len(e), f"{part}: scratch gives {len(a)}, torch {len(e)}"
        for i, (x, y) in enumerate(zip(a, e)):
            _close(f"{part} {i}", x, y, least)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_fuzz(name: str, backend: str, data) -> None:
    """Every scratch.nn class on drawn odd inputs agrees with torch.nn (see the module doc)."""
    check_trial(name, backend, data.draw(trials(name), label="trial"))
