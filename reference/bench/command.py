"""`scratch bench` as a command: its settings, options, the run over the table, the report."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from reference.bench.items import DTYPES, items, select
from reference.bench.memory import REFERENCE, memory_probe, peak_in_subprocess
from reference.bench.report import Report, Row, format_settings, format_table, run_settings
from reference.bench.timing import (
    THREAD_VARS,
    bench_item,
    blas_pools,
    coretype_warning,
    gemm_rates,
    pin_threads,
    torch_blas,
)
from reference.commands import Command, settings_from
from scratch.kernels import BACKENDS

__all__ = ["COMMAND", "BenchSettings", "add_arguments", "main", "run_and_report", "run_bench"]

DESCRIPTION = "time and measure each scratch layer against its torch.nn twin, in one run"


@dataclass(frozen=True)
class BenchSettings:
    backend: tuple[str, ...] = BACKENDS
    only: tuple[str, ...] | None = None
    dtype: str = "float32"
    repeats: int = 5
    vgg_batch: int = 8
    threads: int | None = None
    no_memory: bool = False
    json: str | None = None
    quiet: bool = False
    memory_probe: tuple[str, str] | None = None  # internal: one probe in this process


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The bench options, shared by `scratch bench` and `python -m reference.bench`."""
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="items by name (lenet.fc3), layer (fc3), model"
    )
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs, best is kept")
    parser.add_argument("--vgg-batch", type=int, default=8, help="batch of the VGG16 items")
    parser.add_argument("--threads", type=int, help="threads for torch and BLAS (default 1)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--memory-probe", nargs=2, metavar=("ITEM", "SIDE"), help=argparse.SUPPRESS)
    return parser


def settings(args: BenchSettings) -> dict:
    """The run's settings as reported (threads as the probes get them, the BLAS in use)."""
    threads = {var: str(args.threads or 1) for var in THREAD_VARS}
    threads["torch.get_num_threads"] = torch.get_num_threads()
    blas, warning = blas_pools(), coretype_warning()
    gemm = gemm_rates(DTYPES[args.dtype])
    return run_settings(
        args.dtype, args.repeats, args.vgg_batch, threads, blas, warning, torch_blas(), gemm
    )


def add_memory(row: Row, args: BenchSettings, torch_peaks: dict[str, float]) -> None:
    """Fill the row's peaks from probes; the torch.nn side is probed once per item."""
    probe = partial(peak_in_subprocess, dtype=args.dtype, vgg_batch=args.vgg_batch)
    probe = partial(probe, threads=args.threads or 1)
    try:
        if row.item not in torch_peaks:
            torch_peaks[row.item] = probe(row.item, REFERENCE)
        row.torch_peak_mib = torch_peaks[row.item]
        row.scratch_peak_mib = probe(row.item, row.backend)
    except RuntimeError as error:
        row.note = "; ".join(filter(None, [row.note, str(error)]))


def run_bench(args: BenchSettings) -> Report:
    """Every selected item x backend: times, then (unless --no-memory) peak memory."""
    chosen = select(items(args.vgg_batch), args.only)
    jobs = [(item, backend) for item in chosen for backend in args.backend]
    rows, torch_peaks = [], {}
    for item, backend in tqdm(jobs, desc="bench", unit="item", disable=args.quiet):
        row = bench_item(item, backend, args.dtype, args.repeats)
        if not args.no_memory and item.memory and row.scratch_ms is not None:
            add_memory(row, args, torch_peaks)
        rows.append(row)
    return Report(settings(args), rows)


def run_and_report(args: BenchSettings) -> Report:
    """Print the settings line, run the bench, print the table and write --json if asked."""
    select(items(args.vgg_batch), args.only)  # unknown names fail before any work
    report_settings = settings(args)
    print(format_settings(report_settings), flush=True)
    if report_settings["openblas_forced"]:
        print(report_settings["openblas_forced"], file=sys.stderr, flush=True)
    report = run_bench(args)
    print(format_table(report.rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1))
        print(f"wrote {args.json}")
    return report


def cmd_bench(args: BenchSettings) -> int:
    """`scratch bench`: pin the threads, then probe memory (internal) or run and report."""
    pin_threads(args.threads or 1)
    if args.memory_probe:
        peak = memory_probe(*args.memory_probe, dtype=args.dtype, vgg_batch=args.vgg_batch)
        print(json.dumps({"peak_mib": peak}))
    else:
        run_and_report(args)
    return 0


COMMAND = Command(
    "bench",
    "time scratch layers and models against torch.nn",
    BenchSettings,
    add_arguments,
    cmd_bench,
    description=DESCRIPTION,
)


def main(argv: list[str] | None = None) -> int:
    """`python -m reference.bench`: the same options as `scratch bench`."""
    parser = argparse.ArgumentParser(prog="python -m reference.bench", description=DESCRIPTION)
    add_arguments(parser)
    return cmd_bench(settings_from(BenchSettings, parser.parse_args(argv)))
