"""A scalar reverse-mode autograd graph (micrograd's engine, with torch's semantics).

    x, y = Scalar(0.5, "x"), Scalar(-1.0, "y")
    f = (x * y + x.exp()).tanh()
    f.backward()          # x.grad, y.grad: df/dx, df/dy; a second call adds to them, as torch
    print(f.expr())       # tanh(((x * y) + exp(x)))
    print(f.graph())      # one line per node, in topological order, with values and grads

Every node keeps its parents and a closure with torch's backward formula for its op (as in
torch's derivatives.yaml, in the same order of operations, so even the rounding is torch's).
`backward()` walks the graph once in reverse topological order, so a node used twice (`x * x`)
gets both contributions (2x). Arithmetic is IEEE float64 as in torch (overflow gives inf,
log(0) gives -inf, 0/0 gives nan; nothing raises), and the functions use stable forms: `tanh`
saturates instead of dividing inf by inf, `sigmoid` never takes exp of a large positive number,
and `log_sigmoid(u) = min(u, 0) - log1p(exp(-|u|))` stays finite where log(sigmoid(u)) underflows
to -inf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["Scalar"]

Number = int | float


Backward = Callable[[np.float64], tuple[np.float64, ...]]
f64 = np.float64


def _sigmoid(u: float) -> float:
    """torch's 1 / (1 + exp(-u)), but e^u / (1 + e^u) where exp(-u) would overflow."""
    with np.errstate(all="ignore"):
        if u >= -700:
            return float(1 / (1 + np.exp(f64(-u))))
        e = np.exp(f64(u))
        return float(e / (1 + e))


