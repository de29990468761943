"""scratch.optim against torch.optim: every option, both backends, state dicts both ways.

The torch backend repeats torch.optim's single-tensor op order, so it must be bit-exact; the
NumPy backend rounds some fused multiply-adds twice and must agree to 1e-12 of each parameter's
scale after every one of many steps (measured: a few 1e-15).
"""

import copy
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import scratch
import scratch.optim as so
from scratch.kernels import DEFAULT_BACKEND

NAMES = ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop")
STEPS = 20


@dataclass(frozen=True)
class OptCase:
    """A named optimizer configuration: the class name and its keyword arguments."""

    name: str
    optimizer: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    backends: tuple[str, ...] = scratch.BACKENDS


def _lr(value: float) -> torch.Tensor:
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
    OptCase("sgd-tensor-lr", "SGD", {"lr": _lr(0.1), "momentum": 0.9}),
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
    OptCase("adam-tensor-lr", "Adam", {"lr": _lr(0.01), "weight_decay": 0.1}),
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
    OptCase("adamw-tensor-lr", "AdamW", {"lr": _lr(0.01), "weight_decay": 0.1}),
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
    OptCase("adagrad-tensor-lr", "Adagrad", {"lr": _lr(0.1), "lr_decay": 0.05}),
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
    OptCase("rmsprop-tensor-lr", "RMSprop", {"lr": _lr(0.01), "momentum": 0.9}),
]
BY_NAME = {case.name: case for case in CASES}
RICH = {  # one configuration per optimizer with its state-carrying options on
    "SGD": BY_NAME["sgd-all"],
    "Adam": BY_NAME["adam-all"],
    "AdamW": BY_NAME["adamw-amsgrad-wd"],
    "Adagrad": BY_NAME["adagrad-all"],
    "RMSprop": BY_NAME["rmsprop-all"],
}


def _params(gen: torch.Generator, dtype: torch.dtype) -> list[torch.Tensor]:
    """A matrix, a 0-d parameter, a non-contiguous (transposed) leaf, one that never gets a grad."""
    shapes = [(4, 5), (), (6, 3), (3,)]
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    params[2] = params[2].t()  # (3, 6), strides (1, 3)
    return [p.requires_grad_() for p in params]


def _groups(params: list[torch.Tensor], lr: Any) -> list[dict[str, Any]]:
    """Two param groups; the second with half the learning rate (a tensor if lr is one)."""
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr * 0.5}]


def _pair(case: OptCase, backend: str, dtype: torch.dtype, gen: torch.Generator):
    """torch.optim's and scratch.optim's optimizer on equal copies of the same parameters."""
    ref = _params(gen, dtype)
    ours = [p.detach().clone().requires_grad_() for p in ref]
    assert not ours[2].is_contiguous()
    torch_cls = getattr(torch.optim, case.optimizer)
    lr = case.kwargs.get("lr", inspect.signature(torch_cls).parameters["lr"].default)
    theirs = torch_cls(_groups(ref, lr), foreach=False, **case.kwargs)
    mine = getattr(so, case.optimizer)(
        _groups(ours, lr), foreach=False, backend=backend, **case.kwargs
    )
    return ref, ours, theirs, mine


def _give_grads(ref, ours, gen: torch.Generator) -> None:
    """The same fresh random gradient on each pair of parameters, except the last (never)."""
    for a, b in zip(ref[:-1], ours[:-1], strict=True):
        a.grad = torch.randn(a.shape, generator=gen, dtype=a.dtype)
        b.grad = a.grad.clone()


def _assert_same(ours, ref, backend: str) -> None:
    """Bit-exact on the torch backend; within 1e-12 of each tensor's scale on NumPy."""
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and a.stride() == b.stride()
        if backend == "torch":
            assert torch.equal(a, b), (a - b).abs().max()
        else:
            scale = b.abs().max().item()
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * scale)


def _state_tensors(opt: torch.optim.Optimizer) -> list[tuple[int, str, torch.Tensor]]:
    """Every tensor of a state dict, by parameter index and state key."""
    state = opt.state_dict()["state"]
    return [(i, key, value) for i in sorted(state) for key, value in state[i].items()]


def _cases():
    return [(case, backend) for case in CASES for backend in case.backends]


@pytest.mark.parametrize(("case", "backend"), _cases(), ids=[f"{c.name}-{b}" for c, b in _cases()])
def test_steps_match_torch_float64(case, backend, gen):
    ref, ours, theirs, mine = _pair(case, backend, torch.float64, gen)
    untouched = ours[-1].detach().clone()
    for _ in range(STEPS):
        _give_grads(ref, ours, gen)
        theirs.step()
        mine.step()
        _assert_same(ours, ref, backend)
    assert torch.equal(ours[-1], untouched)  # no gradient, no update
    got, want = _state_tensors(mine), _state_tensors(theirs)
    assert [(i, k) for i, k, _ in got] == [(i, k) for i, k, _ in want]
    _assert_same([v for *_, v in got], [v for *_, v in want], backend)
    assert mine.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_steps_match_torch_float32(name, backend, gen):
    ref, ours, theirs, mine = _pair(RICH[name], backend, torch.float32, gen)
    for _ in range(STEPS):
        _give_grads(ref, ours, gen)
        theirs.step()
        mine.step()
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b)  # float32 defaults: rtol 1.3e-6, atol 1e-5


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


