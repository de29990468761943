"""The README's gallery: one picture per exercise notebook (04-08), generated from the code.

`python -m reference.gallery` writes docs/gallery_<notebook>.png (about 30 s, most of it the
weight recovery); a test checks that every picture exists and stays small. Each figure is the
notebook's main result, built from the same reference functions the notebook calls.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import scratch
from reference import circles, classic, filters, recovery
from reference.graph_draw import draw_graph
from reference.regions import plot_regions
from reference.template import find_template, match_template
from scratch.scalar import Scalar

DOCS = Path(__file__).resolve().parent.parent / "docs"
DPI = 64


def filters_figure() -> Figure:
    """Notebook 04: blur, its difference to scipy, gradient magnitude, Laplacian, a detection."""
    gray = filters.grayscale(filters.sample_photo()[::2, ::2])  # (300, 256)
    blur = filters.filter2d(gray, filters.gaussian_kernel(13, 2.0), padding_mode="reflect")
    gap = np.abs(blur - ndi.gaussian_filter(gray, 2.0, mode="mirror", truncate=3.0))
    noisy = gray + 0.15 * np.random.default_rng(0).normal(size=gray.shape)
    pattern = gray[92:110, 106:136]  # an eye
    row, col = find_template(noisy, pattern)
    panels = {
        "grayscale (BT.601 luma)": gray,
        "Gaussian σ=2 (scratch conv)": blur,
        f"|scratch − scipy|, max {gap.max():.0e}": gap,
        "Sobel gradient magnitude": filters.gradient_magnitude(gray, kind="sobel"),
        "smoothed Laplacian": filters.filter2d(gray, filters.laplacian_kernel("smoothed")),
        f"template response, max at {(row, col)}": match_template(noisy, pattern),
    }
    fig = Figure(figsize=(7.2, 5.8))
    for ax, (title, image) in zip(fig.subplots(2, 3).ravel(), panels.items()):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    ax.add_patch(_box(col, row, pattern.shape))
    fig.tight_layout()
    return fig


def _box(x: int, y: int, shape: tuple[int, int]) -> Rectangle:
    return Rectangle((x, y), shape[1], shape[0], fill=False, edgecolor="r", linewidth=1.5)


def graph_figure() -> Figure:
    """Notebook 05: the graph of log σ((cos πx + sin(πy/2)) / tanh(z²)) after backward."""
    x, y, z = Scalar(0.3, "x"), Scalar(-1.2, "y"), Scalar(0.7, "z")
    f = (((math.pi * x).cos() + (math.pi * y / 2).sin()) / (z**2).tanh()).sigmoid().log()
    f.backward()
    return draw_graph(f, width=11)


def recovery_figure() -> Figure:
    """Notebook 06: raw photo crops stall; whitened crops with heavy-ball SGD recover C0."""
    torch.manual_seed(0)
    photo = filters.sample_photo()
    target = scratch.nn.Conv2d(3, 20, 5, padding=2, backend="torch").double()
    runs = (("raw photo, SGD lr = 1/L", photo, False),
            ("whitened, heavy-ball SGD", recovery.whiten(photo), True))  # fmt: skip
    traces = []
    for label, image, tuned in runs:
        x = recovery.photo_crops(image, 8, 24, generator=torch.Generator().manual_seed(1))
        largest, smallest = recovery.hessian_extremes(x, 5, 20)
        options = recovery.heavy_ball(largest, smallest) if tuned else {"lr": 1 / largest}
        fresh = scratch.nn.Conv2d(3, 20, 5, padding=2, backend="torch").double()
        for p in fresh.parameters():
            scratch.nn.init.uniform_(p, -1.0, 1.0)  # a fresh conv from uniform noise
        loss = scratch.nn.MSELoss()
        traces.append(recovery.recover(target, fresh, x, _sgd(**options), 150, label, loss))
    return recovery.plot_recovery(traces)


def _sgd(**options) -> Callable:
    return lambda params: scratch.optim.SGD(params, **options)


def circles_figure() -> Figure:
    """Notebook 07: the training loss and the decision regions, test points hollow."""
    gen = torch.Generator().manual_seed(0)
    X, y = circles.two_circles(generator=gen)
    data = circles.split(X, y, 0.7, generator=gen)
    torch.manual_seed(0)
    model = circles.circles_net(scratch.nn).double()
    run = circles.train_circles(
        model, data, circles.CircleSettings(), optimizer=scratch.optim.SGD, bce=scratch.nn.BCELoss()
    )
    fig = Figure(figsize=(8, 3.6))
    ax_loss, ax_regions = fig.subplots(1, 2)
    ax_loss.semilogy(run.loss)
    ax_loss.set(xlabel="SGD step", ylabel="BCE + L2", title="Training loss")
    X_train, y_train, X_test, y_test = (t.numpy() for t in data)
    plot_regions(
        ax_regions, lambda p: circles.predict(model, p), X_train, y_train, X_test=X_test,
        y_test=y_test, title=f"test accuracy {run.test_accuracy:.0%}",
    )  # fmt: skip
    fig.tight_layout()
    return fig


def classic_figure() -> Figure:
    """Notebook 08: k-NN (k = 1, 15) and the least-squares classifier on three blobs."""
    X, y = classic.three_blobs(60, spread=1.1, seed=0)
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "k-NN, k = 1": classic.KNNClassifier(1).fit(X, y).predict,
        "k-NN, k = 15": classic.KNNClassifier(15).fit(X, y).predict,
        "least squares": classic.LeastSquaresClassifier().fit(X, y).predict,
    }
    fig = Figure(figsize=(10, 3.5))
    for ax, (title, predict) in zip(fig.subplots(1, 3), predictors.items()):
        plot_regions(ax, predict, X, y, steps=150, title=title)
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "04_image_filters": filters_figure,
    "05_scalar_graph": graph_figure,
    "06_weight_recovery": recovery_figure,
    "07_two_circles": circles_figure,
    "08_knn_and_least_squares": classic_figure,
}


def path_of(name: str) -> Path:
    """Where the picture for notebook `name` lives."""
    return DOCS / f"gallery_{name}.png"


def save(fig: Figure, path: Path) -> None:
    """Write `fig` as a PNG atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=DPI, format="png")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(names: list[str]) -> int:
    """Write the pictures named (all by default); exit code 2 for an unknown name."""
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        print(f"unknown gallery pictures {unknown}; choose from {sorted(FIGURES)}", file=sys.stderr)
        return 2
    for name in names or list(FIGURES):
        save(FIGURES[name](), path_of(name))
        print(f"wrote {path_of(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
