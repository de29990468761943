"""`scratch verify`: prove a user's own layer equal to a torch.nn class, or say where it is not.

Exit status: 0 every case passes, 1 any mismatch, 2 the layer could not be loaded or adapted
(or declined every case, so that nothing was checked).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from reference.commands import Command
from scratch.verify.adapters import LAYOUTS, WEIGHT_LAYOUTS, AdaptError
from scratch.verify.api import verify
from scratch.verify.configs import KINDS
from scratch.verify.grade import grade
from scratch.verify.load import load


@dataclass(frozen=True)
class VerifySettings:
    target: str | None = None  # FILE:NAME or FILE:FORWARD,BACKWARD
    like: str = ""
    layout: str = "nchw"
    weight_layout: str = "torch"
    array: str = "auto"
    skip: tuple[str, ...] = ()
    examples: int = 30
    seed: int = 0
    out: str | None = None
    json: str | None = None
    grade: str | None = None
    entry: str | None = None
    timeout: float | None = None  # seconds: per submission (grading: GRADE_TIMEOUT), or the run
    jobs: int | None = None  # grading: submissions checked at a time (default min(4, cores))
    no_gradcheck: bool = False
    quiet: bool = False

    def options(self) -> dict:
        return {
            "layout": self.layout,
            "weight_layout": self.weight_layout,
            "array": self.array,
            "skip": list(self.skip),
            "examples": self.examples,
            "seed": self.seed,
            "gradcheck": not self.no_gradcheck,
        }


GRADE_TIMEOUT = 120.0  # seconds per submission when grading without --timeout


class _Timeout(BaseException):
    """--timeout ran out: raised inside the user's code, so that no case's handler takes it."""


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Raise `_Timeout` after `seconds` (none: no limit; so also where there is no SIGALRM)."""
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fail(message: str) -> int:
    print(f"scratch verify: {message}", file=sys.stderr)
    return 2


def run_grade(s: VerifySettings) -> int:
    if not s.entry:
        return _fail("--grade needs --entry NAME (the class, factory or namespace to check)")
    if not Path(s.grade).is_dir():
        return _fail(f"--grade {s.grade}: no such folder")
    timeout = GRADE_TIMEOUT if s.timeout is None else s.timeout
    rows = grade(s.grade, s.like, s.entry, timeout, s.options(), s.out, s.jobs)
    print((Path(s.out or s.grade) / "grades.md").read_text())
    return 0 if all(r["status"] == "pass" for r in rows) else 1


def run(s: VerifySettings) -> int:
    if not s.like:
        return _fail("--like is required (e.g. --like Conv2d or --like 'Conv2d(3, 8, 3)')")
    if s.grade:
        return run_grade(s)
    if not s.target:
        return _fail("name the layer as FILE:NAME or FILE:FORWARD,BACKWARD (or use --grade)")
    printed = io.StringIO()  # the layer's own prints, kept out of the report
    try:
        with _time_limit(s.timeout), contextlib.redirect_stdout(printed):
            report = verify(load(s.target), s.like, progress=not s.quiet, **s.options())
    except _Timeout:
        return _fail(f"stopped after --timeout {s.timeout:g} s: the layer was still running")
    except (AdaptError, ValueError) as e:
        return _fail(str(e))
    finally:
        _said(printed.getvalue())
    print(report.table())
    if s.json:
        print(f"wrote {report.write_json(s.json)}")
    if s.out:
        path = report.heatmap(Path(s.out) / "heatmap.png")
        report.write_json(Path(s.out) / "report.json")
        if path:
            print(f"wrote {path}")
    if report.declined:  # not a mismatch: the layer could not be run on torch's arguments
        return _fail(report.declined)
    return 0 if report.passed else 1


def _said(text: str) -> None:
    """One line on stderr about what the layer printed while it was checked (not shown)."""
    lines = text.splitlines()
    if lines:
        print(
            f"scratch verify: your layer printed {len(lines)} lines while it was checked (not "
            f"shown); the first: {lines[0][:100]!r}",
            file=sys.stderr,
        )


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kind {unknown[0]!r}; known: {', '.join(KINDS)}")
    return kinds


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = VerifySettings()
    p.add_argument("target", nargs="?", help="FILE:NAME or FILE:FORWARD,BACKWARD")
    p.add_argument(
        "--like",
        default="",
        help="torch.nn class, or one configuration: 'Conv2d(3, 8, 3, stride=2, padding=1)'",
    )
    p.add_argument("--layout", choices=LAYOUTS, default=d.layout, help="the layer's input layout")
    p.add_argument(
        "--weight-layout",
        choices=WEIGHT_LAYOUTS,
        default=d.weight_layout,
        help="in-out: Linear weight (in, out); hwio: conv weight (kH, kW, in, out)",
    )
    p.add_argument("--array", choices=("auto", "numpy", "torch"), default=d.array)
    p.add_argument(
        "--skip",
        type=_kinds,
        default=(),
        metavar="KIND,...",
        help=f"input kinds to leave out: {', '.join(KINDS)}",
    )
    p.add_argument("--examples", type=int, default=d.examples, help="Hypothesis configurations")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", metavar="DIR", help="write heatmap.png and report.json here")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--grade", metavar="DIR", help="grade every submission in DIR")
    p.add_argument("--entry", metavar="NAME", help="with --grade: the name in each submission")
    p.add_argument(
        "--timeout",
        type=float,
        default=d.timeout,
        help=f"seconds for the run, or per submission with --grade (default {GRADE_TIMEOUT:g})",
    )
    p.add_argument("--jobs", type=int, help="with --grade: submissions at a time")
    p.add_argument("--no-gradcheck", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


COMMAND = Command(
    "verify",
    "prove your own layer equal to a torch.nn class",
    VerifySettings,
    add_arguments,
    run,
    description=__doc__.splitlines()[0],
)
