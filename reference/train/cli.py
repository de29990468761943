"""`scratch train`: a lockstep run of the scratch stack and the torch.nn stack, into a run folder.

`--train-fraction 0.1,0.2,0.5,1.0` (more than one value) runs the training-fraction experiment;
`--resume DIR` continues an interrupted run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from reference.commands import Command
from reference.data import DATASETS, DataError
from reference.models import TRAIN_MODELS
from reference.train.core import RunResult, resume, train
from reference.train.optimizers import OPTIMIZERS
from reference.train.settings import DTYPES, EVAL_SETS, STACKS, TrainSettings
from reference.train.stacks import Diverged
from scratch.kernels import BACKENDS

DEFAULTS = TrainSettings()


def fractions(text: str) -> list[float]:
    """'0.1,0.5,1.0' -> [0.1, 0.5, 1.0] (argparse type)."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of one run, shared by `scratch train` and `scratch sweep`."""
    d = DEFAULTS
    p.add_argument("--model", choices=TRAIN_MODELS, default=d.model)
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset)
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (> 0)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="sgd and rmsprop")
    p.add_argument("--epochs", type=int, default=None, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="the optimizer's")
    p.add_argument("--l2", type=float, default=d.l2, help="explicit lam * sum(w^2) loss term")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--backend", choices=BACKENDS, default=d.backend, help="of the scratch stack")
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype)
    p.add_argument("--only", choices=STACKS, default=None, help="train one stack")
    p.add_argument("--data-dir", default=d.data_dir, help="where torchvision datasets live")
    p.add_argument("--download", action="store_true", help="let torchvision download the data")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--eval-set", choices=EVAL_SETS, default=d.eval_set)
    p.add_argument("--hidden", type=int, default=d.hidden, help="mlp hidden units")
    p.add_argument("--activation", choices=("relu", "sigmoid"), default=d.activation)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: small models only lose from more; 0: torch's)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p)
    p.add_argument("--train-fraction", type=fractions, default=[1.0], help="e.g. 0.1,0.2,0.5,1.0")
    p.add_argument("--out", default="runs/train", help="the run folder")
    p.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="continue the run in DIR with its saved settings (--epochs may extend it)",
    )


@dataclass(frozen=True)
class TrainArgs:
    """`scratch train`'s options: one run's settings, plus the experiment around it."""

    model: str
    dataset: str
    optimizer: str
    lr: float
    momentum: float
    epochs: int | None
    batch_size: int
    weight_decay: float
    l2: float
    seed: int
    backend: str
    dtype: str
    only: str | None
    data_dir: str
    download: bool
    val_fraction: float
    eval_set: str
    hidden: int
    activation: str
    threads: int
    quiet: bool
    train_fraction: tuple[float, ...] = (1.0,)
    out: str = "runs/train"
    resume: str | None = None

    def settings(self, **changes) -> TrainSettings:
        """The TrainSettings these options describe (first train fraction)."""
        names = {f.name for f in dataclasses.fields(TrainSettings)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        values.update(train_fraction=self.train_fraction[0], progress=not self.quiet)
        values["epochs"] = DEFAULTS.epochs if self.epochs is None else self.epochs
        return TrainSettings(**{**values, **changes})


def print_summary(result: RunResult) -> None:
    from reference.train.report import summary

    for stack, row in summary(result).items():
        print(
            f"{stack:>7} stack: {result.config['eval_set']} accuracy {row['accuracy']:.4f}, "
            f"loss {row['loss']:.4f}, {row['images_per_s']:,.0f} train images/s"
        )
    rows = [r for r in result.history if r["max_weight_diff"] is not None]
    if rows:
        print(
            f"lockstep ({result.config['dtype']}): max |loss diff| "
            f"{max(r['max_loss_diff'] for r in rows):.3e}, max |weight diff| "
            f"{max(r['max_weight_diff'] for r in rows):.3e} over {len(rows) // 2} epochs"
        )
    print(f"run folder: {result.out} (report.md, curves.png, confusion.png, checkpoint.pt)")


def guarded(name: str, work: Callable[[], int], folder: str | None = None) -> int:
    """Run `work`; bad settings or missing data -> message and exit 2, divergence -> exit 1,
    Ctrl-C -> where the run stands (`folder`: how to continue it) and exit 130."""
    try:
        return work()
    except (ValueError, DataError, FileNotFoundError) as e:
        print(f"scratch {name}: error: {e}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"scratch {name}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        where = f": continue with `scratch train --resume {folder}`" if folder else ""
        print(
            f"\nscratch {name}: interrupted; the last finished epoch is saved{where}",
            file=sys.stderr,
        )
        return 130


# what --resume may be given beside the run's saved settings: none of them changes the result
RESUMABLE = {"epochs", "data_dir", "download", "quiet", "threads", "resume", "train_fraction"}


def _check_resume(a: TrainArgs) -> None:
    """--resume continues with the run's saved settings: another given one is an error."""
    given = [
        name
        for name in (f.name for f in dataclasses.fields(TrainSettings))
        if name not in RESUMABLE
        and hasattr(a, name)
        and getattr(a, name) != getattr(DEFAULTS, name)
    ]
    if Path(a.out) != Path(a.resume) and a.out != TrainArgs.out:
        given.append("out")
    if len(a.train_fraction) > 1:
        given.append("train_fraction")
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(
            f"--resume {a.resume} continues the run with its saved settings (and in its own "
            f"folder): drop {flags} (only --epochs, --data-dir, --download, --threads, --quiet "
            "go with it)"
        )


def _run(a: TrainArgs) -> int:
    if a.threads < 0:
        raise ValueError(f"--threads must be >= 0 (0: torch's own choice), got {a.threads}")
    if not a.out:
        raise ValueError("--out must name a folder")
    if a.threads:
        torch.set_num_threads(a.threads)
    log = (lambda line: None) if a.quiet else print
    if a.resume:
        _check_resume(a)
        where = {
            k: getattr(a, k)
            for k in ("data_dir", "download")
            if getattr(a, k) != getattr(DEFAULTS, k)
        }
        print_summary(resume(a.resume, a.epochs, log=log, progress=not a.quiet, **where))
        return 0
    if len(a.train_fraction) > 1:
        from reference.train.experiments import fraction_experiment

        table = fraction_experiment(a.settings(), a.train_fraction, Path(a.out), log=log)
        print(table)
        return 0
    print_summary(train(a.settings(), a.out, log=log))
    return 0


def run(a: TrainArgs) -> int:
    return guarded(
        "train", lambda: _run(a), a.resume or (a.out if len(a.train_fraction) == 1 else None)
    )


COMMAND = Command(
    "train",
    "train the scratch stack next to the torch.nn stack (lockstep) into a run folder",
    TrainArgs,
    _add_arguments,
    run,
    description=__doc__.splitlines()[0],
)
