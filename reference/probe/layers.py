"""Layers by name, both ways, and forward hooks that capture their outputs safely.

A VGG-shaped model (a `features` Sequential, then `classifier`) gets the canonical names of
the VGG paper next to torchvision's: `conv1_1` is `features.0`, `relu1_1` `features.1`,
`pool1` `features.4`, ... `conv5_3`, `pool5`, `fc6` `classifier.0`, `relu6`, `drop6`, ...
`fc8`. The block number grows after each max pool, and the fully connected layers continue
the count (LeNet: `conv1_1`, `relu1_1`, `pool1`, `conv2_1`, ..., `fc3`, `fc4`, `fc5`). Any
other model (a ResNet, say) is addressed by torchvision's qualified names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_CONV_PARTS = {
    torch.nn.Conv2d: "conv", torch.nn.BatchNorm2d: "bn", torch.nn.ReLU: "relu",
}  # fmt: skip
_FC_PARTS = {torch.nn.Linear: "fc", torch.nn.ReLU: "relu", torch.nn.Dropout: "drop"}


def _kind(module: torch.nn.Module, parts: dict) -> str | None:
    """The canonical prefix of `module` (scratch twins count as their torch class)."""
    return next((v for k, v in parts.items() if isinstance(module, k)), None)


def canonical_names(model: torch.nn.Module) -> dict[str, str]:
    """{canonical name: torchvision name} for a VGG-shaped model, in forward order; else {}."""
    features = getattr(model, "features", None)
    if not isinstance(features, torch.nn.Sequential):
        return {}
    names, block, index = {}, 1, 0
    for i, m in enumerate(features):
        if isinstance(m, torch.nn.MaxPool2d):
            names[f"pool{block}"], block, index = f"features.{i}", block + 1, 0
            continue
        kind = _kind(m, _CONV_PARTS)
        index += kind == "conv"
        if kind:
            names[f"{kind}{block}_{index}"] = f"features.{i}"
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, torch.nn.Sequential):
        number = block - 1
        for i, m in enumerate(classifier):
            kind = _kind(m, _FC_PARTS)
            number += kind == "fc"
            if kind and number >= block:
                names[f"{kind}{number}"] = f"classifier.{i}"
    return names


def resolve(model: torch.nn.Module, layer: str) -> str:
    """torchvision's qualified name of `layer` (either spelling), or a ValueError listing all."""
    canonical = canonical_names(model)
    modules = dict(model.named_modules())
    name = canonical.get(layer, layer)
    if name in modules and name:
        return name
    torch_names = {v: k for k, v in canonical.items()}
    valid = [f"{torch_names[n]} ({n})" if n in torch_names else n for n in modules if n]
    raise ValueError(
        f"unknown layer {layer!r} for {type(model).__name__}; valid names: {', '.join(valid)}"
    )


def display_name(model: torch.nn.Module, layer: str) -> str:
    """The canonical name of `layer` where there is one, else torchvision's."""
    name = resolve(model, layer)
    return next((k for k, v in canonical_names(model).items() if v == name), name)


class _Enough(Exception):
    """Raised by the last hook: the rest of the forward pass is not needed."""


def capture(
    model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str], *, stop: bool = True
) -> dict[str, torch.Tensor]:
    """{layer: its output} for one forward pass of `x`, taken by forward hooks.

    Each output is cloned in the hook (still differentiable), so a `ReLU(inplace=True)` that
    follows cannot overwrite it. With `stop`, the pass ends once every layer is captured (an
    activation-maximization step on conv3_1 does not pay for conv5 and the classifier).
    Works on any module tree, Sequential or not; a module that runs more than once in a pass
    is captured at its first call.
    """
    names = {layer: resolve(model, layer) for layer in layers}
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}

    def hook_for(layer: str):
        def hook(module, args, output):
            if layer in out:  # a module called twice (ResNet's relu): its first call counts
                return
            out[layer] = output.clone()
            if stop and len(out) == len(names):
                raise _Enough

        return hook

    handles = [modules[n].register_forward_hook(hook_for(layer)) for layer, n in names.items()]
    try:
        model(x)
    except _Enough:
        pass
    finally:
        for h in handles:
            h.remove()
    return out
