"""Weight recovery: a known convolution C0 labels real image crops; a fresh conv learns C0 back.

The L2 loss `mean((C(x) - C0(x))²)` is a convex quadratic in C's weights, with one Hessian block
per output channel: `(2 / C_out) G`, where `G` is the Gram matrix of the 5x5x3 input patches
(plus a 1 for the bias). Gradient descent on a quadratic converges at a rate set by the condition
number `κ = λ_max / λ_min` of that Hessian, and photo patches are smooth, so their `G` is
terribly conditioned (κ ~ 1e7 here): the high-frequency part of C0 barely moves the loss and is
never recovered. A Laplacian (a high-pass filter) and colour whitening flatten the spectrum of
the inputs (κ ~ 50), and then heavy-ball momentum with the step and momentum that are optimal
for a quadratic, `lr = 4 / (√L + √μ)²`, `β = ((√κ - 1) / (√κ + 1))²`, converges at the rate
`(√κ - 1) / (√κ + 1)` per step: to rounding level in about a hundred steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure

from reference import filters

__all__ = [
    "Trace",
    "heavy_ball",
    "hessian_extremes",
    "photo_crops",
    "plot_recovery",
    "recover",
    "whiten",
]


def whiten(image: np.ndarray) -> np.ndarray:
    """A Laplacian high-pass (reflect padding), then the colours decorrelated to unit variance.

    Shapes: (H, W, 3) -> (H, W, 3), each channel zero-mean, channel covariance the identity.
    """
    high = filters.filter2d(image, filters.laplacian_kernel("4"), padding_mode="reflect")
    flat = high.reshape(-1, 3) - high.reshape(-1, 3).mean(0)  # (H * W, 3)
    eigenvalues, vectors = np.linalg.eigh(flat.T @ flat / len(flat))
    zca = vectors @ np.diag(eigenvalues**-0.5) @ vectors.T  # symmetric (ZCA) whitening
    return (flat @ zca).reshape(image.shape)


def photo_crops(image: np.ndarray, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """`n` random `size` x `size` crops as a float64 batch. Shapes: (H, W, 3) -> (n, 3, S, S)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # (3, H, W)
    rows = torch.randint(0, x.shape[1] - size + 1, (n,), generator=generator).tolist()
    cols = torch.randint(0, x.shape[2] - size + 1, (n,), generator=generator).tolist()
    return torch.stack([x[:, r : r + size, c : c + size] for r, c in zip(rows, cols)]).contiguous()


def hessian_extremes(x: torch.Tensor, kernel: int, out_channels: int) -> tuple[float, float]:
    """(λ_max, λ_min) of the MSE loss's Hessian in one output channel's weights and bias.

    Shapes: x (N, C, H, W); 'same' zero padding. The Hessian is (2 / C_out) G, G the Gram
    matrix of the (C * k * k + 1) patch vectors over all N * H * W output positions.
    """
    padded = torch.nn.functional.pad(x, [kernel // 2] * 4)
    patches = torch.nn.functional.unfold(padded, kernel).transpose(1, 2)  # (N, H*W, C*k*k)
    patches = patches.reshape(-1, patches.shape[-1])
    patches = torch.cat([patches, torch.ones(len(patches), 1, dtype=x.dtype)], dim=1)
    eigenvalues = torch.linalg.eigvalsh(patches.T @ patches / len(patches))
    scale = 2.0 / out_channels
    return scale * eigenvalues[-1].item(), scale * eigenvalues[0].item()


def heavy_ball(largest: float, smallest: float) -> dict[str, float]:
    """The optimal heavy-ball step and momentum for a quadratic with these Hessian extremes."""
    a, b = math.sqrt(largest), math.sqrt(smallest)
    return {"lr": 4.0 / (a + b) ** 2, "momentum": ((a - b) / (a + b)) ** 2}


@dataclass
class Trace:
    """What `recover` records at every step: the loss and max |C - C0| over weight and bias."""

    label: str
    loss: list[float] = field(default_factory=list)
    max_error: list[float] = field(default_factory=list)


def recover(
    target: torch.nn.Conv2d,
    fresh: torch.nn.Conv2d,
    x: torch.Tensor,
    optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    steps: int,
    label: str,
    loss_fn: torch.nn.Module,
) -> Trace:
    """Train `fresh` to reproduce `target`'s outputs on `x` (full batch); `fresh` is updated."""
    with torch.no_grad():
        y = target(x)  # (N, C_out, H, W): the labels
    opt = optimizer(list(fresh.parameters()))
    trace = Trace(label)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(fresh(x), y)
        loss.backward()
        opt.step()
        trace.loss.append(loss.item())
        with torch.no_grad():
            errors = [(p - q).abs().max() for p, q in zip(fresh.parameters(), target.parameters())]
        trace.max_error.append(max(e.item() for e in errors))
    return trace


def plot_recovery(traces: list[Trace]) -> Figure:
    """Loss and max |C - C0| per step, both on a log scale, one line per trace."""
    fig = Figure(figsize=(10, 3.6))
    ax_loss, ax_err = fig.subplots(1, 2)
    for trace in traces:
        ax_loss.semilogy(np.maximum(trace.loss, 1e-300), label=trace.label)
        ax_err.semilogy(np.maximum(trace.max_error, 1e-300), label=trace.label)
    ax_loss.set(xlabel="step", ylabel="L2 loss", title="Loss")
    ax_err.set(xlabel="step", ylabel="max |C - C0|", title="Distance to the true weights")
    ax_err.legend(fontsize=8)
    fig.tight_layout()
    return fig
