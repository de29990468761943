"""The run folder's pictures and report.md: plots return figures, `save` writes them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reference.train import runfolder  # noqa: E402

STYLE = {"torch": dict(color="tab:blue", ls="-"), "scratch": dict(color="tab:orange", ls="--")}


def curves_figure(history: list[dict]) -> plt.Figure:
    """Loss and accuracy per epoch, train and validation, both stacks overlaid."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for stack in dict.fromkeys(r["stack"] for r in history):
        rows = [r for r in history if r["stack"] == stack]
        epochs = [r["epoch"] for r in rows]
        for ax, metric in zip(axes, ("loss", "acc")):
            for split, marker in (("train", "o"), ("val", "s")):
                values = [r[f"{split}_{metric}"] for r in rows]
                ax.plot(
                    epochs, values, marker=marker, ms=4, label=f"{stack} {split}", **STYLE[stack]
                )
    for ax, name in zip(axes, ("cross-entropy loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("scratch.nn + scratch.optim (dashed) vs torch.nn + torch.optim (solid)")
    fig.tight_layout()
    return fig


def confusion_figure(confusion: list[list[int]], class_names: list[str], title: str) -> plt.Figure:
    """The confusion matrix, true class down, predicted class across, counts in the cells."""
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(row) for row in confusion) or 1
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            color = "white" if count > top / 2 else "black"
            ax.text(j, i, count, ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def per_class_figure(per_class: list[float], class_names: list[str], title: str) -> plt.Figure:
    """Per-class accuracy as bars; the best class green, the worst red."""
    best = max(range(len(per_class)), key=per_class.__getitem__)
    worst = min(range(len(per_class)), key=per_class.__getitem__)
    colors = ["tab:gray"] * len(per_class)
    colors[best], colors[worst] = "tab:green", "tab:red"
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(per_class)), 3.5))
    ax.bar(range(len(per_class)), per_class, color=colors)
    ax.set_xticks(range(len(per_class)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(
        f"{title}: best {class_names[best]} ({per_class[best]:.3f}), "
        f"worst {class_names[worst]} ({per_class[worst]:.3f})",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    runfolder.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


def summary(result) -> dict[str, dict]:
    """Per stack: final accuracy and loss on the eval set, images/s over all epochs, last epoch."""
    rows = {}
    for stack, final in result.final.items():
        epochs = [r for r in result.history if r["stack"] == stack]
        images = sum(r["images_per_s"] * r["seconds"] for r in epochs)
        seconds = sum(r["seconds"] for r in epochs)
        rows[stack] = {
            "accuracy": final["accuracy"], "loss": final["loss"],
            "images_per_s": images / seconds if seconds else float("nan"),
            "last": epochs[-1] if epochs else {},
        }  # fmt: skip
    return rows


def report_markdown(result) -> str:
    """report.md: the settings, the summary table of both stacks, how far apart they ended."""
    c, rows = result.config, summary(result)
    where = "test" if c["eval_set"] == "test" else "validation"
    lines = [
        f"# {c['model']} on {c['dataset']}: scratch stack vs torch stack",
        "",
        f"{c['optimizer']} lr={c['lr']} epochs={c['epochs']} batch={c['batch_size']} "
        f"weight_decay={c['weight_decay']} l2={c['l2']} seed={c['seed']} backend={c['backend']} "
        f"dtype={c['dtype']}; scratch optimizer: {c['scratch_optimizer']}",
        "",
        f"| stack | {where} accuracy | {where} loss | train images/s |",
        "|---|---|---|---|",
    ]
    for stack, row in rows.items():
        lines.append(
            f"| {stack} | {row['accuracy']:.4f} | {row['loss']:.4f} | {row['images_per_s']:,.0f} |"
        )
    paired = [r for r in result.history if r.get("max_weight_diff") is not None]
    if paired:
        same = sum(a == b for a, b in zip(*(f["predictions"] for f in result.final.values())))
        lines += [
            "",
            f"Lockstep ({c['dtype']}), largest difference between the stacks over all "
            f"{c['epochs']} epochs: loss {max(r['max_loss_diff'] for r in paired):.3e}, weights "
            f"{max(r['max_weight_diff'] for r in paired):.3e}; the two final models agree on "
            f"{same} of {len(result.final['torch']['predictions'])} {where} predictions.",
        ]
    lines += ["", "![curves](curves.png)", "", "![confusion](confusion.png)", ""]
    lines += ["![per-class accuracy](per_class.png)", ""]
    return "\n".join(lines)


def write_report(result) -> None:
    """curves.png, confusion.png, per_class.png (of the first stack) and report.md."""
    out, names = Path(result.out), result.config["class_names"]
    stack, final = next(iter(result.final.items()))
    where = "test" if result.config["eval_set"] == "test" else "validation"
    title = f"{stack} stack, {where} set, accuracy {final['accuracy']:.4f}"
    save(curves_figure(result.history), out / "curves.png")
    save(confusion_figure(final["confusion"], names, title), out / "confusion.png")
    save(per_class_figure(final["per_class"], names, title), out / "per_class.png")
    runfolder.write_text(out / "report.md", report_markdown(result))
