"""scratch.scalar.Scalar against torch autograd in float64: the classic expression, every op,
accumulation, and Hypothesis-drawn random expressions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scratch.scalar import Scalar

TOL = {"rtol": 1e-10, "atol": 1e-12}


def close(actual: float, expected: torch.Tensor) -> None:
    torch.testing.assert_close(
        torch.tensor(actual, dtype=torch.float64), expected.detach(), equal_nan=True, **TOL
    )


def classic(x, y, z, *, fused: bool):
    """f = log σ((cos πx + sin(πy/2)) / tanh(z²)) for Scalars or 0-d tensors alike."""
    if isinstance(x, Scalar):
        u = ((math.pi * x).cos() + (math.pi * y / 2).sin()) / (z**2).tanh()
        return u.log_sigmoid() if fused else u.sigmoid().log()
    u = (torch.cos(math.pi * x) + torch.sin(math.pi * y / 2)) / torch.tanh(z**2)
    return TF.logsigmoid(u) if fused else torch.log(torch.sigmoid(u))


def against_torch(build, values, **kwargs):
    """Run `build` on Scalars and on float64 leaf tensors; compare the value and every grad."""
    ours = [Scalar(v, name) for v, name in zip(values, "xyz")]
    theirs = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in values]
    out, ref = build(*ours, **kwargs), build(*theirs, **kwargs)
    out.backward()
    grads = torch.autograd.grad(ref, theirs, allow_unused=True)
    close(out.data, ref)
    for leaf, grad in zip(ours, grads):
        close(leaf.grad, torch.zeros((), dtype=torch.float64) if grad is None else grad)
    return out


POINTS = [(0.3, -1.2, 0.7), (1.7, 2.2, -0.4), (-0.25, 0.5, 1.3), (2.0, 1.0, 0.9)]
# Large arguments: tanh(z²) with z² = 400 (e^(2z²) overflows a naive tanh), cos/sin of 1e6,
# and u near ±1e3..1e10 where exp(-u) overflows a naive sigmoid.
LARGE = [(1e6 + 0.25, 3e5 + 0.5, 20.0), (1.0, -1.0, 0.05), (1.0, -1.0, 1e-5), (0.1, 0.3, 1e-4)]


@pytest.mark.parametrize("point", POINTS, ids=str)
@pytest.mark.parametrize("fused", [False, True], ids=["log-sigmoid", "logsigmoid"])
def test_classic_expression(point, fused):
    against_torch(classic, point, fused=fused)


@pytest.mark.parametrize("point", LARGE, ids=str)
def test_classic_expression_large_arguments(point):
    out = against_torch(classic, point, fused=True)
    assert math.isfinite(out.data)


def test_sigmoid_does_not_overflow():
    # A naive 1 / (1 + math.exp(-u)) raises OverflowError at u = -710; log σ(-710) = -710.
    s = Scalar(-710.0).sigmoid()
    assert 0 < s.data < 1e-300
    assert s.log().data == pytest.approx(-710.0, rel=1e-12)
    assert Scalar(-1e4).log_sigmoid().data == -1e4
    assert Scalar(1e4).sigmoid().data == 1.0


UNARY = {
    "exp": (lambda s: s.exp(), torch.exp),
    "log": (lambda s: s.log(), torch.log),
    "sin": (lambda s: s.sin(), torch.sin),
    "cos": (lambda s: s.cos(), torch.cos),
    "tanh": (lambda s: s.tanh(), torch.tanh),
    "sigmoid": (lambda s: s.sigmoid(), torch.sigmoid),
    "log_sigmoid": (lambda s: s.log_sigmoid(), TF.logsigmoid),
    "relu": (lambda s: s.relu(), torch.relu),
    "neg": (lambda s: -s, torch.neg),
    "pow3": (lambda s: s**3, lambda t: t**3),
    "pow-half": (lambda s: s**-0.5, lambda t: t**-0.5),
    "pow0": (lambda s: s**0, lambda t: t**0),
    "rpow": (lambda s: 2.5**s, lambda t: 2.5**t),
}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("value", [-2.5, -0.3, 0.0, 0.7, 3.0, 40.0])
def test_each_function(name, value):
    ours, theirs = UNARY[name]
    against_torch(lambda x: ours(x) if isinstance(x, Scalar) else theirs(x), (value,))


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@pytest.mark.parametrize("a, b", [(1.5, -0.25), (-3.0, 7.0), (0.0, 2.0), (2.0, 0.0)], ids=str)
def test_each_binary_op_and_number_operands(op, a, b):
    fn = {"+": lambda p, q: p + q, "-": lambda p, q: p - q,
          "*": lambda p, q: p * q, "/": lambda p, q: p / q}[op]  # fmt: skip
    against_torch(fn, (a, b))
    against_torch(lambda p: fn(p, 1.75), (a,))  # Scalar op number
    against_torch(lambda p: fn(1.75, p), (b,))  # number op Scalar


def test_a_node_used_twice_accumulates():
    x = Scalar(3.0, "x")
    (x * x).backward()
    assert x.grad == 6.0  # 2x, not x
    y = x.tanh()
    z = y * y + y.exp()  # y feeds three edges
    z.zero_grad()
    z.backward()
    t = math.tanh(3.0)
    assert x.grad == pytest.approx((2 * t + math.exp(t)) * (1 - t * t), rel=1e-14)


def test_backward_twice_adds_and_zero_grad_resets():
    x, y = Scalar(0.5, "x"), Scalar(-2.0, "y")
    f = x * y + x
    f.backward()
    assert (x.grad, y.grad) == (-1.0, 0.5)  # df/dx = y + 1, df/dy = x
    f.backward()
    assert (x.grad, y.grad) == (-2.0, 1.0)  # as torch: grads accumulate across passes
    f.zero_grad()
    assert all(node.grad == 0.0 for node in f.nodes())
    f.backward()
    assert (x.grad, y.grad, f.grad) == (-1.0, 0.5, 1.0)


def test_expression_string_and_graph():
    x, y = Scalar(0.5, "x"), Scalar(-2.0, "y")
    f = ((x * y) + x.exp()).tanh() / 2
    assert f.expr() == "(tanh(((x * y) + exp(x))) / 2.0)"
    assert (x**2).expr() == "(x ** 2)"
    assert (2**x).expr() == "(2 ** x)"
    f.backward()
    lines = f.graph().splitlines()
    assert len(lines) == len(f.nodes()) == 8  # x, y, x*y, exp, +, tanh, 2.0, /
    assert lines[0].split() == ["x", "=", "input", "value", "0.5", "grad", f"{x.grad:.6g}"]
    assert "tanh(" in f.graph()
    assert repr(x).startswith("Scalar(data=0.5, grad=")


def test_ieee_semantics_as_torch():
    against_torch(lambda x: x.log() if isinstance(x, Scalar) else torch.log(x), (0.0,))  # -inf
    against_torch(lambda x: (x * 1000).exp(), (1.0,))  # inf
    against_torch(lambda x, y: x / y, (0.0, 0.0))  # nan


@pytest.mark.parametrize(
    "call",
    [lambda: Scalar("1"), lambda: Scalar(1.0) ** Scalar(2.0), lambda: Scalar(1.0) + "a",
     lambda: Scalar(Scalar(1.0)), lambda: [1] * Scalar(1.0)],
    ids=["str-data", "scalar-exponent", "add-str", "scalar-data", "list"],
)  # fmt: skip
def test_bad_operands_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


# --- Hypothesis: random expressions over shared leaves --------------------------------------

UNARY_NAMES = [n for n in UNARY if n not in ("log", "pow-half")]
leaves = st.sampled_from(["x", "y", "z"]) | st.floats(-3, 3, allow_nan=False, width=32)
expressions = st.recursive(
    leaves,
    lambda inner: (
        st.tuples(st.sampled_from(UNARY_NAMES + ["log1", "sqrt1"]), inner)
        | st.tuples(st.sampled_from(["+", "-", "*", "/"]), inner, inner)
    ),
    max_leaves=8,
)


def evaluate(tree, env: dict):
    """Build `tree` from the leaves in `env` (Scalars or tensors): one interpreter for both."""
    if isinstance(tree, str):
        return env[tree]
    if isinstance(tree, float):
        return env["one"] * tree  # a constant node (leaves are never bare Python floats)
    op, *args = tree
    args = [evaluate(a, env) for a in args]
    if len(args) == 2:
        a, b = args
        ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}
        return ops[op]()
    (a,) = args
    if op in ("log1", "sqrt1"):  # log and sqrt of a positive argument: a * a + 1
        inner = a * a + 1
        return (inner.log() if op == "log1" else inner**0.5) if isinstance(a, Scalar) else (
            torch.log(inner) if op == "log1" else inner**0.5)  # fmt: skip
    ours, theirs = UNARY[op]
    return ours(a) if isinstance(a, Scalar) else theirs(a)


@settings(max_examples=150, deadline=None)
@given(
    tree=expressions,
    values=st.tuples(*[st.floats(-2, 2, allow_nan=False, width=32)] * 3),
)
def test_random_expressions_match_torch(tree, values):
    ours = {n: Scalar(float(v), n) for n, v in zip("xyz", values)}
    theirs = {n: torch.tensor(float(v), dtype=torch.float64, requires_grad=True)
              for n, v in zip("xyz", values)}  # fmt: skip
    ours["one"], theirs["one"] = Scalar(1.0), torch.tensor(1.0, dtype=torch.float64)
    out, ref = evaluate(tree, ours), evaluate(tree, theirs)
    leaves = [theirs[n] for n in "xyz"]
    grads = torch.autograd.grad(ref, leaves, allow_unused=True) if ref.requires_grad else [None] * 3
    grads = [torch.zeros((), dtype=torch.float64) if g is None else g for g in grads]
    assume(all(torch.isfinite(t).item() for t in [ref, *grads]))
    out.backward()
    close(out.data, ref)
    for name, grad in zip("xyz", grads):
        close(ours[name].grad, grad)
