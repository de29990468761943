"""The one place a training run gets its optimizers: torch.optim for the torch stack,
scratch.optim (hand-written, torch.optim's signatures plus `backend=`) for the scratch stack.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from scratch import optim as scratch_optim

OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
}
WITH_MOMENTUM = ("sgd", "rmsprop")  # the ones that take a `momentum` argument
SCRATCH_OPTIM = "scratch.optim"  # recorded in each run's config


def hyperparameters(name: str, lr: float, momentum: float, weight_decay: float) -> dict:
    """The keyword arguments of optimizer `name` for a run's settings."""
    hp = dict(lr=lr, weight_decay=weight_decay)
    if name in WITH_MOMENTUM:
        hp["momentum"] = momentum
    return hp


def make_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], stack: str, backend: str, **hp
) -> torch.optim.Optimizer:
    """Optimizer `name` (see OPTIMIZERS) for the 'torch' or the 'scratch' stack."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {tuple(OPTIMIZERS)}")
    if stack == "torch":
        return getattr(torch.optim, OPTIMIZERS[name])(params, **hp)
    if stack != "scratch":
        raise ValueError(f"stack must be 'scratch' or 'torch', got {stack!r}")
    return getattr(scratch_optim, OPTIMIZERS[name])(params, backend=backend, **hp)
