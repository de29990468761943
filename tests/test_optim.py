"""scratch.optim against torch.optim: every option, both backends, state dicts both ways.

The torch backend repeats torch.optim's single-tensor op order, so it must be bit-exact (float64
and float32); the NumPy backend rounds some fused multiply-adds twice and must agree to 1e-12 of
each parameter's scale after every one of many steps (measured: under 1e-15 per step).
"""

import copy

import pytest
import torch
from optim_cases import (
    CASES,
    NAMES,
    RICH,
    STEPS,
    assert_same,
    give_grads,
    pair,
    run_steps,
    state_tensors,
)

import scratch
import scratch.optim as so
from scratch.optim import _numpy


def _cases():
    return [(case, backend) for case in CASES for backend in case.backends]


@pytest.mark.parametrize(("case", "backend"), _cases(), ids=[f"{c.name}-{b}" for c, b in _cases()])
def test_steps_match_torch_float64(case, backend, gen):
    ref, ours, theirs, mine = pair(case, backend, torch.float64, gen)
    untouched = ours[-1].detach().clone()
    for _ in range(STEPS):
        give_grads(ref, ours, gen)
        theirs.step()
        mine.step()
        assert_same(ours, ref, backend)
    assert torch.equal(ours[-1], untouched)  # no gradient, no update
    got, want = state_tensors(mine), state_tensors(theirs)
    assert [(i, k) for i, k, _ in got] == [(i, k) for i, k, _ in want]
    assert_same([v for *_, v in got], [v for *_, v in want], backend)
    assert mine.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]


@pytest.mark.parametrize(("case", "backend"), _cases(), ids=[f"{c.name}-{b}" for c, b in _cases()])
def test_steps_match_torch_float32(case, backend, gen):
    """float32: the torch backend still bit-exact, NumPy within torch.testing's defaults."""
    ref, ours, theirs, mine = pair(case, backend, torch.float32, gen)
    for _ in range(STEPS):
        give_grads(ref, ours, gen)
        theirs.step()
        mine.step()
        for a, b in zip(ours, ref, strict=True):
            if backend == "torch":
                assert torch.equal(a, b), (a - b).abs().max()
            else:
                torch.testing.assert_close(a, b)  # float32 defaults: rtol 1.3e-6, atol 1e-5


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
    run_steps(torch_cls(straight, foreach=False, **case.kwargs), straight, grads)

    params = fresh()
    first = torch_cls(params, foreach=False, **case.kwargs)
    run_steps(first, params, grads[:5])
    middle = ours_cls(params, foreach=False, backend=backend, **case.kwargs)
    middle.load_state_dict(first.state_dict())
    assert set(middle.state[params[0]]) == set(first.state[params[0]])
    run_steps(middle, params, grads[5:10])
    last = torch_cls(params, foreach=False, **case.kwargs)
    last.load_state_dict(middle.state_dict())
    run_steps(last, params, grads[10:])
    assert_same(params, straight, backend)


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
    assert_same([got], [want], backend)


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
    assert_same([got], [want], backend)


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
    run_steps(saved, [source], [grads[:1]] * 2)
    state = copy.deepcopy(saved.state_dict())
    state["state"][0]["step"] = float(state["state"][0]["step"])
    results = []
    for make in (getattr(torch.optim, name), getattr(so, name)):
        p = source.detach().clone().requires_grad_()
        opt = make([p]) if make is getattr(torch.optim, name) else make([p], backend=backend)
        opt.load_state_dict(copy.deepcopy(state))
        assert torch.is_tensor(opt.state[p]["step"])
        run_steps(opt, [p], [grads[1:2], grads[2:3]])
        results.append(p)
    assert_same(results[1:], results[:1], backend)


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
        run_steps(opt, params, grads)
        results.append(params)
    assert_same(results[1], results[0], backend)


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_step_hooks_run_around_our_step(backend):
    param = torch.ones(2, requires_grad=True)
    opt = so.RMSprop([param], backend=backend)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", param.sum().item())))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", param.sum().item())))
    param.grad = torch.ones(2)
    opt.step()
    assert [c[0] for c in calls] == ["pre", "post"] and calls[0][1] == 2.0 > calls[1][1]


