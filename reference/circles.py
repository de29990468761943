"""Two noisy concentric circles and a 2 -> 16 -> 1 ReLU / sigmoid network trained with BCE + L2.

A linear classifier cannot separate the rings; one hidden layer of 16 ReLUs can (it builds a
polygon around the inner ring). The model definition takes the layer namespace, so one
definition builds the torch.nn and the scratch.nn stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import torch

__all__ = [
    "CircleRun",
    "CircleSettings",
    "accuracy",
    "circles_net",
    "predict",
    "split",
    "train_circles",
    "two_circles",
]


def two_circles(
    n_per_ring: int = 100,
    radii: tuple[float, float] = (1.1, 3.0),
    noise: float = 0.25,
    *,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on two rings (uniform angle, Gaussian radial and tangential noise), labels 0 / 1.

    Shapes: -> X (2 * n_per_ring, 2) float64, y (2 * n_per_ring,) float64 (0 inner, 1 outer).
    """
    points, labels = [], []
    for label, radius in enumerate(radii):
        angle = 2 * math.pi * torch.rand(n_per_ring, generator=generator, dtype=torch.float64)
        ring = radius * torch.stack([angle.cos(), angle.sin()], dim=1)  # (n, 2)
        points.append(ring + noise * torch.randn(n_per_ring, 2, generator=generator).double())
        labels.append(torch.full((n_per_ring,), float(label), dtype=torch.float64))
    return torch.cat(points), torch.cat(labels)


def split(
    X: torch.Tensor, y: torch.Tensor, train_fraction: float, *, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """(X_train, y_train, X_test, y_test) from one random permutation (70/30 for 0.7)."""
    order = torch.randperm(len(X), generator=generator)
    n_train = round(train_fraction * len(X))
    train, test = order[:n_train], order[n_train:]
    return X[train], y[train], X[test], y[test]


def circles_net(nn: ModuleType = torch.nn) -> torch.nn.Sequential:
    """2 -> 16 -> 1: Linear, ReLU, Linear, Sigmoid (probability of the outer ring)."""
    return torch.nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())


@dataclass(frozen=True)
class CircleSettings:
    """Full-batch SGD on BCE + `weight_decay` * (sum of squared weights, biases excluded)."""

    steps: int = 400
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3


@dataclass
class CircleRun:
    """The training loss (BCE + L2) per step and the accuracies at the end."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: float = 0.0
    test_accuracy: float = 0.0


def train_circles(
    model: torch.nn.Module,
    data: tuple[torch.Tensor, ...],
    settings: CircleSettings,
    *,
    optimizer: Callable[..., torch.optim.Optimizer],
    bce: torch.nn.Module,
) -> CircleRun:
    """Train `model` in place on `data` = (X_train, y_train, X_test, y_test)."""
    X, y, X_test, y_test = data
    opt = optimizer(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    run = CircleRun()
    for _ in range(settings.steps):
        opt.zero_grad()
        l2 = sum((w * w).sum() for w in weights)
        loss = bce(model(X)[:, 0], y) + settings.weight_decay * l2
        loss.backward()
        opt.step()
        run.loss.append(loss.item())
    with torch.no_grad():
        run.train_accuracy = accuracy(model, X, y)
        run.test_accuracy = accuracy(model, X_test, y_test)
    return run


def predict(model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """Labels 0 / 1 for points (M, 2) -> (M,): the outer ring where p > 0.5."""
    with torch.no_grad():
        return (model(torch.from_numpy(points))[:, 0] > 0.5).double().numpy()


def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of points on the right side of p = 0.5."""
    with torch.no_grad():
        return ((model(X)[:, 0] > 0.5).double() == y).double().mean().item()
