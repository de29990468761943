"""The torch backend never reads a value back from its device (no host sync in the hot path).

A GPU machine is rarely at hand, so the proof runs on the `meta` device: its tensors have
shapes and dtypes but no values, and anything that reads one (`.item()`, `bool(t)`, `int(t)`,
`.tolist()`, `if t.any():`) raises. Every row of the case table, forward and backward, on the
torch backend, with its parameters and inputs on `meta`. On a CUDA device such a read would be
a synchronization per call; torch's own kernels check values inside the kernel instead, as
ours do with `torch._assert_async` (see `scratch.functional._checks.check_values`).
"""

from __future__ import annotations

import math

import pytest
import torch

import scratch.functional
import scratch.optim
from scratch.verify.cases import CASES
from scratch.verify.parity import build

META = torch.device("meta")


# torch.nn's own BatchNorm with momentum=None reads its step count back (`1 / float(
# num_batches_tracked)`), and so does its twin, which runs torch.nn's module code
READS_LIKE_TORCH = {c.name for c in CASES if c.kwargs.get("momentum", 0.1) is None}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_torch_backend_reads_no_device_value(case):
    """Forward and backward on `meta` tensors: shapes and dtypes as on the CPU, no value read."""
    if case.name in READS_LIKE_TORCH:
        pytest.skip("torch.nn's BatchNorm reads num_batches_tracked with momentum=None too")
    gen = torch.Generator().manual_seed(0)
    reference, twin = build(case, "torch", torch.float32)
    leaves = [i.leaf(gen, torch.float32) for i in case.inputs]
    with torch.no_grad():
        expected = reference(*(i.feed(leaf) for i, leaf in zip(case.inputs, leaves)))
    twin = twin.to(META)
    metas = [leaf.detach().to(META).requires_grad_(leaf.requires_grad) for leaf in leaves]
    out = twin(*(i.feed(leaf) for i, leaf in zip(case.inputs, metas)))
    outs, wants = (out, expected) if isinstance(out, tuple) else ((out,), (expected,))
    for o, want in zip(outs, wants):
        assert o.device == META and o.shape == want.shape and o.dtype == want.dtype
    differentiable = [o for o in outs if o.requires_grad]
    if differentiable:
        loss = sum((o * torch.ones_like(o)).sum() for o in differentiable)
        wrt = [t for t in metas if t.requires_grad] + list(twin.parameters())
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        for g, t in zip(grads, wrt):
            assert g is None or (g.device == META and g.shape == t.shape)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop"])
def test_torch_backend_optimizers_read_no_device_value(name):
    """Two steps of each scratch optimizer on `meta` parameters (the step counters stay host
    floats, as torch.optim's non-capturable path keeps them)."""
    param = torch.nn.Parameter(torch.empty(3, 4, device=META))
    options = {"momentum": 0.9} if name == "SGD" else {}
    optimizer = getattr(scratch.optim, name)([param], lr=0.1, backend="torch", **options)
    for _ in range(2):
        param.grad = torch.empty_like(param)
        optimizer.step()
    assert param.device == META


@pytest.mark.parametrize("op", ["max_pool2d", "adaptive_avg_pool2d"])
def test_pool_paths_for_devices_match_torch(monkeypatch, op, gen):
    """The pools' paths for devices that cannot read values back (the NaN-aware max scan, the
    per-window sums), forced on the CPU, agree with torch on NaN, inf and ties."""
    import scratch.functional as SF
    import scratch.kernels.torch.pooling as pooling

    monkeypatch.setattr(pooling, "_can_read", lambda t: False)
    x = torch.randn(2, 3, 7, 6, generator=gen, dtype=torch.float64)
    x[0, 0, 1, 1], x[0, 1, 2, 3], x[1, 2, 0, 0], x[1, 0, 4, 4] = math.nan, math.inf, -math.inf, 5
    x[1, 0, 4, 5] = 5  # a tie
    args = (3, 2, 1) if op == "max_pool2d" else ((3, 4),)
    leaf, mine = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = getattr(torch.nn.functional, op)(leaf, *args)
    got = getattr(SF, op)(mine, *args, backend="torch")
    torch.testing.assert_close(got, want, equal_nan=True, rtol=1e-10, atol=1e-12)
    g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    want.backward(g)
    got.backward(g)
    torch.testing.assert_close(mine.grad, leaf.grad, equal_nan=True, rtol=1e-10, atol=1e-12)


def test_pool_constants_are_made_once_per_geometry():
    """A second call of the same geometry copies nothing to the device: the plan's index and
    count vectors come from the cache."""
    import scratch.functional as SF
    from scratch.kernels.torch._window import on_device

    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    for _ in range(2):
        before = on_device.cache_info().misses
        SF.max_pool2d(x, 3, 2, 1, backend="torch").sum().backward()
        SF.avg_pool2d(x, 3, 2, 1, backend="torch").sum().backward()
        SF.adaptive_avg_pool2d(x, 4, backend="torch").sum().backward()
    assert on_device.cache_info().misses == before


def test_numpy_backend_on_meta_names_the_torch_backend():
    """The NumPy backend needs values: a meta input gets an error saying which backend runs."""
    x = torch.empty(2, 3, device=META, requires_grad=True)
    with pytest.raises(NotImplementedError, match="meta tensor has none: use backend='torch'"):
        scratch.functional.relu(x, backend="numpy")
    assert scratch.functional.relu(x, backend="torch").device == META
