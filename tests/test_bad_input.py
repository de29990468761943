"""Named rows for bad and odd input: the dtype rule, argument types, in-place changes before
backward, and every requires_grad subset of linear and batch norm, each next to torch."""

from __future__ import annotations

import itertools
import weakref

import pytest
import torch
import torch.nn.functional as TF

import scratch.functional as F
import scratch.nn
from scratch.kernels import BACKENDS
from scratch.kernels.dtypes import _TABLE, ALWAYS, DtypeNotSupported, computed

# --- The dtype rule (scratch/kernels/dtypes.py) -------------------------------------------------

X = torch.tensor([[0, 1, 250, 3]], dtype=torch.int64)
COMPUTED = {  # torch computes these; so do we, result dtype included
    "sigmoid-uint8": (lambda f, **k: f.sigmoid(X.to(torch.uint8), **k)),
    "tanh-int32": (lambda f, **k: f.tanh(X.to(torch.int32), **k)),
    "sigmoid-bool": (lambda f, **k: f.sigmoid(X > 1, **k)),
    "relu-int64": (lambda f, **k: f.relu(X - 2, **k)),
    "maxpool2d-int32": (lambda f, **k: f.max_pool2d(X.to(torch.int32).reshape(1, 1, 2, 2), 2, **k)),
    "sigmoid-float16": (lambda f, **k: f.sigmoid(X.to(torch.float16), **k)),
    "tanh-float16": (lambda f, **k: f.tanh(X.to(torch.float16), **k)),
    "flatten-bool": (lambda f, **k: f.flatten(X.reshape(2, 2) > 1, **k)),
}
REFUSED = {  # torch refuses (or computes what we refuse): DtypeNotSupported, never a wrong value
    "sigmoid-complex64": (lambda f, **k: f.sigmoid(X.to(torch.complex64), **k)),
    "tanh-complex128": (lambda f, **k: f.tanh(X.to(torch.complex128), **k)),
    "relu-bool": (lambda f, **k: f.relu(X > 1, **k)),
    "gelu-int64": (lambda f, **k: f.gelu(X, **k)),
    "softmax-int64": (lambda f, **k: f.softmax(X, 1, **k)),
    "adaptiveavgpool1d-int64": (lambda f, **k: f.adaptive_avg_pool1d(X[None], 2, **k)),
    "avgpool1d-int64": (lambda f, **k: f.avg_pool1d(X[None], 2, **k)),
    "maxpool1d-int64": (lambda f, **k: f.max_pool1d(X[None], 2, **k)),
    "batchnorm-int64": (
        lambda f, **k: f.batch_norm(X.reshape(2, 2), None, None, training=True, **k)
    ),
    "linear-int64": (lambda f, **k: f.linear(X, torch.ones(2, 4), **k)),
    "conv1d-int64": (lambda f, **k: f.conv1d(X[None], torch.ones(1, 1, 2), **k)),
    "dropout-int64": (lambda f, **k: f.dropout(X, 0.5, **k)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("row", COMPUTED, ids=str)
def test_dtype_torch_computes(row, backend):
    """Values and result dtype as torch's."""
    expected = COMPUTED[row](
        TF if row.split("-")[0] not in ("sigmoid", "tanh", "flatten") else torch
    )
    actual = COMPUTED[row](F, backend=backend)
    assert actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("row", REFUSED, ids=str)
def test_dtype_refused(row, backend):
    """A refusal names the dtype and the backend and is the RuntimeError family torch raises."""
    with pytest.raises(DtypeNotSupported, match="torch\\.") as info:
        REFUSED[row](F, backend=backend)
    assert isinstance(info.value, NotImplementedError | RuntimeError)


def test_always_computed_dtypes_are_in_every_entry():
    """The bridge skips the dtype gate for ALWAYS: every op must compute them on every backend."""
    for op in _TABLE:
        for backend in BACKENDS:
            name, _, rank = op.partition("/")
            options = (("kernel_size", (2,) * int(rank)),) if rank else ()
            assert ALWAYS <= computed(name, backend, options), (op, backend)


def test_bfloat16_refused_on_numpy_computed_on_torch():
    x = torch.randn(3, 4).bfloat16()
    with pytest.raises(DtypeNotSupported, match="numpy backend"):
        F.sigmoid(x, backend="numpy")
    torch.testing.assert_close(F.sigmoid(x, backend="torch"), torch.sigmoid(x))


# --- Arguments torch's parser refuses ------------------------------------------------------------

W = torch.randn(3, 4)
ARGUMENTS = {
    "linear-list-weight": (lambda f: f.linear(torch.randn(2, 4), W.tolist()), TypeError),
    "linear-list-bias": (lambda f: f.linear(torch.randn(2, 4), W, [1.0, 2.0, 3.0]), TypeError),
    "linear-0d-input": (lambda f: f.linear(torch.tensor(1.0), W), RuntimeError),
    "linear-0d-weight": (lambda f: f.linear(torch.randn(4), torch.tensor(1.0)), RuntimeError),
    "maxpool2d-ceil-mode-int": (
        lambda f: f.max_pool2d(torch.randn(1, 1, 4, 4), 2, ceil_mode=1),
        TypeError,
    ),
    "avgpool1d-count-include-pad-int": (
        lambda f: f.avg_pool1d(torch.randn(1, 1, 4), 2, count_include_pad=0),
        TypeError,
    ),
    "crossentropy-ignore-index-float": (
        lambda f: f.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), ignore_index=1.0),
        TypeError,
    ),
    "nll-ignore-index-float": (
        lambda f: f.nll_loss(torch.randn(2, 3), torch.tensor([0, 1]), ignore_index=1.0),
        TypeError,
    ),
    "batchnorm-train-running-mean-alone": (
        lambda f: f.batch_norm(torch.randn(4, 3), torch.zeros(3), None, training=True),
        ValueError,
    ),
    "batchnorm-train-running-var-alone": (
        lambda f: f.batch_norm(torch.randn(4, 3), None, torch.ones(3), training=True),
        ValueError,
    ),
    "batchnorm-train-running-mean-alone-float64": (  # both-or-neither before the dtypes
        lambda f: f.batch_norm(torch.randn(4, 3), torch.zeros(3).double(), None, training=True),
        ValueError,
    ),
    "conv2d-zero-kernel": (
        lambda f: f.conv2d(torch.randn(1, 1, 4, 4), torch.ones(2, 1, 0, 0)),
        RuntimeError,
    ),
}


