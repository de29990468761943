"""`scratch.verify(obj, like=torch.nn.Conv2d, **options) -> Report`: the whole verification."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from tqdm import tqdm

from scratch.verify.adapters import Options, adapt
from scratch.verify.cases import CASES
from scratch.verify.configs import KINDS, call_text, case_kinds, parse_like, single_cases
from scratch.verify.hints import find_hints
from scratch.verify.report import CaseResult, Report
from scratch.verify.runner import DTYPES, check_case, search
from scratch.verify.specs import spec_of


def like_name(like: Any) -> str:
    """`like` as text: a torch.nn class, its name, or one configuration `"Conv2d(3, 8, 3)"`."""
    if isinstance(like, type):
        return like.__name__
    if isinstance(like, str):
        return like
    raise TypeError(f"like must be a torch.nn class or its name, got {type(like).__name__}")


def plan(like: str, skip: Sequence[str] = ()) -> tuple[str, list, bool]:
    """The layer name, its cases (named, or one configuration's), whether to search options."""
    unknown = sorted(set(skip) - set(KINDS))
    if unknown:
        raise ValueError(
            f"--skip {','.join(unknown)}: unknown input kind; known: {', '.join(KINDS)}"
        )
    layer, args, kwargs = parse_like(like)
    spec_of(layer)  # a ValueError listing the known layers
    if args is not None:
        try:  # torch decides what a configuration is: one it refuses is no case
            getattr(torch.nn, layer)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - whatever torch raises, said in one line
            raise ValueError(
                f"--like {call_text(layer, args, kwargs)}: torch.nn.{layer} refuses it "
                f"({type(e).__name__}: {e})"
            ) from None
        return layer, single_cases(layer, args, kwargs), False
    cases = [c for c in CASES if c.layer == layer]
    if not cases:
        known = ", ".join(sorted({c.layer for c in CASES}))
        raise ValueError(
            f"--like {layer}: no named cases; give one configuration like "
            f"{layer}(...), or one of {known}"
        )
    return layer, cases, True


def verify(
    obj: Any,
    like: Any,
    *,
    layout: str = "nchw",
    weight_layout: str = "torch",
    array: str = "auto",
    skip: Sequence[str] = (),
    examples: int = 30,
    seed: int = 0,
    gradcheck: bool = True,
    progress: bool = False,
) -> Report:
    """Check a user's layer `obj` against the torch.nn class `like`; see `scratch.verify`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own deprecations (size_average)
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy overflow: the hints say it
        return _verify(
            obj, like, layout, weight_layout, array, skip, examples, seed, gradcheck, progress
        )


def _verify(obj, like, layout, weight_layout, array, skip, examples, seed, gradcheck, progress):
    like = like_name(like)
    layer, cases, properties = plan(like, skip)
    candidate = adapt(obj, layer, Options(layout, weight_layout, array))
    dtypes = [d for d in DTYPES if d not in skip]
    cases = [c for c in cases if not set(case_kinds(c, seed)) & set(skip)]
    results = [
        check_case(case, candidate, dtypes, seed, gradcheck)
        for case in tqdm(cases, desc="verify", unit="case", disable=not progress)
    ]
    results = [r for r in results if r.verdict != "invalid"]
    report = Report(like, candidate.convention, results)
    if properties:
        smallest, stats = search(candidate, layer, examples, seed)
        report.properties = dict(stats)
        if smallest is not None:
            result = check_case(smallest, candidate, dtypes, seed, gradcheck)
            result.name = f"smallest failing: {result.name}"
            report.smallest_failing = call_text(layer, smallest.args, smallest.kwargs)
            report.cases.append(result)
    report.hints = find_hints(report.cases)
    report.unsupported_options = unsupported_options(report.cases)
    return report


def unsupported_options(results: list[CaseResult]) -> list[str]:
    """Constructor options that appear in declined configurations but in no graded one."""
    declined = {o for r in results if r.verdict == "unsupported" for o in r.options}
    graded = {o for r in results if r.verdict in ("pass", "fail") for o in r.options}
    return sorted(declined - graded)
