"""The classic models, defined once so they build from `torch.nn` or `scratch.nn`.

`LeNet(nn=scratch.nn)` builds the scratch stack directly; `scratch.swap` turns any torch model,
torchvision's VGG16 included, into one in place.
"""

from __future__ import annotations

from types import ModuleType

import torch
import torchvision

MODELS = ("lenet", "vgg16", "vgg16_bn")


class LeNet(torch.nn.Module):
    """LeNet-5 for 32x32 RGB images (CIFAR-10), as in PyTorch's classic CIFAR-10 tutorial."""

    def __init__(self, num_classes: int = 10, nn: ModuleType = torch.nn) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(  # containers are torch's; layers from `nn`
            nn.Conv2d(3, 6, 5),  # (N, 6, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (N, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # (N, 16, 10, 10)
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (N, 16, 5, 5)
        )
        self.classifier = torch.nn.Sequential(
            nn.Flatten(),  # (N, 400)
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),  # (N, num_classes) logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build(name: str, num_classes: int | None = None) -> torch.nn.Module:
    """A freshly initialised torch.nn model by name: 'lenet', 'vgg16' or 'vgg16_bn'."""
    if name == "lenet":
        return LeNet(num_classes or 10)
    if name in ("vgg16", "vgg16_bn"):
        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes or 1000)
    raise ValueError(f"unknown model {name!r}: expected one of {MODELS}")


def input_size(name: str) -> tuple[int, int, int]:
    """The (C, H, W) a model is built for."""
    return (3, 32, 32) if name == "lenet" else (3, 224, 224)
