"""`scratch bench`: time and measure each scratch layer against its torch.nn twin, in one run.

A benchmark, not a test: it prints, it never asserts speed. Every item builds a seeded torch.nn
module, a deep copy turned into scratch twins by `scratch.swap`, and the same inputs for both;
then times one forward+backward (or one SGD step) of each side interleaved, best of `repeats`
after a warm-up. Peak memory is measured in a fresh subprocess per (item, side) as the growth
of the peak RSS over one forward+backward after setup (`python -m reference.bench
--memory-probe ITEM SIDE` prints it as JSON).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torchvision
from tqdm import tqdm

import scratch.functional
from reference.commands import Command, settings_from
from reference.models import LeNet
from scratch.kernels import BACKENDS, kernels
from scratch.swap import swap

DTYPES = {"float32": torch.float32, "float64": torch.float64}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
REFERENCE = "torch.nn"  # the side that runs torch's own layers; scratch sides are named by backend
SEED = 0
SIDES = ("torch", "scratch")  # the Row field prefixes


@dataclass(frozen=True)
class Item:
    """One benchmark item: a torch.nn module builder and the input it is fed."""

    name: str  # "<group>.<layer>", e.g. "lenet.conv1"
    make: Callable[[], torch.nn.Module]  # a freshly initialised torch.nn module
    shape: tuple[int, ...]  # input shape
    input_grad: bool = True  # False for a first layer: nothing upstream needs grad_x
    step: str = "backward"  # "backward": (out * g).sum() backward; "sgd": one SGD step

    @property
    def group(self) -> str:
        return self.name.split(".")[0]

    @property
    def short(self) -> str:
        return self.name.split(".", 1)[1]


def vgg16_features() -> torch.nn.Sequential:
    """torchvision's `vgg16().features`, with VGG's init, without building the 124M-weight head.

    The classifier would cost 0.5 GB and seconds of init per item and per memory probe.
    """
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    for m in features.modules():
        if isinstance(m, torch.nn.Conv2d):  # as torchvision.models.VGG.__init__
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    return features


def items(vgg_batch: int = 8) -> tuple[Item, ...]:
    """The benchmark table: LeNet-CIFAR layers (batch 64), VGG16 layers, then whole models."""
    nn, n = torch.nn, vgg_batch
    conv = partial(partial, nn.Conv2d)  # conv(3, 6, 5): a builder of nn.Conv2d(3, 6, 5)
    pool = partial(nn.MaxPool2d, 2, 2)
    vgg_pools = [(64, 224), (128, 112), (256, 56), (512, 28), (512, 14)]  # (C, H = W) inputs
    return (
        Item("lenet.conv1", conv(3, 6, 5), (64, 3, 32, 32), input_grad=False),
        Item("lenet.pool1", pool, (64, 6, 28, 28)),
        Item("lenet.conv2", conv(6, 16, 5), (64, 6, 14, 14)),
        Item("lenet.pool2", pool, (64, 16, 10, 10)),
        Item("lenet.fc1", partial(nn.Linear, 400, 120), (64, 400)),
        Item("lenet.fc2", partial(nn.Linear, 120, 84), (64, 120)),
        Item("lenet.fc3", partial(nn.Linear, 84, 10), (64, 84)),
        Item("vgg16.conv1_1", conv(3, 64, 3, padding=1), (n, 3, 224, 224), input_grad=False),
        Item("vgg16.conv3_1", conv(128, 256, 3, padding=1), (n, 128, 56, 56)),
        Item("vgg16.conv5_1", conv(512, 512, 3, padding=1), (n, 512, 14, 14)),
        *(Item(f"vgg16.pool{i}", pool, (n, c, s, s)) for i, (c, s) in enumerate(vgg_pools, 1)),
        Item("lenet.sgd_step", LeNet, (64, 3, 32, 32), input_grad=False, step="sgd"),
        Item("vgg16.features", vgg16_features, (n, 3, 224, 224), input_grad=False),
    )


def select(table: tuple[Item, ...], only: list[str] | None) -> list[Item]:
    """Items named in `only` by full name ("lenet.fc3"), short name ("fc3") or group ("vgg16")."""
    if not only:
        return list(table)
    unknown = [q for q in only if not any(q in (i.name, i.short, i.group) for i in table)]
    if unknown:
        known = ", ".join(i.name for i in table)
        raise SystemExit(f"scratch bench: unknown item(s) {unknown}; known: {known}")
    return [i for i in table if {i.name, i.short, i.group} & set(only)]


@dataclass(frozen=True)
class Profile:
    """What a meta-device pass tells about an item: output shape and GFLOP per step."""

    out_shape: tuple[int, ...]
    gflop: float  # conv/linear only: 2*MACs forward, x3 with grad_x, x2 without


def profile(item: Item, dtype: torch.dtype) -> Profile:
    """Shapes and FLOPs from one forward on the meta device (no memory, no compute)."""
    flops = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):  # MACs = out elements * C_in/groups * kH * kW
            macs = output.numel() * module.weight[0].numel()
        else:  # Linear
            macs = output.numel() * module.in_features
        flops.append(2 * macs * (3 if inputs[0].requires_grad else 2))

    with torch.device("meta"):
        module = item.make().to(dtype)
        x = torch.empty(item.shape, dtype=dtype).requires_grad_(item.input_grad)
    kinds = (torch.nn.Conv2d, torch.nn.Linear)
    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, kinds)]
    out = module(x)
    for hook in hooks:
        hook.remove()
    return Profile(tuple(out.shape), sum(flops) / 1e9)


def build(item: Item, dtype: torch.dtype) -> torch.nn.Module:
    """The torch.nn side of an item, seeded, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return item.make().to(dtype)


