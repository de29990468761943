"""scratch.optim looks like torch.optim from outside: its signatures, the errors bad arguments
raise; and the update is its own (torch.optim's update functions are never called)."""

import importlib
import inspect
import math
import warnings
from functools import partial

import pytest
import torch
from optim_cases import NAMES, RICH, give_grads, pair

import scratch
import scratch.optim as so
from scratch.kernels import DEFAULT_BACKEND


@pytest.mark.parametrize("name", NAMES)
def test_signature_is_torchs_plus_backend(name):
    torch_cls, ours = getattr(torch.optim, name), getattr(so, name)
    expected = list(inspect.signature(torch_cls, eval_str=True).parameters.values())
    got = list(inspect.signature(ours, eval_str=True).parameters.values())
    assert [p for p in got if p.name != "backend"] == expected
    backend = inspect.signature(ours).parameters["backend"]
    assert backend.kind is inspect.Parameter.KEYWORD_ONLY and backend.default == DEFAULT_BACKEND
    assert issubclass(ours, torch.optim.Optimizer) and ours.__name__ == name
    param = torch.zeros(2, requires_grad=True)
    assert ours([param]).defaults == torch_cls([param]).defaults


BAD = [  # (optimizer, kwargs): torch raises; we must raise the same type with the same message
    ("SGD", {"lr": -0.1}),
    ("SGD", {"lr": torch.tensor([0.1, 0.2])}),
    ("SGD", {"momentum": -0.5}),
    ("SGD", {"weight_decay": -1e-4}),
    ("SGD", {"nesterov": True}),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("SGD", {"fused": True, "foreach": True}),
    ("SGD", {"fused": True, "differentiable": True}),
    ("Adam", {"lr": -1e-3}),
    ("Adam", {"lr": torch.tensor(0.1), "foreach": True}),
    ("Adam", {"eps": -1e-8}),
    ("Adam", {"betas": (1.0, 0.999)}),
    ("Adam", {"betas": (0.9, -0.1)}),
    ("Adam", {"betas": (torch.tensor(0.9), 0.999)}),
    ("Adam", {"betas": (torch.tensor([0.9, 0.8]), torch.tensor(0.99))}),
    ("Adam", {"weight_decay": -0.1}),
    ("Adam", {"fused": True, "foreach": True}),
    ("AdamW", {"lr": -1.0}),
    ("AdamW", {"betas": (0.9, 1.0)}),
    ("AdamW", {"weight_decay": -0.01}),
    ("Adagrad", {"lr": -0.01}),
    ("Adagrad", {"lr_decay": -0.1}),
    ("Adagrad", {"weight_decay": -0.1}),
    ("Adagrad", {"initial_accumulator_value": -0.1}),
    ("Adagrad", {"eps": -1e-10}),
    ("Adagrad", {"fused": True, "differentiable": True}),
    ("RMSprop", {"lr": -0.01}),
    ("RMSprop", {"alpha": -0.99}),
    ("RMSprop", {"eps": -1e-8}),
    ("RMSprop", {"momentum": -0.9}),
    ("RMSprop", {"weight_decay": -0.1}),
    ("RMSprop", {"lr": torch.ones(2)}),
]


def _raised(make) -> tuple[type | None, str]:
    try:
        make()
    except Exception as e:  # noqa: BLE001 - the point is to see what is raised
        return type(e), str(e)
    return None, ""


@pytest.mark.parametrize(
    ("name", "kwargs"), BAD, ids=[f"{n}-{'-'.join(kw)}-{i}" for i, (n, kw) in enumerate(BAD)]
)
def test_bad_hyperparameters_raise_what_torch_raises(name, kwargs):
    params = [torch.zeros(3, requires_grad=True)]
    want = _raised(lambda: getattr(torch.optim, name)(params, **kwargs))
    got = _raised(lambda: getattr(so, name)(params, **kwargs))
    assert want[0] is not None and got == want


def test_empty_parameter_list_and_bad_params_raise_what_torch_raises():
    for params in (
        [],
        torch.zeros(3, requires_grad=True),
        [torch.zeros(2, requires_grad=True) * 2],
    ):
        want = _raised(lambda params=params: torch.optim.Adam(params))
        assert want[0] is not None and _raised(lambda params=params: so.Adam(params)) == want


UNSUPPORTED = [
    (name, option, value)
    for name in NAMES
    for option, value in (
        ("foreach", True),
        ("fused", True),
        ("capturable", True),
        ("differentiable", True),
    )
    if option in inspect.signature(getattr(torch.optim, name)).parameters
]


@pytest.mark.parametrize(
    ("name", "option", "value"), UNSUPPORTED, ids=[f"{n}-{o}" for n, o, _ in UNSUPPORTED]
)
def test_unsupported_options_name_themselves(name, option, value):
    param = torch.zeros(3, requires_grad=True)
    with pytest.raises(NotImplementedError, match=f"{name}: {option}=True is not supported"):
        getattr(so, name)([param], **{option: value})
    opt = getattr(so, name)([param])  # accepted at their defaults and as False ...
    getattr(so, name)([torch.zeros(1, requires_grad=True)], **{option: False})
    extra = torch.zeros(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match=option):  # ... and checked per param group
        opt.add_param_group({"params": [extra], option: value})
    assert len(opt.param_groups) == 1  # refused before it was added, as torch's own checks
    opt.add_param_group({"params": [extra]})  # so the same parameter can be added again
    param.grad, extra.grad = torch.ones(3), torch.ones(2)
    opt.step()
    assert not torch.equal(extra, torch.zeros(2))


