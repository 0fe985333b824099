"""Interval analysis of index expressions, and the simplifications it allows.

With the extent of every loop index known, `bounds(e)` gives an inclusive [lo, hi] for an
index expression.  That decides whether a reindex needs its out-of-bounds check at all (most
slices, transposes and broadcasts do not), and lets reshapes' div/mod pairs collapse:
(i0*4 + i1) // 4 is i0 when 0 <= i1 < 4.
"""
from __future__ import annotations

import math

from ..lax import indexexpr as ix

INF = math.inf


def bounds(expr: ix.Expr, extents: dict) -> tuple:
    """Inclusive (lo, hi) of `expr` with loop index k in [0, extents[k] - 1]."""
    if isinstance(expr, ix.Idx):
        n = extents.get(expr.axis)
        return (0, n - 1) if n is not None else (-INF, INF)
    if isinstance(expr, ix.Const):
        return expr.value, expr.value
    if isinstance(expr, ix.Load):
        return -INF, INF
    if isinstance(expr, ix.Where):
        a, b = bounds(expr.a, extents), bounds(expr.b, extents)
        return min(a[0], b[0]), max(a[1], b[1])
    a, b = bounds(expr.a, extents), bounds(expr.b, extents)
    op = expr.op
    if op == "add":
        return a[0] + b[0], a[1] + b[1]
    if op == "sub":
        return a[0] - b[1], a[1] - b[0]
    if op == "mul":
        products = [_mul(x, y) for x in a for y in b]
        return min(products), max(products)
    if op == "min":
        return min(a[0], b[0]), min(a[1], b[1])
    if op == "max":
        return max(a[0], b[0]), max(a[1], b[1])
    if op in ("floordiv", "mod") and b[0] == b[1] and b[0] > 0:
        c = b[0]
        if op == "floordiv":
            return _floordiv(a[0], c), _floordiv(a[1], c)
        if a[0] >= 0 and a[1] < c:
            return a
        return 0, c - 1
    if op in ("lt", "le", "gt", "ge", "eq", "ne", "and", "or"):
        return 0, 1
    return -INF, INF


def _mul(x, y):
    if x == 0 or y == 0:
        return 0
    return x * y


def _floordiv(x, c):
    return x if x in (INF, -INF) else x // c


def within(expr: ix.Expr, n: int, extents: dict) -> bool:
    """True if 0 <= expr < n at every point of the iteration space."""
    lo, hi = bounds(expr, extents)
    return lo >= 0 and hi <= n - 1


def _terms(expr):
    """expr as a list of (coefficient, term) with term None for the constant part, for
    sums of products by constants."""
    if isinstance(expr, ix.Const):
        return [(expr.value, None)]
    if isinstance(expr, ix.BinOp) and expr.op == "add":
        return _terms(expr.a) + _terms(expr.b)
    if isinstance(expr, ix.BinOp) and expr.op == "sub":
        return _terms(expr.a) + [(-c, t) for c, t in _terms(expr.b)]
    if isinstance(expr, ix.BinOp) and expr.op == "mul" and isinstance(expr.b, ix.Const):
        return [(c * expr.b.value, t) for c, t in _terms(expr.a)]
    return [(1, expr)]


def _rebuild(terms):
    out = ix.ZERO
    for c, t in terms:
        out = out + (c if t is None else (t if c == 1 else t * c))
    return out


def simplify(expr: ix.Expr, extents: dict) -> ix.Expr:
    """Fold div/mod by constants using the ranges of the terms: a sum whose multiples of c
    divide out and whose remainder stays in [0, c) splits exactly."""
    def rewrite(node):
        if not (isinstance(node, ix.BinOp) and node.op in ("floordiv", "mod")
                and isinstance(node.b, ix.Const) and node.b.value > 0):
            if isinstance(node, ix.BinOp) and node.op in ("min", "max"):
                return _fold_minmax(node, extents)
            return node
        c = node.b.value
        lo, hi = bounds(node.a, extents)
        if lo >= 0 and hi < c:
            return ix.ZERO if node.op == "floordiv" else node.a
        terms = _terms(node.a)
        whole = [(k // c, t) for k, t in terms if k % c == 0]
        rest = [(k, t) for k, t in terms if k % c != 0]
        if not whole:
            return node
        rest_expr = _rebuild(rest)
        rlo, rhi = bounds(rest_expr, extents)
        if rlo >= 0 and rhi < c:
            return _rebuild(whole) if node.op == "floordiv" else rest_expr
        return node

    return ix.transform(expr, rewrite)


def _fold_minmax(node, extents):
    a, b = bounds(node.a, extents), bounds(node.b, extents)
    if node.op == "min":
        if a[1] <= b[0]:
            return node.a
        if b[1] <= a[0]:
            return node.b
    else:
        if a[0] >= b[1]:
            return node.a
        if b[0] >= a[1]:
            return node.b
    return node
