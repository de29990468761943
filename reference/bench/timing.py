"""Timing: threads pinned with threadpoolctl, interleaved best-of-N, and the BLAS in use."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from reference.bench.items import DTYPES, Item, build, make_step, profile, twin_of
from reference.bench.report import Row

__all__ = [
    "GEMM_SHAPE",
    "THREAD_VARS",
    "bench_item",
    "blas_pools",
    "coretype_warning",
    "gemm_rates",
    "pin_threads",
    "time_pair",
    "torch_blas",
]

# Set for the memory-probe subprocesses, whose pools are sized when numpy and torch load.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CORETYPE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def pin_threads(n: int) -> None:
    """n threads for every loaded BLAS and OpenMP pool (threadpoolctl) and torch's own pool.

    The process-wide limit stays for the process's life (a command-line run); the variables
    are also set so that child processes (the memory probes) start with the same pools.
    """
    os.environ.update({var: str(n) for var in THREAD_VARS})
    threadpool_limits(limits=n)
    torch.set_num_threads(n)


def blas_pools() -> str:
    """numpy's BLAS: library, version, the kernel it runs (`architecture`) and its threads."""
    found = [
        f"{p['internal_api']} {p['version']} {p.get('architecture') or ''} "
        f"({p['num_threads']} threads, {os.path.basename(p['filepath'])})".replace("  ", " ")
        for p in threadpool_info()
        if p["user_api"] == "blas" and "numpy" in p["filepath"]
    ]
    return ", ".join(found) or "not loaded"


GEMM_SHAPE = (256, 1152, 1568)  # VGG16 conv3_1's forward GEMM at batch 2, a quarter of its columns


def gemm_rates(dtype: torch.dtype = torch.float32, repeats: int = 3) -> dict:
    """GFLOP/s of one GEMM through torch.matmul and through NumPy (the backends' BLAS calls),
    with its shape (m x k x n).

    The ceiling of each backend's convs and linears, and it depends on the CPU: on an AMD
    EPYC torch's MKL ran at about half OpenBLAS's speed (MKL picks its AVX2 kernels on
    non-Intel CPUs); on an Intel Xeon (Sapphire Rapids) MKL was the faster, 169 against 153
    GFLOP/s at this shape and 2-5x on LeNet's skinny GEMMs (6 x 15 x 57344: 0.17 against
    0.86 ms).
    """
    m, k, n = GEMM_SHAPE
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(shape, generator=gen, dtype=dtype) for shape in ((m, k), (k, n)))
    a_np, b_np = a.numpy(), b.numpy()
    seconds = time_pair((lambda: torch.matmul(a, b), lambda: np.matmul(a_np, b_np)), repeats)
    flop = 2 * m * k * n
    rates = {name: round(flop / s / 1e9, 1) for name, s in zip(("torch", "numpy"), seconds)}
    return {"shape": f"{m}x{k}x{n}", **rates}


def torch_blas() -> str:
    """torch's CPU BLAS (from its build config) and the CPU vendor, whose kernels MKL picks."""
    config = torch.__config__.show()
    mkl = next((line.strip(" -") for line in config.splitlines() if "Math Kernel" in line), "")
    version = mkl.split("Version ")[1].split("-")[0] if "Version " in mkl else ""
    blas = f"mkl {version}".strip() if torch.backends.mkl.is_available() else "no mkl"
    return f"{blas}, cpu {_cpu_vendor()}"


def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("vendor_id")), "")
    except OSError:
        return platform.processor() or "unknown"
    return line.partition(":")[2].strip() or "unknown"


def coretype_warning(environ: Mapping[str, str] = os.environ) -> str | None:
    """A warning when the environment forces OpenBLAS's kernel choice, else None."""
    forced = {var: environ[var] for var in CORETYPE_VARS if var in environ}
    if not forced:
        return None
    shown = " ".join(f"{k}={v}" for k, v in forced.items())
    unset = " ".join(f"-u {var}" for var in CORETYPE_VARS)
    return (
        f"warning: {shown} overrides OpenBLAS's own kernel (or cache size) choice, so "
        f"numpy-side GEMMs may run slower than on users' machines; to time numpy's own "
        f"choice: env {unset} scratch bench ..."
    )


def time_pair(runs: tuple[Callable[[], None], ...], repeats: int) -> tuple[float, ...]:
    """Best wall time (s) of each run over `repeats`, interleaved, after one warm-up call each."""
    for run in runs:
        run()
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return tuple(best)


def bench_item(item: Item, backend: str, dtype: str, repeats: int) -> Row:
    """Time one item: torch.nn and its scratch twin on `backend`, interleaved."""
    dt = DTYPES[dtype]
    prof = profile(item, dt)
    row = Row(item.name, "x".join(map(str, item.shape)), backend, dtype, prof.gflop)
    module = build(item, dt)
    twin, row.note = twin_of(item, module, backend)
    if twin is None:
        return row
    runs = (make_step(item, module, prof, dt, None), make_step(item, twin, prof, dt, backend))
    try:
        seconds = time_pair(runs, repeats)
    except Exception as error:  # a benchmark reports a broken layer and goes on
        row.note = f"error: {type(error).__name__}: {error}"[:200]
        return row
    row.torch_ms, row.scratch_ms = (s * 1e3 / item.calls for s in seconds)
    row.note = "; ".join(filter(None, [row.note, _per_step_note(item, row)]))
    return row


def _per_step_note(item: Item, row: Row) -> str:
    """Images/s of a training step; microseconds over torch for a per-call overhead item."""
    if item.step == "sgd":
        rates = (item.shape[0] / (ms / 1e3) for ms in (row.torch_ms, row.scratch_ms))
        return "images/s torch {:.0f}, scratch {:.0f}".format(*rates)
    if item.calls > 1:
        return f"{(row.scratch_ms - row.torch_ms) * 1e3:+.1f} us/call over torch"
    return ""
