"""The error heatmap: |yours - torch's| over output (or input) positions of one failing case."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scratch.verify.report import CaseResult, _atomic, index_text  # noqa: E402


def error_map(actual, expected):
    """The absolute error reduced to 2-d: the max over every dim but the last two."""
    diff = (actual.double() - expected.double()).abs().nan_to_num(nan=float("inf"))
    diff = diff.nan_to_num(
        posinf=float(diff[diff.isfinite()].max()) * 2 if diff.isfinite().any() else 1.0
    )
    if diff.ndim == 0:
        return diff.reshape(1, 1)
    if diff.ndim == 1:
        return diff.reshape(1, -1)
    return diff.reshape(-1, *diff.shape[-2:]).amax(0)


def draw(case: CaseResult, path: Path) -> Path:
    """Save the heatmap of `case`'s worst failing comparison as a PNG at `path` (atomically)."""
    worst = case.worst()
    actual, expected = case.pairs[worst.what]
    grid = error_map(actual, expected)
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(grid.numpy(), cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="|yours - torch|")
    ax.set_title(
        f"{case.name}\n{worst.what}: worst at {index_text(case.layer, worst.worst, worst.what)}",
        fontsize=9,
    )
    ax.set_xlabel("x (columns)")
    ax.set_ylabel("y (rows)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return _atomic(path, buffer.getvalue())