def make_step(item: Item, module: torch.nn.Module, prof: Profile, dtype, backend: str | None):
    """A closure running one forward+backward (or SGD step) of `module` on seeded inputs.

    `backend` None is the torch.nn side; otherwise the scratch cross_entropy is used when it
    exists. Both sides get identical, but separate, input tensors.
    """
    gen = torch.Generator().manual_seed(SEED + 1)
    x = torch.randn(item.shape, generator=gen, dtype=dtype).requires_grad_(item.input_grad)
    if item.step == "sgd":
        target = torch.randint(prof.out_shape[1], prof.out_shape[:1], generator=gen)
        loss_fn = cross_entropy(backend)
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

        def run() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(module(x), target).backward()
            optimizer.step()

        return run
    g = torch.randn(prof.out_shape, generator=gen, dtype=dtype)

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).backward(g)  # the gradient of (out * g).sum()

    return run


def cross_entropy(backend: str | None) -> Callable:
    """scratch.functional.cross_entropy on `backend` if it exists (and backend is given)."""
    scratch_ce = getattr(scratch.functional, "cross_entropy", None)
    if backend is None or scratch_ce is None:
        return torch.nn.functional.cross_entropy
    return partial(scratch_ce, backend=backend)


def twin_of(module: torch.nn.Module, backend: str, in_place: bool = False):
    """The scratch side: `module` (copied unless in_place) swapped; (twin or None, note)."""
    twin = module if in_place else copy.deepcopy(module)
    report = swap(twin, backend)
    if not report.swapped:
        return None, f"no scratch twin for {type(module).__name__}"
    kept = sorted({cls.rsplit(".", 1)[-1] for cls in report.kept.values()})
    return twin, f"kept torch {', '.join(kept)}" if kept else ""


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
    """In this process: the growth of peak RSS (MiB) over one step of one side, after setup.

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
        module, note = twin_of(module, backend, in_place=True)
        if module is None:
            raise SystemExit(f"scratch bench: {name}: {note}")
        kernels(backend)  # import the kernel modules (~10 MiB) in setup, not in the step
    run = make_step(item, module, prof, dt, backend)
    peak, before = ("VmHWM", _rss_mib("VmRSS")) if _reset_peak_rss() else ("ru_maxrss", _rss_mib())
    run()
    return _rss_mib(peak) - before


def peak_in_subprocess(name: str, side: str, dtype: str, vgg_batch: int, threads: int) -> float:
    """`memory_probe` in a fresh `python -m reference.bench --memory-probe` subprocess."""
    command = [sys.executable, "-m", "reference.bench", "--memory-probe", name, side]
    command += ["--dtype", dtype, "--vgg-batch", str(vgg_batch), "--threads", str(threads)]
    env = os.environ | {var: str(threads) for var in THREAD_VARS}  # so it needs no re-exec
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"memory probe [{side}] failed: {last[:150]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"]


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


def bench_item(item: Item, backend: str, dtype: str, repeats: int) -> Row:
    """Time one item: torch.nn and its scratch twin on `backend`, interleaved."""
    dt = DTYPES[dtype]
    prof = profile(item, dt)
    row = Row(item.name, "x".join(map(str, item.shape)), backend, dtype, prof.gflop)
    module = build(item, dt)
    twin, row.note = twin_of(module, backend)
    if twin is None:
        return row
    if item.step == "sgd" and cross_entropy(backend) is torch.nn.functional.cross_entropy:
        row.note = "; ".join(filter(None, [row.note, "torch cross_entropy"]))
    runs = (make_step(item, module, prof, dt, None), make_step(item, twin, prof, dt, backend))
    try:
        seconds = time_pair(runs, repeats)
    except Exception as error:  # a benchmark reports a broken layer and goes on
        row.note = f"error: {type(error).__name__}: {error}"[:200]
        return row
    row.torch_ms, row.scratch_ms = (s * 1e3 for s in seconds)
    return row


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


@dataclass
class Report:
    settings: dict
    rows: list[Row]

    def as_dict(self) -> dict:
        return {"settings": self.settings, "rows": [row.as_dict() for row in self.rows]}


def run_bench(args: BenchSettings) -> Report:
    """Every selected item x backend: times, then (unless --no-memory) peak memory."""
    chosen = select(items(args.vgg_batch), args.only)
    jobs = [(item, backend) for item in chosen for backend in args.backend]
    rows, torch_peaks = [], {}
    for item, backend in tqdm(jobs, desc="bench", unit="item", disable=args.quiet):
        row = bench_item(item, backend, args.dtype, args.repeats)
        if not args.no_memory and row.scratch_ms is not None:
            add_memory(row, args, torch_peaks)
        rows.append(row)
    return Report(settings(args), rows)


def numpy_blas() -> str:
    """numpy's BLAS library, version and thread count (threadpoolctl), else its build config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = getattr(np.__config__, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', 'unknown')} {blas.get('version', '')} (threads unknown)"
    pools = [p for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    found = [f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)" for p in pools]
    return ", ".join(found) or "not loaded"


def settings(args: BenchSettings) -> dict:
    """What the timings depend on: thread settings, BLAS, versions, dtype, repeats."""
    return {
        "threads": {var: os.environ.get(var) for var in THREAD_VARS}
        | {"torch.get_num_threads": torch.get_num_threads()},
        "numpy_blas": numpy_blas(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load_avg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "dtype": args.dtype,
        "repeats": args.repeats,
        "vgg_batch": args.vgg_batch,
    }


def format_settings(s: dict) -> str:
    pinned = " ".join(f"{k}={v}" for k, v in s["threads"].items())
    return (
        f"threads: {pinned} | numpy BLAS: {s['numpy_blas']} | torch {s['torch']}, "
        f"numpy {s['numpy']}, python {s['python']}, {s['machine']}, load {s['load_avg']} | "
        f"{s['dtype']}, "
        f"best of {s['repeats']} after a warm-up, VGG batch {s['vgg_batch']}"
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


def _launched_as_command() -> bool:
    """True under `scratch bench` or `python -m reference.bench|cli`, not inside a notebook."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    as_module = spec is not None and spec.name in ("reference.bench", "reference.cli")
    return as_module or Path(sys.argv[0]).name == "scratch"


def pin_threads(n: int) -> None:
    """n threads for OpenMP, OpenBLAS, MKL and torch's pool.

    The variables are read when numpy and torch load, so if they differ the process re-executes
    itself with the same command line and them set. Where it cannot (imported into a running
    interpreter), threadpoolctl caps the already loaded pools instead.
    """
    wanted = {var: str(n) for var in THREAD_VARS}
    if any(os.environ.get(var) != value for var, value in wanted.items()):
        os.environ.update(wanted)
        if _launched_as_command():
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            threadpool_limits(limits=n)
    torch.set_num_threads(n)


def cmd_bench(args: BenchSettings) -> int:
    """`scratch bench`: pin the threads, then probe memory (internal) or run and report."""
    pin_threads(args.threads or 1)
    if args.memory_probe:
        peak = memory_probe(*args.memory_probe, dtype=args.dtype, vgg_batch=args.vgg_batch)
        print(json.dumps({"peak_mib": peak}))
    else:
        run_and_report(args)
    return 0


def run_and_report(args: BenchSettings) -> Report:
    """Print the settings line, run the bench, print the table and write --json if asked."""
    select(items(args.vgg_batch), args.only)  # unknown names fail before any work
    print(format_settings(settings(args)), flush=True)
    report = run_bench(args)
    print(format_table(report.rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1))
        print(f"wrote {args.json}")
    return report


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


COMMAND = Command(
    "bench",
    "time scratch layers and models against torch.nn",
    BenchSettings,
    add_arguments,
    lambda settings: cmd_bench(settings),
    description=__doc__.splitlines()[0],
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.bench", description=__doc__)
    add_arguments(parser)
    return cmd_bench(settings_from(BenchSettings, parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
