"""Datasets for `scratch train`: offline digits; MNIST, FashionMNIST, CIFAR-10 via torchvision.

Everything is loaded once into tensors (N, C, H, W), normalised with the dataset's usual
mean/std, and split with seeded generators: a held-out test set (torchvision's `train=False`,
or 20% of digits), a validation split of the training set, and a `train_fraction` subset of
what is left (nested: a smaller fraction is a prefix of a larger one's permutation).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torchvision

from reference.models import CONV_MODELS

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
# torchvision class, per-channel mean and std of the training set (the usual published values)
TORCHVISION = {
    "mnist": (torchvision.datasets.MNIST, (0.1307,), (0.3081,)),
    "fashion-mnist": (torchvision.datasets.FashionMNIST, (0.2860,), (0.3530,)),
    "cifar10": (
        torchvision.datasets.CIFAR10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
}
DIGITS_TEST_FRACTION = 0.2
CONV_MIN_SIZE = 28  # LeNet's two 5x5 convs and pools need this much; digits are resized to 32


class DataError(RuntimeError):
    """The data could not be found or fetched; the message says where to put it."""


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, C, H, W) float32, normalised
    y: torch.Tensor  # (N,) int64 class indices

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Data:
    name: str
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    mean: tuple[float, ...] = ()  # per channel, what was subtracted (then divided by std)
    std: tuple[float, ...] = ()

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.x.shape[2:])


def _where_files_go(name: str, root: Path) -> str:
    cls = TORCHVISION[name][0]
    if name == "cifar10":
        return f"{root / cls.base_folder}/ (unpack {cls.filename} from {cls.url} into {root})"
    files = ", ".join(Path(f).stem for f, _ in cls.resources)
    return f"{root / cls.__name__ / 'raw'}/ ({files}, uncompressed)"


def _present(name: str, root: Path) -> bool:
    """Whether the dataset's raw files are there (MNIST's four idx files; CIFAR's folder)."""
    cls = TORCHVISION[name][0]
    if name == "cifar10":
        return (root / cls.base_folder).is_dir()
    raw = root / cls.__name__ / "raw"
    return all((raw / Path(f).stem).is_file() for f, _ in cls.resources)


def _torchvision_raw(name: str, root: Path, download: bool, train: bool):
    """torchvision's dataset object; missing, unreadable (cut short, corrupt) or inconsistent
    files and a failed download are a DataError saying what to do."""
    cls = TORCHVISION[name][0]
    try:
        raw = cls(str(root), train=train, download=download)
    except (RuntimeError, URLError, OSError, AssertionError, ValueError, IndexError) as e:
        # MNIST: RuntimeError (missing), AssertionError/RuntimeError (a bad header); CIFAR:
        # RuntimeError (md5), a bare URLError (download)
        cause = " ".join(str(e).split())[:400]  # one line
        if download:
            what, hint = (
                "could not be downloaded",
                "check the network (or download elsewhere) and put",
            )
        elif _present(name, root):
            what = "is there but could not be read (a file cut short or corrupt?)"
            hint = "remove it and rerun with --download, or put intact copies of"
        else:
            what, hint = "was not found", "rerun with --download on a machine with internet, or put"
        raise DataError(
            f"dataset {name!r} {what} in {root} ({type(e).__name__}: {cause}). "
            f"To fix: {hint} the files at {_where_files_go(name, root)}, or use --data-dir DIR "
            "to point at them."
        ) from e
    targets = torch.as_tensor(raw.targets)
    if (
        len(raw.data) != len(targets)
        or len(targets) == 0
        or not (0 <= int(targets.min()) and int(targets.max()) < len(raw.classes))
    ):
        split = "train" if train else "test"
        raise DataError(
            f"dataset {name!r} in {root}: its {split} files do not match ({len(raw.data)} images, "
            f"{len(targets)} labels, labels in 0..{len(raw.classes) - 1} expected): corrupt "
            f"files? Put intact copies at {_where_files_go(name, root)}."
        )
    return raw


def _as_images(data, name: str) -> torch.Tensor:
    """(N, C, H, W) floats in [0, 1] from torchvision's uint8 (N, H, W) or (N, H, W, 3)."""
    array = torch.as_tensor(np.asarray(data))
    array = array.permute(0, 3, 1, 2) if name == "cifar10" else array.unsqueeze(1)
    return array.float() / 255


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    return (x - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn.datasets import load_digits  # slow to import: only when asked for

    digits = load_digits()
    return digits.images, digits.target, tuple(str(c) for c in digits.target_names)


def _digits(seed: int) -> tuple[Split, Split, tuple[str, ...], tuple, tuple]:
    """scikit-learn's 1,797 8x8 digits: a seeded 80/20 train/test split, train-set mean/std."""
    images, target, names = _digits_arrays()
    x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 16  # (1797, 1, 8, 8)
    y = torch.as_tensor(target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = round(DIGITS_TEST_FRACTION * len(y))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean().item(), x[train].std().item()
    x = _normalise(x, (mean,), (std,))
    return Split(x[train], y[train]), Split(x[test], y[test]), names, (mean,), (std,)


def _torchvision(name: str, root: Path, download: bool) -> tuple[Split, Split, tuple, tuple, tuple]:
    _, mean, std = TORCHVISION[name]
    splits = []
    for train in (True, False):
        raw = _torchvision_raw(name, root, download, train)
        x = _normalise(_as_images(raw.data, name), mean, std)
        splits.append(Split(x, torch.as_tensor(raw.targets, dtype=torch.int64)))
    return splits[0], splits[1], tuple(raw.classes), mean, std


def _resized(split: Split, size: int) -> Split:
    x = torch.nn.functional.interpolate(split.x, size=(size, size), mode="bilinear")
    return Split(x, split.y)


def _take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.x[index], split.y[index])


def check_fraction(name: str, value: float) -> float:
    """`value` if it is a fraction in (0, 1], else a ValueError naming the option."""
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value


def load(
    name: str = "digits",
    *,
    model: str = "mlp",
    data_dir: str | Path = "data",
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    train_fraction: float = 1.0,
) -> Data:
    """The dataset `name`, split and sized for `model` (conv models get at least 28x28)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS}")
    check_fraction("train_fraction", train_fraction)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if name == "digits":
        train, test, names, mean, std = _digits(seed)
    else:
        train, test, names, mean, std = _torchvision(name, Path(data_dir), download)
    if model in CONV_MODELS and train.x.shape[-1] < CONV_MIN_SIZE:
        train, test = _resized(train, 32), _resized(test, 32)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 1))
    n_val = max(1, round(val_fraction * len(train)))
    val, rest = order[:n_val], order[n_val:]
    rest = rest[: max(1, math.ceil(train_fraction * len(rest)))]
    return Data(name, _take(train, rest), _take(train, val), test, names, mean, std)
