"""The drop-in template: a scratch module is its torch.nn twin plus a keyword-only `backend`."""

from __future__ import annotations

import inspect

import torch

from scratch.kernels import DEFAULT_BACKEND, Backend, check_backend

TWINS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {}  # torch class -> scratch class


class Twin:
    """Mixin listed before the torch.nn class it replaces: `class ReLU(Twin, torch.nn.ReLU)`.

    The subclass overrides `forward` only, so constructor, defaults, init, `extra_repr` and
    state_dict keys are torch's; `inspect.signature` shows torch's signature plus `backend`.
    """

    def __init__(self, *args, backend: Backend = DEFAULT_BACKEND, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backend = check_backend(backend)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        torch_cls = next(b for b in cls.__mro__[1:] if b.__module__.startswith("torch.nn"))
        TWINS[torch_cls] = cls
        sig = inspect.signature(torch_cls)
        backend = inspect.Parameter(
            "backend", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_BACKEND
        )
        params = list(sig.parameters.values())
        tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
        head = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        signature = sig.replace(parameters=[*head, backend, *tail])
        cls.__signature__ = signature  # type: ignore[attr-defined]
