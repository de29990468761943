"""How a case makes its inputs: seeded leaves, exact values, class indices, non-contiguous views.

Each maker returns an `Input`; `Case.inputs` holds them (see scratch.verify.parity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "Input",
    "Maker",
    "classes",
    "filled",
    "float64_uniform",
    "probabilities",
    "randn",
    "randomize",
    "strided",
    "targets",
    "transposed",
    "uniform",
    "values",
]

Maker = Callable[[torch.Generator, torch.dtype], torch.Tensor]


@dataclass(frozen=True)
class Input:
    """How to make one input: a seeded leaf, optionally fed through a view (non-contiguity)."""

    make: Maker
    view: Callable[[torch.Tensor], torch.Tensor] | None = None
    grad: bool = True  # float inputs only: whether the leaf requires grad

    def leaf(self, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        t = self.make(gen, dtype)
        return t.requires_grad_(self.grad and t.is_floating_point())

    def feed(self, leaf: torch.Tensor) -> torch.Tensor:
        fed = leaf.clone()  # in-place layers may then write into it, as in a real network
        return self.view(fed) if self.view else fed


def randn(*shape: int, scale: float = 1.0, view=None, grad: bool = True) -> Input:
    return Input(lambda g, dt: torch.randn(shape, generator=g, dtype=dt) * scale, view, grad)


def uniform(*shape: int, low: float = 0.0, high: float = 1.0, grad: bool = True) -> Input:
    return Input(
        lambda g, dt: torch.rand(shape, generator=g, dtype=dt) * (high - low) + low, None, grad
    )


def values(data: Sequence, grad: bool = True, view=None) -> Input:
    """Exact values, for kinks and ties (e.g. relu at 0, equal maxima)."""
    return Input(lambda g, dt: torch.tensor(data, dtype=dt), view, grad)


def classes(*shape: int, num_classes: int, ignore: int | None = None) -> Input:
    """int64 class indices in [0, num_classes); `ignore` replaces about a quarter of them."""

    def make(g: torch.Generator, dt: torch.dtype) -> torch.Tensor:
        t = torch.randint(num_classes, shape, generator=g)
        if ignore is not None:
            t[torch.rand(shape, generator=g) < 0.25] = ignore
        return t

    return Input(make)


def targets(data, dtype: torch.dtype = torch.int64) -> Input:
    """Exact class indices (e.g. every one ignored, or one out of bounds)."""
    return Input(lambda g, dt: torch.tensor(data, dtype=dtype))


def filled(*shape: int, value: int) -> Input:
    """int64 class indices all equal to `value` (e.g. out of range)."""
    return Input(lambda g, dt: torch.full(shape, value, dtype=torch.int64))


def float64_uniform(*shape: int) -> Input:
    """float64 values in [0, 1), whatever the case's dtype (float32 rows: a float64 target)."""
    return Input(lambda g, dt: torch.rand(shape, generator=g, dtype=torch.float64), grad=False)


def probabilities(*shape: int, dim: int = 1, grad: bool = False) -> Input:
    return Input(lambda g, dt: torch.randn(shape, generator=g, dtype=dt).softmax(dim), None, grad)


def randomize(layer: torch.nn.Module, gen: torch.Generator) -> None:
    """A `Case.setup`: random parameters and buffers instead of torch's init (1s, 0s).

    Variance-like buffers (`running_var`) stay positive; integer buffers (batch counters) are 3,
    as after three training steps.
    """
    for name, t in [*layer.named_parameters(), *layer.named_buffers()]:
        if not t.is_floating_point():
            t.fill_(3)
        elif name.endswith("var"):
            t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) + 0.5)
        else:
            t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype))


def strided(t: torch.Tensor) -> torch.Tensor:
    """A non-contiguous view: every other element of the last dim."""
    return t[..., ::2]


def transposed(t: torch.Tensor) -> torch.Tensor:
    """A non-contiguous view with the last two dims swapped."""
    return t.transpose(-1, -2)
