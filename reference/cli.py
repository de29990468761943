"""The `scratch` command: `scratch check` (parity table) and the subcommands later issues add.

A thin argparse layer: the work is done by `scratch.verify.parity` and the `reference` modules.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict

import torch
from tqdm import tqdm

from reference import bench, models
from scratch.kernels import BACKENDS
from scratch.verify.cases import CASES, ERROR_CASES
from scratch.verify.model_parity import compare_models, swapped_copy
from scratch.verify.parity import Outcome, gradcheck_case, raised, run_case

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _selected(items, layers: list[str] | None):
    if not layers:
        return list(items)
    wanted = {name.lower() for name in layers}
    return [c for c in items if c.layer.lower() in wanted]


def run_check(args: argparse.Namespace) -> list[Outcome]:
    """Every selected case x backend x dtype, with gradcheck (float64) on the scratch layer."""
    cases = _selected(CASES, args.layer)
    if not cases:
        known = ", ".join(sorted({c.layer for c in CASES}))
        raise SystemExit(f"scratch check: no case for layer(s) {args.layer}; known: {known}")
    jobs = [(c, b, d) for c in cases for b in args.backend for d in args.dtype]
    outcomes = []
    with warnings.catch_warnings():
        # Some rows exercise deprecated or dubious calls on purpose (implicit softmax dim,
        # broadcasting MSE targets): both sides warn, as they should, but not in the table.
        warnings.simplefilter("ignore", UserWarning)
        for case, backend, dtype in tqdm(jobs, desc="parity", unit="case", disable=args.quiet):
            outcome = run_case(case, backend, DTYPES[dtype], repeats=args.repeats)
            if dtype == "float64" and case.gradcheck and not args.no_gradcheck:
                outcome.gradcheck = gradcheck_case(case, backend)
            outcomes.append(outcome)
    return outcomes


def format_table(outcomes: list[Outcome]) -> str:
    head = (
        "layer",
        "case",
        "backend",
        "dtype",
        "fwd err",
        "bwd err",
        "gradcheck",
        "time/torch",
        "",
    )
    rows = [head]
    for o in outcomes:
        verdict = "ok" if o.ok else "FAIL"
        grad = {None: "-", True: "pass", False: "FAIL"}[o.gradcheck]
        ratio = f"{o.speed_ratio:.2f}x" if o.speed_ratio is not None else "-"
        rows.append(
            (o.layer, o.case, o.backend, o.dtype, f"{o.forward_error:.1e}",
             f"{o.backward_error:.1e}", grad, ratio, verdict)
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    for o in outcomes:
        lines += [f"FAIL {o.case} [{o.backend}, {o.dtype}]: {f}" for f in o.failures]
    return "\n".join(lines)


def check_errors(args: argparse.Namespace) -> list[dict]:
    """Exception parity: the same bad arguments must raise torch's exception type."""
    results = []
    warnings.simplefilter("ignore", UserWarning)
    for case in _selected(ERROR_CASES, args.layer):
        for backend in args.backend:
            expected, got, message = raised(case, backend)
            ok = expected is not None and got is expected
            results.append(
                {"case": case.name, "layer": case.layer, "backend": backend, "ok": ok,
                 "torch": getattr(expected, "__name__", None),
                 "scratch": getattr(got, "__name__", None), "message": message}
            )  # fmt: skip
    return results


def check_model(args: argparse.Namespace) -> int:
    """Whole-model parity: the model and its swapped copy, layer by layer, per backend/dtype."""
    failed = False
    for dtype in args.dtype:
        torch.manual_seed(args.seed)
        model = models.build(args.model).to(DTYPES[dtype])
        size = (args.size, args.size) if args.size else models.input_size(args.model)[1:]
        gen = torch.Generator().manual_seed(args.seed)
        x = torch.randn(args.batch, 3, *size, generator=gen, dtype=DTYPES[dtype])
        target = torch.randint(10, (args.batch,), generator=gen)
        for backend in args.backend:
            twin = swapped_copy(model, backend)
            report = compare_models(model, twin, x, target)
            print(f"\n{args.model} [{backend}, {dtype}] input {tuple(x.shape)}")
            print(report)
            print("ok" if report.ok else "FAIL")
            failed |= not report.ok
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    if args.model:
        return check_model(args)
    outcomes = run_check(args)
    errors = check_errors(args)
    print(format_table(outcomes))
    bad_errors = [e for e in errors if not e["ok"]]
    print(
        f"\nexception parity: {len(errors) - len(bad_errors)}/{len(errors)} bad-argument cases "
        "raise torch's exception type"
    )
    for e in bad_errors:
        print(
            f"FAIL {e['case']} [{e['backend']}]: torch raises {e['torch']}, scratch {e['scratch']}"
        )
    failed = [o for o in outcomes if not o.ok]
    print(f"parity: {len(outcomes) - len(failed)}/{len(outcomes)} cases match torch.nn")
    if args.json:
        report = {"cases": [asdict(o) | {"ok": o.ok} for o in outcomes], "errors": errors}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if failed or bad_errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="parity of every scratch layer against torch.nn")
    check.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    check.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    check.add_argument("--layer", nargs="+", metavar="NAME", help="only these layers (e.g. Conv2d)")
    check.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    check.add_argument("--repeats", type=int, default=3, help="timing repeats (best is kept)")
    check.add_argument("--no-gradcheck", action="store_true", help="skip torch.autograd.gradcheck")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    model = check.add_argument_group("whole-model parity (instead of the case table)")
    model.add_argument("--model", choices=models.MODELS, help="compare this model layer by layer")
    model.add_argument("--batch", type=int, default=2, help="batch size (default 2)")
    model.add_argument("--size", type=int, help="input height and width (default: the model's)")
    model.add_argument("--seed", type=int, default=0)
    check.set_defaults(func=cmd_check)
    bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
