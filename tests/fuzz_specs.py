"""Hypothesis strategies for the bad-input fuzzer: one trial (constructor arguments, inputs,
train or eval) for any `scratch.nn` class, drawn with odd ranks, sizes (0 included), dtypes,
special values, memory layouts and argument types and values (invalid ones included)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st

DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.complex128,
]
FLOAT_FIRST = st.sampled_from(DTYPES[:2]) | st.sampled_from(DTYPES)  # mostly float32/64
# NaN, infinities, huge, denormal (float32 and float64), signed zero and the kinks/ties 0, 1, -1
SPECIALS = [math.nan, math.inf, -math.inf, 1e30, -1e30, 1e-40, 1e-310, 0.0, -0.0, 1.0, -1.0]
PADDING_MODES = ["reflect", "replicate", "circular"]
LAYOUTS = ["contiguous", "transposed", "expanded", "channels_last"]


@dataclass(frozen=True)
class Data:
    """How one input tensor is made: seeded values, a few special values, dtype and layout."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    seed: int
    mode: str = "randn"  # "randn", "ties" (small ints), "unit" (in [0, 1]), "classes"
    high: int = 3  # "classes": values in [0, high)
    specials: tuple[tuple[int, float], ...] = ()
    layout: str = "contiguous"
    grad: bool = True

    def leaf(self) -> torch.Tensor:
        """The leaf tensor (gradients are taken with respect to it)."""
        g = torch.Generator().manual_seed(self.seed)
        shape = self.leaf_shape()
        if self.mode == "classes":
            return torch.randint(0, max(self.high, 1), shape, generator=g).to(self.dtype)
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        if self.mode == "ties":
            x = x.mul(1.5).round()
        elif self.mode == "unit":
            x = x.sigmoid()
        flat = x.view(-1)
        for i, v in self.specials:
            if flat.numel():
                flat[i % flat.numel()] = v
        x = x.to(self.dtype) if self.dtype.is_floating_point or self.dtype.is_complex else x
        if not (self.dtype.is_floating_point or self.dtype.is_complex):
            x = (x > 0) if self.dtype == torch.bool else x.nan_to_num(0, 0, 0).clamp(-9, 9)
            x = x.to(self.dtype)
        return x.requires_grad_(self.grad and x.is_floating_point())

    def leaf_shape(self) -> tuple[int, ...]:
        if self.layout == "expanded" and self.shape:
            return (*self.shape[:-1], 1)
        return self.shape

    def feed(self, leaf: torch.Tensor) -> torch.Tensor:
        """The tensor the layer gets: a copy of the leaf in the drawn memory layout."""
        x = leaf.clone()
        if self.layout == "transposed" and x.dim() >= 2:
            return x.transpose(-1, -2).contiguous().transpose(-1, -2)
        if self.layout == "expanded" and self.shape:
            return x.expand(self.shape)
        if self.layout == "channels_last" and x.dim() in (4, 5):
            fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
            return x.contiguous(memory_format=fmt)
        return x


@dataclass(frozen=True)
class Trial:
    """One call: `cls(*args, **kwargs)` in `train` mode applied to the inputs."""

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[Data, ...] = ()
    train: bool = True


@st.composite
def data(draw, shape, dtype, mode="randn", high=3, grad=True) -> Data:
    specials = draw(st.lists(st.tuples(st.integers(0, 63), st.sampled_from(SPECIALS)), max_size=3))
    return Data(
        tuple(shape),
        dtype,
        draw(st.integers(0, 2**16)),
        mode if mode != "randn" else draw(st.sampled_from(["randn", "randn", "ties"])),
        high,
        tuple(specials),
        draw(st.sampled_from(LAYOUTS)),
        grad,
    )


def sizes(rank: int, low: int = 0, high: int = 4):
    return st.lists(st.integers(low, high), min_size=rank, max_size=rank).map(tuple)


def small_ints(low: int = -1, high: int = 3):
    """Mostly valid ints, sometimes 0 / negative, sometimes a float or bool (wrong types)."""
    return st.integers(low, high) | st.sampled_from([1.0, True, 2.5])


@st.composite
def elementwise(draw, name: str) -> Trial:
    shape = draw(st.integers(0, 4).flatmap(sizes))
    args, kwargs = (), {}
    if name == "LeakyReLU":
        args = (draw(st.sampled_from([0.01, 0.2, 0.0, -0.5, 1.0])), draw(st.booleans()))
    elif name == "ReLU":
        args = (draw(st.booleans()),)
    elif name == "GELU":
        kwargs = {"approximate": draw(st.sampled_from(["none", "tanh", "fast"]))}
    elif name in ("Softmax", "LogSoftmax"):
        kwargs = {"dim": draw(st.integers(-len(shape) - 1, len(shape)))}
    elif name == "Dropout":
        args = (draw(st.sampled_from([0.5, 0.0, 1.0, 0.2, 1.5])), draw(st.booleans()))
    elif name == "Flatten":
        args = (draw(st.integers(-3, 3)), draw(st.integers(-3, 3)))
    return Trial(args, kwargs, (draw(data(shape, draw(FLOAT_FIRST))),), draw(st.booleans()))


@st.composite
def linear(draw, name: str) -> Trial:
    n_in, n_out = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    batch = draw(st.integers(0, 2).flatmap(sizes))
    width = draw(st.sampled_from([n_in, n_in, n_in + 1]))
    shape = (*batch, width) if draw(st.integers(0, 9)) else ()
    args = (n_in, n_out, draw(st.booleans()))
    return Trial(args, {}, (draw(data(shape, draw(FLOAT_FIRST))),))


