"""Experiments made of runs: the training-fraction curve and the two-hyperparameter grid sweep."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math
from collections.abc import Callable
from pathlib import Path

from reference.train import runfolder
from reference.train.core import train
from reference.train.report import save
from reference.train.settings import TrainSettings, check_settings
from reference.train.stacks import Diverged

Log = Callable[[str], None]
GRID_KEYS = {"lr": float, "momentum": float, "weight_decay": float, "l2": float,
             "batch_size": int, "epochs": int, "hidden": int}  # fmt: skip


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _markdown(rows: list[dict], mark: int | None = None) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for i, row in enumerate(rows):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()]
        if i == mark:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fraction_experiment(s: TrainSettings, fractions, out: Path, log: Log = print) -> str:
    """One run per training fraction (out/fraction-F/); fraction.csv/.md/.png; the table."""
    rows = []
    for fraction in fractions:
        log(f"--- train fraction {fraction}")
        result = train(
            dataclasses.replace(s, train_fraction=fraction), out / f"fraction-{fraction}"
        )
        row = {"fraction": fraction, "train_size": result.config["sizes"]["train"]}
        for stack, final in result.final.items():
            row[f"{stack}_{s.eval_set}_acc"] = final["accuracy"]
        rows.append(row)
    table = _markdown(rows)
    runfolder.write_text(out / "fraction.csv", _csv(rows))
    runfolder.write_text(out / "fraction.md", f"# Accuracy against training fraction\n\n{table}")
    save(_fraction_figure(rows, s.eval_set), out / "fraction.png")
    return table


def _fraction_figure(rows: list[dict], eval_set: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in [k for k in rows[0] if k.endswith("_acc")]:
        ax.plot([r["fraction"] for r in rows], [r[key] for r in rows], marker="o", label=key)
    ax.set_xlabel("fraction of the training set")
    ax.set_ylabel(f"{eval_set} accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse_grid(specs) -> list[tuple[str, list]]:
    """['lr=0.1,0.01', 'l2=0,1e-4'] -> [('lr', [0.1, 0.01]), ('l2', [0.0, 0.0001])]."""
    grid = []
    for spec in specs:
        key, _, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if key not in GRID_KEYS or not values:
            raise ValueError(
                f"--grid expects NAME=V1,V2,... with NAME in {tuple(GRID_KEYS)}, got {spec!r}"
            )
        try:
            grid.append((key, [GRID_KEYS[key](v) for v in values.split(",")]))
        except ValueError:
            kind = "a number" if GRID_KEYS[key] is float else "an integer"
            raise ValueError(f"--grid {spec!r}: every value of {key} must be {kind}") from None
    if len(grid) != 2 or grid[0][0] == grid[1][0]:
        raise ValueError(f"--grid needs two different hyperparameters, got {list(specs)}")
    return grid


def sweep(s: TrainSettings, grid, out: Path, log: Log = print) -> dict:
    """Each cell a run (validation accuracy); the best cell retrained and scored on the test set."""
    (a, a_values), (b, b_values) = grid
    cells = [
        check_settings(dataclasses.replace(s, **{a: va, b: vb}, eval_set="val"))
        for va, vb in itertools.product(a_values, b_values)
    ]  # every cell's settings checked before any trains
    rows = []
    for cell in cells:
        va, vb = getattr(cell, a), getattr(cell, b)
        log(f"--- {a}={va} {b}={vb}")
        try:
            result = train(cell, out / "cells" / f"{a}={va},{b}={vb}", pictures=False)
        except Diverged as e:  # a cell that diverges is a result of the sweep, not its end
            log(f"--- {a}={va} {b}={vb} diverged: {e}")
            rows.append({a: va, b: vb, "val_acc": math.nan, "val_loss": math.nan})
            continue
        final = next(iter(result.final.values()))
        rows.append({a: va, b: vb, "val_acc": final["accuracy"], "val_loss": final["loss"]})
    finite = [i for i, row in enumerate(rows) if not math.isnan(row["val_acc"])]
    if not finite:
        raise Diverged(f"every cell of the sweep over {a} and {b} diverged: try smaller lr values")
    best = max(finite, key=lambda i: rows[i]["val_acc"])
    chosen = dataclasses.replace(s, **{a: rows[best][a], b: rows[best][b]}, eval_set="test")
    log(f"--- best {a}={rows[best][a]} {b}={rows[best][b]}: retrained, scored on the test set")
    test = train(dataclasses.replace(chosen, only=None), out / "best")
    tested = {stack: f["accuracy"] for stack, f in test.final.items()}
    runfolder.write_text(out / "sweep.csv", _csv(rows))
    text = (
        f"# Sweep over {a} and {b} (validation accuracy; best in bold)\n\n{_markdown(rows, best)}"
    )
    text += f"\nBest {a}={rows[best][a]}, {b}={rows[best][b]}; retrained (best/), test accuracy: "
    text += ", ".join(f"{stack} {acc:.4f}" for stack, acc in tested.items()) + "\n"
    if len(finite) < len(rows):
        text += "\nnan: the cell diverged (its loss became NaN or infinite).\n"
    runfolder.write_text(out / "sweep.md", text)
    save(_sweep_figure(rows, a, a_values, b, b_values, best), out / "sweep.png")
    return {"rows": rows, "best": rows[best], "test_accuracy": tested, "markdown": text}


def _sweep_figure(rows, a, a_values, b, b_values, best):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    grid = [[rows[i * len(b_values) + j]["val_acc"] for j in range(len(b_values))]
            for i in range(len(a_values))]  # fmt: skip
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(b_values), 1.2 + 0.9 * len(a_values)))
    image = ax.imshow(grid, cmap="viridis")
    ax.set_xticks(range(len(b_values)), [str(v) for v in b_values])
    ax.set_yticks(range(len(a_values)), [str(v) for v in a_values])
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    for i, j in itertools.product(range(len(a_values)), range(len(b_values))):
        ax.text(j, i, f"{grid[i][j]:.3f}", ha="center", va="center", color="white", fontsize=8)
    bi, bj = divmod(best, len(b_values))
    ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, ec="red", lw=3))
    ax.set_title("validation accuracy (best: red box)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
