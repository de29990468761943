"""RMSprop with centering, momentum, weight decay and maximize: torch.optim.RMSprop's twin."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.optim.optimizer import ScratchOptimizer, check_nonnegative, scalar_dtype, to_scalar

__all__ = ["RMSprop"]


class RMSprop(ScratchOptimizer):
    """RMSprop; matches `torch.optim.RMSprop`.

    `centered` normalises by the estimated variance `E[g^2] - E[g]^2`; `momentum > 0` keeps a
    buffer of normalised steps. `backend` ("numpy" or "torch") chooses where the update is
    computed.
    """

    _step_defaults = {
        "momentum": 0,
        "centered": False,
        "foreach": None,
        "maximize": False,
        "differentiable": False,
        "capturable": False,
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        backend: Backend = DEFAULT_BACKEND,
    ) -> None:
        check_nonnegative(
            lr,
            ("learning rate", lr),
            ("epsilon value", eps),
            ("momentum value", momentum),
            ("weight_decay value", weight_decay),
            ("alpha value", alpha),
        )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults, backend=backend)

    def _state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        """The state torch creates on a parameter's first step."""
        state = self.state[p]
        if len(state) == 0:
            state["step"] = torch.zeros((), dtype=scalar_dtype())
            state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """One RMSprop update per parameter."""
        states = [self._state(p, group) for p in params]
        momentum, centered = group["momentum"], group["centered"]
        for p, state in zip(params, states, strict=True):
            state["step"] += 1
            self._update(
                "rmsprop",
                (
                    p,
                    p.grad,
                    state["square_avg"],
                    state["grad_avg"] if centered else None,
                    state["momentum_buffer"] if momentum > 0 else None,
                ),
                lr=to_scalar(group["lr"]),
                alpha=group["alpha"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=momentum,
                centered=centered,
                maximize=group["maximize"],
            )