@st.composite
def conv(draw, name: str) -> Trial:
    d = int(name[-2])
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = groups * draw(st.integers(0, 2)), groups * draw(st.integers(1, 2))
    kernel = draw(st.integers(0, 3))
    padding = draw(st.sampled_from([0, 1, 2, "same", "valid", -1]))
    kwargs = {
        "stride": draw(st.sampled_from([1, 1, 2, 0])),
        "padding": padding,
        "dilation": draw(st.sampled_from([1, 1, 2, 0])),
        "groups": groups,
        "bias": draw(st.booleans()),
        "padding_mode": draw(
            st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])
        ),
    }
    shape = (draw(st.integers(0, 2)), c_in, *draw(sizes(d, 0, 5)))
    shape = shape[1:] if draw(st.integers(0, 5)) == 0 else shape  # unbatched
    return Trial((c_in, c_out, kernel), kwargs, (draw(data(shape, draw(FLOAT_FIRST))),))


@st.composite
def batch_norm(draw, name: str) -> Trial:
    d = int(name[-2])
    c = draw(st.integers(0, 3))
    kwargs = {
        "eps": draw(st.sampled_from([1e-5, 1e-5, 0.0, 1.0])),
        "momentum": draw(st.sampled_from([0.1, None, 1.0])),
        "affine": draw(st.booleans()),
        "track_running_stats": draw(st.booleans()),
    }
    rank = (
        draw(st.sampled_from([d + 1, d + 1, d, d + 2])) if d > 1 else draw(st.sampled_from([2, 3]))
    )
    shape = (draw(st.integers(0, 3)), c, *draw(sizes(rank - 2, 0, 3)))[:rank]
    return Trial((c,), kwargs, (draw(data(shape, draw(FLOAT_FIRST))),), draw(st.booleans()))


@st.composite
def pool(draw, name: str) -> Trial:
    d = int(name[-2])
    shape = (draw(st.integers(0, 2)), draw(st.integers(0, 2)), *draw(sizes(d, 0, 6)))
    shape = shape[1:] if draw(st.integers(0, 4)) == 0 else shape
    if name.startswith("Adaptive"):
        out = draw(st.integers(0, 5) | st.sampled_from([None, -1, 2.0]))
        return Trial((out,), {}, (draw(data(shape, draw(FLOAT_FIRST))),))
    kernel = draw(st.integers(0, 3))
    kwargs = {
        "stride": draw(st.sampled_from([None, 1, 2, 3, 0])),
        "padding": draw(st.integers(0, 2)),
        "ceil_mode": draw(st.sampled_from([False, True, 1])),
    }
    if name.startswith("Max"):
        # dilation > 1 only without padding: torch's max-pool backward writes out of range for
        # a window made only of padding (heap corruption; not ours, see README)
        dilation = draw(st.sampled_from([1, 2, 0])) if kwargs["padding"] == 0 else 1
        kwargs |= {"dilation": dilation, "return_indices": draw(st.booleans())}
    else:
        kwargs |= {"count_include_pad": draw(st.booleans())}
        if d > 1:
            kwargs["divisor_override"] = draw(st.sampled_from([None, None, 3, 0]))
    return Trial((kernel,), kwargs, (draw(data(shape, draw(FLOAT_FIRST))),))


@st.composite
def loss(draw, name: str) -> Trial:
    dtype = draw(FLOAT_FIRST)
    kwargs = {"reduction": draw(st.sampled_from(["mean", "sum", "none", "mean", "bogus"]))}
    if name in ("CrossEntropyLoss", "NLLLoss"):
        c = draw(st.integers(0, 4))
        shape = draw(st.sampled_from([(c,), (2, c), (0, c), (2, c, 3)]))
        kwargs["ignore_index"] = draw(st.sampled_from([-100, 0, 1, 1.0]))
        if name == "CrossEntropyLoss":
            kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0, math.nan, -0.5]))
        probs = name == "CrossEntropyLoss" and draw(st.booleans())
        target = (
            data(shape, dtype, "unit", grad=draw(st.booleans()))
            if probs
            else data(
                shape[:1] + shape[2:] if len(shape) > 1 else (), torch.int64, "classes", c + 1
            )
        )
        return Trial((), kwargs, (draw(data(shape, dtype)), draw(target)))
    shape = draw(st.integers(0, 3).flatmap(sizes))
    mode = "unit" if name == "BCELoss" else "randn"
    target_dtype = draw(st.sampled_from([dtype, dtype, torch.float32, torch.float64]))
    inputs = (draw(data(shape, dtype, mode)), draw(data(shape, target_dtype, "unit")))
    return Trial((), kwargs, inputs)


DIMS = (1, 2, 3)
FAMILIES: dict[str, Callable] = {
    **dict.fromkeys(
        ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax"], elementwise
    ),
    **dict.fromkeys(["Dropout", "Flatten"], elementwise),
    "Linear": linear,
    **dict.fromkeys([f"Conv{d}d" for d in (1, 2, 3)], conv),
    **dict.fromkeys([f"BatchNorm{d}d" for d in (1, 2, 3)], batch_norm),
    **dict.fromkeys(
        [f"{k}Pool{d}d" for k in ("Max", "Avg", "AdaptiveAvg") for d in (1, 2, 3)], pool
    ),
    **dict.fromkeys(
        ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"], loss
    ),
}


def trials(name: str):
    """The strategy of trials for the scratch.nn class `name`."""
    return FAMILIES[name](name)
