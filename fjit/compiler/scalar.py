"""The scalar expression IR of kernel bodies.

A kernel computes, at every point of its iteration space, scalar expressions over the loop
indices (`fjit.lax.indexexpr` expressions).  Fusion builds them by inlining producers into
consumers: a broadcast or reindex becomes a substitution in a load's index, an element-wise
op becomes an `op` node, a reduction becomes a `reduce` node with its own loop indices.

Nodes are hash-consed: building the same node twice returns the same object, so common
subexpressions are shared when the body is scheduled.
"""
from __future__ import annotations

import struct

import numpy as np

from .dynamic import is_dynamic


class SExpr:
    """kind, dtype, args (child SExprs) and data (hashable, kind-specific):

        load      data = (buffer id, index expressions[, condition])   buffer[index], or,
                  with a condition, cond ? buffer[index] : 0 (the load happens only where
                  it holds, so the index may be out of range elsewhere)
        const     data = Python scalar
        op        data = (element-wise op name, params)   args = operands
        iota      data = index expression                 its value, as dtype
        guard     data = condition (index expression)     cond ? args[0] : args[1]
        reduce    data = (monoid name, ((axis, extent), ...))   args = (body,)
        argreduce data = (kind, axis, extent, index dtype)       args = (body,)
    """

    __slots__ = ("kind", "dtype", "args", "data", "_hash")

    def __init__(self, kind, dtype, args, data):
        self.kind, self.dtype, self.args, self.data = kind, np.dtype(dtype), tuple(args), data
        self._hash = hash((kind, self.dtype, self.args, _identity(data)))

    def __eq__(self, other):
        return (self is other) or (isinstance(other, SExpr) and self._hash == other._hash
                                   and self.kind == other.kind and self.dtype == other.dtype
                                   and _identity(self.data) == _identity(other.data)
                                   and self.args == other.args)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        if self.kind == "load":
            where = f" if {self.data[2]}" if len(self.data) > 2 else ""
            return f"b{self.data[0]}[{', '.join(map(str, self.data[1]))}{where}]"
        if self.kind == "const":
            return repr(self.data)
        if self.kind == "op":
            return f"{self.data[0]}({', '.join(map(repr, self.args))})"
        return f"{self.kind}{self.data}({', '.join(map(repr, self.args))})"


def _identity(data):
    """What makes two nodes' data the same: a float constant by its bits, so -0.0 is not
    interned as 0.0 (and NaN is equal to itself); a size that varies between calls
    (dynamic.py) with its twin, so it is not interned as an equal plain one."""
    if type(data) is float:
        return ("float", struct.pack("<d", data))
    if type(data) is tuple:   # a reduction's loops, a load's index
        return tuple(map(_identity, data))
    if is_dynamic(data):   # a size or literal that varies between calls is not an equal one
        if isinstance(data, float):
            return ("dynamic", struct.pack("<dd", data, data.twin))
        return ("dynamic", int(data), data.twin)
    return data


_interned: dict = {}


def _make(kind, dtype, args, data) -> SExpr:
    node = SExpr(kind, dtype, args, data)
    found = _interned.get(node)
    if found is None:
        if len(_interned) > 200_000:
            _interned.clear()
        _interned[node] = node
        return node
    return found


def load(buffer_id: int, index, dtype, only_if=None) -> SExpr:
    data = (buffer_id, tuple(index)) if only_if is None else (buffer_id, tuple(index), only_if)
    return _make("load", dtype, (), data)


def load_condition(node: SExpr):
    """The condition a load happens under (None: always)."""
    return node.data[2] if len(node.data) > 2 else None


def const(value, dtype) -> SExpr:
    dtype = np.dtype(dtype)
    if dtype.kind != "V" and not is_dynamic(value):
        value = np.asarray(value).astype(dtype).item()
    return _make("const", dtype, (), value)


def op(name: str, args, dtype, params=()) -> SExpr:
    return _make("op", dtype, args, (name, tuple(params)))


def iota(index, dtype) -> SExpr:
    return _make("iota", dtype, (), index)


def guard(cond, value: SExpr, fill: SExpr) -> SExpr:
    return _make("guard", value.dtype, (value, fill), cond)


def reduce(monoid: str, loops, body: SExpr) -> SExpr:
    return _make("reduce", body.dtype, (body,), (monoid, tuple(loops)))


def argreduce(kind: str, axis: int, extent: int, body: SExpr, index_dtype) -> SExpr:
    return _make("argreduce", index_dtype, (body,), (kind, axis, extent, np.dtype(index_dtype)))


def walk(expr: SExpr):
    """Every node once, children before parents."""
    seen, order = set(), []

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for a in node.args:
            visit(a)
        order.append(node)

    visit(expr)
    return order


def replace(expr: SExpr, old: SExpr, new: SExpr) -> SExpr:
    """`expr` with node `old` (nodes are interned: the same object wherever it occurs)
    replaced by `new`."""
    memo = {}

    def visit(node):
        if node is old:
            return new
        done = memo.get(id(node))
        if done is None:
            done = memo[id(node)] = node if not node.args else _make(
                node.kind, node.dtype, [visit(a) for a in node.args], node.data)
        return done
    return visit(expr)


def cost(expr: SExpr) -> int:
    """A rough per-element cost: loads and constants are free, arithmetic 1, transcendental
    functions 4, a reduction its trip count times its body's cost.  Each shared node counts
    once, as the generated code computes it once."""
    memo = {}

    def visit(node):
        if id(node) in memo:
            return 0
        memo[id(node)] = True
        inner = sum(visit(a) for a in node.args)
        if node.kind == "op":
            return inner + (4 if node.data[0] in _TRANSCENDENTAL else 1)
        if node.kind == "reduce":
            trips = 1
            for _, n in node.data[1]:
                trips *= n
            return trips * (inner + 1)
        if node.kind == "argreduce":
            return node.data[2] * (inner + 1)
        if node.kind == "guard":
            return inner + 1
        return inner
    return visit(expr)


_TRANSCENDENTAL = {"exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "asin",
                   "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "logistic",
                   "erf", "pow", "atan2", "cbrt", "sqrt", "rsqrt"}
# Not correctly rounded: a vectorised loop (libmvec) and a scalar one (libm) may differ in the
# last bit, so two kernels that each compute one of these can disagree.
_LIBM = _TRANSCENDENTAL - {"sqrt", "rsqrt"}


def is_libm_call(node: SExpr) -> bool:
    """Is `node` itself a call of a math function that is not correctly rounded?"""
    return node.kind == "op" and node.data[0] in _LIBM


def calls_libm(expr: SExpr) -> bool:
    """Whether computing `expr` calls a math function that is not correctly rounded."""
    return any(n.kind == "op" and n.data[0] in _LIBM for n in walk(expr))
