"""Adam (and AMSGrad, decoupled weight decay, maximize): torch.optim.Adam's twin."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.optim.optimizer import ScratchOptimizer, check_fused, scalar_dtype, to_scalar

__all__ = ["Adam"]


def _check_lr(lr: Any, foreach: bool | None, capturable: bool) -> None:
    """torch.optim.Adam's checks of the learning rate (same messages)."""
    if isinstance(lr, Tensor):
        if foreach and not capturable:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_betas(betas: tuple, foreach: bool | None, capturable: bool) -> None:
    """torch.optim.Adam's checks that the betas are both floats or both 1-element tensors."""
    if not (
        (isinstance(betas[0], float) and isinstance(betas[1], float))
        or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
    ):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, beta in enumerate(betas):
        if isinstance(beta, Tensor):
            if not capturable and foreach:
                raise ValueError(
                    f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True"
                )
            if beta.numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element")


class Adam(ScratchOptimizer):
    """Adam; matches `torch.optim.Adam` (and AdamW with `decoupled_weight_decay=True`).

    eps is added after `sqrt(v_hat)`, AMSGrad keeps the max of the raw second moment, and the
    bias corrections are Python-float powers of the step, as in torch. `backend` ("numpy" or
    "torch") chooses where the update is computed.
    """

    _step_defaults = {
        "amsgrad": False,
        "maximize": False,
        "foreach": None,
        "capturable": False,
        "differentiable": False,
        "decoupled_weight_decay": False,
        "fused": None,
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        backend: Backend = DEFAULT_BACKEND,
    ) -> None:
        # Over 40 lines only because torch's signature and defaults are spelled out in full.
        _check_lr(lr, foreach, capturable)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i in (0, 1):
            if not 0.0 <= betas[i] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_betas(betas, foreach, capturable)
        check_fused(fused, foreach, differentiable)
        defaults = {
            "lr": lr,
            "betas": (to_scalar(betas[0]), to_scalar(betas[1])),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults, backend=backend)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if self.backend == "numpy" and any(isinstance(b, Tensor) for b in group["betas"]):
            raise NotImplementedError(
                f"{type(self).__name__}: betas as Tensors need backend='torch' (the numpy "
                "backend computes the bias corrections in Python floats)"
            )

    def _state(self, p: Tensor, amsgrad: bool) -> dict[str, Tensor]:
        """The state torch creates on a parameter's first step (`step` a CPU scalar tensor)."""
        state = self.state[p]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype(), device="cpu")
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """One Adam update per parameter."""
        states = [self._state(p, group["amsgrad"]) for p in params]
        beta1, beta2 = group["betas"]
        for p, state in zip(params, states, strict=True):
            state["step"] += 1
            max_exp_avg_sq = state["max_exp_avg_sq"] if group["amsgrad"] else None
            self._update(
                "adam",
                (p, p.grad, state["exp_avg"], state["exp_avg_sq"], max_exp_avg_sq),
                step=state["step"].item(),
                lr=to_scalar(group["lr"]),
                beta1=to_scalar(beta1),
                beta2=to_scalar(beta2),
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                amsgrad=group["amsgrad"],
                maximize=group["maximize"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
            )
