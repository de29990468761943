"""AdamW: Adam with decoupled weight decay (default 1e-2); torch.optim.AdamW's twin."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim.optimizer import ParamsT

from scratch.kernels import DEFAULT_BACKEND, Backend
from scratch.optim.adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    """AdamW; matches `torch.optim.AdamW`: `p *= 1 - lr*wd` before the moments are updated."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        backend: Backend = DEFAULT_BACKEND,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
            backend=backend,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # as torch: a loaded AdamW always decouples
            group["decoupled_weight_decay"] = True
