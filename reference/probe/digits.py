"""A LeNet with meaningful weights that exists offline: trained on scikit-learn's digits.

scikit-learn ships the 1,797 8x8 handwritten digits (no download). They are upscaled to 32x32
and repeated into 3 channels so `reference.models.build("lenet")` takes them as they are, and
the result is written as a `scratch train`-style checkpoint ({"model": state_dict, "config":
plain settings}), so the probes load it exactly as they load a real training run's. Used by
the tests and the README pictures; needs scikit-learn (the `dev` extra).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from reference import models


def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as (1797, 3, 32, 32) pixels in [0, 1] and their labels (1797,)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    return x.expand(-1, 3, -1, -1).contiguous(), torch.tensor(data.target)


def train_digits_lenet(epochs: int = 6, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """LeNet trained with Adam on all the digits; returns it (eval mode) and its accuracy."""
    x, y = digits_tensors()
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.build("lenet", 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).double().mean())
    return model, accuracy


def write_digits_checkpoint(path: str | Path, epochs: int = 6, seed: int = 0) -> Path:
    """Train the digits LeNet and write it atomically as a checkpoint at `path`."""
    model, accuracy = train_digits_lenet(epochs, seed)
    config = {
        "model": "lenet", "dataset": "sklearn-digits-32x32", "num_classes": 10, "in_channels": 3,
        "image_size": [32, 32], "class_names": [str(i) for i in range(10)],
        "train_accuracy": accuracy,
    }  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save({"model": model.state_dict(), "config": config}, tmp)
    os.replace(tmp, path)
    return path
