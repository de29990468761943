"""Check a user's layer on one case: forward, every gradient, gradcheck, mutation, verdict.

`check_case` runs the torch twin and the adapted user layer on the same seeded inputs and the
same random upstream gradient (`scratch.verify.parity`'s harness), in float64 and float32, and
keeps the float64 tensors of both sides for the hint engine. `search` draws configurations
with Hypothesis and shrinks a failure to the smallest failing configuration.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

import torch
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from scratch.verify.adapters import AdaptError, Unsupported
from scratch.verify.bridge import LayerError
from scratch.verify.configs import (
    OPTIONAL_KINDS,
    STRATEGIES,
    call_text,
    features_of,
    kinds_of,
    option_names,
    property_case,
    user_case,
)
from scratch.verify.parity import TOLERANCES, Case, _run, gradcheck_case
from scratch.verify.report import CaseResult, Check
from scratch.verify.specs import constructor_arguments

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class Invalid(Exception):
    """torch itself rejects the configuration: not a case."""


def compare(what: str, actual, expected, dtype: torch.dtype) -> Check:
    """One tensor of the user's layer against torch's: errors, worst element, verdict."""
    name = str(dtype).removeprefix("torch.")
    if expected is None and actual is None:
        return Check(what, name, True)
    if actual is None:
        return Check(what, name, False, message="your layer gives no gradient (None)")
    if expected is None:
        return Check(what, name, False, message="torch gives no value here, your layer does")
    if tuple(actual.shape) != tuple(expected.shape):
        message = f"shape {tuple(actual.shape)}, torch's is {tuple(expected.shape)}"
        return Check(what, name, False, message=message)
    a, e = actual.double(), expected.double()
    diff = (a - e).abs()
    diff = torch.where(a.isnan() & e.isnan(), 0.0, diff)
    diff = torch.where(diff.isnan() | (a.isinf() != e.isinf()), float("inf"), diff)
    if not diff.numel():
        return Check(what, name, True, 0.0, 0.0)
    flat = int(diff.flatten().argmax())
    worst = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape))
    scale = float(e.abs().nan_to_num(posinf=0, neginf=0).max()) or 1.0
    error = float(diff.max())
    rtol, atol = TOLERANCES[dtype] if expected.is_floating_point() else (0, 0)
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
        ok = True
    except AssertionError:
        ok = False
    return Check(what, name, ok, error, error / scale, worst)


def _torch_layer(case: Case, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    try:
        layer = getattr(torch.nn, case.layer)(*case.args, **case.kwargs).to(dtype)
    except Exception as e:  # noqa: BLE001 - torch decides what a valid configuration is
        raise Invalid(f"torch rejects it: {e}") from e
    if case.setup is not None:
        with torch.no_grad():
            case.setup(layer, torch.Generator().manual_seed(seed + 2))
    return layer.train(case.train)


def _user_layer(case: Case, candidate, reference: torch.nn.Module, dtype: torch.dtype):
    try:
        twin = candidate(*case.args, **case.kwargs)
    except (Unsupported, AdaptError):
        raise
    except Exception as e:  # a bug in the constructor: not an input kind the layer declines
        raise LayerError(f"your constructor raised {type(e).__name__}: {e}") from e
    twin = twin.to(dtype)
    twin.load_state_dict(reference.state_dict())
    return twin.train(case.train)


def _both(case: Case, candidate, dtype: torch.dtype, seed: int, result: CaseResult) -> None:
    """One dtype: run both sides, compare output and every gradient into `result.checks`."""
    reference = _torch_layer(case, dtype, seed)
    twin = _user_layer(case, candidate, reference, dtype)
    gen = torch.Generator().manual_seed(seed)
    leaves = [i.leaf(gen, dtype) for i in case.inputs]

    def side(layer):
        copies = [t.detach().clone().requires_grad_(t.requires_grad) for t in leaves]
        return _run(layer, copies, case.inputs, seed, seed + 1)

    try:
        out_t, grads_t, *_ = side(reference)
    except Exception as e:  # noqa: BLE001
        raise Invalid(f"torch rejects the inputs: {e}") from e
    try:
        out_s, grads_s, *_ = side(twin)
    except Exception as e:
        _forward_shape(twin, case, leaves, out_t[0], e)
        raise
    result.checks.append(compare("output", out_s[0], out_t[0], dtype))
    for name, expected in grads_t.items():
        what = "grad input" if name == "input0" else f"grad {name}"
        result.checks.append(compare(what, grads_s.get(name), expected, dtype))
    if hasattr(twin, "kept_buffers"):  # running statistics after the step, where both keep them
        theirs = dict(reference.named_buffers())
        for name in twin.kept_buffers():
            check = compare(name, getattr(twin, name), theirs[name], dtype)
            if not check.passed and not check.message:
                check.message = (
                    f"{name} after the forward is not torch's: {_stats_rule(case, name, leaves[0])}"
                )
            result.checks.append(check)
    if dtype == torch.float64:
        result.pairs = {"output": (out_s[0], out_t[0])}
        for name, expected in grads_t.items():
            what = "grad input" if name == "input0" else f"grad {name}"
            result.pairs[what] = (grads_s.get(name), expected)
        result.context = {"inputs": [t.detach() for t in leaves], "reference": reference}


def _stats_rule(case: Case, name: str, x: torch.Tensor) -> str:
    """How torch updates a running statistic `name` in this case, in words."""
    if not case.train:
        return "torch leaves its running statistics unchanged in eval mode"
    if x.numel() == 0:
        return "torch leaves its running statistics unchanged on an empty batch"
    if name == "num_batches_tracked":
        return "torch counts every training forward"
    return "torch's is (1 - momentum) * old + momentum * the batch's (the variance unbiased)"


def _forward_shape(twin, case: Case, leaves, expected: torch.Tensor, error: Exception) -> None:
    """After a failed run: a wrong output shape, if that is what went wrong first."""
    try:
        with torch.no_grad():
            out = twin(*(i.feed(t) for i, t in zip(case.inputs, leaves)))
    except Exception:  # noqa: BLE001 - the forward itself raised: the original error stands
        return
    out = out[0] if isinstance(out, tuple) else out
    if tuple(out.shape) != tuple(expected.shape):
        shapes = (tuple(out.shape), tuple(expected.shape))
        raise LayerError(
            f"forward's output has shape {shapes[0]}, torch's is {shapes[1]}", "output", shapes
        ) from error


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal element for element, NaN equal to NaN."""
    return (
        bool(((a == b) | (a.isnan() & b.isnan())).all())
        if a.is_floating_point()
        else bool(torch.equal(a, b))
    )


