"""The parity harness: run one named case through torch.nn and scratch.nn, compare everything.

A `Case` names a layer (a class name in both `torch.nn` and `scratch.nn`), its constructor
arguments and how to make its inputs. `run_case` builds both layers from the same state, feeds
both the same seeded inputs, compares outputs and buffers, then compares the gradients of
`(out * g).sum()` for a random `g` with respect to every input and parameter; `gradcheck_case`
runs `torch.autograd.gradcheck` on the scratch layer in float64.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call

import scratch.nn
from scratch.kernels import Backend

# The case table's vocabulary, defined in scratch.verify.inputs, importable from here too.
from scratch.verify.inputs import (  # noqa: F401
    Input,
    classes,
    filled,
    float64_uniform,
    probabilities,
    randn,
    randomize,
    strided,
    targets,
    transposed,
    uniform,
    values,
)

__all__ = [
    "TOLERANCES",
    "Candidate",
    "Case",
    "ErrorCase",
    "Outcome",
    "build",
    "candidate_of",
    "gradcheck_case",
    "raised",
    "run_case",
]

# float64: tight; float32: torch.testing.assert_close's defaults for float32.
TOLERANCES = {torch.float64: (1e-10, 1e-12), torch.float32: (1.3e-6, 1e-5)}


@dataclass(frozen=True)
class Case:
    """One named parity case: `layer(*args, **kwargs)` applied to `inputs`."""

    name: str
    layer: str
    inputs: tuple[Input, ...]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    train: bool = True
    gradcheck: bool = True  # False where the case sits on purpose at a kink or a tie
    # Sets the torch layer's state (under no_grad) before the twin copies it; default: torch's init.
    setup: Callable[[torch.nn.Module, torch.Generator], None] | None = None


@dataclass(frozen=True)
class ErrorCase:
    """Bad arguments: torch and scratch must raise the same exception type."""

    name: str
    layer: str
    inputs: tuple[Input, ...]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    case: str
    layer: str
    backend: str
    dtype: str
    forward_error: float = 0.0
    backward_error: float = 0.0
    failures: list[str] = field(default_factory=list)
    gradcheck: bool | None = None  # None: not run
    speed_ratio: float | None = None  # scratch time / torch time, forward + backward

    @property
    def ok(self) -> bool:
        return not self.failures and self.gradcheck is not False


Candidate = Callable[..., torch.nn.Module]  # built with torch.nn's constructor arguments


def candidate_of(case: Case | ErrorCase, backend: Backend, candidate: Candidate | None):
    """The class (or factory) under test: `candidate`, else the scratch.nn twin on `backend`."""
    if candidate is not None:
        return candidate
    return functools.partial(getattr(scratch.nn, case.layer), backend=backend)


def build(
    case: Case | ErrorCase,
    backend: Backend,
    dtype: torch.dtype,
    seed: int = 0,
    candidate: Candidate | None = None,
):
    """The torch layer and the candidate (default: its scratch twin), in `dtype`, same state."""
    torch.manual_seed(seed)
    reference = getattr(torch.nn, case.layer)(*case.args, **case.kwargs).to(dtype)
    setup = getattr(case, "setup", None)  # an ErrorCase has none
    if setup is not None:
        with torch.no_grad():
            setup(reference, torch.Generator().manual_seed(seed + 2))
    twin = candidate_of(case, backend, candidate)(*case.args, **case.kwargs).to(dtype)
    twin.load_state_dict(reference.state_dict())
    train = getattr(case, "train", True)
    return reference.train(train), twin.train(train)


def _run(layer, leaves, inputs: Sequence[Input], seed: int, upstream_seed: int):
    """Forward + backward of `(out * g).sum()`; returns outputs, grads by name, buffers, secs."""
    params = [p for p in layer.parameters() if p.requires_grad]
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # dropout: the same mask on both sides
        out = layer(*(i.feed(leaf) for i, leaf in zip(inputs, leaves)))
    outs = out if isinstance(out, tuple) else (out,)
    differentiable = [o for o in outs if o.requires_grad]
    grads: dict[str, torch.Tensor] = {}
    if differentiable:
        g = torch.Generator().manual_seed(upstream_seed)
        loss = sum(
            (o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in differentiable
        )
        wrt = [t for t in leaves if t.requires_grad] + params
        computed = torch.autograd.grad(loss, wrt, allow_unused=True)
        names = [f"input{i}" for i, t in enumerate(leaves) if t.requires_grad]
        names += [n for n, p in layer.named_parameters() if p.requires_grad]
        grads = dict(zip(names, computed))
    seconds = time.perf_counter() - start
    buffers = {n: b.detach().clone() for n, b in layer.named_buffers()}
    return [o.detach() for o in outs], grads, buffers, seconds


def _compare(what: str, actual, expected, dtype, failures: list[str]) -> float:
    if expected is None or actual is None:
        if (expected is None) != (actual is None):
            failures.append(f"{what}: torch gives {expected!r}, scratch {actual!r}")
        return 0.0
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        failures.append(
            f"{what}: torch gives {tuple(expected.shape)} {expected.dtype}, "
            f"scratch {tuple(actual.shape)} {actual.dtype}"
        )
        return float("inf")
    rtol, atol = TOLERANCES[dtype] if expected.is_floating_point() else (0, 0)
    if expected.dtype in TOLERANCES:  # a float32 result (mixed-dtype inputs): float32's
        rtol, atol = max((rtol, atol), TOLERANCES[expected.dtype])
    a, e = actual.double(), expected.double()
    diff = (a - e).abs().masked_fill(a.isnan() & e.isnan(), 0)
    error = float(diff.max()) if diff.numel() else 0.0
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError:
        failures.append(f"{what}: max abs error {error:.3g} (rtol {rtol:g}, atol {atol:g})")
    return error


def run_case(
    case: Case,
    backend: Backend,
    dtype: torch.dtype,
    seed: int = 0,
    repeats: int = 1,
    candidate: Candidate | None = None,
) -> Outcome:
    """Compare the candidate (default: scratch.nn's twin) with torch on one case: outputs,
    buffers, every gradient, and speed."""
    outcome = Outcome(case.name, case.layer, str(backend), str(dtype).removeprefix("torch."))
    reference, twin = build(case, backend, dtype, seed, candidate)
    gen = torch.Generator().manual_seed(seed)
    leaves = [i.leaf(gen, dtype) for i in case.inputs]
    initial = {n: t.clone() for n, t in twin.state_dict().items()}
    runs = {}
    for side, layer in (("torch", reference), ("scratch", twin)):
        timings = []
        for _ in range(repeats):
            side_leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in leaves]
            layer.load_state_dict(initial)  # buffers move at every training forward
            *result, seconds = _run(layer, side_leaves, case.inputs, seed, seed + 1)
            timings.append(seconds)
        runs[side] = (*result, min(timings))
    _score(outcome, runs["torch"], runs["scratch"], dtype)
    return outcome


def _score(outcome: Outcome, torch_run: tuple, scratch_run: tuple, dtype: torch.dtype) -> None:
    """Fill `outcome` from both sides' (outputs, grads, buffers, seconds): errors, failures."""
    (out_t, grads_t, bufs_t, sec_t), (out_s, grads_s, bufs_s, sec_s) = torch_run, scratch_run
    failures = outcome.failures
    if len(out_t) != len(out_s):
        failures.append(f"output: torch returns {len(out_t)} tensors, scratch {len(out_s)}")
    errors = [
        _compare(f"output{i}", s, t, dtype, failures) for i, (s, t) in enumerate(zip(out_s, out_t))
    ]
    errors += [
        _compare(f"buffer {n}", bufs_s.get(n), b, dtype, failures) for n, b in bufs_t.items()
    ]
    outcome.forward_error = max(errors, default=0.0)
    grad_errors = [
        _compare(f"grad {n}", grads_s.get(n), g, dtype, failures) for n, g in grads_t.items()
    ]
    outcome.backward_error = max(grad_errors, default=0.0)
    outcome.speed_ratio = sec_s / sec_t if sec_t > 0 else None


def gradcheck_case(
    case: Case, backend: Backend, seed: int = 0, candidate: Candidate | None = None
) -> bool:
    """`torch.autograd.gradcheck` of the scratch layer in float64, wrt inputs and parameters.

    Full Jacobians for small cases; for larger ones gradcheck's fast mode (random projections).
    """
    _, twin = build(case, backend, torch.float64, seed, candidate)
    gen = torch.Generator().manual_seed(seed)
    leaves = [i.leaf(gen, torch.float64) for i in case.inputs]
    params = {
        n: p.detach().clone().requires_grad_(p.requires_grad) for n, p in twin.named_parameters()
    }
    buffers = {n: b.clone() for n, b in twin.named_buffers()}
    n_in = len(leaves)

    def fn(*tensors):
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)  # the same dropout mask each time
            state = {
                **dict(zip(params, tensors[n_in:])),
                **{n: b.clone() for n, b in buffers.items()},
            }
            fed = [i.feed(t) for i, t in zip(case.inputs, tensors[:n_in])]
            return functional_call(twin, state, tuple(fed))

    tensors = (*leaves, *params.values())
    if not any(t.requires_grad for t in tensors):
        return True
    size = sum(t.numel() for t in tensors if t.requires_grad)
    # Tighter than gradcheck's defaults (rtol 1e-3): central differences in float64 are good
    # to ~1e-9 on these smooth, small cases, and a 0.1% gradient bug must not pass.
    return torch.autograd.gradcheck(
        fn, tensors, atol=1e-8, rtol=1e-6, fast_mode=size > 512, raise_exception=False
    )


def raised(
    case: ErrorCase, backend: Backend, candidate: Candidate | None = None
) -> tuple[type | None, type | None, str]:
    """The exception types torch and scratch raise on a bad case, and scratch's message."""
    kinds: list[type | None] = []
    message = ""
    for side in ("torch", "scratch"):
        try:
            torch.manual_seed(0)
            if side == "torch":
                layer = getattr(torch.nn, case.layer)(*case.args, **case.kwargs)
            else:
                layer = candidate_of(case, backend, candidate)(*case.args, **case.kwargs)
            layer = layer.double()
            gen = torch.Generator().manual_seed(0)
            layer(*(i.feed(i.leaf(gen, torch.float64)) for i in case.inputs))
            kinds.append(None)
        except Exception as e:  # noqa: BLE001 - the point is to see what is raised
            kinds.append(type(e))
            message = str(e) if side == "scratch" else message
    return kinds[0], kinds[1], message
