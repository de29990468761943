"""scratch.swap on whole models: same Parameters, same training trajectory as torch.nn."""

import copy

import pytest
import torch
from torch import nn

import scratch


def mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(32, 16),
        nn.GELU(),
        nn.Linear(16, 10),
        nn.LogSoftmax(dim=1),
    )


class Custom(nn.Linear):
    """A subclass with its own forward: swap must leave it alone."""

    def forward(self, x):
        return super().forward(x) * 2


def test_swap_report_names_what_was_swapped_and_kept():
    model = nn.Sequential(nn.Linear(4, 4), nn.Identity(), Custom(4, 2), nn.ReLU())
    report = scratch.swap(model)
    assert report.swapped == {"0": "scratch.nn.Linear", "3": "scratch.nn.ReLU"}
    assert set(report.kept) == {"1", "2"}
    assert isinstance(model[0], scratch.nn.Linear) and type(model[2]) is Custom
    assert "2 modules swapped" in str(report)


def test_swap_keeps_parameters_and_optimizer():
    model = mlp()
    params_before = list(model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scratch.swap(model, backend="torch")
    assert all(a is b for a, b in zip(params_before, model.parameters(), strict=True))
    weight = model[1].weight.detach().clone()
    loss = model(torch.randn(3, 8, 8)).sum()
    loss.backward()
    optimizer.step()
    assert not torch.equal(weight, model[1].weight)


def test_unswap_restores_torch_classes():
    model = mlp()
    classes = [type(m) for m in model]
    scratch.swap(model)
    assert all(type(m).__module__.startswith("scratch") for m in model)
    names = scratch.unswap(model)
    assert [type(m) for m in model] == classes
    assert len(names) == len(model)
    assert not hasattr(model[1], "backend")


def test_swap_twice_changes_backend():
    model = mlp()
    scratch.swap(model, backend="numpy")
    report = scratch.swap(model, backend="torch")
    assert len(report.swapped) == len(model)
    assert all(m.backend == "torch" for m in model)


def test_swap_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        scratch.swap(mlp(), backend="cupy")


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_mlp_trains_identically_for_50_sgd_steps(backend, gen):
    """An MLP with torch.nn and its swapped copy, same init, 50 SGD steps in float64."""
    torch.manual_seed(0)
    reference = mlp().double()
    swapped = copy.deepcopy(reference)
    scratch.swap(swapped, backend=backend)
    x = torch.randn(256, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(10, (256,), generator=gen)
    optimizers = [
        torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (reference, swapped)
    ]
    for step in range(50):
        batch = slice(step % 8 * 32, step % 8 * 32 + 32)
        losses = []
        for model, optimizer in zip((reference, swapped), optimizers, strict=True):
            torch.manual_seed(step)  # the same dropout masks on both sides
            optimizer.zero_grad()
            loss = nn.functional.nll_loss(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-10, atol=1e-12)
    for (name, a), b in zip(reference.named_parameters(), swapped.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12, msg=name)
    assert not torch.equal(reference[1].weight, mlp().double()[1].weight)
