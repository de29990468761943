"""Adagrad (lr decay, weight decay, initial accumulator, maximize): torch.optim.Adagrad's twin."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.optim.optimizer import (
    ScratchOptimizer,
    check_fused,
    check_nonnegative,
    scalar_dtype,
    to_scalar,
)

__all__ = ["Adagrad"]


class Adagrad(ScratchOptimizer):
    """Adagrad; matches `torch.optim.Adagrad`.

    As in torch, the state (`step`, `sum`) is created in the constructor for every parameter
    and eps is added outside the sqrt. `backend` ("numpy" or "torch") chooses where the update
    is computed.
    """

    _step_defaults = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        backend: Backend = DEFAULT_BACKEND,
    ) -> None:
        # Over 40 lines only because torch's signature and defaults are spelled out in full.
        check_nonnegative(
            lr,
            ("learning rate", lr),
            ("lr_decay value", lr_decay),
            ("weight_decay value", weight_decay),
            ("initial_accumulator_value value", initial_accumulator_value),
            ("epsilon value", eps),
        )
        check_fused(fused, foreach, differentiable)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults, backend=backend)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p: Tensor) -> dict[str, Tensor]:
        """`step` (a CPU scalar tensor) and `sum` (filled with initial_accumulator_value)."""
        state = self.state[p]
        state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
        init = self.defaults["initial_accumulator_value"]
        state["sum"] = torch.full_like(p, init, memory_format=torch.preserve_format)
        return state

    def share_memory(self) -> None:
        """`share_memory_()` on every `sum` state tensor, as torch.optim.Adagrad's (for Hogwild
        training across processes)."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["sum"].share_memory_()

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """One Adagrad update per parameter."""
        states = [self.state[p] or self._init_state(p) for p in params]
        for p, state in zip(params, states, strict=True):
            state["step"] += 1
            self._update(
                "adagrad",
                (p, p.grad, state["sum"]),
                step=state["step"].item(),
                lr=to_scalar(group["lr"]),
                lr_decay=group["lr_decay"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
            )
