"""The classic models, defined once so they build from `torch.nn` or `scratch.nn`.

Each model takes the layer namespace `nn` (`torch.nn`, `scratch.nn`, or `with_backend(scratch.nn,
"torch")` to pick the scratch backend) and the dataset's geometry (`in_channels`, `image_size`,
`num_classes`), so one definition builds both stacks of a lockstep run. `scratch.swap` turns
any torch model, torchvision's VGG16 included, into a scratch one in place.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import torch
import torchvision

TRAIN_MODELS = ("mlp", "softmax", "sigmoid-mlp", "lenet", "small-cnn")  # `scratch train --model`
MODELS = (*TRAIN_MODELS, "vgg16", "vgg16_bn")  # `scratch check --model`
CONV_MODELS = ("lenet", "small-cnn")  # these need images of at least 28 x 28
LAYERS = ("Linear", "Flatten", "ReLU", "Sigmoid", "Conv2d", "MaxPool2d", "Dropout")


def with_backend(nn: ModuleType, backend: str) -> SimpleNamespace:
    """The layers of `nn` (scratch.nn) with `backend=` preset, for the models' `nn` argument."""
    layers = {n: functools.partial(getattr(nn, n), backend=backend) for n in LAYERS}
    return SimpleNamespace(**layers)


class SoftmaxClassifier(torch.nn.Module):
    """A linear softmax classifier: logits = x W^T + b (the softmax lives in the loss)."""

    def __init__(self, num_classes=10, in_channels=3, image_size=32, nn: Any = torch.nn) -> None:
        super().__init__()
        self.flatten = nn.Flatten()  # (N, C, H, W) -> (N, C*H*W)
        self.fc = nn.Linear(in_channels * image_size**2, num_classes)  # (N, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(x))


class MLP(torch.nn.Module):
    """A 2-layer perceptron: one hidden layer of `hidden` ReLU or sigmoid units."""

    def __init__(
        self,
        num_classes=10,
        in_channels=3,
        image_size=32,
        nn: Any = torch.nn,
        hidden: int = 128,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in ("relu", "sigmoid"):
            raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
        act = nn.ReLU if activation == "relu" else nn.Sigmoid
        self.net = torch.nn.Sequential(  # containers are torch's; layers from `nn`
            nn.Flatten(),  # (N, C*H*W)
            nn.Linear(in_channels * image_size**2, hidden),  # (N, hidden)
            act(),
            nn.Linear(hidden, num_classes),  # (N, num_classes) logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SigmoidMLP(torch.nn.Module):
    """A fully connected sigmoid network: sigmoid hidden layers of sizes `hidden`."""

    def __init__(
        self, num_classes=10, in_channels=3, image_size=32, nn: Any = torch.nn, hidden=(128, 64)
    ) -> None:
        super().__init__()
        sizes = (in_channels * image_size**2, *hidden)
        layers: list[torch.nn.Module] = [nn.Flatten()]  # (N, C*H*W)
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Sigmoid()]  # (N, b)
        layers.append(nn.Linear(sizes[-1], num_classes))  # (N, num_classes) logits
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _after_two_pools(size: int, kernel: int) -> int:
    """The side after (conv `kernel`, no padding; 2x2 max pool) twice."""
    return ((size - kernel + 1) // 2 - kernel + 1) // 2


class LeNet(torch.nn.Module):
    """LeNet-5 as in PyTorch's classic CIFAR-10 tutorial; 32x32 RGB by default, 28x28 works."""

    def __init__(self, num_classes=10, nn: Any = torch.nn, in_channels=3, image_size=32) -> None:
        super().__init__()
        side = _after_two_pools(image_size, 5)  # 5 for 32x32, 4 for 28x28
        self.features = torch.nn.Sequential(  # containers are torch's; layers from `nn`
            nn.Conv2d(in_channels, 6, 5),  # (N, 6, 28, 28) at 32x32
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (N, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # (N, 16, 10, 10)
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (N, 16, 5, 5)
        )
        self.classifier = torch.nn.Sequential(
            nn.Flatten(),  # (N, 400)
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),  # (N, num_classes) logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallCNN(torch.nn.Module):
    """Three 3x3 conv blocks (32, 64, 64 channels) and dropout: ~67K parameters at 32x32."""

    def __init__(
        self, num_classes=10, in_channels=3, image_size=32, nn: Any = torch.nn, dropout=0.25
    ) -> None:
        super().__init__()
        blocks: list[torch.nn.Module] = []
        for a, b in ((in_channels, 32), (32, 64), (64, 64)):
            blocks += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2)]
        self.features = torch.nn.Sequential(*blocks)  # (N, 64, 4, 4) at 32x32, (N, 64, 3, 3) at 28
        side = image_size // 8
        self.classifier = torch.nn.Sequential(
            nn.Flatten(),  # (N, 64 * side * side)
            nn.Dropout(dropout),
            nn.Linear(64 * side * side, num_classes),  # (N, num_classes) logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


_CLASSES = {
    "softmax": SoftmaxClassifier,
    "mlp": MLP,
    "sigmoid-mlp": SigmoidMLP,
    "lenet": LeNet,
    "small-cnn": SmallCNN,
}


def build(
    name: str,
    num_classes: int | None = None,
    *,
    in_channels: int = 3,
    image_size: int = 32,
    nn: Any = torch.nn,
    **options: Any,
) -> torch.nn.Module:
    """A freshly initialised model by name (see MODELS), its layers from `nn`."""
    if name in _CLASSES:
        size = dict(in_channels=in_channels, image_size=image_size)
        return _CLASSES[name](num_classes=num_classes or 10, nn=nn, **size, **options)
    if name in ("vgg16", "vgg16_bn"):
        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes or 1000)
    raise ValueError(f"unknown model {name!r}: expected one of {MODELS}")


def input_size(name: str) -> tuple[int, int, int]:
    """The (C, H, W) `build(name)` is built for."""
    return (3, 224, 224) if name.startswith("vgg") else (3, 32, 32)


def from_checkpoint(path: str | Path, nn: Any = torch.nn) -> tuple[torch.nn.Module, dict]:
    """The model a `scratch train` checkpoint holds, in eval mode, and its run config.

    Built by name from `config["model"]` with the dataset's geometry, layers from `nn`, in the
    run's dtype, weights loaded (`weights_only=True`).
    """
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = checkpoint["config"]
    model = build(
        config["model"],
        config["num_classes"],
        in_channels=config["in_channels"],
        image_size=config["image_size"][0],
        nn=nn,
        **config.get("model_options", {}),
    )
    model.to(getattr(torch, config.get("dtype", "float32")))
    model.load_state_dict(checkpoint["model"])
    return model.eval(), config
