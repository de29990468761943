"""A lockstep training run: both stacks, same batches in the same order, epoch by epoch.

`train(settings, out)` writes the run folder (config.json, metrics.jsonl, checkpoint.pt after
every epoch, then the pictures and report.md) and returns a `RunResult`; `resume(out)` continues
a run from its last checkpoint and ends exactly where the uninterrupted run ends.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from reference import data as datasets
from reference.train import runfolder
from reference.train.optimizers import SCRATCH_OPTIM
from reference.train.settings import TrainSettings, check_settings
from reference.train.stacks import (
    Stack,
    build_stacks,
    evaluate,
    max_weight_difference,
    model_options,
    train_step,
)


@dataclass
class RunResult:
    out: Path
    config: dict
    history: list[dict]  # the metrics.jsonl rows
    final: dict = field(default_factory=dict)  # per stack: loss, accuracy, confusion, per_class


def run_config(s: TrainSettings, data: datasets.Data) -> dict:
    """The settings plus what a checkpoint's reader needs to rebuild the model (plain JSON)."""
    return {
        **s.to_json(),
        "num_classes": len(data.class_names),
        "in_channels": data.in_channels,
        "image_size": list(data.image_size),
        "class_names": list(data.class_names),
        "mean": list(data.mean),  # the inputs' normalisation: (x - mean) / std per channel
        "std": list(data.std),
        "model_options": model_options(s),
        "stacks": list(s.stacks),
        "scratch_optimizer": SCRATCH_OPTIM,
        "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
    }


def load_data(s: TrainSettings) -> datasets.Data:
    return datasets.load(
        s.dataset, model=s.model, data_dir=s.data_dir, download=s.download, seed=s.seed,
        val_fraction=s.val_fraction, train_fraction=s.train_fraction,
    )  # fmt: skip


