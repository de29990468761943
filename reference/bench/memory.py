"""Peak memory of one step, measured in a fresh process per (item, side).

The growth of the peak RSS over one warm forward+backward (or SGD step) after setup and one
warm-up step: `python -m reference.bench --memory-probe ITEM SIDE` runs `memory_probe` and
prints it as JSON. The warm-up keeps one-time costs out of the step: the shared-library code
each new op pages in (the torch backend's first max-pool step maps 6 MiB of libtorch_cpu.so,
more than its data) and state made once (optimizer buffers, cached plan constants).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from reference.bench.items import DTYPES, build, items, make_step, profile, twin_of
from reference.bench.timing import THREAD_VARS
from scratch.kernels import kernels

__all__ = ["REFERENCE", "memory_probe", "peak_in_subprocess"]

REFERENCE = "torch.nn"  # the side that runs torch's own layers; scratch sides are named by backend


def _rss_mib(field: str = "ru_maxrss") -> float:
    """This process's peak RSS from getrusage, or a /proc/self/status field (VmRSS, VmHWM)."""
    if field == "ru_maxrss":
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def _reset_peak_rss() -> bool:
    """Restart Linux's peak-RSS count (VmHWM) at the current RSS; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_probe(name: str, side: str, dtype: str = "float32", vgg_batch: int = 8) -> float:
    """In this process: the growth of peak RSS (MiB) over one warm step of one side.

    `side` is "torch.nn" or a scratch backend. Run it in a fresh process (`peak_in_subprocess`).
    On Linux the peak is VmHWM restarted after setup: ru_maxrss keeps the parent's RSS that a
    spawned child inherits at exec (and setup's own peaks), which would hide smaller growth.
    """
    (item,) = [i for i in items(vgg_batch) if i.name == name]
    dt = DTYPES[dtype]
    prof = profile(item, dt)
    module = build(item, dt)
    backend = None if side == REFERENCE else side
    if backend is not None:
        module, note = twin_of(item, module, backend, in_place=True)
        if module is None:
            raise SystemExit(f"scratch bench: {name}: {note}")
        kernels(backend)  # import the kernel modules (~10 MiB) in setup, not in the step
    run = make_step(item, module, prof, dt, backend)
    run()  # warm-up: library code paged in, one-time caches and optimizer state made
    for p in module.parameters():
        p.grad = None
    gc.collect()
    _trim_heap()  # freed memory back to the system, so that the step's growth shows
    peak, before = ("VmHWM", _rss_mib("VmRSS")) if _reset_peak_rss() else ("ru_maxrss", _rss_mib())
    run()
    return _rss_mib(peak) - before


def _trim_heap() -> None:
    """glibc's malloc_trim(0): return the heap's free memory to the system (elsewhere: nothing)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# glibc's default mmap threshold (128 KiB), pinned: unpinned, glibc raises it to the size of
# each mapped block freed, and later blocks up to that size stay in the heap after they are
# freed, so the peak counts memory the step no longer holds, differently from run to run (the
# torch backend's VGG16 pool2 at batch 2: 25.5-37.8 MiB over five probes; pinned 22.2-22.4).
# Pinned, every large buffer is mapped and unmapped: the peak is the step's own. A value the
# environment sets wins.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def peak_in_subprocess(name: str, side: str, dtype: str, vgg_batch: int, threads: int) -> float:
    """`memory_probe` in a fresh `python -m reference.bench --memory-probe` subprocess."""
    command = [sys.executable, "-m", "reference.bench", "--memory-probe", name, side]
    command += ["--dtype", dtype, "--vgg-batch", str(vgg_batch), "--threads", str(threads)]
    pools = {var: str(threads) for var in THREAD_VARS}  # pools sized at load
    env = MALLOC_ENV | os.environ | pools
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"memory probe [{side}] failed: {last[:150]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"]
