"""The autograd bridge: dtype/device kept, inputs untouched, needs_input_grad honoured."""

import types

import pytest
import torch

import scratch
import scratch.functional as F
from scratch.autograd import Call

BACKENDS = scratch.BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(backend, dtype):
    x = torch.randn(4, 3, dtype=dtype, requires_grad=True)
    w = torch.randn(2, 3, dtype=dtype, requires_grad=True)
    y = F.linear(x, w, backend=backend)
    y.sum().backward()
    for t in (y, x.grad, w.grad):
        assert t.dtype == dtype and t.device == x.device


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_are_not_modified_and_outputs_do_not_alias(backend):
    x = torch.randn(2, 3, 4)
    before = x.clone()
    y = F.flatten(x, 1, backend=backend)
    y.zero_()
    assert torch.equal(x, before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_needs_input_grad_skips_work(monkeypatch, backend):
    kernels = scratch.autograd.kernels(backend)
    seen = []
    real = kernels.linear_backward

    def spy(cache, grad_y, needs):
        seen.append(needs)
        return real(cache, grad_y, needs)

    monkeypatch.setattr(kernels, "linear_backward", spy)
    x = torch.randn(4, 3)  # a data batch: no grad
    w = torch.randn(2, 3, requires_grad=True)
    F.linear(x, w, torch.zeros(2), backend=backend).sum().backward()
    assert seen == [(False, True, False)]
    assert w.grad is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_gradient_is_an_error_not_a_zero(monkeypatch, backend):
    kernels = scratch.autograd.kernels(backend)
    monkeypatch.setattr(kernels, "linear_backward", lambda cache, g, needs: (None, None, None))
    w = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(NotImplementedError, match="argument 1"):
        F.linear(torch.randn(4, 3), w, backend=backend).sum().backward()


def test_numpy_kernels_cannot_write_into_inputs(monkeypatch):
    kernels = scratch.autograd.kernels("numpy")

    def writes(x):
        x[...] = 0
        return x, None

    monkeypatch.setattr(kernels, "relu_forward", writes, raising=False)
    with pytest.raises(ValueError, match="read-only"):
        F.relu(torch.randn(3), backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_dtypes_raise_like_torch(backend):
    x = torch.randn(4, 3, dtype=torch.float64)
    w = torch.randn(2, 3)
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(x, w)
    with pytest.raises(RuntimeError, match="same floating dtype"):
        F.linear(x, w, backend=backend)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        F.relu(torch.randn(3), backend="jax")


INPLACE_OPS = {  # torch's in-place op, ours, on a tensor
    "relu": (torch.relu_, lambda x, b: F.relu(x, inplace=True, backend=b)),
    "leaky_relu": (
        lambda x: torch.nn.functional.leaky_relu(x, 0.1, inplace=True),
        lambda x, b: F.leaky_relu(x, 0.1, inplace=True, backend=b),
    ),
    "dropout": (
        lambda x: torch.nn.functional.dropout(x, 0.5, inplace=True),
        lambda x, b: F.dropout(x, 0.5, inplace=True, backend=b),
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", INPLACE_OPS)
def test_inplace_on_leaf_raises_like_torch(op, backend):
    """torch's error for a leaf that requires grad, or a view of one, raised before anything
    is written: the tensor is left as it was. Under no_grad the op runs, as torch's."""
    theirs, ours = INPLACE_OPS[op]
    leaf = torch.randn(6, requires_grad=True)
    before = leaf.detach().clone()
    for target in (leaf, leaf[1:4]):
        messages = []
        for run in (theirs, lambda t: ours(t, backend)):
            with pytest.raises(RuntimeError) as raised:
                run(target)
            messages.append(str(raised.value))
            assert torch.equal(leaf.detach(), before)
        assert messages[0] == messages[1]
    changed = []  # under no_grad the op runs on the leaf, as torch's (dropout: the same mask)
    for run in (theirs, lambda t: ours(t, backend)):
        x = torch.tensor([-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], requires_grad=True)
        torch.manual_seed(0)
        with torch.no_grad():
            run(x)
        changed.append(x.detach())
    assert torch.equal(changed[0], changed[1])
    assert not torch.equal(changed[0], torch.tensor([-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_inplace_relu_writes_into_its_input(layout, backend, monkeypatch):
    """A contiguous input is written by the backend's in-place kernel (relu_forward is never
    called); a non-contiguous one gets the fresh output copied in. Either way the result is the
    input itself, with torch's values and gradient, NaN included."""
    kernels = scratch.autograd.kernels(backend)
    if layout == "contiguous":
        monkeypatch.setattr(kernels, "relu_forward", None)  # the in-place kernel only
    base = torch.tensor([[-1.0, 2.0, float("nan")], [0.0, -0.0, 3.0]], dtype=torch.float64)
    if layout == "transposed":
        base = base.t()
    leaf, theirs = base.clone().requires_grad_(), base.clone().requires_grad_()
    x = leaf * 1
    pointer = x.data_ptr()
    y = F.relu(x, inplace=True, backend=backend)
    expected = torch.relu_(theirs * 1)
    assert y is x and y.data_ptr() == pointer
    torch.testing.assert_close(y, expected, equal_nan=True, rtol=0, atol=0)
    grad = torch.full_like(y, float("inf"))
    y.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(leaf.grad, theirs.grad, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reduced_precision_ops_do_not_see_in_place_kernels(backend):
    """An op computed in float32 for a float16 input copies its rounded output in: in-place
    kernels compute in the input's dtype, so the float32 view of a backend hides them."""
    from scratch.kernels.dtypes import opmath

    view = opmath("leaky_relu", scratch.autograd.kernels(backend), torch.float16)
    assert getattr(view, "relu_forward_", None) is None
    assert view.relu_forward is not None


def test_numpy_backend_writes_in_place_on_the_cpu_only():
    kernels = scratch.autograd.kernels("numpy")
    x = torch.randn(3)
    kernels.writable(x)[0] = 7.0
    assert x[0] == 7.0
    assert kernels.writable(torch.empty(3, device="meta")) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", BACKENDS)
def test_cuda_round_trip(backend):
    x = torch.randn(4, 3, device="cuda", requires_grad=True)
    w = torch.randn(2, 3, device="cuda", requires_grad=True)
    y = F.linear(x, w, backend=backend)
    y.sum().backward()
    assert y.device.type == x.grad.device.type == w.grad.device.type == "cuda"
    torch.testing.assert_close(y, torch.nn.functional.linear(x, w))


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_change_of_a_saved_input_raises_like_torch(backend):
    """linear's backward reads x: modifying x before backward must raise, as torch does."""
    for linear in (torch.nn.functional.linear, lambda x, w: F.linear(x, w, backend=backend)):
        x = torch.randn(4, 3)
        w = torch.randn(2, 3, requires_grad=True)
        y = linear(x, w)
        x.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_change_of_a_saved_output_raises_like_torch(backend):
    """sigmoid's backward reads its output: modifying the output must raise, as torch does."""
    for sigmoid in (torch.sigmoid, lambda x: F.sigmoid(x, backend=backend)):
        x = torch.randn(4, requires_grad=True)
        y = sigmoid(x)
        y.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def _backend_with(backend: str, forward, backward) -> types.ModuleType:
    """A kernel module with one pair, `probe`, and the built-in `backend`'s conversions."""
    base = scratch.autograd.kernels(backend)
    module = types.ModuleType(f"probe_{backend}")
    for name in ("from_tensor", "to_tensor", "shares", "fresh", "host_copy"):
        setattr(module, name, getattr(base, name))
    module.probe_forward, module.probe_backward = forward, backward
    return module


_Probe = scratch.autograd.kernel_function("probe")


def _double_backward(cache, grad_y, needs):
    return (grad_y * 2,)


def _keeps_a_view_of_x(x):
    return x * 2, (x.reshape(-1),)


def _returns_a_view_of_its_buffer(x):
    buffer = x * 2  # fresh: no input's memory, but the output views it
    return buffer.reshape(-1).reshape(x.shape), (buffer,)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "forward, changed", [(_keeps_a_view_of_x, "input"), (_returns_a_view_of_its_buffer, "output")]
)
def test_inplace_change_of_memory_a_cache_reads_raises(backend, forward, changed):
    """A cache reading a tensor's memory without holding the tensor itself (a view of the
    input; a buffer the output views): changing that tensor in place before backward must
    raise, as torch does for a saved tensor."""
    module = _backend_with(backend, forward, _double_backward)
    w = torch.randn(3, 4, requires_grad=True)
    _Probe.apply(Call.of(module), w * 1).sum().backward()  # unchanged: fine
    torch.testing.assert_close(w.grad, torch.full((3, 4), 2.0))
    h = w * 1  # a non-leaf, free to change in place
    y = _Probe.apply(Call.of(module), h)
    (h if changed == "input" else y).mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_change_of_relu_input_is_fine_like_torch(backend):
    """ReLU keeps a fresh mask, not x: changing x after it is no error, as with torch's relu."""
    grads = []
    for relu in (torch.relu, lambda v: F.relu(v, backend=backend)):
        x = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
        h = x * 1
        y = relu(h)
        h.sub_(1)  # would move 0.5 below the kink: the mask must be the forward's
        y.sum().backward()
        grads.append(x.grad)
    assert grads[0].tolist() == grads[1].tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_relu_after_linear_is_fine(backend):
    """The VGG pattern: an in-place ReLU on a layer's output must not trip the version check."""
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(2, 3, requires_grad=True)
    F.relu(F.linear(x, w, backend=backend), inplace=True, backend=backend).sum().backward()
    assert x.grad is not None and w.grad is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_output_is_freed_without_gc(backend):
    """No reference cycle through ctx: an in-place layer's output dies with its last reference."""
    import weakref

    x = torch.randn(100, requires_grad=True)
    y = F.relu(x * 1, inplace=True, backend=backend)
    alive = weakref.ref(y)
    del y
    assert alive() is None


# op -> f(functional module, x, **backend): ops whose gradient must not be differentiable
_CREATE_GRAPH_OPS = {
    "sigmoid": lambda f, x, **kw: f.sigmoid(x, **kw),
    "linear": lambda f, x, **kw: f.linear(x, torch.ones(2, 5, dtype=x.dtype), **kw),
    "conv2d": lambda f, x, **kw: f.conv2d(
        x.view(1, 1, 4, 5), torch.ones(2, 1, 3, 3, dtype=x.dtype), **kw
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(_CREATE_GRAPH_OPS))
def test_create_graph_raises(op, backend):
    """create_graph=True asks for a gradient autograd can differentiate, which a hand-written
    backward cannot give: it raises, whether or not the upstream gradient needs grad. (Under
    torch's once_differentiable the gradient came back as a constant where it did not: a
    gradient penalty silently dropped out of the loss's gradient.) A plain backward still
    gives torch's gradient."""
    call = _CREATE_GRAPH_OPS[op]
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    for upstream in (lambda y: y.sum(), lambda y: (y * y).sum()):  # the second needs grad
        y = call(F, x, backend=backend)
        with pytest.raises(RuntimeError, match=f"scratch {op.removesuffix('2d')}: .*create_graph"):
            torch.autograd.grad(upstream(y), x, create_graph=True)
        (want,) = torch.autograd.grad(upstream(call(torch.nn.functional, x)), x)
        (got,) = torch.autograd.grad(upstream(call(F, x, backend=backend)), x)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