def _mutation(case: Case, candidate, seed: int) -> list[str]:
    """What the user's layer writes into: its input (unless asked to: inplace=True, whose
    input is then a copy, as in the main run), or the upstream gradient; and whether a second
    forward on the same input gives the same output (Dropout's is random on purpose)."""
    reference = _torch_layer(case, torch.float64, seed)
    twin = _user_layer(case, candidate, reference, torch.float64)
    gen = torch.Generator().manual_seed(seed)
    leaves = [i.leaf(gen, torch.float64) for i in case.inputs]
    before = [t.detach().clone() for t in leaves]
    inplace = bool(constructor_arguments(case.layer, case.args, case.kwargs).get("inplace"))

    def forward() -> torch.Tensor:
        fed = [
            i.feed(t) if inplace else i.view(t) if i.view else t
            for i, t in zip(case.inputs, leaves)
        ]
        out = twin(*fed)
        return out[0] if isinstance(out, tuple) else out

    out = forward()
    found = [
        f"forward modified input {k} in place"
        for k, (t, b) in enumerate(zip(leaves, before))
        if not _same(t.detach(), b)
    ]
    if not found and case.layer != "Dropout" and not _same(forward().detach(), out.detach()):
        found.append(
            "forward gave another output for the same input on a second call: it draws "
            "random numbers or keeps state between calls"
        )
    if out.requires_grad and leaves[0].requires_grad:
        g = torch.randn(out.shape, generator=gen, dtype=out.dtype)
        g_before = g.clone()
        torch.autograd.grad(out, [leaves[0]], g, allow_unused=True)
        if not _same(g, g_before):
            found.append("backward modified the upstream gradient in place")
    return found


