"""The bench table: what is timed (a torch.nn module, its scratch twin, the input) and one step.

Every item builds a seeded torch.nn module, a deep copy turned into scratch twins by
`scratch.swap` (or the item's own twin builder), and the same inputs for both sides.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torchvision

import scratch.functional
import scratch.optim
from reference.models import LeNet
from scratch.kernels import Backend
from scratch.swap import swap

__all__ = [
    "DTYPES",
    "SEED",
    "Item",
    "Profile",
    "build",
    "items",
    "make_step",
    "profile",
    "select",
    "twin_of",
    "vgg16_features",
]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
SEED = 0


@dataclass(frozen=True)
class Item:
    """One benchmark item: a torch.nn module builder and the input it is fed."""

    name: str  # "<group>.<layer>", e.g. "lenet.conv1"
    make: Callable[[], torch.nn.Module]  # a freshly initialised torch.nn module
    shape: tuple[int, ...]  # input shape
    input_grad: bool = True  # False for a first layer: nothing upstream needs grad_x
    step: str = "backward"  # "backward": (out * g).sum() backward; "sgd": one SGD step
    calls: int = 1  # steps per timed run (tiny items: the time is divided by it)
    # the scratch side from the torch.nn module (a copy) and a backend; None: `scratch.swap`
    twin: Callable[[torch.nn.Module, Backend], torch.nn.Module] | None = None
    memory: bool = True  # False: no peak-memory probe (tiny items, nothing to see)
    scratch_optim: bool = False  # "sgd" steps: the scratch side steps with scratch.optim.SGD

    @property
    def group(self) -> str:
        return self.name.split(".")[0]

    @property
    def short(self) -> str:
        return self.name.split(".", 1)[1]


class _Identity(torch.autograd.Function):
    """The floor of a Python `autograd.Function`: forward returns a view, backward its grad."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class EmptyFunction(torch.nn.Module):
    """A module whose forward is one empty `autograd.Function` round trip (the floor item)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Identity.apply(x)


class _MinimalReLU(torch.autograd.Function):
    """ReLU as a hand-written Python Function without scratch's bridge: the torch ops a ReLU
    needs (the scratch torch backend's own, on an 8x8 input) and nothing else."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clamp_min(0)
        ctx.dropped = y.logical_not()  # y == 0: where the gradient is dropped (NaN passes)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.masked_fill(ctx.dropped, 0)


class MinimalReLU(torch.nn.Module):
    """A module whose forward is `_MinimalReLU` (the `overhead.function` item)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MinimalReLU.apply(x)


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


def mlp() -> torch.nn.Sequential:
    """A CIFAR-sized MLP: (N, 3, 32, 32) -> 3072 -> 256 -> 10 logits."""
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 256), nn.ReLU(), nn.Linear(256, 10))


def _overhead_items() -> tuple[Item, ...]:
    """Fixed cost per op call: fwd+bwd of tiny layers, and the floor any Python Function pays.

    `overhead.floor` times torch's ReLU (C++ autograd) against an empty `autograd.Function`;
    `overhead.function` against a minimal hand-written ReLU Function (the floor of a Python
    ReLU: what `overhead.relu` would cost with no bridge at all).
    """
    tiny = partial(Item, shape=(8, 8), calls=200, memory=False)
    return (
        tiny("overhead.linear", partial(torch.nn.Linear, 8, 8)),
        tiny("overhead.relu", torch.nn.ReLU),
        tiny("overhead.floor", torch.nn.ReLU, twin=lambda module, backend: EmptyFunction()),
        tiny("overhead.function", torch.nn.ReLU, twin=lambda module, backend: MinimalReLU()),
    )


def items(vgg_batch: int = 8) -> tuple[Item, ...]:
    """The benchmark table: LeNet-CIFAR layers (batch 64), VGG16 layers, whole models, then
    the per-call overhead and the training-throughput items."""
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
        *_overhead_items(),
        # the whole scratch stack (layers, loss and optimizer) against torch.nn + torch.optim
        *(
            Item(f"train.{name}", make, (64, 3, 32, 32), False, "sgd", scratch_optim=True)
            for name, make in (("lenet", LeNet), ("mlp", mlp))
        ),
    )


def select(table: tuple[Item, ...], only: tuple[str, ...] | list[str] | None) -> list[Item]:
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


def twin_of(item: Item, module: torch.nn.Module, backend: Backend, in_place: bool = False):
    """The scratch side: `module` (copied unless in_place) swapped; (twin or None, note)."""
    twin = module if in_place else copy.deepcopy(module)
    if item.twin is not None:
        return item.twin(twin, backend), ""
    report = swap(twin, backend)
    if not report.swapped:
        return None, f"no scratch twin for {type(module).__name__}"
    kept = sorted({cls.rsplit(".", 1)[-1] for cls in report.kept.values()})
    return twin, f"kept torch {', '.join(kept)}" if kept else ""


def make_step(item: Item, module: torch.nn.Module, prof: Profile, dtype, backend: Backend | None):
    """A closure running `item.calls` forward+backward passes (or SGD steps) of `module`.

    `backend` None is the torch.nn side; otherwise the scratch cross_entropy is used. Both
    sides get identical, but separate, seeded input tensors.
    """
    gen = torch.Generator().manual_seed(SEED + 1)
    x = torch.randn(item.shape, generator=gen, dtype=dtype).requires_grad_(item.input_grad)
    calls = range(item.calls)
    if item.step == "sgd":
        target = torch.randint(prof.out_shape[1], prof.out_shape[:1], generator=gen)
        loss_fn = cross_entropy(backend)
        sgd = torch.optim.SGD
        if backend is not None and item.scratch_optim:
            sgd = partial(scratch.optim.SGD, backend=backend)
        optimizer = sgd(module.parameters(), lr=0.01, momentum=0.9)

        def run() -> None:
            for _ in calls:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(module(x), target).backward()
                optimizer.step()

        return run
    g = torch.randn(prof.out_shape, generator=gen, dtype=dtype)

    def run() -> None:
        for _ in calls:
            module.zero_grad(set_to_none=True)
            module(x).backward(g)  # the gradient of (out * g).sum()
            # dropped here, not at the next call's start: the layer upstream that x stands for
            # would take grad_x and free it, so no step starts holding one (the memory probe's
            # baseline, which would otherwise subtract the last step's grad_x from the peak)
            x.grad = None

    return run


def cross_entropy(backend: Backend | None) -> Callable:
    """scratch.functional.cross_entropy on `backend`, torch's for the torch.nn side (None)."""
    if backend is None:
        return torch.nn.functional.cross_entropy
    return partial(scratch.functional.cross_entropy, backend=backend)
