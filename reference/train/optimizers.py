"""The one place a training run gets its optimizers: torch.optim for the torch stack, scratch.optim
(hand-written, same signatures plus `backend=`) for the scratch stack.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
}
WITH_MOMENTUM = ("sgd", "rmsprop")  # the ones that take a `momentum` argument

try:
    from scratch import optim as scratch_optim

    SCRATCH_OPTIM = "scratch.optim"
except ImportError:  # TEMPORARY: until scratch.optim lands, torch.optim stands in (loudly)
    scratch_optim = None
    SCRATCH_OPTIM = "torch.optim (stand-in: scratch.optim is not installed)"


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
    cls_name = OPTIMIZERS[name]
    if stack == "torch":
        return getattr(torch.optim, cls_name)(params, **hp)
    if stack != "scratch":
        raise ValueError(f"stack must be 'scratch' or 'torch', got {stack!r}")
    if scratch_optim is None:
        warnings.warn(
            "scratch.optim is not available: the scratch stack is using torch.optim."
            f"{cls_name} as a TEMPORARY stand-in, so its optimizer is not hand-written",
            RuntimeWarning,
            stacklevel=2,
        )
        return getattr(torch.optim, cls_name)(params, **hp)
    return getattr(scratch_optim, cls_name)(params, backend=backend, **hp)
