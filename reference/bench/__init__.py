"""`scratch bench`: time and measure each scratch layer against its torch.nn twin, in one run.

A benchmark, not a test: it prints, it never asserts speed. `items` is the table (a seeded
torch.nn module, its scratch twin, the same inputs for both, one step); `timing` pins the
threads (threadpoolctl), times both sides interleaved, best of `repeats` after a warm-up, and
reports the BLAS kernel in use; `memory` measures the peak-RSS growth of one step in a fresh
process per (item, side); `report` holds the rows and the table; `command` the CLI.
"""

from reference.bench.command import (
    COMMAND,
    BenchSettings,
    add_arguments,
    main,
    run_and_report,
    run_bench,
)
from reference.bench.items import (
    Item,
    Profile,
    build,
    items,
    make_step,
    profile,
    select,
    twin_of,
)
from reference.bench.memory import memory_probe, peak_in_subprocess
from reference.bench.report import Report, Row, format_table
from reference.bench.timing import (
    GEMM_SHAPE,
    bench_item,
    blas_pools,
    coretype_warning,
    gemm_rates,
    pin_threads,
    time_pair,
    torch_blas,
)

__all__ = [
    "COMMAND",
    "GEMM_SHAPE",
    "BenchSettings",
    "Item",
    "Profile",
    "Report",
    "Row",
    "add_arguments",
    "bench_item",
    "blas_pools",
    "coretype_warning",
    "build",
    "gemm_rates",
    "format_table",
    "items",
    "main",
    "make_step",
    "memory_probe",
    "peak_in_subprocess",
    "pin_threads",
    "profile",
    "run_and_report",
    "run_bench",
    "select",
    "time_pair",
    "torch_blas",
    "twin_of",
]