def _epoch_order(s: TrainSettings, epoch: int, n: int) -> torch.Tensor:
    """The seeded batch order of `epoch`: depends on nothing else, so a resumed run repeats it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(s.seed * 7919 + epoch))


def run_epoch(stacks: list[Stack], s: TrainSettings, epoch: int, x, y) -> list[dict]:
    """Train every stack one epoch on the same batches; one metrics row per stack."""
    order, n = _epoch_order(s, epoch, len(y)), len(y)
    steps = math.ceil(n / s.batch_size)
    stats = {st.name: dict(loss=0.0, correct=0, seconds=0.0) for st in stacks}
    loss_gap = weight_gap = 0.0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{s.epochs}", disable=not s.progress)
    for b in bar:
        index = order[b * s.batch_size : (b + 1) * s.batch_size]
        losses = []
        for st in stacks:
            start = time.perf_counter()
            loss, correct = train_step(st, x[index], y[index], s.seed, epoch * steps + b)
            stats[st.name]["seconds"] += time.perf_counter() - start
            stats[st.name]["loss"] += loss * len(index)
            stats[st.name]["correct"] += correct
            losses.append(loss)
        if len(stacks) == 2:
            loss_gap = max(loss_gap, abs(losses[0] - losses[1]))
            weight_gap = max(weight_gap, max_weight_difference(stacks) or 0.0)
        seen = min(n, (b + 1) * s.batch_size)
        bar.set_postfix({
            st.name: f"loss {v:.4f} acc {stats[st.name]['correct'] / seen:.3f}"
            for st, v in zip(stacks, losses)
        })  # fmt: skip
    rows = []
    for st in stacks:
        seen = stats[st.name]
        rows.append({
            "epoch": epoch + 1, "stack": st.name,
            "train_loss": seen["loss"] / n, "train_acc": seen["correct"] / n,
            "seconds": seen["seconds"], "images_per_s": n / seen["seconds"],
            "max_loss_diff": loss_gap if len(stacks) == 2 else None,
            "max_weight_diff": weight_gap if len(stacks) == 2 else None,
        })  # fmt: skip
    return rows


def _checkpoint(stacks: list[Stack], config: dict, epoch: int, history: list[dict]) -> dict:
    """The checkpoint contract: 'model', 'optimizer' (the torch stack's, else the only one),
    'config', 'epoch'; plus every stack's state and the metrics, for --resume."""
    states = {
        st.name: {"model": st.model.state_dict(), "optimizer": st.optimizer.state_dict()}
        for st in stacks
    }
    main = states[stacks[0].name]
    return {**main, "config": config, "epoch": epoch, "stacks": states, "history": history}


def _restore(stacks: list[Stack], checkpoint: dict) -> tuple[int, list[dict]]:
    for st in stacks:
        state = checkpoint["stacks"][st.name]
        st.model.load_state_dict(state["model"])
        st.optimizer.load_state_dict(state["optimizer"])
    return checkpoint["epoch"], list(checkpoint["history"])


def _as(split: datasets.Split, s: TrainSettings):
    return split.x.to(getattr(torch, s.dtype)), split.y


def train(
    s: TrainSettings,
    out: str | Path,
    *,
    checkpoint: dict | None = None,
    log: Callable[[str], None] = lambda line: None,
    pictures: bool = True,
) -> RunResult:
    """Run (or, given a checkpoint of the same settings, continue) a lockstep run into `out`.

    `pictures=False` skips the PNGs and report.md (a sweep's cells).
    """
    from reference.train.report import write_report  # the plots import matplotlib: lazily

    check_settings(s)
    out = runfolder.prepare(Path(out), fresh=checkpoint is None)
    data = load_data(s)
    stacks, config = build_stacks(s, data), run_config(s, data)
    start, history = _restore(stacks, checkpoint) if checkpoint else (0, [])
    runfolder.write_json(out / runfolder.CONFIG, config)
    (x, y), (vx, vy) = _as(data.train, s), _as(data.val, s)
    for epoch in range(start, s.epochs):
        rows = run_epoch(stacks, s, epoch, x, y)
        for st, row in zip(stacks, rows):
            row["val_loss"], row["val_acc"], _ = evaluate(st.model, vx, vy)
            log(_epoch_line(row))
        history += rows
        runfolder.write_jsonl(out / runfolder.METRICS, history)
        saved = _checkpoint(stacks, config, epoch + 1, history)
        runfolder.save_checkpoint(out / runfolder.CHECKPOINT, saved)
    result = RunResult(out, config, history)
    ex, ey = _as(data.test if s.eval_set == "test" else data.val, s)
    for st in stacks:
        result.final[st.name] = final_scores(st, ex, ey, len(data.class_names))
    if pictures:
        write_report(result)
    return result


def resume(
    out: str | Path,
    epochs: int | None = None,
    *,
    log: Callable[[str], None] = lambda line: None,
    **changes,
) -> RunResult:
    """Continue the run in `out` from its checkpoint (to `epochs` in all, if given).

    `changes` may only touch what does not change the result (`progress`, where the data
    lives: `data_dir`, `download`).
    """
    checkpoint = runfolder.load_checkpoint(Path(out) / runfolder.CHECKPOINT)
    done = checkpoint["epoch"]
    if epochs is not None and epochs < done:
        raise ValueError(
            f"--epochs {epochs}: the run in {out} has finished {done} epochs; give --epochs "
            f"{done} or more (or leave it out) to continue it"
        )
    s = TrainSettings.from_json(checkpoint["config"])
    s = dataclasses.replace(s, **({} if epochs is None else {"epochs": epochs}), **changes)
    return train(s, out, checkpoint=checkpoint, log=log)


def final_scores(stack: Stack, x, y, num_classes: int) -> dict:
    """Loss, accuracy, confusion matrix (rows: true class) and per-class accuracy on (x, y)."""
    loss, accuracy, predictions = evaluate(stack.model, x, y)
    confusion = torch.bincount(y * num_classes + predictions, minlength=num_classes**2)
    confusion = confusion.view(num_classes, num_classes)
    per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
    return {
        "loss": loss, "accuracy": accuracy, "predictions": predictions.tolist(),
        "confusion": confusion.tolist(), "per_class": per_class.tolist(),
    }  # fmt: skip


def _epoch_line(row: dict) -> str:
    gap = ""
    if row["max_weight_diff"] is not None:
        gap = f"  max |loss diff| {row['max_loss_diff']:.2e}"
        gap += f"  max |weight diff| {row['max_weight_diff']:.2e}"
    return (
        f"epoch {row['epoch']:3d} {row['stack']:>7}: train loss {row['train_loss']:.4f} "
        f"acc {row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  "
        f"{row['images_per_s']:,.0f} images/s{gap}"
    )