@pytest.mark.parametrize("row", ARGUMENTS, ids=str)
def test_argument_types_as_torch(row):
    call, kind = ARGUMENTS[row]
    with pytest.raises(kind):
        call(TF)
    with pytest.raises(kind):
        call(F)


def test_linear_vector_weight_as_torch():
    x, w = torch.randn(2, 4), torch.randn(4)
    torch.testing.assert_close(F.linear(x, w), TF.linear(x, w))


# (input shape, bias shape) that torch broadcasts on every path, with a (4, 3) weight
BROADCAST_BIAS = [
    ((2, 3), (1,)),
    ((2, 3), ()),
    ((5, 2, 3), (1,)),
    ((5, 2, 3), ()),
    ((3,), (1,)),
    ((0, 3), (1,)),
    ((2, 3), (2, 4)),
    ((2, 3), (2, 1)),
    ((2, 3), (1, 4)),
    ((2, 3), (1, 1)),
    ((0, 3), (0, 4)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x_shape, bias_shape", BROADCAST_BIAS, ids=str)
def test_linear_broadcast_bias_as_torch(x_shape, bias_shape, backend, gen):
    """A bias torch broadcasts into the output: its values, and every gradient (the bias's
    summed where it was broadcast), in float64; gradcheck too."""

    def leaf(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_()

    x, w, b = leaf(*x_shape), leaf(4, 3), leaf(*bias_shape)
    want = TF.linear(x, w, b)
    got = F.linear(x, w, b, backend=backend)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad(got, (x, w, b), g), torch.autograd.grad(want, (x, w, b), g)
    for a, c in zip(*grads):
        assert a.shape == c.shape
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, w, b: F.linear(x, w, b, backend=backend), (x, w, b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x_shape, bias_shape, torch_computes",
    [
        ((2, 3), (5,), False),
        ((2, 3), (2,), False),
        ((2, 3), (3, 2, 4), False),
        ((5, 2, 3), (2, 1), False),
        ((3,), (1, 1), False),
        # torch computes these on one path and refuses their neighbours: scratch refuses
        ((5, 2, 3), (2, 4), True),
        ((3,), (1, 4), True),
    ],
    ids=str,
)
def test_linear_bias_refused(x_shape, bias_shape, torch_computes, backend):
    """A bias torch refuses raises its RuntimeError; one whose fate depends on torch's internal
    path raises scratch's, naming both shapes: never a result torch would not give."""
    x, w, b = torch.randn(x_shape), torch.randn(4, 3), torch.randn(bias_shape)
    if torch_computes:
        TF.linear(x, w, b)
    else:
        with pytest.raises(RuntimeError):
            TF.linear(x, w, b)
    with pytest.raises(RuntimeError, match="scratch linear" if torch_computes else "bias"):
        F.linear(x, w, b, backend=backend)


# --- In-place change of a cached tensor before backward -----------------------------------------


def _p(*shape):
    return torch.randn(shape).softmax(-1)


# op -> (call on (x, other), x's shape, other: a second tensor the cache may hold, or None)
INPLACE = {
    "linear": (lambda x, o, b: F.linear(x, o, backend=b), (3, 4), lambda: torch.randn(2, 4)),
    "conv2d": (
        lambda x, o, b: F.conv2d(x, o, backend=b),
        (1, 2, 5, 5),
        lambda: torch.randn(3, 2, 3, 3),
    ),
    "batch_norm": (
        lambda x, o, b: F.batch_norm(x, None, None, training=True, backend=b),
        (4, 3),
        None,
    ),
    "max_pool2d": (lambda x, o, b: F.max_pool2d(x, 2, backend=b), (1, 1, 4, 4), None),
    "avg_pool2d": (lambda x, o, b: F.avg_pool2d(x, 2, backend=b), (1, 1, 4, 4), None),
    "adaptive_avg_pool2d": (
        lambda x, o, b: F.adaptive_avg_pool2d(x, 3, backend=b),
        (1, 1, 4, 5),
        None,
    ),
    "relu": (lambda x, o, b: F.relu(x, backend=b), (3, 4), None),
    "leaky_relu": (lambda x, o, b: F.leaky_relu(x, 0.1, backend=b), (3, 4), None),
    "sigmoid": (lambda x, o, b: F.sigmoid(x, backend=b), (3, 4), None),
    "tanh": (lambda x, o, b: F.tanh(x, backend=b), (3, 4), None),
    "gelu": (lambda x, o, b: F.gelu(x, backend=b), (3, 4), None),
    "softmax": (lambda x, o, b: F.softmax(x, 1, backend=b), (3, 4), None),
    "log_softmax": (lambda x, o, b: F.log_softmax(x, 1, backend=b), (3, 4), None),
    "flatten": (lambda x, o, b: F.flatten(x, backend=b), (3, 4), None),
    "cross_entropy-probabilities": (
        lambda x, o, b: F.cross_entropy(x, o, backend=b),
        (3, 4),
        lambda: _p(3, 4),
    ),
    "cross_entropy-smoothing": (
        lambda x, o, b: F.cross_entropy(x, o, label_smoothing=0.2, backend=b),
        (3, 4),
        lambda: _p(3, 4),
    ),
    "nll_loss": (
        lambda x, o, b: F.nll_loss(x, o, backend=b),
        (3, 4),
        lambda: torch.tensor([0, 3, 1]),
    ),
    "mse_loss": (lambda x, o, b: F.mse_loss(x, o, backend=b), (3, 4), lambda: torch.randn(3, 4)),
    "binary_cross_entropy": (
        lambda x, o, b: F.binary_cross_entropy(x.sigmoid(), o, backend=b),
        (3, 4),
        lambda: _p(3, 4),
    ),
    "bce_with_logits": (
        lambda x, o, b: F.binary_cross_entropy_with_logits(x, o, backend=b),
        (3, 4),
        lambda: _p(3, 4),
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("changed", ["input", "other"])
@pytest.mark.parametrize("op", INPLACE, ids=str)
def test_inplace_change_before_backward(op, changed, backend, gen):
    """Changing a tensor the op read, before backward: torch's version-counter error, or (where
    our backward does not read it) the gradient of the unchanged values. Never a wrong one."""
    call, shape, make_other = INPLACE[op]
    if changed == "other" and make_other is None:
        pytest.skip("the op has one tensor input")
    base = torch.randn(shape, generator=gen, dtype=torch.float64)
    other = None if make_other is None else make_other()
    other = other.double() if other is not None and other.is_floating_point() else other

    def grads(modify: bool):
        leaf = base.clone().requires_grad_()
        x, o = leaf * 1, None if other is None else other.clone()  # x: a non-leaf, changeable
        y = call(x, o, backend)
        if modify:
            (x if changed == "input" else o).add_(1)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
        return torch.autograd.grad((y * g).sum(), leaf)[0]

    expected = grads(modify=False)
    try:
        actual = grads(modify=True)
    except RuntimeError as e:
        assert "modified by an inplace operation" in str(e)
        return
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


# --- Every requires_grad subset of linear and batch norm ----------------------------------------

SUBSETS = [s for n in range(4) for s in itertools.combinations(("input", "weight", "bias"), n)]


def _subset_grads(fn, tensors: dict, subset):
    leaves = {k: v.clone().requires_grad_(k in subset) for k, v in tensors.items()}
    y = fn(**leaves)
    if not subset:
        assert not y.requires_grad
        return {}
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    wrt = [leaves[k] for k in subset]
    return dict(zip(subset, torch.autograd.grad((y * g).sum(), wrt)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("subset", SUBSETS, ids=lambda s: "+".join(s) or "none")
@pytest.mark.parametrize("layer", ["linear", "batch_norm"])
def test_requires_grad_subsets(layer, subset, backend, gen):
    """A frozen weight with a trainable bias, a frozen input, ...: grads as torch's."""
    if layer == "linear":
        shape, weight_shape = (3, 4), (2, 4)
        fns = (TF.linear, lambda **k: F.linear(**k, backend=backend))
    else:
        shape, weight_shape = (4, 3, 2), (3,)
        fns = [
            lambda f=f, kw=kw, **k: f(
                k["input"], None, None, k["weight"], k["bias"], training=True, **kw
            )
            for f, kw in ((TF.batch_norm, {}), (F.batch_norm, {"backend": backend}))
        ]
    tensors = {
        "input": torch.randn(shape, generator=gen, dtype=torch.float64),
        "weight": torch.randn(weight_shape, generator=gen, dtype=torch.float64),
        "bias": torch.randn(weight_shape[:1], generator=gen, dtype=torch.float64),
    }
    expected, actual = (_subset_grads(fn, tensors, subset) for fn in fns)
    assert actual.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(actual[k], expected[k], rtol=1e-10, atol=1e-12)


# --- Zero-size dims torch computes: in_channels=0 ------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_in_channels_0_as_torch(d, backend, gen):
    """torch gives an empty (N, 0, *out) and zero weight/bias gradients; so do we (no reshape
    error in backward). Not in the case table: `scratch verify` should not grade a user's layer
    on this quirk of torch's."""
    torch.manual_seed(0)
    reference = getattr(torch.nn, f"Conv{d}d")(0, 3, 2).double()
    twin = getattr(scratch.nn, f"Conv{d}d")(0, 3, 2, backend=backend).double()
    twin.load_state_dict(reference.state_dict())
    x = torch.randn((2, 0, *(4,) * d), generator=gen, dtype=torch.float64)
    results = []
    for layer in (reference, twin):
        y = layer(x)
        grads = torch.autograd.grad(y.sum(), list(layer.parameters()), allow_unused=True)
        results.append(
            (
                y,
                [
                    torch.zeros_like(p) if g is None else g
                    for g, p in zip(grads, layer.parameters())
                ],
            )
        )
    (y_t, g_t), (y_s, g_s) = results
    assert y_s.shape == y_t.shape
    for a, e in zip(g_s, g_t):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("changed", ["input", "weight"])
@pytest.mark.parametrize("frozen", ["input", "weight"])
def test_linear_keeps_what_the_asked_gradients_read(frozen, changed, backend, gen):
    """torch's linear saves x only for dW and W only for grad_x: with one of them frozen, an
    in-place change of the one no asked-for gradient reads is no error, and the gradient is
    torch's; of the other, both raise. A frozen weight's x is not kept alive."""
    base = {k: torch.randn(s, generator=gen, dtype=torch.float64) for k, s in
            (("input", (3, 2, 4)), ("weight", (5, 4)))}  # fmt: skip

    def run(linear):
        leaves = {k: v.clone().requires_grad_(k != frozen) for k, v in base.items()}
        tensors = {k: v * 1 for k, v in leaves.items()}  # non-leaves: changeable in place
        y = linear(tensors["input"], tensors["weight"])
        tensors[changed].add_(1)
        (leaf,) = [v for k, v in leaves.items() if k != frozen]
        try:
            return torch.autograd.grad(y.sum(), leaf)[0]
        except RuntimeError as e:
            assert "modified by an inplace operation" in str(e)
            return "raised"

    want = run(torch.nn.functional.linear)
    got = run(lambda x, w: F.linear(x, w, backend=backend))
    # x is read by dW, needed where W is not frozen, and W by grad_x: the changed tensor is
    # read where the frozen one is the other
    assert (want == "raised") == (changed == frozen)
    if want == "raised":
        assert got == "raised"
    else:
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    x = base["input"].clone().requires_grad_() * 1  # referenced by nothing but the op
    alive = weakref.ref(x)
    y = F.linear(x, base["weight"], backend=backend)
    del x
    assert alive() is None and y.requires_grad
