"""A scratch module is its torch.nn twin in every way a user can see, but for the backward."""

import inspect

import pytest
import torch

import scratch
from scratch.nn import TWINS


@pytest.mark.parametrize("torch_cls", list(TWINS), ids=lambda c: c.__name__)
def test_signature_is_torchs_plus_backend(torch_cls):
    twin = TWINS[torch_cls]
    expected = list(inspect.signature(torch_cls).parameters.values())
    got = list(inspect.signature(twin).parameters.values())
    assert [p for p in got if p.name != "backend"] == expected
    backend = inspect.signature(twin).parameters["backend"]
    assert backend.kind is inspect.Parameter.KEYWORD_ONLY and backend.default == "numpy"
    assert issubclass(twin, torch_cls) and twin.__name__ == torch_cls.__name__


def test_linear_behaves_like_torch_linear():
    torch.manual_seed(7)
    ours = scratch.nn.Linear(3, 4, bias=False, backend="torch")
    torch.manual_seed(7)
    theirs = torch.nn.Linear(3, 4, bias=False)
    assert repr(ours) == repr(theirs) == "Linear(in_features=3, out_features=4, bias=False)"
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    # Same init draws from the same generator: torch's kaiming-uniform distribution exactly.
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)
    theirs.load_state_dict(ours.state_dict())
    assert ours.bias is None and isinstance(ours, torch.nn.Linear)


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_linear_gradients_come_from_our_backward(monkeypatch, backend):
    """Break the hand-written backward: the module's gradients must change with it."""
    kernels = scratch.autograd.kernels(backend)
    layer = scratch.nn.Linear(3, 4, bias=False, backend=backend)
    x = torch.randn(5, 3)
    layer(x).sum().backward()
    good = layer.weight.grad.clone()
    layer.weight.grad = None
    real = kernels.linear_backward
    monkeypatch.setattr(
        kernels,
        "linear_backward",
        lambda c, g, n: tuple(v * 2 if v is not None else None for v in real(c, g, n)),
    )
    layer(x).sum().backward()
    torch.testing.assert_close(layer.weight.grad, 2 * good)


def test_constructor_errors_are_torchs():
    with pytest.raises(ValueError, match="backend must be one of"):
        scratch.nn.ReLU(backend="jax")
    with pytest.raises(TypeError):
        scratch.nn.Linear(3)


def test_modules_pickle_and_deepcopy():
    import copy
    import pickle

    layer = scratch.nn.Linear(3, 2, backend="torch")
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone.backend == "torch"
        torch.testing.assert_close(clone.weight, layer.weight)
