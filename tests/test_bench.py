"""`scratch bench` on a tiny configuration through `reference.bench` functions; no speed asserts."""

from __future__ import annotations

import argparse
import json
import subprocess

import pytest
import torch

import scratch.optim
from reference import bench
from reference.cli import build_parser
from reference.commands import settings_from

ROW_FIELDS = {
    "item", "shape", "backend", "dtype", "gflop", "torch_ms", "scratch_ms", "ratio",
    "torch_gflops", "scratch_gflops", "torch_peak_mib", "scratch_peak_mib", "peak_ratio", "note",
}  # fmt: skip
SETTINGS_FIELDS = {
    "threads", "numpy_blas", "torch_blas", "gemm", "torch", "numpy", "dtype", "repeats",
    "vgg_batch",
}  # fmt: skip


def parse(*argv: str) -> bench.BenchSettings:
    namespace = bench.add_arguments(argparse.ArgumentParser()).parse_args(list(argv))
    return settings_from(bench.BenchSettings, namespace)


def test_subcommand_registers_on_the_scratch_parser():
    namespace = build_parser().parse_args(["bench", "--only", "fc3", "--repeats", "2"])
    assert namespace.command is bench.COMMAND
    args = settings_from(bench.BenchSettings, namespace)
    assert (args.only, args.repeats, args.dtype, args.backend) == (
        ("fc3",), 2, "float32", ("numpy", "torch")
    )  # fmt: skip


def test_item_names_are_unique_and_selectable():
    table = bench.items()
    names = [item.name for item in table]
    assert len(names) == len(set(names)) == 23  # 17 layer/model items, 4 overhead, 2 train
    assert [i.name for i in bench.select(table, ["fc3"])] == ["lenet.fc3"]
    assert len(bench.select(table, ["pool1"])) == 2  # LeNet's and VGG16's
    assert len(bench.select(table, ["vgg16"])) == 9
    with pytest.raises(SystemExit, match="unknown item"):
        bench.select(table, ["conv9"])


# (item, forward MACs, step multiplier: x3 with grad_x, x2 without; FLOPs = 2 * MACs * it)
FLOP_CASES = [
    ("lenet.conv1", 64 * 6 * 28 * 28 * 3 * 5 * 5, 2),  # first layer: no grad_x
    ("lenet.conv2", 64 * 16 * 10 * 10 * 6 * 5 * 5, 3),
    ("lenet.fc3", 64 * 84 * 10, 3),
    ("vgg16.conv3_1", 8 * 256 * 56 * 56 * 128 * 3 * 3, 3),
    ("lenet.pool1", 0, 0),
]


@pytest.mark.parametrize("name, macs, factor", FLOP_CASES, ids=[c[0] for c in FLOP_CASES])
def test_profile_counts_conv_and_linear_flops(name, macs, factor):
    (item,) = bench.select(bench.items(), [name])
    assert bench.profile(item, torch.float32).gflop == pytest.approx(2 * macs * factor / 1e9)


def test_profile_of_whole_models():
    table = {item.name: item for item in bench.items(vgg_batch=2)}
    lenet = bench.profile(table["lenet.sgd_step"], torch.float32)
    vgg = bench.profile(table["vgg16.features"], torch.float32)
    assert lenet.out_shape == (64, 10) and vgg.out_shape == (2, 512, 7, 7)
    # VGG16's 13 convs hold 15.35 GMACs per 224x224 image; the first needs no grad_x
    assert vgg.gflop == pytest.approx(2 * 3 * 2 * 15.35, rel=0.01)


def test_bench_writes_the_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = parse("--only", "fc3", "lenet.pool2", "--repeats", "1", "--no-memory", "--quiet",
                 "--json", str(path))  # fmt: skip
    bench.run_and_report(args)
    out = capsys.readouterr().out
    assert out.startswith("threads: OMP_NUM_THREADS=") and "numpy BLAS:" in out
    report = json.loads(path.read_text())
    assert SETTINGS_FIELDS <= set(report["settings"])
    rows = report["rows"]
    assert [(r["item"], r["backend"]) for r in rows] == [
        ("lenet.pool2", "numpy"), ("lenet.pool2", "torch"),
        ("lenet.fc3", "numpy"), ("lenet.fc3", "torch"),
    ]  # fmt: skip
    for row in rows:
        assert set(row) == ROW_FIELDS
        assert row["torch_ms"] > 0 and row["scratch_ms"] > 0 and row["ratio"] > 0, row
        assert row["torch_peak_mib"] is None and row["note"] == "", row
        assert (row["torch_gflops"] is None) == (row["item"] == "lenet.pool2"), row


def test_overhead_and_train_items_time_per_call(capsys):
    args = parse("--only", "overhead", "train", "--repeats", "1", "--no-memory", "--quiet",
                 "--backend", "numpy")  # fmt: skip
    rows = {row.item: row for row in bench.run_and_report(args).rows}
    per_call = ["overhead.linear", "overhead.relu", "overhead.floor", "overhead.function"]
    assert list(rows) == [*per_call, "train.lenet", "train.mlp"]
    for name in per_call:
        assert rows[name].scratch_ms > 0 and "us/call over torch" in rows[name].note, rows[name]
        assert rows[name].torch_peak_mib is None  # no memory probe for a per-call item
    for name in ("train.lenet", "train.mlp"):
        assert rows[name].ratio > 0 and "images/s torch" in rows[name].note, rows[name]


