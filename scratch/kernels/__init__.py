"""Pure array kernels, no autograd, and the registry of backends that hold them.

A backend is a module with the same kernel pairs by name, `<op>_forward(*arrays, **options) ->
(outputs, cache)` and `<op>_backward(cache, grad_y, needs) -> grads` (grads in the order of the
forward's array inputs, None where absent or not needed), plus its tensor <-> array conversion:
`from_tensor(t) -> array` and `to_tensor(a, device, inputs) -> Tensor`. `numpy/` and `torch/` are
the two built in; any module object that follows the contract is accepted as a backend.
Optionally, for ops called with `inplace=True`: `<op>_forward_(x, *arrays, **options) -> cache`
writes the output into `x` itself, which `writable(t) -> array | None` gives as a view of the
tensor's memory; without them the op's fresh output is copied into the input.
For the bridge's saved-tensor test (`scratch.autograd`): `shares(a, b) -> bool`, may two
arrays share memory, where a cache holds arrays other than the op's inputs and outputs; and,
optionally, `fresh(a) -> bool`, is `a` no view (its memory its own, as an array a kernel
allocated), with which the bridge passes over a cache's fresh arrays without `shares`.
Optionally, `<op>_keep(cache, needs) -> cache`: the cache as backward reads it for the
gradients autograd will ask for (`needs`, known at forward), arrays none of them reads
dropped, so that they are neither kept nor saved, as torch's autograd saves only what the
asked-for gradients read (linear: x for dW alone, W for grad_x alone).
`windows` holds the integer arithmetic (window sizes, padding, conv geometry) they share.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple, Protocol, TypeAlias

import numpy as np
import torch

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Array",
    "Backend",
    "IntOrInts",
    "Ints",
    "KernelBackward",
    "KernelForward",
    "Pads",
    "check_backend",
    "kernels",
]

BACKENDS = ("numpy", "torch")
DEFAULT_BACKEND = "numpy"

Array: TypeAlias = np.ndarray | torch.Tensor  # what a kernel takes and returns
Backend: TypeAlias = str | ModuleType  # a name in BACKENDS, or a module following the contract
Ints: TypeAlias = Sequence[int]
IntOrInts: TypeAlias = int | Sequence[int]
Pads: TypeAlias = tuple[tuple[int, int], ...]  # (lo, hi) per spatial dim


class KernelForward(Protocol):
    """`<op>_forward(*arrays, **options) -> (outputs, cache)`: outputs one array or a tuple."""

    def __call__(self, *arrays: Array | None, **options: Any) -> tuple[Any, NamedTuple]: ...


class KernelBackward(Protocol):
    """`<op>_backward(cache, grad_y, needs) -> grads`, one per forward array input (or None)."""

    def __call__(
        self, cache: NamedTuple, grad_y: Array, needs: tuple[bool, ...]
    ) -> tuple[Array | None, ...]: ...


_CONTRACT = ("from_tensor", "to_tensor")


def check_backend(backend: Backend) -> Backend:
    """`backend` itself if it names a built-in backend or is a module following the contract."""
    if isinstance(backend, ModuleType):
        missing = [name for name in _CONTRACT if not callable(getattr(backend, name, None))]
        if missing:
            raise ValueError(
                f"backend module {backend.__name__!r} lacks {', '.join(missing)}: a backend "
                "module converts tensors itself (see scratch.kernels)"
            )
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or a kernel module, got {backend!r}")
    return backend


_modules: dict[Backend, ModuleType] = {}


def kernels(backend: Backend) -> ModuleType:
    """The kernel module of a backend: `scratch.kernels.numpy`, `scratch.kernels.torch`, or it."""
    module = _modules.get(backend)
    if module is None:
        check_backend(backend)
        module = backend if isinstance(backend, ModuleType) else None
        module = module or importlib.import_module(f"scratch.kernels.{backend}")
        _modules[backend] = module
    return module
