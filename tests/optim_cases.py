"""The optimizer case table (named option combinations) and the helpers that run a scratch
optimizer next to its torch.optim twin; shared by tests/test_optim*.py."""

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

import scratch
import scratch.optim as so

NAMES = ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop")
STEPS = 20


@dataclass(frozen=True)
class OptCase:
    """A named optimizer configuration: the class name and its keyword arguments."""

    name: str
    optimizer: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    backends: tuple[str, ...] = scratch.BACKENDS


def tensor_lr(value: float) -> torch.Tensor:
    return torch.tensor(value)  # a float32 tensor lr: torch computes step sizes in float32


CASES = [
    OptCase("sgd", "SGD", {"lr": 0.1}),
    OptCase("sgd-momentum", "SGD", {"lr": 0.1, "momentum": 0.9}),
    OptCase("sgd-momentum-dampening", "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    OptCase("sgd-nesterov", "SGD", {"lr": 0.1, "momentum": 0.8, "nesterov": True}),
    OptCase("sgd-weight-decay", "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    OptCase("sgd-maximize", "SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True}),
    OptCase(
        "sgd-all",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1, "maximize": True},
    ),
    OptCase(
        "sgd-nesterov-wd-maximize",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
    ),
    OptCase("sgd-tensor-lr", "SGD", {"lr": tensor_lr(0.1), "momentum": 0.9}),
    OptCase("sgd-tensor-weight-decay", "SGD", {"lr": 0.1, "weight_decay": torch.tensor(0.05)}),
    OptCase("adam", "Adam", {"lr": 0.01}),
    OptCase("adam-weight-decay", "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    OptCase("adam-amsgrad", "Adam", {"lr": 0.01, "amsgrad": True}),
    OptCase("adam-maximize", "Adam", {"lr": 0.01, "maximize": True}),
    OptCase("adam-betas-eps", "Adam", {"lr": 0.01, "betas": (0.5, 0.7), "eps": 1e-3}),
    OptCase(
        "adam-decoupled", "Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}
    ),
    OptCase(
        "adam-all",
        "Adam",
        {"lr": 0.02, "betas": (0.8, 0.9), "weight_decay": 0.1, "amsgrad": True, "maximize": True},
    ),
    OptCase("adam-tensor-lr", "Adam", {"lr": tensor_lr(0.01), "weight_decay": 0.1}),
    OptCase(
        "adam-tensor-betas",
        "Adam",
        {"lr": 0.01, "betas": (torch.tensor(0.8), torch.tensor(0.9)), "amsgrad": True},
        backends=("torch",),
    ),
    OptCase("adamw", "AdamW", {"lr": 0.01}),
    OptCase("adamw-amsgrad-wd", "AdamW", {"lr": 0.01, "weight_decay": 0.2, "amsgrad": True}),
    OptCase("adamw-maximize", "AdamW", {"lr": 0.01, "maximize": True, "betas": (0.6, 0.8)}),
    OptCase("adamw-no-decay", "AdamW", {"lr": 0.01, "weight_decay": 0.0}),
    OptCase("adamw-tensor-lr", "AdamW", {"lr": tensor_lr(0.01), "weight_decay": 0.1}),
    OptCase("adagrad", "Adagrad", {"lr": 0.1}),
    OptCase("adagrad-lr-decay", "Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    OptCase("adagrad-weight-decay", "Adagrad", {"lr": 0.1, "weight_decay": 0.1}),
    OptCase("adagrad-initial-acc-eps", "Adagrad", {"initial_accumulator_value": 0.5, "eps": 1e-3}),
    OptCase("adagrad-maximize", "Adagrad", {"lr": 0.1, "maximize": True}),
    OptCase(
        "adagrad-all",
        "Adagrad",
        {
            "lr": 0.1,
            "lr_decay": 0.1,
            "weight_decay": 0.1,
            "initial_accumulator_value": 0.2,
            "maximize": True,
        },
    ),
    OptCase("adagrad-tensor-lr", "Adagrad", {"lr": tensor_lr(0.1), "lr_decay": 0.05}),
    OptCase("rmsprop", "RMSprop", {"lr": 0.01}),
    OptCase("rmsprop-centered", "RMSprop", {"lr": 0.01, "centered": True}),
    OptCase("rmsprop-momentum", "RMSprop", {"lr": 0.01, "momentum": 0.9}),
    OptCase(
        "rmsprop-centered-momentum", "RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}
    ),
    OptCase("rmsprop-weight-decay", "RMSprop", {"lr": 0.01, "weight_decay": 0.1}),
    OptCase("rmsprop-maximize", "RMSprop", {"lr": 0.01, "maximize": True}),
    OptCase("rmsprop-alpha-eps", "RMSprop", {"lr": 0.01, "alpha": 0.5, "eps": 1e-3}),
    OptCase(
        "rmsprop-all",
        "RMSprop",
        {
            "lr": 0.01,
            "alpha": 0.9,
            "weight_decay": 0.1,
            "momentum": 0.9,
            "centered": True,
            "maximize": True,
        },
    ),
    OptCase("rmsprop-tensor-lr", "RMSprop", {"lr": tensor_lr(0.01), "momentum": 0.9}),
]
BY_NAME = {case.name: case for case in CASES}
RICH = {  # one configuration per optimizer with its state-carrying options on
    "SGD": BY_NAME["sgd-all"],
    "Adam": BY_NAME["adam-all"],
    "AdamW": BY_NAME["adamw-amsgrad-wd"],
    "Adagrad": BY_NAME["adagrad-all"],
    "RMSprop": BY_NAME["rmsprop-all"],
}


def make_params(gen: torch.Generator, dtype: torch.dtype) -> list[torch.Tensor]:
    """A matrix, a 0-d parameter, a non-contiguous (transposed) leaf, one that never gets a grad."""
    shapes = [(4, 5), (), (6, 3), (3,)]
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    params[2] = params[2].t()  # (3, 6), strides (1, 3)
    return [p.requires_grad_() for p in params]


def make_groups(params: list[torch.Tensor], lr: Any) -> list[dict[str, Any]]:
    """Two param groups; the second with half the learning rate (a tensor if lr is one)."""
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr * 0.5}]


