"""The shell every scratch optimizer shares: the backend choice, the options we do not support,
and the step loop (closure, no_grad, which parameters have gradients) around a hand-written update.

The classes subclass `torch.optim.Optimizer`, so param groups, `zero_grad`, `state_dict` /
`load_state_dict`, hooks and LR schedulers are torch's own; only `step` and the state it keeps
are written here (with torch.optim's state keys, so state dicts move between the two).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from scratch.kernels import Backend, check_backend
from scratch.optim import _numpy, _torch

__all__ = ["ScratchOptimizer", "check_fused", "scalar_dtype", "to_scalar", "update_backend"]

_UPDATES: dict[str, ModuleType] = {"numpy": _numpy, "torch": _torch}

_UNSUPPORTED = {
    "foreach": "scratch.optim updates one tensor at a time, like torch's foreach=False path",
    "fused": "scratch.optim's update is hand-written, not a fused kernel",
    "capturable": "scratch.optim keeps `step` on the CPU and cannot be captured in a CUDA graph",
    "differentiable": "scratch.optim updates in place under no_grad",
}


def scalar_dtype() -> torch.dtype:
    """torch.optim's dtype for `step` counters: float64 under a float64 default, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def to_scalar(x: float | Tensor) -> float | Tensor:
    """A 1-element tensor squeezed to 0-d (as torch.optim does to a tensor lr); floats unchanged."""
    return x.squeeze() if isinstance(x, Tensor) and x.dim() != 0 else x


def update_backend(backend: Backend) -> str:
    """`backend` checked: scratch.optim has updates for the built-in backends only."""
    backend = check_backend(backend)
    if not isinstance(backend, str):
        raise ValueError(
            f"scratch.optim computes updates on the built-in backends {tuple(_UPDATES)} only, "
            f"got module {backend.__name__!r}"
        )
    return backend


def check_nonnegative(lr: float | Tensor, *named: tuple[str, float]) -> None:
    """torch.optim's checks in its order: a tensor lr has one element, then `0 <= value` for
    each (name, value), so NaN is refused as torch refuses it (Adagrad, RMSprop)."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    for name, value in named:
        if not 0.0 <= value:
            raise ValueError(f"Invalid {name}: {value}")


def check_fused(fused: bool | None, foreach: bool | None, differentiable: bool) -> None:
    """torch's RuntimeErrors for a fused optimizer combined with foreach or differentiable."""
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


class ScratchOptimizer(torch.optim.Optimizer):
    """A `torch.optim.Optimizer` whose `step` runs scratch's own update on `backend`."""

    _step_defaults: dict[str, Any] = {}  # group keys filled in by __setstate__ (as torch does)

    def __init__(self, params: Any, defaults: dict[str, Any], *, backend: Backend) -> None:
        self.backend = update_backend(backend)
        super().__init__(params, defaults)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "backend": self.backend}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for name, default in self._step_defaults.items():
                group.setdefault(name, default)
            for p in group["params"]:  # an old state dict's float `step` becomes a tensor
                p_state = self.state.get(p, {})
                if "step" in p_state and not torch.is_tensor(p_state["step"]):
                    p_state["step"] = torch.tensor(float(p_state["step"]), dtype=scalar_dtype())

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's `add_param_group`, refusing first an option scratch does not support (in the
        group or, for keys it leaves out, the defaults), so that a refused group is not left
        behind in `param_groups`. torch's own checks (a dict, its params) come after."""
        if isinstance(param_group, dict):
            self._check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """NotImplementedError naming the first option of `group` that scratch cannot honour."""
        for name, why in _UNSUPPORTED.items():
            if group.get(name):
                raise NotImplementedError(
                    f"{type(self).__name__}: {name}={group[name]!r} is not supported ({why}); "
                    f"use {name}={'None' if name in ('foreach', 'fused') else 'False'}"
                )

    def _check_param(self, p: Tensor) -> None:
        """The errors a parameter or its gradient raises, before any update of the step is made."""
        name = type(self).__name__
        if p.grad.is_sparse:
            raise RuntimeError(f"{name} (scratch.optim) does not support sparse gradients")
        if torch.is_complex(p):
            raise NotImplementedError(f"{name} (scratch.optim) does not support complex parameters")
        if self.backend == "numpy":
            _numpy.check_param(p)

    def _update(self, name: str, tensors: tuple[Tensor | None, ...], **options: Any) -> None:
        """Run update `name` (`sgd`, `adam`, ...) of this optimizer's backend, in place."""
        module = _UPDATES[self.backend]
        module.run(getattr(module, name), tensors, options)

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """Update the parameters of `group` that have gradients (each optimizer's own math)."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._check_group(group)
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                self._check_param(p)
            self._step_group(group, params)
        return loss
