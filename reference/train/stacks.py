"""The two stacks of a lockstep run and one training step of each.

The torch stack is torch.nn + torch.nn.functional.cross_entropy + torch.optim; the scratch stack
is scratch.nn (its `backend`) + scratch's cross entropy and L2 penalty + scratch.optim. Both
start from the same weights (the scratch model loads the torch model's state_dict) and each
step's dropout masks come from the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import scratch
from reference import models
from reference.data import Data
from reference.train.optimizers import hyperparameters, make_optimizer
from reference.train.settings import TrainSettings


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class Stack:
    name: str  # 'torch' or 'scratch'
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    l2: float
    backend: str

    def penalised(self) -> list[torch.Tensor]:
        """The tensors the L2 term covers: weight matrices and conv kernels, not biases."""
        return [p for p in self.model.parameters() if p.dim() > 1]

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.name == "torch":
            loss = torch.nn.functional.cross_entropy(logits, y)
            if self.l2:
                loss = loss + self.l2 * sum(w.pow(2).sum() for w in self.penalised())
            return loss
        loss = scratch.functional.cross_entropy(logits, y, backend=self.backend)
        if self.l2:
            loss = loss + scratch.functional.l2_penalty(
                self.penalised(), self.l2, backend=self.backend
            )
        return loss


def model_options(s: TrainSettings) -> dict:
    """The constructor options beyond the dataset geometry (saved in the config)."""
    return dict(hidden=s.hidden, activation=s.activation) if s.model == "mlp" else {}


def _build(s: TrainSettings, data: Data, nn) -> torch.nn.Module:
    size = data.image_size[0]
    model = models.build(
        s.model, len(data.class_names), in_channels=data.in_channels, image_size=size, nn=nn,
        **model_options(s),
    )  # fmt: skip
    return model.to(getattr(torch, s.dtype))


def build_stacks(s: TrainSettings, data: Data) -> list[Stack]:
    """The stacks `s.stacks` asks for, from the same seeded initial weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        initial = _build(s, data, torch.nn).state_dict()
    hp = hyperparameters(s.optimizer, s.lr, s.momentum, s.weight_decay)
    stacks = []
    for name in s.stacks:
        nn = torch.nn if name == "torch" else models.with_backend(scratch.nn, s.backend)
        model = _build(s, data, nn)
        model.load_state_dict(initial)
        optimizer = make_optimizer(s.optimizer, model.parameters(), name, s.backend, **hp)
        stacks.append(Stack(name, model, optimizer, s.l2, s.backend))
    return stacks


def step_seed(seed: int, step: int) -> int:
    """The seed of global step `step`'s random draws (dropout masks), the same for both stacks."""
    return seed * 1_000_003 + step


def train_step(stack: Stack, x, y, seed: int, step: int) -> tuple[float, int]:
    """One optimizer step on batch (x, y): (loss, correct predictions); Diverged on NaN/inf."""
    stack.model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(step_seed(seed, step))
        logits = stack.model(x)
    loss = stack.loss(logits, y)
    value = loss.item()
    if not torch.isfinite(loss):
        raise Diverged(
            f"{stack.name} stack: the loss is {value} at step {step + 1}; the run stopped. "
            "Lower the learning rate (--lr), or add weight decay."
        )
    stack.optimizer.zero_grad()
    loss.backward()
    stack.optimizer.step()
    return value, int((logits.argmax(1) == y).sum())


@torch.no_grad()
def evaluate(model: torch.nn.Module, x, y, batch_size: int = 512):
    """(mean cross-entropy loss, accuracy, predictions) of `model` in eval mode on (x, y)."""
    model.eval()
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(y), batch_size)])
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    predictions = logits.argmax(1)
    return loss, (predictions == y).double().mean().item(), predictions


def max_weight_difference(stacks: list[Stack]) -> float | None:
    """The largest |w_scratch - w_torch| over all parameters, None with one stack."""
    if len(stacks) < 2:
        return None
    pairs = zip(stacks[0].model.parameters(), stacks[1].model.parameters(), strict=True)
    return max((a - b).abs().max().item() for a, b in pairs)
