"""Decision regions of any 2-D classifier: a meshgrid coloured by its prediction, points on top."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap

__all__ = ["grid", "plot_regions"]

MARKERS = ("o", "s", "^", "D", "v")
COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple")


def grid(X: np.ndarray, steps: int = 200, margin: float = 0.5) -> tuple[np.ndarray, ...]:
    """(xx, yy, points): a steps x steps meshgrid covering X plus a margin, and its points.

    Shapes: X (N, 2) -> xx, yy (steps, steps), points (steps * steps, 2).
    """
    lo, hi = X.min(0) - margin, X.max(0) + margin
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def plot_regions(
    ax: Axes,
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    steps: int = 200,
    title: str = "",
) -> np.ndarray:
    """Colour the plane by `predict` (points (M, 2) -> labels (M,)); training points filled,
    test points (if any) hollow. Returns the predicted label grid (steps, steps)."""
    shown = X if X_test is None else np.vstack([X, X_test])
    xx, yy, points = grid(shown, steps)
    labels = np.asarray(predict(points))
    classes = np.unique(np.concatenate([np.unique(y), np.unique(labels)]))
    codes = np.searchsorted(classes, labels).reshape(xx.shape)
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(classes))]
    levels = np.arange(len(classes) + 1) - 0.5
    ax.contourf(xx, yy, codes, levels=levels, cmap=ListedColormap(colours), alpha=0.25)
    for i, c in enumerate(classes):
        colour, marker = colours[i], MARKERS[i % len(MARKERS)]
        train = X[y == c]
        ax.scatter(train[:, 0], train[:, 1], s=14, c=colour, marker=marker, edgecolors="k",
                   linewidths=0.3)  # fmt: skip
        if X_test is not None:
            test = X_test[y_test == c]
            ax.scatter(test[:, 0], test[:, 1], s=22, facecolors="none", edgecolors=colour,
                       marker=marker, linewidths=1.0)  # fmt: skip
    ax.set(title=title, xticks=[], yticks=[])
    return labels.reshape(xx.shape)