class Scalar:
    """One float64 value in a computation graph, with the gradient `backward()` accumulates."""

    __slots__ = ("data", "grad", "name", "op", "_parents", "_backward")

    def __init__(
        self,
        data: Number,
        name: str | None = None,
        *,
        op: str = "",
        parents: tuple[Scalar, ...] = (),
        backward: Backward | None = None,
    ) -> None:
        if isinstance(data, Scalar) or not isinstance(data, int | float | np.floating | np.integer):
            raise TypeError(f"Scalar: data must be a real number, got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self.name = name
        self.op = op
        self._parents = parents
        self._backward = backward  # output grad -> one grad per parent (torch's formulas)

    # --- building the graph -------------------------------------------------------------------
    # Each op computes its value in float64 and keeps a closure with torch's backward formula
    # (derivatives.yaml), written in the same order, so the rounding is torch's too.

    def _unary(self, op: str, forward, backward) -> Scalar:
        x = f64(self.data)
        with np.errstate(all="ignore"):
            out = forward(x)
        return Scalar(out, op=op, parents=(self,), backward=lambda g: (backward(g, x, out),))

    def _binary(self, other: Scalar | Number, op: str, forward, backward) -> Scalar:
        other = _lift(other)
        a, b = f64(self.data), f64(other.data)
        with np.errstate(all="ignore"):
            out = forward(a, b)
        return Scalar(out, op=op, parents=(self, other), backward=lambda g: backward(g, a, b))

    def __add__(self, other: Scalar | Number) -> Scalar:
        return self._binary(other, "+", lambda a, b: a + b, lambda g, a, b: (g, g))

    def __sub__(self, other: Scalar | Number) -> Scalar:
        return self._binary(other, "-", lambda a, b: a - b, lambda g, a, b: (g, -g))

    def __mul__(self, other: Scalar | Number) -> Scalar:
        return self._binary(other, "*", lambda a, b: a * b, lambda g, a, b: (g * b, g * a))

    def __truediv__(self, other: Scalar | Number) -> Scalar:
        # torch: grad / other and -grad * ((self / other) / other)
        return self._binary(
            other, "/", lambda a, b: a / b, lambda g, a, b: (g / b, -g * ((a / b) / b))
        )

    def __pow__(self, exponent: Number) -> Scalar:
        if isinstance(exponent, bool) or not isinstance(exponent, int | float):
            raise TypeError(
                f"Scalar ** exponent: the exponent must be an int or float, got "
                f"{type(exponent).__name__} (use exp(b * log(a)) for a variable exponent)"
            )
        p = f64(exponent)
        return self._unary(
            f"** {exponent!r}",
            lambda x: _power(x, p),
            lambda g, x, out: f64(0.0) if p == 0 else g * (p * _power(x, p - 1)),  # torch's
        )

    def __rpow__(self, base: Number) -> Scalar:
        """`base ** self` for a number base: d/dself = base**self * log(base)."""
        b = f64(base)

        def backward(g, x, out):  # torch: 0 where base == 0 and exponent >= 0
            return f64(0.0) if b == 0 and x >= 0 else g * (out * np.log(b))

        return self._unary(f"{base!r} **", lambda x: b**x, backward)

    def __neg__(self) -> Scalar:
        return self._unary("neg", lambda x: -x, lambda g, x, out: -g)

    def __radd__(self, other: Number) -> Scalar:
        return _lift(other) + self

    def __rsub__(self, other: Number) -> Scalar:
        return _lift(other) - self

    def __rmul__(self, other: Number) -> Scalar:
        return _lift(other) * self

    def __rtruediv__(self, other: Number) -> Scalar:
        return _lift(other) / self

    def exp(self) -> Scalar:
        return self._unary("exp", np.exp, lambda g, x, out: g * out)

    def log(self) -> Scalar:
        return self._unary("log", np.log, lambda g, x, out: g / x)

    def sin(self) -> Scalar:
        return self._unary("sin", np.sin, lambda g, x, out: g * np.cos(x))

    def cos(self) -> Scalar:
        return self._unary("cos", np.cos, lambda g, x, out: g * -np.sin(x))

    def tanh(self) -> Scalar:
        # np.tanh saturates to ±1 (a naive (e^2x - 1) / (e^2x + 1) is inf / inf = nan)
        return self._unary("tanh", np.tanh, lambda g, x, out: g * (1 - out * out))

    def sigmoid(self) -> Scalar:
        return self._unary("sigmoid", _sigmoid, lambda g, x, out: g * (1 - out) * out)

    def log_sigmoid(self) -> Scalar:
        """log(sigmoid(u)) = min(u, 0) - log1p(exp(-|u|)), finite for every finite u."""
        return self._unary("log_sigmoid", _log_sigmoid, _log_sigmoid_backward)

    def relu(self) -> Scalar:
        # torch: the gradient passes where x > 0 and is 0 elsewhere (0 at the kink, even for inf g)
        return self._unary("relu", lambda x: max(x, 0.0), lambda g, x, out: g if x > 0 else 0.0)

    # --- backward ---------------------------------------------------------------------------

    def nodes(self) -> list[Scalar]:
        """Every node this one depends on, itself last, parents before children (iterative DFS)."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in reversed(node._parents) if id(p) not in seen)
        return order

    def backward(self) -> None:
        """Add d(self)/d(node) to `node.grad` for every node of the graph (self's own grad += 1).

        Like torch, calling it again adds again: call `zero_grad()` between passes.
        """
        grads = {id(self): f64(1.0)}
        with np.errstate(all="ignore"):  # IEEE inf / nan as torch, no warnings
            for node in reversed(self.nodes()):
                g = grads.get(id(node), f64(0.0))
                node.grad += float(g)
                if node._backward is None:
                    continue
                for parent, grad in zip(node._parents, node._backward(g)):
                    grads[id(parent)] = grads[id(parent)] + grad if id(parent) in grads else grad

    def zero_grad(self) -> None:
        """Set the grad of every node of the graph to 0."""
        for node in self.nodes():
            node.grad = 0.0

    # --- showing it ----------------------------------------------------------------------

    def expr(self) -> str:
        """The expression as a string, leaves by name (or value), e.g. `log(sigmoid((x / y)))`."""
        if not self._parents:
            return self.name if self.name is not None else repr(self.data)
        args = [p.expr() for p in self._parents]
        if self.op in ("+", "-", "*", "/"):
            return f"({args[0]} {self.op} {args[1]})"
        if self.op.startswith("**"):
            return f"({args[0]} {self.op})"
        if self.op.endswith("**"):
            return f"({self.op} {args[0]})"
        return f"{self.op}({args[0]})"

    def graph(self) -> str:
        """A text drawing: one line per node, topological order, `n3 = n1 * n2  value ..  grad ..`.

        Named leaves are inputs, unnamed leaves constants (shown by value).
        """
        order = self.nodes()
        label = {id(n): _label(n, i) for i, n in enumerate(order)}
        lines = []
        for n in order:
            if n._parents:
                rhs = _formula(n, [label[id(p)] for p in n._parents])
            else:
                rhs = "input" if n.name is not None else "constant"
            lines.append(f"{label[id(n)]:>8} = {rhs:<22} value {n.data: .6g}   grad {n.grad: .6g}")
        return "\n".join(lines)

    def labels(self) -> dict[int, str]:
        """id(node) -> the label `graph()` gives it (name, constant's value, or n<i>)."""
        return {id(n): _label(n, i) for i, n in enumerate(self.nodes())}

    def edges(self) -> Iterator[tuple[Scalar, Scalar]]:
        """(parent, child) pairs of the graph, for drawing."""
        for node in self.nodes():
            for parent in node._parents:
                yield parent, node

    @property
    def parents(self) -> tuple[Scalar, ...]:
        return self._parents

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"Scalar(data={self.data!r}, grad={self.grad!r}{name})"


def _power(x: np.float64, p: np.float64) -> np.float64:
    """x ** p with the forms torch's CPU kernel uses for these exponents (same rounding)."""
    forms = {
        2.0: lambda: x * x,
        3.0: lambda: x * x * x,
        -2.0: lambda: 1.0 / (x * x),
        0.5: lambda: np.sqrt(x),
        -0.5: lambda: 1.0 / np.sqrt(x),
        -1.0: lambda: 1.0 / x,
    }
    return forms[float(p)]() if float(p) in forms else x**p


def _log_sigmoid(u: np.float64) -> float:
    return min(u, 0.0) - np.log1p(np.exp(-abs(u)))


def _log_sigmoid_backward(g: np.float64, u: np.float64, out) -> np.float64:
    """torch's log_sigmoid_backward: z = exp(-|u|); g * (1 - z / (1 + z)) for u < 0, else
    g * (z / (1 + z)); both are sigmoid(-u)."""
    z = np.exp(-abs(u))
    return g * (1 - z / (1 + z)) if u < 0 else g * (0 + z / (1 + z))


def _label(node: Scalar, i: int) -> str:
    if node.name is not None:
        return node.name
    return f"{node.data:.6g}" if not node._parents else f"n{i}"


def _formula(node: Scalar, names: list[str]) -> str:
    if node.op in ("+", "-", "*", "/"):
        return f"{names[0]} {node.op} {names[1]}"
    if node.op.startswith("**"):
        return f"{names[0]} {node.op}"
    if node.op.endswith("**"):
        return f"{node.op} {names[0]}"
    return f"{node.op}({names[0]})"


def _lift(value: Scalar | Number) -> Scalar:
    """A number as a constant leaf; a Scalar as itself; anything else a TypeError."""
    if isinstance(value, Scalar):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"Scalar: cannot combine with {type(value).__name__}")
    return Scalar(value)
