"""A scalar reverse-mode automatic differentiation engine, for teaching.

A ``Value`` is a number that remembers how it was computed: the operation and, for each input
(parent), the local derivative ∂(this)/∂(parent), computed in the forward pass right next to
the forward formula. Nothing is mutated afterwards. ``backward`` visits the graph in reverse
topological order and applies the multivariable chain rule of the course,

    ∂ℓ/∂u = Σ_{v : u → v} ∂ℓ/∂v · ∂v/∂u,

summing over every path from u to the loss — which is also what makes weight sharing work: a
weight used twice receives the sum of the two paths' gradients.

    >>> w, x = Value(2.0, label="w"), Value(3.0, label="x")
    >>> loss = (w * x).tanh() + w * w
    >>> [round(g, 6) for g in grad(loss, [w, x])]
    [4.000074, 4.9e-05]

Operations the engine does not know raise ``TypeError`` (``float(v)``, ``math.exp(v)``,
``numpy`` ufuncs, ``//``, ``%``, ``@``) instead of silently dropping the value from the graph and
returning a wrong gradient.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Sequence


def _unsupported(what: str, hint: str = "") -> TypeError:
    return TypeError(f"Value: {what} is not supported by the scalar engine (it would leave the "
                     f"graph and give a wrong gradient){'; ' + hint if hint else ''}")


class Value:
    """A scalar node of a computation graph: ``data``, the ``op`` that made it, and
    ``parents``, a tuple of (parent Value, ∂self/∂parent). Immutable; equality is identity."""

    __slots__ = ("data", "parents", "op", "label")
    __array_ufunc__ = None  # numpy ufuncs on a Value raise TypeError instead of leaving the graph

    def __init__(self, data: float, parents: tuple[tuple["Value", float], ...] = (), op: str = "",
                 label: str = ""):
        if isinstance(data, Value) or not isinstance(data, numbers.Real):
            raise TypeError(f"Value: data must be a real number, got {type(data).__name__}")
        self.data, self.parents, self.op, self.label = float(data), parents, op, label

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.6g}{', op=' + self.op if self.op else ''})"

    # ----- binary operations: forward value and local derivatives side by side
    def __add__(self, other) -> "Value":  # ∂(u+v)/∂u = 1, ∂/∂v = 1
        other = _as_value(other, "+")
        return Value(self.data + other.data, ((self, 1.0), (other, 1.0)), "+")

    def __mul__(self, other) -> "Value":  # ∂(uv)/∂u = v, ∂/∂v = u
        other = _as_value(other, "*")
        return Value(self.data * other.data, ((self, other.data), (other, self.data)), "*")

    def __pow__(self, other) -> "Value":
        if isinstance(other, Value):  # u^v = e^{v log u}: ∂/∂u = v u^{v−1}, ∂/∂v = u^v log u
            if self.data <= 0:
                raise ValueError(f"Value: u ** v with a Value exponent needs u > 0, got u = {self.data}")
            out = self.data ** other.data
            return Value(out, ((self, other.data * self.data ** (other.data - 1)),
                               (other, out * math.log(self.data))), "**")
        if not isinstance(other, numbers.Real):
            raise _unsupported(f"** {type(other).__name__}")
        c = float(other)  # ∂(u^c)/∂u = c u^{c−1}
        if self.data < 0 and not c.is_integer():
            raise ValueError(f"Value: {self.data} ** {c:g} is not a real number")
        return Value(self.data ** c, ((self, c * self.data ** (c - 1)),), f"**{c:g}")

    def __rpow__(self, other) -> "Value":  # c^u: ∂/∂u = c^u log c
        c = _as_value(other, "**")
        return c ** self

    def __neg__(self) -> "Value":
        return self * -1.0

    def __sub__(self, other) -> "Value":
        return self + (-_as_value(other, "-"))

    def __truediv__(self, other) -> "Value":
        other = _as_value(other, "/")
        if other.data == 0:
            raise ZeroDivisionError("Value: division by a Value equal to 0")
        return self * other ** -1.0

    def __radd__(self, other) -> "Value":
        return self + other

    def __rmul__(self, other) -> "Value":
        return self * other

    def __rsub__(self, other) -> "Value":
        return _as_value(other, "-") - self

    def __rtruediv__(self, other) -> "Value":
        return _as_value(other, "/") / self

    # ----- functions
    def exp(self) -> "Value":  # (e^u)' = e^u
        out = math.exp(self.data)
        return Value(out, ((self, out),), "exp")

    def log(self) -> "Value":  # (log u)' = 1/u
        if self.data <= 0:
            raise ValueError(f"Value: log of a non-positive number {self.data}")
        return Value(math.log(self.data), ((self, 1.0 / self.data),), "log")

    def tanh(self) -> "Value":  # tanh' = 1 − tanh²
        t = math.tanh(self.data)
        return Value(t, ((self, 1.0 - t * t),), "tanh")

    def sigmoid(self) -> "Value":  # σ' = σ(1 − σ)
        s = 1.0 / (1.0 + math.exp(-self.data)) if self.data >= 0 else math.exp(self.data) / (1.0 + math.exp(self.data))
        return Value(s, ((self, s * (1.0 - s)),), "sigmoid")

    def relu(self) -> "Value":  # relu'(u) = 1 if u > 0 else 0 (0 at 0, the course's convention)
        return Value(max(self.data, 0.0), ((self, 1.0 if self.data > 0 else 0.0),), "relu")

    # ----- what is refused
    def __float__(self):
        raise _unsupported("float(v) (and math.* functions, which call it)",
                           "read the number with v.data, or use v.exp(), v.log(), v.tanh(), …")

    def __int__(self):
        raise _unsupported("int(v)", "read the number with v.data")

    def __floordiv__(self, other):
        raise _unsupported("//")

    __rfloordiv__ = __floordiv__

    def __mod__(self, other):
        raise _unsupported("%")

    __rmod__ = __mod__

    def __matmul__(self, other):
        raise _unsupported("@ (a Value is a scalar)")

    def __abs__(self):
        raise _unsupported("abs(v)", "write it with relu: v.relu() + (-v).relu()")

    def __round__(self, ndigits=None):
        raise _unsupported("round(v)", "round v.data")

    def __bool__(self):
        raise _unsupported("truth value of a Value", "compare v.data")


def _as_value(x, op: str) -> Value:
    if isinstance(x, Value):
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(float(x), op="const")
    raise _unsupported(f"{op} with a {type(x).__name__}", "combine Values with Python numbers only")


def topological_order(output: Value) -> list[Value]:
    """Every node the output depends on, each after all of its parents (iterative DFS)."""
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p, _ in node.parents if id(p) not in seen)
    return order


def backward(output: Value, seed: float = 1.0) -> dict[int, float]:
    """Reverse mode: ∂output/∂v for every node v, as {id(v): gradient}.

    In reverse topological order, each node passes ∂ℓ/∂v · ∂v/∂u to each parent u, and a
    parent reached along several paths sums them (the multivariable chain rule).
    """
    grads = {id(output): seed}
    for node in reversed(topological_order(output)):
        g = grads.get(id(node), 0.0)
        for parent, local in node.parents:
            grads[id(parent)] = grads.get(id(parent), 0.0) + g * local
    return grads


def grad(output: Value, wrt: Sequence[Value] | Iterable[Value]) -> list[float]:
    """[∂output/∂w for w in wrt]; 0 for a Value the output does not depend on."""
    grads = backward(output)
    return [grads.get(id(w), 0.0) for w in wrt]