def check_case(
    case: Case,
    candidate,
    dtypes: Sequence[str] = ("float64", "float32"),
    seed: int = 0,
    gradcheck: bool = True,
    mutation: bool = True,
) -> CaseResult:
    """Every check of one case on the user's layer (see the module docstring)."""
    case = user_case(case)
    gen = torch.Generator().manual_seed(seed)
    leaves = [i.leaf(gen, torch.float64) for i in case.inputs]
    kinds = kinds_of(case, leaves)
    result = CaseResult(
        case.name,
        case.layer,
        call_text(case.layer, case.args, case.kwargs),
        kinds,
        sorted(features_of(case, leaves)),
    )
    # as the layer sees them (a non-contiguous case's view may be transposed)
    result.shapes = [tuple((i.view(t) if i.view else t).shape) for i, t in zip(case.inputs, leaves)]
    result.options = option_names(case)
    stage = "forward/backward"
    try:
        for dtype in dtypes:
            stage = dtype
            _both(case, candidate, DTYPES[dtype], seed, result)
        if gradcheck and case.gradcheck and "float64" in dtypes:
            stage = "gradcheck"
            ok = gradcheck_case(case, "numpy", seed, candidate)
            result.checks.append(
                Check(
                    "gradcheck",
                    "float64",
                    ok,
                    message="" if ok else "your backward disagrees with your own forward",
                )
            )
        if mutation:
            stage = "mutation"
            for found in _mutation(case, candidate, seed):
                result.checks.append(Check("mutation", "float64", False, message=found))
    except (Invalid, Unsupported, NotImplementedError) as e:
        result.verdict = "invalid" if isinstance(e, Invalid) else "unsupported"
        result.reason = (
            f"NotImplementedError: {e}" if isinstance(e, NotImplementedError) else str(e)
        )
    except AdaptError:
        raise
    except LayerError as e:
        result.verdict, result.reason = "error", f"{stage}: {e}"
        result.context["shape_error"] = (e.what, *e.shapes) if e.shapes else None
    except SystemExit as e:  # sys.exit() in the user's layer: not the harness's exit status
        result.verdict, result.reason = "error", f"{stage}: your layer called sys.exit({e.code!r})"
    except Exception as e:  # noqa: BLE001 - the user's layer raised: a verdict, not a crash
        optional = [k for k in kinds if k in OPTIONAL_KINDS] + (["float32"] * (stage == "float32"))
        if optional:
            result.verdict = "unsupported"
            result.reason = f"input kind {optional[0]}: your layer raised {type(e).__name__}: {e}"
        else:
            result.verdict, result.reason = "error", f"{stage}: raised {type(e).__name__}: {e}"
            result.context["shape_error"] = _autograd_shapes(str(e))
    if result.verdict == "pass" and not all(c.passed for c in result.checks):
        result.verdict = "fail"
    return result


def _autograd_shapes(message: str):
    """(what, yours, expected) from autograd's "returned an invalid gradient" error, or None."""
    found = re.search(
        r"invalid gradient at index (\d+) - got \[([\d, ]*)\] but expected "
        r"shape compatible with \[([\d, ]*)\]",
        message,
    )
    if not found:
        return None
    index, *shapes = found.groups()
    what = "grad input" if index == "0" else f"grad of input {index}"
    return (what, *(tuple(int(v) for v in s.split(",") if v.strip()) for s in shapes))


def search(candidate, layer: str, examples: int, seed: int = 0):
    """Hypothesis over `layer`'s options: the smallest failing configuration (a Case) or None,
    and the verdicts of every configuration tried."""
    stats: Counter = Counter()
    if layer not in STRATEGIES or examples <= 0:
        return None, stats

    def failing(drawn) -> bool:
        r = check_case(property_case(layer, drawn), candidate, ("float64",), seed, False, False)
        stats[r.verdict] += 1
        return r.verdict in ("fail", "error")

    config = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    try:
        drawn = find(STRATEGIES[layer], failing, settings=config, random=random.Random(seed))
    except NoSuchExample:
        return None, stats
    return property_case(layer, drawn), stats
