"""`scratch check`: the parity table of every layer, or one whole model layer by layer."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch

from reference import models
from reference.commands import Command
from scratch.kernels import BACKENDS
from scratch.verify.check import DTYPES, check_errors, format_table, run_check
from scratch.verify.model_parity import compare_models, swapped_copy


@dataclass(frozen=True)
class CheckSettings:
    backend: tuple[str, ...] = BACKENDS
    dtype: tuple[str, ...] = tuple(DTYPES)
    layer: tuple[str, ...] | None = None  # None: every layer
    json: str | None = None
    repeats: int = 3
    no_gradcheck: bool = False
    quiet: bool = False
    model: str | None = None  # whole-model parity instead of the case table
    batch: int = 2
    size: int | None = None
    seed: int = 0


def check_model(s: CheckSettings) -> int:
    """Whole-model parity: the model and its swapped copy, layer by layer, per backend/dtype."""
    failed = False
    for dtype in s.dtype:
        torch.manual_seed(s.seed)
        model = models.build(s.model).to(DTYPES[dtype])
        size = (s.size, s.size) if s.size else models.input_size(s.model)[1:]
        gen = torch.Generator().manual_seed(s.seed)
        x = torch.randn(s.batch, 3, *size, generator=gen, dtype=DTYPES[dtype])
        target = torch.randint(10, (s.batch,), generator=gen)
        for backend in s.backend:
            report = compare_models(model, swapped_copy(model, backend), x, target)
            print(f"\n{s.model} [{backend}, {dtype}] input {tuple(x.shape)}")
            print(report)
            print("ok" if report.ok else "FAIL")
            failed |= not report.ok
    return 1 if failed else 0


def run(s: CheckSettings) -> int:
    if s.model:
        return check_model(s)
    try:
        outcomes = run_check(
            s.layer, s.backend, s.dtype, repeats=s.repeats, gradcheck=not s.no_gradcheck,
            progress=not s.quiet,
        )  # fmt: skip
    except ValueError as e:
        raise SystemExit(f"scratch check: {e}") from None
    errors = check_errors(s.layer, s.backend)
    print(format_table(outcomes))
    bad_errors = [row for row in errors if not row["ok"]]
    print(
        f"\nexception parity: {len(errors) - len(bad_errors)}/{len(errors)} bad-argument cases "
        "raise torch's exception type"
    )
    for row in bad_errors:
        print(
            f"FAIL {row['case']} [{row['backend']}]: torch raises {row['torch']}, "
            f"scratch {row['scratch']}"
        )
    failed = [o for o in outcomes if not o.ok]
    print(f"parity: {len(outcomes) - len(failed)}/{len(outcomes)} cases match torch.nn")
    if s.json:
        report = {"cases": [asdict(o) | {"ok": o.ok} for o in outcomes], "errors": errors}
        with open(s.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {s.json}")
    return 1 if failed or bad_errors else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = CheckSettings()
    p.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(d.backend))
    p.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=list(d.dtype))
    p.add_argument("--layer", nargs="+", metavar="NAME", help="only these layers (e.g. Conv2d)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--repeats", type=int, default=d.repeats, help="timing repeats (best is kept)")
    p.add_argument("--no-gradcheck", action="store_true", help="skip torch.autograd.gradcheck")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    model = p.add_argument_group("whole-model parity (instead of the case table)")
    model.add_argument("--model", choices=models.MODELS, help="compare this model layer by layer")
    model.add_argument("--batch", type=int, default=d.batch, help="batch size (default 2)")
    model.add_argument("--size", type=int, help="input height and width (default: the model's)")
    model.add_argument("--seed", type=int, default=d.seed)


COMMAND = Command(
    "check", "parity of every scratch layer against torch.nn", CheckSettings, add_arguments, run
)
