"""Whole-model parity: run a model and its swapped copy side by side, layer by layer.

`compare_models` feeds both models the same input, backpropagates the same loss, and records
with hooks each leaf layer's output and the gradient with respect to its input, then every
parameter's gradient. The report names the first layer that diverges: in forward order for
outputs, in backward order (from the loss down) for input gradients.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from scratch.swap import swap

# Relative error (max |a - b| / max |b|) above which a layer counts as diverged. float64: all
# but exact; float32: the rounding that accumulates through deep stacks of sums (VGG16's 13
# convs with up to 4608-term dot products stay well under 1e-4 here).
THRESHOLDS = {torch.float64: 1e-9, torch.float32: 1e-4}


@dataclass
class LayerRow:
    name: str
    kind: str  # class name
    forward_error: float  # relative error of the layer's output
    grad_error: float | None  # relative error of the gradient wrt its input (None: no grad)


@dataclass
class ModelReport:
    dtype: torch.dtype
    layers: list[LayerRow]
    logits_error: float
    loss_error: float
    param_errors: dict[str, float] = field(default_factory=dict)
    first_forward_divergence: str | None = None
    first_backward_divergence: str | None = None

    @property
    def threshold(self) -> float:
        return THRESHOLDS[self.dtype]

    @property
    def ok(self) -> bool:
        worst = max([self.logits_error, self.loss_error, *self.param_errors.values()])
        return worst <= self.threshold and not (
            self.first_forward_divergence or self.first_backward_divergence
        )

    def __str__(self) -> str:
        lines = [f"{'layer':<24} {'kind':<12} {'fwd rel err':>12} {'input-grad rel err':>19}"]
        for r in self.layers:
            grad = "-" if r.grad_error is None else f"{r.grad_error:.1e}"
            lines.append(f"{r.name:<24} {r.kind:<12} {r.forward_error:>12.1e} {grad:>19}")
        worst_param = max(self.param_errors.items(), key=lambda kv: kv[1], default=("-", 0.0))
        lines += [
            f"logits rel err {self.logits_error:.1e}, loss rel err {self.loss_error:.1e}, "
            f"worst parameter grad rel err {worst_param[1]:.1e} ({worst_param[0]}); "
            f"threshold {self.threshold:g} ({str(self.dtype).removeprefix('torch.')})",
            f"first layer diverging in forward: {self.first_forward_divergence or 'none'}; "
            f"in backward: {self.first_backward_divergence or 'none'}",
        ]
        return "\n".join(lines)


def relative_error(actual: torch.Tensor, expected: torch.Tensor, floor: float = 0.0) -> float:
    """max |actual - expected| / max(max |expected|, floor)."""
    if not expected.numel():
        return 0.0
    scale = max(expected.detach().abs().max().item(), floor)
    diff = (actual.detach() - expected.detach()).abs().max().item()
    return diff / scale if scale > 0 else diff


def _record(model: torch.nn.Module):
    """Hooks on every leaf module: outputs (cloned: in-place layers overwrite them) in forward
    order, gradients wrt inputs in backward order. Returns (records, hook handles)."""
    outputs: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue

        def pre_hook(mod, args, name=name):
            x = args[0] if args else None
            if isinstance(x, torch.Tensor) and x.requires_grad:
                x.register_hook(lambda g, name=name: grads.__setitem__(name, g.detach().clone()))

        def hook(mod, args, out, name=name):
            outputs[name] = out.detach().clone()

        handles += [module.register_forward_pre_hook(pre_hook), module.register_forward_hook(hook)]
    return outputs, grads, handles


def _run(model, x, target, loss_fn, seed: int):
    model.zero_grad(set_to_none=True)
    outputs, grads, handles = _record(model)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the same dropout masks in both models
            x = x.clone().requires_grad_(True)
            logits = model(x)
        loss = loss_fn(logits, target)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    params = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), loss.detach(), outputs, grads, params


def _layer_rows(candidate: torch.nn.Module, ref: tuple, got: tuple) -> list[LayerRow]:
    """One row per captured layer: its output's error and (where it has one) its input grad's."""
    rows = []
    modules = dict(candidate.named_modules())
    for name, expected in ref[2].items():
        grad = None
        if name in ref[3]:
            grad = relative_error(got[3][name], ref[3][name]) if name in got[3] else float("inf")
        kind = type(modules[name]).__name__
        rows.append(LayerRow(name, kind, relative_error(got[2][name], expected), grad))
    return rows


def compare_models(
    reference: torch.nn.Module,
    candidate: torch.nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    loss_fn=torch.nn.functional.cross_entropy,
    seed: int = 0,
) -> ModelReport:
    """Forward + backward of both models on `x` (their own dtype), layer by layer.

    Random layers (dropout) draw from torch's generator seeded with `seed` in both runs.
    """
    ref = _run(reference, x, target, loss_fn, seed)
    got = _run(candidate, x, target, loss_fn, seed)
    threshold = THRESHOLDS[x.dtype]
    # A parameter whose true gradient is zero (a conv bias right before a training batch norm)
    # gets pure rounding noise from both sides: measure it against 1e-3 of the model's largest
    # gradient instead of against itself.
    floor = 1e-3 * max((g.abs().max().item() for g in ref[4].values() if g.numel()), default=0.0)
    rows = _layer_rows(candidate, ref, got)
    report = ModelReport(
        x.dtype,
        rows,
        logits_error=relative_error(got[0], ref[0]),
        loss_error=relative_error(got[1], ref[1]),
        param_errors={n: relative_error(got[4][n], g, floor) for n, g in ref[4].items()},
    )
    report.first_forward_divergence = next(
        (r.name for r in rows if r.forward_error > threshold), None
    )
    report.first_backward_divergence = next(
        (r.name for r in reversed(rows) if r.grad_error is not None and r.grad_error > threshold),
        None,
    )
    return report


def swapped_copy(model: torch.nn.Module, backend: str) -> torch.nn.Module:
    """A deep copy of `model` with scratch twins swapped in (the original is untouched)."""
    twin = copy.deepcopy(model)
    swap(twin, backend=backend)
    return twin