def pair(case: OptCase, backend: str, dtype: torch.dtype, gen: torch.Generator):
    """torch.optim's and scratch.optim's optimizer on equal copies of the same parameters."""
    ref = make_params(gen, dtype)
    ours = [p.detach().clone().requires_grad_() for p in ref]
    assert not ours[2].is_contiguous()
    torch_cls = getattr(torch.optim, case.optimizer)
    lr = case.kwargs.get("lr", inspect.signature(torch_cls).parameters["lr"].default)
    theirs = torch_cls(make_groups(ref, lr), foreach=False, **case.kwargs)
    mine = getattr(so, case.optimizer)(
        make_groups(ours, lr), foreach=False, backend=backend, **case.kwargs
    )
    return ref, ours, theirs, mine


def give_grads(ref, ours, gen: torch.Generator) -> None:
    """The same fresh random gradient on each pair of parameters, except the last (never)."""
    for a, b in zip(ref[:-1], ours[:-1], strict=True):
        a.grad = torch.randn(a.shape, generator=gen, dtype=a.dtype)
        b.grad = a.grad.clone()


def assert_same(ours, ref, backend: str) -> None:
    """Bit-exact on the torch backend; within 1e-12 of each tensor's scale on NumPy."""
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and a.stride() == b.stride()
        if backend == "torch":
            assert torch.equal(a, b), (a - b).abs().max()
        else:
            scale = b.abs().max().item()
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * scale)


def state_tensors(opt: torch.optim.Optimizer) -> list[tuple[int, str, torch.Tensor]]:
    """Every tensor of a state dict, by parameter index and state key."""
    state = opt.state_dict()["state"]
    return [(i, key, value) for i in sorted(state) for key, value in state[i].items()]


def run_steps(opt, params, grads) -> None:
    """One step per entry of `grads` (a gradient for each parameter), set before the step."""
    for g in grads:
        for p, gp in zip(params, g, strict=True):
            p.grad = gp.clone()
        opt.step()