@pytest.mark.parametrize("backend", scratch.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_update_writes_into_the_parameter_memory(name, backend, gen):
    param = torch.randn(6, 4, generator=gen, dtype=torch.float64).t().requires_grad_()
    alias, address = param.detach(), param.data_ptr()  # shares param's storage
    opt = getattr(so, name)([param], lr=0.1, backend=backend)
    param.grad = torch.randn(param.shape, generator=gen, dtype=torch.float64)
    before = alias.clone()
    opt.step()
    assert param.data_ptr() == address and torch.equal(alias, param)
    assert not torch.equal(alias, before) and param.stride() == (1, 4)


@pytest.mark.parametrize("dampening", [0.0, 0.3])
def test_numpy_sgd_update_in_chunks_is_the_plain_update(dampening, gen):
    """A parameter over the NumPy update's chunk (64 Ki elements, and a ragged last chunk):
    bit for bit `buf = mu * buf + (1 - tau) * g; p += -lr * buf` written out whole, on a
    contiguous parameter and on a transposed (non-contiguous) view of one."""
    for shape, transposed in [((3, 70001), False), ((300, 500), True)]:
        p, g, buf = (torch.randn(shape, generator=gen) for _ in range(3))
        p, g, buf = (t.T if transposed else t for t in (p, g, buf))
        want_p, want_buf = p.numpy().copy(), buf.numpy().copy()
        want_buf *= 0.9
        want_buf += (1 - dampening) * g.numpy()
        want_p += -0.1 * want_buf
        options = dict(lr=0.1, weight_decay=0.0, momentum=0.9, dampening=dampening)
        options["decay_in_place"] = False
        _numpy.sgd(
            p.numpy(),
            g.numpy(),
            buf.numpy(),
            fresh_buffer=False,
            nesterov=False,
            maximize=False,
            **options,
        )
        assert p.numel() > _numpy._CHUNK
        assert (p.numpy() == want_p).all() and (buf.numpy() == want_buf).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_public_method_of_torchs_optimizer_is_ours_too(name):
    """torch.optim.X's public API (Adagrad's share_memory, ...) is on scratch.optim.X."""
    theirs = {a for a in dir(getattr(torch.optim, name)) if not a.startswith("_")}
    assert theirs - set(dir(getattr(so, name))) == set()


@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_adagrad_share_memory_shares_its_sums(backend):
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)]
    opt = so.Adagrad(params, initial_accumulator_value=0.5, backend=backend)
    assert not any(opt.state[p]["sum"].is_shared() for p in params)
    opt.share_memory()
    assert all(opt.state[p]["sum"].is_shared() for p in params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()  # the update writes into the shared memory
    assert all(torch.equal(opt.state[p]["sum"], torch.full_like(p, 1.5)) for p in params)


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("backend", scratch.BACKENDS)
def test_sgd_weight_decay_tensor_that_requires_grad(backend, maximize, gen):
    """torch's differentiable path: the decay goes into p.grad itself (unless maximize made a
    negated copy); the parameters and their gradients after each step are torch's."""

    def make(cls, **kwargs):
        params = [torch.ones(4, dtype=torch.float64, requires_grad=True) for _ in range(2)]
        wd = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        opt = cls(params, lr=0.1, momentum=0.9, weight_decay=wd, maximize=maximize, **kwargs)
        return params, opt

    (ref, theirs), (ours, mine) = make(torch.optim.SGD), make(so.SGD, backend=backend)
    for _ in range(3):
        give_grads(ref, ours, gen)
        theirs.step()
        mine.step()
        assert_same(ours, ref, backend)
        assert_same([p.grad for p in ours[:-1]], [p.grad for p in ref[:-1]], backend)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_is_torchs_on_the_torch_backend_refused_on_numpy(name, dtype, gen):
    """torch rounds each op of a half update from float32, which the torch backend repeats
    (bit-exact); NumPy's float16 arithmetic rounds the scalars too, so it refuses clearly."""
    ref, ours, theirs, mine = pair(RICH[name], "torch", dtype, gen)
    for _ in range(STEPS):
        give_grads(ref, ours, gen)
        theirs.step()
        mine.step()
        assert_same(ours, ref, "torch")
    param = torch.ones(3, dtype=dtype, requires_grad=True)
    param.grad = torch.ones_like(param)
    with pytest.raises(TypeError, match="backend='torch'"):
        getattr(so, name)([param], backend="numpy").step()
    assert torch.equal(param, torch.ones_like(param))
