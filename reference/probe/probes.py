"""Probes that return data: predictions, filters, feature maps, image gradients.

Plotting lives in `reference.probe.plots`; the CLI (`reference.probe.cli`) writes the files.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from reference.probe.layers import capture, display_name, resolve


@torch.no_grad()
def predict(
    model: torch.nn.Module, x: torch.Tensor, class_names: Sequence[str], k: int = 5
) -> list[list[dict]]:
    """Top-k classes of each image: [[{rank, index, name, probability}, ...], ...].

    Shapes: x (N, C, H, W) normalised -> N lists of k rows.
    """
    probs = torch.softmax(model(x).double(), dim=1)  # (N, classes)
    top = probs.topk(min(k, probs.shape[1]), dim=1)
    return [
        [
            {
                "rank": r + 1,
                "index": int(i),
                "name": str(class_names[int(i)]),
                "probability": float(p),
            }
            for r, (p, i) in enumerate(zip(ps, idx))
        ]
        for ps, idx in zip(top.values, top.indices)
    ]


def _pick(n: int, chosen: Sequence[int] | None, what: str) -> list[int]:
    """The channel indices `chosen` (all of range(n) when None), checked against n."""
    picked = list(range(n)) if chosen is None else [int(c) for c in chosen]
    bad = [c for c in picked if not 0 <= c < n]
    if bad:
        raise IndexError(f"{what} {bad} out of range: the layer has {n}")
    return picked


def filters(
    model: torch.nn.Module,
    layer: str,
    out_channels: Sequence[int] | None = None,
    in_channels: Sequence[int] | None = None,
) -> dict:
    """The weights of a conv layer: {layer, weight (O', I', kH, kW), out_channels, in_channels,
    rgb: whether they are a first layer's R, G, B filters, drawn in colour}."""
    name = resolve(model, layer)
    module = dict(model.named_modules())[name]
    if not isinstance(module, torch.nn.Conv2d):
        raise ValueError(f"layer {layer!r} is a {type(module).__name__}, not a Conv2d")
    w = module.weight.detach().cpu()  # (O, I, kH, kW)
    outs = _pick(w.shape[0], out_channels, "out channels")
    ins = _pick(w.shape[1], in_channels, "in channels")
    weight = w[outs][:, ins]
    return {"layer": display_name(model, layer), "weight": weight, "out_channels": outs,
            "in_channels": ins, "rgb": w.shape[1] == 3 and ins == [0, 1, 2]}  # fmt: skip


def normalize_filter(w: torch.Tensor) -> torch.Tensor:
    """One filter scaled to [0, 1] by its own min and max over all its values (the display rule)."""
    lo, hi = w.min(), w.max()
    return (w - lo) / (hi - lo) if hi > lo else torch.full_like(w, 0.5)


def filter_mosaic(weight: torch.Tensor, columns: int = 8, gap: int = 1) -> np.ndarray:
    """RGB filters (O, 3, kH, kW) as one (rows*(kH+gap)-gap, cols*(kW+gap)-gap, 3) mosaic.

    Tile o sits at row o // columns, column o % columns; each is `normalize_filter(weight[o])`
    as (kH, kW, 3); gaps are white.
    """
    o, c, kh, kw = weight.shape
    if c != 3:
        raise ValueError(f"a colour mosaic needs 3 input channels, got {c}")
    rows = -(-o // columns)
    mosaic = np.ones((rows * (kh + gap) - gap, columns * (kw + gap) - gap, 3))
    for i in range(o):
        r, q = divmod(i, columns)
        tile = normalize_filter(weight[i].double()).permute(1, 2, 0).numpy()  # (kH, kW, 3)
        mosaic[r * (kh + gap) : r * (kh + gap) + kh, q * (kw + gap) : q * (kw + gap) + kw] = tile
    return mosaic


@torch.no_grad()
def feature_maps(
    model: torch.nn.Module,
    x: torch.Tensor,
    layer: str,
    channels: Sequence[int] | None = None,
    top: int | None = None,
) -> dict:
    """One image's activation maps at `layer`: {layer, maps (C', H, W), channels, means}.

    `channels` picks channels; `top` keeps the `top` channels with the largest mean activation
    (after `channels`, when both are given), most active first. Shapes: x (1, C, H, W).
    """
    if x.shape[0] != 1:
        raise ValueError(f"feature_maps takes one image, got a batch of {x.shape[0]}")
    act = capture(model, x, [layer])[layer][0]  # (C, H, W)
    if act.dim() != 3:
        raise ValueError(f"layer {layer!r} outputs {tuple(act.shape)}, not (C, H, W) maps")
    picked = _pick(act.shape[0], channels, "channels")
    means = act[picked].mean(dim=(1, 2))
    if top is not None:
        order = means.argsort(descending=True)[:top]
        picked, means = [picked[i] for i in order], means[order]
    return {"layer": display_name(model, layer), "maps": act[picked].cpu(), "channels": picked,
            "means": means.cpu()}  # fmt: skip


def objective(act: torch.Tensor, channels: Sequence[int] | None) -> torch.Tensor:
    """Per-image objective (N,): the mean of channel channels[i] for image i, or the mean of
    the squared activation over all units when `channels` is None (deep dream's norm)."""
    if channels is None:
        return act.pow(2).flatten(1).mean(dim=1)
    idx = torch.as_tensor(list(channels), device=act.device)
    picked = act[torch.arange(act.shape[0], device=act.device), idx]  # (N, ...) channel i
    return picked.flatten(1).mean(dim=1) if picked.dim() > 1 else picked


def image_gradient(
    model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str], channels=None
) -> torch.Tensor:
    """d(sum of the objective over `layers`)/d(input): what maximization and dream follow."""
    x = x.detach().clone().requires_grad_(True)
    acts = capture(model, x, layers)
    sum(objective(acts[n], channels).sum() for n in layers).backward()
    return x.grad
