"""SGD with momentum, dampening, Nesterov, weight decay and maximize: torch.optim.SGD's twin."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.optim.optimizer import ScratchOptimizer, check_fused, to_scalar

__all__ = ["SGD"]


class SGD(ScratchOptimizer):
    """Stochastic gradient descent, optionally with momentum; matches `torch.optim.SGD`.

    The momentum buffer starts as a copy of the first gradient (no dampening on step 1) and
    Nesterov needs a positive momentum and zero dampening, as in torch. `backend` ("numpy" or
    "torch") chooses where the update is computed.
    """

    _step_defaults = {
        "nesterov": False,
        "maximize": False,
        "foreach": None,
        "differentiable": False,
        "fused": False,
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        backend: Backend = DEFAULT_BACKEND,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_fused(fused, foreach, differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults, backend=backend)

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """One SGD update per parameter; `momentum_buffer` appears after the first step."""
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        decay_in_place = isinstance(weight_decay, Tensor) and weight_decay.requires_grad
        for p in params:
            buffer = fresh = None
            if momentum != 0:
                state = self.state[p]
                buffer = state.get("momentum_buffer")
                fresh = buffer is None
                if fresh:
                    buffer = torch.empty_like(p.grad, memory_format=torch.preserve_format)
            self._update(
                "sgd",
                (p, p.grad, buffer),
                fresh_buffer=bool(fresh),
                lr=to_scalar(group["lr"]),
                weight_decay=weight_decay,
                decay_in_place=decay_in_place,
                momentum=momentum,
                dampening=group["dampening"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
            )
            if momentum != 0:
                self.state[p]["momentum_buffer"] = buffer
