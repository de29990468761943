"""The parity table as a library: every case x backend x dtype, exception parity, the table.

`scratch check` is a thin layer over `run_check`, `check_errors` and `format_table`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from tqdm import tqdm

from scratch.kernels import Backend
from scratch.verify.cases import CASES, ERROR_CASES
from scratch.verify.parity import Case, ErrorCase, Outcome, gradcheck_case, raised, run_case

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def select(items: Sequence[Case | ErrorCase], layers: Sequence[str] | None) -> list:
    """The cases of the named layers (case-insensitive), or all of them."""
    if not layers:
        return list(items)
    wanted = {name.lower() for name in layers}
    return [c for c in items if c.layer.lower() in wanted]


def run_check(
    layers: Sequence[str] | None = None,
    backends: Sequence[Backend] = ("numpy", "torch"),
    dtypes: Sequence[str] = tuple(DTYPES),
    *,
    repeats: int = 1,
    gradcheck: bool = True,
    progress: bool = True,
) -> list[Outcome]:
    """Every selected case x backend x dtype, with gradcheck (float64) on the scratch layer."""
    cases = select(CASES, layers)
    if not cases:
        known = ", ".join(sorted({c.layer for c in CASES}))
        raise ValueError(f"no case for layer(s) {list(layers or ())}; known: {known}")
    jobs = [(c, b, d) for c in cases for b in backends for d in dtypes]
    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows that warn on purpose, both sides
        for case, backend, dtype in tqdm(jobs, desc="parity", unit="case", disable=not progress):
            outcome = run_case(case, backend, DTYPES[dtype], repeats=repeats)
            if dtype == "float64" and case.gradcheck and gradcheck:
                outcome.gradcheck = gradcheck_case(case, backend)
            outcomes.append(outcome)
    return outcomes


def check_errors(
    layers: Sequence[str] | None = None, backends: Sequence[Backend] = ("numpy", "torch")
) -> list[dict]:
    """Exception parity: the same bad arguments must raise torch's exception type."""
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows that warn on purpose, both sides
        for case in select(ERROR_CASES, layers):
            for backend in backends:
                expected, got, message = raised(case, backend)
                results.append(
                    {"case": case.name, "layer": case.layer, "backend": str(backend),
                     "ok": expected is not None and got is expected,
                     "torch": getattr(expected, "__name__", None),
                     "scratch": getattr(got, "__name__", None), "message": message}
                )  # fmt: skip
    return results


def format_table(outcomes: Sequence[Outcome]) -> str:
    """One aligned row per outcome, then one line per failure."""
    head = ("layer", "case", "backend", "dtype", "fwd err", "bwd err", "gradcheck", "time/torch")
    rows = [(*head, "")]
    for o in outcomes:
        grad = {None: "-", True: "pass", False: "FAIL"}[o.gradcheck]
        ratio = f"{o.speed_ratio:.2f}x" if o.speed_ratio is not None else "-"
        rows.append(
            (o.layer, o.case, o.backend, o.dtype, f"{o.forward_error:.1e}",
             f"{o.backward_error:.1e}", grad, ratio, "ok" if o.ok else "FAIL")
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    for o in outcomes:
        lines += [f"FAIL {o.case} [{o.backend}, {o.dtype}]: {f}" for f in o.failures]
    return "\n".join(lines)
