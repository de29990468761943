"""Put scratch twins into any model, in place, and take them out again."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from scratch.kernels import DEFAULT_BACKEND, Backend, check_backend
from scratch.nn import TWINS


@dataclass
class SwapReport:
    """What `swap` did, by qualified module name ('' is the model itself)."""

    swapped: dict[str, str] = field(default_factory=dict)  # name -> class swapped in
    kept: dict[str, str] = field(default_factory=dict)  # name -> torch class left as it was

    def __str__(self) -> str:
        rows = [f"swapped {name or '<model>'}: {cls}" for name, cls in self.swapped.items()]
        rows += [f"kept    {name or '<model>'}: {cls}" for name, cls in self.kept.items()]
        head = f"{len(self.swapped)} modules swapped to scratch, {len(self.kept)} left as torch"
        return "\n".join([head, *rows])


def swap(model: torch.nn.Module, backend: Backend = DEFAULT_BACKEND) -> SwapReport:
    """Turn every module whose exact class has a scratch twin into that twin, in place.

    The module object stays the same (its class changes), so Parameters, buffers, hooks and
    an optimizer built before the swap all keep working. Subclasses of torch.nn layers are left
    alone: their forward may differ from the layer's. Already-swapped modules get `backend`.
    Leaf modules without a twin are listed in `kept`.
    """
    check_backend(backend)
    scratch_classes = set(TWINS.values())
    report = SwapReport()
    for name, module in model.named_modules():
        cls = type(module)
        if cls in TWINS or cls in scratch_classes:
            module.__class__ = TWINS.get(cls, cls)
            module.backend = backend
            report.swapped[name] = f"scratch.nn.{module.__class__.__name__}"
        elif not list(module.children()) or list(module.parameters(recurse=False)):
            report.kept[name] = f"{cls.__module__}.{cls.__qualname__}"
    return report


def unswap(model: torch.nn.Module) -> list[str]:
    """Turn every scratch twin back into its torch.nn class, in place; returns their names."""
    back = {scratch_cls: torch_cls for torch_cls, scratch_cls in TWINS.items()}
    names = []
    for name, module in model.named_modules():
        if type(module) in back:
            module.__class__ = back[type(module)]
            del module.backend
            names.append(name)
    return names
