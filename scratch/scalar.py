"""A scalar reverse-mode autograd graph (micrograd's engine, with torch's semantics).

    x, y = Scalar(0.5, "x"), Scalar(-1.0, "y")
    f = (x * y + x.exp()).tanh()
    f.backward()          # x.grad, y.grad: df/dx, df/dy; a second call adds to them, as torch
    print(f.expr())       # tanh(((x * y) + exp(x)))
    print(f.graph())      # one line per node, in topological order, with values and grads

Every node keeps its parents and the local derivative d(node)/d(parent), computed in the
forward. `backward()` walks the graph once in reverse topological order, so a node used twice
(`x * x`) gets both contributions (2x). Arithmetic is IEEE float64 as in torch (overflow gives
inf, log(0) gives -inf, 0/0 gives nan; nothing raises), and the functions use the stable forms:
`sigmoid` never evaluates exp of a large positive number, `log_sigmoid(u) = min(u, 0) -
log1p(exp(-|u|))` stays finite where log(sigmoid(u)) underflows to -inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["Scalar"]

Number = int | float


def _ieee(fn: Callable[..., float], *args: float) -> float:
    """`fn(*args)` in NumPy float64 with IEEE results (inf, nan) instead of Python exceptions."""
    with np.errstate(all="ignore"):
        return float(fn(*(np.float64(a) for a in args)))


def _sigmoid(u: float) -> float:
    """1 / (1 + exp(-u)) without exp of a large positive number (no overflow, no warning)."""
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u) if u > -800 else 0.0  # exp(u) for u <= -746 is 0 in float64 anyway
    return e / (1.0 + e)


class Scalar:
    """One float64 value in a computation graph, with the gradient `backward()` accumulates."""

    __slots__ = ("data", "grad", "name", "op", "_parents", "_local")

    def __init__(
        self,
        data: Number,
        name: str | None = None,
        *,
        op: str = "",
        parents: tuple[Scalar, ...] = (),
        local: tuple[float, ...] = (),
    ) -> None:
        if isinstance(data, Scalar) or not isinstance(data, int | float | np.floating | np.integer):
            raise TypeError(f"Scalar: data must be a real number, got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self.name = name
        self.op = op
        self._parents = parents
        self._local = local  # d(self) / d(parent), one per parent

    # --- building the graph -------------------------------------------------------------------

    def _node(self, data: float, op: str, parents: tuple, local: tuple) -> Scalar:
        return Scalar(data, op=op, parents=parents, local=local)

    def __add__(self, other: Scalar | Number) -> Scalar:
        other = _lift(other)
        return self._node(_ieee(np.add, self.data, other.data), "+", (self, other), (1.0, 1.0))

    def __sub__(self, other: Scalar | Number) -> Scalar:
        other = _lift(other)
        out = _ieee(np.subtract, self.data, other.data)
        return self._node(out, "-", (self, other), (1.0, -1.0))

    def __mul__(self, other: Scalar | Number) -> Scalar:
        other = _lift(other)
        out = _ieee(np.multiply, self.data, other.data)
        return self._node(out, "*", (self, other), (other.data, self.data))

    def __truediv__(self, other: Scalar | Number) -> Scalar:
        other = _lift(other)
        a, b = self.data, other.data
        local = (_ieee(np.divide, 1.0, b), _ieee(lambda a, b: -a / (b * b), a, b))
        return self._node(_ieee(np.divide, a, b), "/", (self, other), local)

    def __pow__(self, exponent: Number) -> Scalar:
        if isinstance(exponent, Scalar) or not isinstance(exponent, int | float):
            raise TypeError(
                f"Scalar ** exponent: the exponent must be an int or float, got "
                f"{type(exponent).__name__} (use exp(b * log(a)) for a variable exponent)"
            )
        x, p = self.data, float(exponent)
        local = 0.0 if p == 0 else _ieee(lambda x, p: p * x ** (p - 1), x, p)  # torch: 0 at p=0
        return self._node(_ieee(np.power, x, p), f"** {exponent!r}", (self,), (local,))

    def __rpow__(self, base: Number) -> Scalar:
        """`base ** self` for a number base: d/dself = base**self * log(base)."""
        out = _ieee(np.power, float(base), self.data)
        local = _ieee(lambda o, b: o * np.log(b), out, base)
        return self._node(out, f"{base!r} **", (self,), (local,))

    def __neg__(self) -> Scalar:
        return self._node(-self.data, "neg", (self,), (-1.0,))

    def __radd__(self, other: Number) -> Scalar:
        return _lift(other) + self

    def __rsub__(self, other: Number) -> Scalar:
        return _lift(other) - self

    def __rmul__(self, other: Number) -> Scalar:
        return _lift(other) * self

    def __rtruediv__(self, other: Number) -> Scalar:
        return _lift(other) / self

    def exp(self) -> Scalar:
        out = _ieee(np.exp, self.data)
        return self._node(out, "exp", (self,), (out,))

    def log(self) -> Scalar:
        x = self.data
        return self._node(_ieee(np.log, x), "log", (self,), (_ieee(np.divide, 1, x),))

    def sin(self) -> Scalar:
        x = self.data
        return self._node(_ieee(np.sin, x), "sin", (self,), (_ieee(np.cos, x),))

    def cos(self) -> Scalar:
        x = self.data
        return self._node(_ieee(np.cos, x), "cos", (self,), (-_ieee(np.sin, x),))

    def tanh(self) -> Scalar:
        t = math.tanh(self.data)  # stable for any argument (no exp of large numbers)
        return self._node(t, "tanh", (self,), (1.0 - t * t,))

    def sigmoid(self) -> Scalar:
        s = _sigmoid(self.data)
        return self._node(s, "sigmoid", (self,), (s * (1.0 - s),))

    def log_sigmoid(self) -> Scalar:
        """log(sigmoid(u)) = min(u, 0) - log1p(exp(-|u|)); its derivative is sigmoid(-u)."""
        u = self.data
        out = min(u, 0.0) - math.log1p(math.exp(-abs(u)))
        return self._node(out, "log_sigmoid", (self,), (_sigmoid(-u),))

    def relu(self) -> Scalar:
        return self._node(max(self.data, 0.0), "relu", (self,), (float(self.data > 0),))  # 0 at 0

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
        order = self.nodes()
        grads = {id(self): 1.0}
        for node in reversed(order):
            g = grads.get(id(node), 0.0)
            node.grad += g
            for parent, local in zip(node._parents, node._local):
                # chain rule; 0 * inf contributions follow IEEE (nan), as torch's do
                grads[id(parent)] = grads.get(id(parent), 0.0) + _ieee(np.multiply, g, local)

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