def _run(opt, params, grads) -> None:
    for g in grads:
        for p, gp in zip(params, g, strict=True):
            p.grad = gp.clone()
        opt.step()


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_moves_torch_to_scratch_to_torch(name, backend, gen):
    """torch 5 steps -> scratch 5 steps -> torch 5 steps equals torch 15 steps."""
    case, torch_cls, ours_cls = RICH[name], getattr(torch.optim, name), getattr(so, name)
    start = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in ((4, 3), (3,))]
    grads = [[torch.randn_like(p) for p in start] for _ in range(15)]

    def fresh():
        return [p.clone().requires_grad_() for p in start]

    straight = fresh()
    _run(torch_cls(straight, foreach=False, **case.kwargs), straight, grads)

    params = fresh()
    first = torch_cls(params, foreach=False, **case.kwargs)
    _run(first, params, grads[:5])
    middle = ours_cls(params, foreach=False, backend=backend, **case.kwargs)
    middle.load_state_dict(first.state_dict())
    assert set(middle.state[params[0]]) == set(first.state[params[0]])
    _run(middle, params, grads[5:10])
    last = torch_cls(params, foreach=False, **case.kwargs)
    last.load_state_dict(middle.state_dict())
    _run(last, params, grads[10:])
    _assert_same(params, straight, backend)


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_step_lr_scheduler_and_zero_grad(backend, gen):
    start = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    runs = []
    for make in (torch.optim.SGD, lambda p, **kw: so.SGD(p, backend=backend, **kw)):
        param = start.clone().requires_grad_()
        opt = make([param], lr=0.2, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        lrs = []
        for step in range(10):
            opt.zero_grad()
            assert param.grad is None  # set_to_none=True, torch's default
            (param.sin() * (step + 1)).sum().backward()
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        runs.append((param, lrs))
    (want, want_lrs), (got, got_lrs) = runs
    assert got_lrs == want_lrs and want_lrs[-1] == 0.2 * 0.5**3
    _assert_same([got], [want], backend)


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_closure_is_called_and_its_loss_returned(backend, gen):
    """An LBFGS-style closure (zero_grad, forward, backward, return loss) with SGD."""
    target = torch.randn(6, generator=gen, dtype=torch.float64)
    start = torch.zeros(6, dtype=torch.float64)
    results = []
    for make in (torch.optim.SGD, lambda p, **kw: so.SGD(p, backend=backend, **kw)):
        x = start.clone().requires_grad_()
        opt = make([x], lr=0.1, momentum=0.5, nesterov=True)

        def closure(x=x, opt=opt):
            opt.zero_grad()
            loss = ((x - target) ** 2).sum()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(25)]
        results.append((x, losses))
    (want, want_losses), (got, got_losses) = results
    assert got_losses[-1] < 1e-3 * got_losses[0]  # it converges: the closure's grads were used
    torch.testing.assert_close(
        torch.tensor(got_losses), torch.tensor(want_losses), rtol=1e-12, atol=0
    )
    _assert_same([got], [want], backend)


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
    with pytest.raises(NotImplementedError, match=option):  # ... and checked per param group
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], option: value})


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
    ref, ours, theirs, mine = _pair(RICH[name], backend, torch.float64, gen)
    _give_grads(ref, ours, gen)
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


NAMES_LOWER = {name.lower() for name in NAMES}
TORCH_UPDATE_MODULES = [f"torch.optim.{name}" for name in ("sgd", "adam", "adagrad", "rmsprop")]


def _forbidden(*args, **kwargs):
    raise AssertionError("torch.optim's update was called")


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_deepcopy_keeps_the_backend_and_the_state(backend, gen):
    param = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    opt = so.Adam([param], lr=0.1, backend=backend)
    param.grad = torch.ones_like(param)
    opt.step()
    twin = copy.deepcopy(opt)
    assert twin.backend == backend and twin.state_dict()["state"][0]["step"].item() == 1.0


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", ["Adam", "Adagrad", "RMSprop"])
def test_old_state_dicts_with_float_steps_load(name, backend, gen):
    """State dicts from before torch kept `step` as a tensor load into both the same way."""
    start = torch.randn(4, generator=gen, dtype=torch.float64)
    grads = [torch.randn(4, generator=gen, dtype=torch.float64) for _ in range(4)]
    source = start.clone().requires_grad_()
    saved = getattr(torch.optim, name)([source])
    _run(saved, [source], [grads[:1]] * 2)
    state = copy.deepcopy(saved.state_dict())
    state["state"][0]["step"] = float(state["state"][0]["step"])
    results = []
    for make in (getattr(torch.optim, name), getattr(so, name)):
        p = source.detach().clone().requires_grad_()
        opt = make([p]) if make is getattr(torch.optim, name) else make([p], backend=backend)
        opt.load_state_dict(copy.deepcopy(state))
        assert torch.is_tensor(opt.state[p]["step"])
        _run(opt, [p], [grads[1:2], grads[2:3]])
        results.append(p)
    _assert_same(results[1:], results[:1], backend)


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_param_group_added_later(name, backend, gen):
    start = [torch.randn(3, generator=gen, dtype=torch.float64) for _ in range(2)]
    grads = [
        [torch.randn(3, generator=gen, dtype=torch.float64) for _ in range(2)] for _ in range(6)
    ]
    results = []
    for make in (
        getattr(torch.optim, name),
        lambda p, **kw: getattr(so, name)(p, backend=backend, **kw),
    ):
        params = [p.clone().requires_grad_() for p in start]
        opt = make(params[:1], lr=0.05)
        opt.add_param_group({"params": params[1:], "lr": 0.01})
        _run(opt, params, grads)
        results.append(params)
    _assert_same(results[1], results[0], backend)