@pytest.mark.parametrize("name", NAMES)
def test_sparse_and_complex_gradients_are_refused_clearly(name):
    param = torch.zeros(3, requires_grad=True)
    opt = getattr(so, name)([param])
    param.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match=f"{name} .*does not support sparse gradients"):
        opt.step()
    z = torch.zeros(2, dtype=torch.complex128, requires_grad=True)
    z.grad = torch.ones_like(z)
    with pytest.raises(NotImplementedError, match="complex"):
        getattr(so, name)([z]).step()


def test_backend_is_checked():
    param = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="backend must be one of"):
        so.Adam([param], backend="cuda")
    with pytest.raises(ValueError, match="built-in backends"):
        so.SGD([param], backend=scratch.kernels.kernels("numpy"))
    with pytest.raises(NotImplementedError, match="betas as Tensors need backend='torch'"):
        so.Adam([param], betas=(torch.tensor(0.9), torch.tensor(0.99)), backend="numpy")
    assert so.RMSprop([param]).backend == DEFAULT_BACKEND


NAMES_LOWER = {name.lower() for name in NAMES}
TORCH_UPDATE_MODULES = [f"torch.optim.{name}" for name in ("sgd", "adam", "adagrad", "rmsprop")]


def _forbidden(*args, **kwargs):
    raise AssertionError("torch.optim's update was called")


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_update_is_ours_not_torch_optims(monkeypatch, name, backend, gen):
    """torch.optim's update functions are never called, and breaking ours changes the result."""
    for module in map(importlib.import_module, TORCH_UPDATE_MODULES):
        for attr in dir(module):
            if (
                attr.startswith(("_single_tensor", "_multi_tensor", "_fused"))
                or attr in NAMES_LOWER
            ):
                monkeypatch.setattr(module, attr, _forbidden)
    ref, ours, theirs, mine = pair(RICH[name], backend, torch.float64, gen)
    give_grads(ref, ours, gen)
    with pytest.raises(AssertionError, match="torch.optim's update was called"):
        theirs.step()  # the patch is in the way of torch.optim ...
    before = [p.detach().clone() for p in ours]
    mine.step()  # ... and not of ours
    assert not torch.equal(ours[0], before[0])
    update = {"AdamW": "adam"}.get(name, name.lower())
    module = scratch.optim.optimizer._UPDATES[backend]
    monkeypatch.setattr(module, update, lambda *args, **kwargs: None)
    after = [p.detach().clone() for p in ours]
    mine.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, after, strict=True))


def test_unsupported_option_loaded_from_a_torch_state_dict_is_named_at_step():
    param = torch.zeros(3, requires_grad=True)
    opt = so.SGD([param], momentum=0.9)
    opt.load_state_dict(torch.optim.SGD([param], momentum=0.9, foreach=True).state_dict())
    param.grad = torch.ones(3)
    with pytest.raises(NotImplementedError, match="SGD: foreach=True is not supported"):
        opt.step()
    assert torch.equal(param, torch.zeros(3))  # refused before any update


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_a_parameter_whose_elements_share_memory_is_refused_as_torch(name, backend):
    """An expanded leaf (stride 0): torch's in-place update raises; NumPy would write through."""
    outcomes = []
    for make in (getattr(torch.optim, name), partial(getattr(so, name), backend=backend)):
        store = torch.arange(3.0)
        param = store.expand(4, 3).detach().requires_grad_()
        opt = make([param], lr=0.1)
        param.grad = torch.ones(4, 3)
        outcomes.append(_raised(opt.step))
        assert torch.equal(store, torch.arange(3.0))  # nothing written
    assert outcomes[0][0] is RuntimeError and outcomes[1] == outcomes[0]


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_gradients_give_torchs_values_without_a_warning(name, backend, gen):
    """inf and NaN are values: the same NaN/inf pattern as torch.optim, and no RuntimeWarning
    (under `-W error` NumPy's would stop the update half-way, the state changed, not the param)."""
    ref, ours, theirs, mine = pair(RICH[name], backend, torch.float64, gen)
    give_grads(ref, ours, gen)
    for params in (ref, ours):
        params[0].grad[0, :3] = torch.tensor([math.inf, -math.inf, math.nan])
    theirs.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mine.step()
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert ours[0].isnan().any()


def test_meta_parameters_on_the_numpy_backend_name_the_torch_backend():
    param = torch.nn.Parameter(torch.empty(3, device="meta"))
    param.grad = torch.empty_like(param)
    with pytest.raises(NotImplementedError, match="meta tensor has none: use backend='torch'"):
        so.Adam([param], backend="numpy").step()
    so.Adam([param], backend="torch").step()  # shapes only: runs
