"""Figures from the probes' data (matplotlib, Agg): each function returns a Figure.

`save(fig, path)` writes a PNG atomically (a temp file in the same folder, then os.replace).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reference.probe.probes import filter_mosaic, normalize_filter  # noqa: E402


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `path` atomically and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def hwc(pixels: torch.Tensor) -> np.ndarray:
    """One image (C, H, W) in [0, 1] as an array imshow takes ((H, W, 3) or (H, W))."""
    a = pixels.detach().cpu().double().clamp(0, 1).permute(1, 2, 0).numpy()
    return a[..., 0] if a.shape[2] == 1 else a


def _grid(n: int, columns: int, size: float = 1.6):
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def plot_filters(data: dict, title: str = "") -> Figure:
    """RGB first-layer filters as one colour mosaic; other layers as grayscale (out x in) grids.

    Every output filter is scaled to [0, 1] by its own min and max (over all its input
    channels), as `probes.normalize_filter` does; the figure says so.
    """
    w = data["weight"]
    rule = "each filter min-max scaled to [0, 1] on its own"
    if data.get("rgb", w.shape[1] == 3):  # a first layer's (R, G, B) filters, in colour
        fig, ax = plt.subplots(figsize=(6, 6 * math.ceil(w.shape[0] / 8) / 8 + 0.8))
        ax.imshow(filter_mosaic(w), interpolation="nearest")
        ax.axis("off")
        ax.set_title(f"{data['layer']}: {w.shape[0]} filters {tuple(w.shape[1:])}\n{rule}")
        return fig
    fig, axes = _grid(w.shape[0] * w.shape[1], w.shape[1], size=0.8)
    for o in range(w.shape[0]):
        tile = normalize_filter(w[o].double())
        for i in range(w.shape[1]):
            ax = axes[o * w.shape[1] + i]
            ax.imshow(tile[i].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    fig.suptitle(
        f"{data['layer']} filters: rows out {data['out_channels'][0]}.., columns in "
        f"{data['in_channels'][0]}..\n{rule} {title}", fontsize=9,
    )  # fmt: skip
    return fig


def plot_maps(data: dict, image: torch.Tensor | None = None, shared: bool = True) -> Figure:
    """The channels' activation maps (viridis), after the input image when given.

    `shared`: one colour scale for every map (their sizes compare); else each map its own.
    """
    maps = data["maps"].double()
    n = len(data["channels"]) + (image is not None)
    fig, axes = _grid(n, 8)
    if image is not None:
        axes[0].imshow(hwc(image))
        axes[0].set_title("input", fontsize=8)
        axes = axes[1:]
    lo, hi = float(maps.min()), float(maps.max())
    for ax, m, c in zip(axes, maps, data["channels"]):
        scale = dict(vmin=lo, vmax=hi) if shared else {}
        ax.imshow(m.numpy(), cmap="viridis", **scale)
        ax.set_title(f"ch {c}", fontsize=8)
    how = (
        f"one colour scale for all maps [{lo:.3g}, {hi:.3g}]"
        if shared
        else "each map its own scale"
    )
    fig.suptitle(f"{data['layer']} feature maps: {how}", fontsize=9)
    return fig


def plot_images(images: torch.Tensor, titles: Sequence[str], suptitle: str = "") -> Figure:
    """A row (or grid) of images (N, C, H, W) in [0, 1] with titles."""
    fig, axes = _grid(len(images), 6, size=2.4)
    for ax, img, t in zip(axes, images, titles):
        ax.imshow(hwc(img))
        ax.set_title(t, fontsize=8)
    fig.suptitle(suptitle, fontsize=9)
    return fig


def plot_predictions(image: torch.Tensor, rows: list[dict], title: str = "") -> Figure:
    """The image and a bar chart of its top-k probabilities."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), gridspec_kw={"width_ratios": [1, 1.4]})
    a.imshow(hwc(image))
    a.axis("off")
    names = [r["name"][:24] for r in rows][::-1]
    b.barh(names, [r["probability"] for r in rows][::-1])
    b.set_xlim(0, 1)
    b.set_xlabel("probability")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_trace(trace: torch.Tensor, labels: Sequence[str]) -> Figure:
    """The objective against the step, one line per image."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for column, label in zip(trace.T, labels):
        ax.plot(column.numpy(), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("objective")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
