"""What `scratch verify` tells the user: per-case results, the table, JSON, the error heatmap."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratch.verify.specs import spec_of


@dataclass
class Check:
    """One comparison (or check) on one case: passed, errors, the worst element's index."""

    what: str  # "output", "grad input", "grad weight", "gradcheck", "mutation", ...
    dtype: str
    passed: bool
    abs_error: float | None = None
    rel_error: float | None = None  # relative to torch's largest value
    worst: tuple[int, ...] | None = None
    message: str = ""


@dataclass
class CaseResult:
    """A case's verdict: "pass", "fail", "error" (raised, wrong type), "unsupported", "invalid"."""

    name: str
    layer: str
    config: str
    kinds: tuple[str, ...]
    features: list[str]
    verdict: str = "pass"
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    shapes: list[tuple] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # constructor options away from default
    pairs: dict[str, tuple] = field(default_factory=dict, repr=False)  # float64 (yours, torch)
    context: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> bool:
        return self.verdict in ("fail", "error")

    def worst(self) -> Check | None:
        """The failing comparison with the largest relative error."""
        bad = [c for c in self.checks if not c.passed and c.rel_error is not None]
        bad = [c for c in bad if c.dtype == "float64"] or bad  # float64: no rounding in it
        return max(bad, key=lambda c: c.rel_error, default=None)

    def to_json(self) -> dict:
        checks = [vars(c) | {"worst": list(c.worst) if c.worst else None} for c in self.checks]
        return {
            "name": self.name,
            "config": self.config,
            "verdict": self.verdict,
            "reason": self.reason,
            "kinds": list(self.kinds),
            "checks": checks,
        }


@dataclass
class Hint:
    """A likely bug, in words, with the cases that support it."""

    check: str  # the pattern's name: "padding", "stride", "factor", ...
    message: str
    cases: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"[{self.check}] {self.message} (cases: {', '.join(self.cases)})"


def index_text(layer: str, worst: tuple[int, ...] | None, what: str) -> str:
    """`(n=0, c=1, y=2, x=3)` for an output of a conv; plain indices where dims are unknown."""
    if not worst:
        return "-"
    dims = spec_of(layer).dims if what in ("output", "grad input") else ()
    if len(dims) == len(worst) + 1:
        dims = dims[1:]  # unbatched
    if len(dims) != len(worst):
        return "(" + ", ".join(map(str, worst)) + ")"
    return "(" + ", ".join(f"{d}={i}" for d, i in zip(dims, worst)) + ")"


@dataclass
class Report:
    """The whole verification: every case, the hints, the smallest failing configuration."""

    like: str
    convention: str
    cases: list[CaseResult]
    hints: list[Hint] = field(default_factory=list)
    smallest_failing: str | None = None
    properties: dict[str, int] = field(default_factory=dict)  # verdict -> configurations
    unsupported_options: list[str] = field(default_factory=list)  # options your layer declines

    @property
    def passed(self) -> bool:
        return not any(c.failed for c in self.cases) and any(
            c.verdict == "pass" for c in self.cases
        )

    @property
    def unsupported(self) -> list[CaseResult]:
        return [c for c in self.cases if c.verdict == "unsupported"]

    @property
    def declined(self) -> str | None:
        """Where the layer declined every case (nothing was checked): why, in one line."""
        if not self.cases or len(self.unsupported) < len(self.cases):
            return None
        return (
            f"your layer declined every case, so nothing was checked; the first: "
            f"{self.cases[0].name}: {self.cases[0].reason}"
        )

    def table(self) -> str:
        """One row per case and dtype comparison: verdict, errors, worst index; then the hints."""
        head = ("case", "verdict", "check", "dtype", "abs err", "rel err", "worst index")
        rows = [head]
        for c in self.cases:
            if c.verdict in ("unsupported", "invalid", "error"):
                rows.append(
                    (
                        c.name,
                        c.verdict.upper() if c.failed else c.verdict,
                        "",
                        "",
                        "",
                        "",
                        c.reason[:70],
                    )
                )
                continue
            bad = [k for k in c.checks if not k.passed]
            shape = [k for k in bad if k.message.startswith("shape ")]  # before any error size
            shown = next(iter(shape), None) or c.worst() or (bad[0] if bad else None)
            rows.append(
                (
                    c.name,
                    "FAIL" if c.failed else "pass",
                    shown.what if shown else "all",
                    shown.dtype if shown else "",
                    _num(shown.abs_error if shown else _max(c, "abs_error")),
                    _num(shown.rel_error if shown else _max(c, "rel_error")),
                    index_text(c.layer, shown.worst, shown.what) if shown else "-",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        for c in self.cases:
            if c.verdict == "error":  # the table's cell holds its start only
                lines.append(f"ERROR {c.name}: {c.reason}")
            for k in c.checks:
                if not k.passed:
                    detail = k.message or f"max abs error {_num(k.abs_error)}"
                    lines.append(f"FAIL {c.name} [{k.what}, {k.dtype}]: {detail}")
        return "\n".join(lines + self._summary())

    def _summary(self) -> list[str]:
        counts = {v: sum(c.verdict == v for c in self.cases) for v in ("pass", "fail", "error")}
        lines = [
            f"\n{self.like} [{self.convention}]: {counts['pass']} passed, {counts['fail']} "
            f"failed, {counts['error']} errors, {len(self.unsupported)} unsupported"
        ]
        if self.unsupported:
            lines.append("unsupported (not failures):")
            lines += [f"  {c.name}: {c.reason}" for c in self.unsupported]
        if self.unsupported_options:
            lines.append(f"options your layer does not take: {', '.join(self.unsupported_options)}")
        if self.properties:
            tried = ", ".join(f"{n} {v}" for v, n in sorted(self.properties.items()))
            lines.append(f"property configurations tried: {tried}")
        if self.smallest_failing:
            lines.append(f"smallest failing configuration: {self.smallest_failing}")
        lines += ["hints:"] + [f"  {h}" for h in self.hints] if self.hints else []
        if self.declined:
            lines.append(self.declined)
        lines.append("PASSED" if self.passed else "FAILED")
        return lines

    def to_json(self) -> dict:
        return {
            "like": self.like,
            "convention": self.convention,
            "passed": self.passed,
            "hints": [vars(h) for h in self.hints],
            "smallest_failing": self.smallest_failing,
            "properties": self.properties,
            "unsupported_options": self.unsupported_options,
            "declined": self.declined,
            "cases": [c.to_json() for c in self.cases],
        }

    def write_json(self, path: str | Path) -> Path:
        return _atomic(Path(path), json.dumps(self.to_json(), indent=1).encode())

    def heatmap(self, path: str | Path) -> Path | None:
        """An error heatmap over output positions for the worst failing case (None: all pass)."""
        from scratch.verify.heatmap import draw

        failing = [c for c in self.cases if c.failed and c.worst() is not None and c.pairs]
        if not failing:
            return None
        case = max(failing, key=lambda c: c.worst().rel_error)
        return draw(case, Path(path))


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


def _max(c: CaseResult, attr: str) -> float | None:
    values = [getattr(k, attr) for k in c.checks if getattr(k, attr) is not None]
    return max(values, default=None)


def _atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temp file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
