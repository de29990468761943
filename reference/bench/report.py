"""The bench's results: one `Row` per (item, backend), the run's settings, and the table."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["Report", "Row", "format_settings", "format_table", "run_settings"]

SIDES = ("torch", "scratch")  # the Row field prefixes


@dataclass
class Row:
    """One (item, backend) result; times in ms, peaks in MiB, None where not measured."""

    item: str
    shape: str
    backend: str
    dtype: str
    gflop: float  # per step, conv/linear only (0: a pool)
    torch_ms: float | None = None
    scratch_ms: float | None = None
    torch_peak_mib: float | None = None
    scratch_peak_mib: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return _ratio(self.scratch_ms, self.torch_ms)

    @property
    def peak_ratio(self) -> float | None:
        return _ratio(self.scratch_peak_mib, self.torch_peak_mib)

    def gflops(self, ms: float | None) -> float | None:
        return self.gflop / (ms / 1e3) if self.gflop and ms else None

    def as_dict(self) -> dict:
        gflops = {f"{side}_gflops": self.gflops(getattr(self, f"{side}_ms")) for side in SIDES}
        return asdict(self) | {"ratio": self.ratio, "peak_ratio": self.peak_ratio} | gflops


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass
class Report:
    settings: dict
    rows: list[Row]

    def as_dict(self) -> dict:
        return {"settings": self.settings, "rows": [row.as_dict() for row in self.rows]}


def run_settings(
    dtype: str,
    repeats: int,
    vgg_batch: int,
    threads: dict,
    blas: str,
    warning: str | None,
    torch_blas: str = "",
    gemm: dict | None = None,
) -> dict:
    """What the timings depend on: thread settings, BLAS kernels, versions, dtype, repeats."""
    return {
        "threads": threads,
        "numpy_blas": blas,
        "torch_blas": torch_blas,
        "gemm": gemm,  # GFLOP/s of one GEMM through each backend's BLAS, and its shape
        "openblas_forced": warning,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load_avg": [round(v, 2) for v in os.getloadavg()],
        "dtype": dtype,
        "repeats": repeats,
        "vgg_batch": vgg_batch,
    }


def format_settings(s: dict) -> str:
    pinned = " ".join(f"{k}={v}" for k, v in s["threads"].items())
    gemm = s.get("gemm") or {}
    return (
        f"threads: {pinned} | numpy BLAS: {s['numpy_blas']} | torch BLAS: {s['torch_blas']} | "
        f"GEMM {gemm.get('shape')}: torch.matmul {gemm.get('torch')}, numpy {gemm.get('numpy')} "
        "GFLOP/s | "
        f"torch {s['torch']}, "
        f"numpy {s['numpy']}, python {s['python']}, {s['machine']}, load {s['load_avg']} | "
        f"{s['dtype']}, best of {s['repeats']} after a warm-up, VGG batch {s['vgg_batch']}"
    )


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.{3 if abs(v) < 1 else 2 if abs(v) < 10 else 1 if abs(v) < 100 else 0}f}"


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def format_table(rows: list[Row]) -> str:
    head = ("item", "shape", "backend", "torch ms", "scratch ms", "scratch/torch", "torch GFLOP/s",
            "scratch GFLOP/s", "torch MiB", "scratch MiB", "mem ratio", "note")  # fmt: skip
    lines = [head]
    for r in rows:
        ratio, mem = (f"{v:.2f}x" if v is not None else "-" for v in (r.ratio, r.peak_ratio))
        lines.append(
            (r.item, r.shape, r.backend, _num(r.torch_ms), _num(r.scratch_ms), ratio,
             _num(r.gflops(r.torch_ms)), _num(r.gflops(r.scratch_ms)),
             _mib(r.torch_peak_mib), _mib(r.scratch_peak_mib), mem, r.note)
        )  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join([text[0], "-" * len(text[0]), *text[1:]])