def test_train_items_step_with_the_scratch_optimizer(monkeypatch):
    made = []

    class Recording(scratch.optim.SGD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(scratch.optim, "SGD", Recording)
    table = {item.name: item for item in bench.items()}
    for name, scratch_optim in (("train.mlp", True), ("lenet.sgd_step", False)):
        item, before = table[name], len(made)
        twin, _ = bench.twin_of(item, bench.build(item, torch.float32), "numpy")
        bench.make_step(item, twin, bench.profile(item, torch.float32), torch.float32, "numpy")
        assert len(made) == before + scratch_optim, name
    assert made[0].backend == "numpy"


def test_the_floor_is_an_empty_function_and_layers_are_swapped():
    table = {item.name: item for item in bench.items()}
    floor, _ = bench.twin_of(table["overhead.floor"], torch.nn.ReLU(), "numpy")
    relu, _ = bench.twin_of(table["overhead.relu"], torch.nn.ReLU(), "numpy")
    function, _ = bench.twin_of(table["overhead.function"], torch.nn.ReLU(), "numpy")
    x = torch.tensor([-1.0, 0.0, 2.0, float("nan")], requires_grad=True)
    assert floor(x).grad_fn.name() == "_IdentityBackward"
    y = function(x)
    assert y.grad_fn.name() == "_MinimalReLUBackward"
    y.backward(torch.full((4,), 3.0))  # the minimal ReLU is torch's, value and gradient
    expected = x.detach().clone().requires_grad_()
    torch.relu(expected).backward(torch.full((4,), 3.0))
    torch.testing.assert_close(y, torch.relu(expected), equal_nan=True)
    torch.testing.assert_close(x.grad, expected.grad, equal_nan=True)
    assert type(relu).__module__.startswith("scratch.nn")


def test_gemm_rates_and_torch_blas_are_measured():
    """Both backends' BLAS rates on one GEMM, positive and finite; torch's BLAS and the CPU."""
    rates = bench.gemm_rates(torch.float64, repeats=1)
    assert rates["shape"] == "x".join(map(str, bench.GEMM_SHAPE))
    assert all(0 < rates[side] < float("inf") for side in ("torch", "numpy"))
    assert "cpu " in bench.torch_blas()


def test_blas_kernel_is_reported_and_a_forced_kernel_warned():
    assert "threads" in bench.blas_pools()
    warning = bench.coretype_warning({"OPENBLAS_CORETYPE": "Haswell", "HOME": "/"})
    assert "OPENBLAS_CORETYPE=Haswell" in warning and "env -u OPENBLAS_CORETYPE" in warning
    assert bench.coretype_warning({"HOME": "/"}) is None


def test_memory_probe_runs_in_a_fresh_process():
    peak = bench.peak_in_subprocess("lenet.fc3", "numpy", "float32", vgg_batch=8, threads=1)
    assert isinstance(peak, float) and peak >= 0.0


def test_memory_probe_pins_mallocs_mmap_threshold(monkeypatch):
    """The probe's process maps every large buffer (glibc's dynamic threshold would keep freed
    ones in the heap and count them, by up to 1.5x between runs); a threshold set outside wins."""
    seen = []

    def run(command, env, **kwargs):
        seen.append(env)
        return subprocess.CompletedProcess(command, 0, stdout='{"peak_mib": 1.0}\n')

    monkeypatch.setattr(bench.memory.subprocess, "run", run)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    bench.peak_in_subprocess("lenet.fc3", "numpy", "float32", vgg_batch=8, threads=1)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    bench.peak_in_subprocess("lenet.fc3", "numpy", "float32", vgg_batch=8, threads=1)
    assert [env["MALLOC_MMAP_THRESHOLD_"] for env in seen] == ["131072", "65536"]


def test_memory_probe_counts_the_steps_own_input_gradient():
    """A step's peak holds the grad_x its backward makes: the probe's baseline, after a warm-up
    step, holds none (it did, and the probe subtracted the last step's grad_x from the peak:
    VGG16's pool3 at batch 8 read 18.4 MiB for torch.nn, under its 24.5 MiB of grad_x)."""
    grad_x = 1 * 256 * 56 * 56 * 4 / 2**20  # vgg16.pool3's input at batch 1: 3.06 MiB
    peak = bench.peak_in_subprocess("vgg16.pool3", "torch.nn", "float32", vgg_batch=1, threads=1)
    assert peak >= grad_x


def test_time_pair_interleaves_after_a_warm_up():
    calls = []
    runs = (lambda: calls.append("a"), lambda: calls.append("b"))
    best = bench.time_pair(runs, repeats=2)
    assert calls == ["a", "b"] * 3 and len(best) == 2 and min(best) >= 0
