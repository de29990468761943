"""`scratch sweep`: a grid over two hyperparameters, each cell a short run; the best retrained.

scratch sweep --grid lr=0.1,0.01,0.001 --grid l2=0,1e-4,1e-3
writes sweep.csv, sweep.md and sweep.png (best cell marked) into --out, every cell's run folder
under cells/, and the chosen setting retrained with both stacks and scored on the test set (best/).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from reference.commands import Command
from reference.train.cli import TrainArgs, add_train_arguments, guarded


def _add_arguments(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p)
    # cells train the scratch stack; the best retrains both
    p.set_defaults(only="scratch", train_fraction=[1.0], resume=None)
    p.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2,...",
                   help="a hyperparameter and its values; give exactly two")  # fmt: skip
    p.add_argument("--out", default="runs/sweep", help="the sweep folder")


@dataclass(frozen=True)
class SweepArgs(TrainArgs):
    grid: tuple[str, ...] = ()


def _run(a: SweepArgs) -> int:
    from reference.train.experiments import parse_grid, sweep  # matplotlib: only when run

    if a.threads:
        torch.set_num_threads(a.threads)
    grid = parse_grid(a.grid)
    log = (lambda line: None) if a.quiet else print
    result = sweep(a.settings(), grid, Path(a.out), log=log)
    print(result["markdown"])
    print(f"sweep folder: {a.out} (sweep.csv, sweep.md, sweep.png, best/)")
    return 0


def run(a: SweepArgs) -> int:
    return guarded("sweep", lambda: _run(a))


COMMAND = Command(
    "sweep",
    "grid-search two hyperparameters of `scratch train`; retrain the best on the test set",
    SweepArgs,
    _add_arguments,
    run,
    description=__doc__.splitlines()[0],
)
