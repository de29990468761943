"""The settings of one training run: a frozen dataclass, saved as plain JSON in the run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from reference.data import DATASETS, check_fraction
from reference.models import TRAIN_MODELS
from reference.train.optimizers import OPTIMIZERS
from scratch.kernels import BACKENDS

STACKS = ("torch", "scratch")
DTYPES = ("float32", "float64")
EVAL_SETS = ("val", "test")


@dataclass(frozen=True)
class TrainSettings:
    """One lockstep run: the scratch stack and the torch.nn stack, same weights, same batches."""

    model: str = "mlp"
    dataset: str = "digits"
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9  # sgd and rmsprop only
    epochs: int = 10
    batch_size: int = 32
    weight_decay: float = 0.0  # the optimizer's
    l2: float = 0.0  # an explicit lam * sum(w^2) loss term over the weight matrices/kernels
    seed: int = 0
    backend: str = "numpy"
    dtype: str = "float32"
    only: str | None = None  # train one stack: 'scratch' or 'torch'
    data_dir: str = "data"
    download: bool = False
    train_fraction: float = 1.0
    val_fraction: float = 0.1
    eval_set: str = "val"  # where the confusion matrix and per-class accuracy are measured
    hidden: int = 128  # mlp only
    activation: str = "relu"  # mlp only
    progress: bool = True

    @property
    def stacks(self) -> tuple[str, ...]:
        return (self.only,) if self.only else STACKS

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> TrainSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _choice(option: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {option} {value!r}: expected one of {tuple(choices)}")


def check_settings(s: TrainSettings) -> TrainSettings:
    """`s` itself, or a ValueError naming the option and the bad value."""
    _choice("--model", s.model, TRAIN_MODELS)
    _choice("--dataset", s.dataset, DATASETS)
    _choice("--optimizer", s.optimizer, OPTIMIZERS)
    _choice("--backend", s.backend, BACKENDS)
    _choice("--dtype", s.dtype, DTYPES)
    _choice("--only", s.only, (None, *STACKS))
    _choice("--eval-set", s.eval_set, EVAL_SETS)
    # NaN passes on purpose (as in torch.optim): the run then stops at the first NaN loss
    if s.lr <= 0 or s.lr == math.inf:
        raise ValueError(f"--lr must be a positive number, got {s.lr}")
    for option, value in (("--weight-decay", s.weight_decay), ("--l2", s.l2)):
        if not value >= 0:
            raise ValueError(f"{option} must be >= 0, got {value}")
    for option, value in (
        ("--epochs", s.epochs),
        ("--batch-size", s.batch_size),
        ("--hidden", s.hidden),
    ):
        if value < 1:
            raise ValueError(f"{option} must be >= 1, got {value}")
    check_fraction("--train-fraction", s.train_fraction)
    return s
