"""Index expressions: the small integer language reindex and reindex_reduce are written in.

An expression is a tree over the loop indices of an iteration space (`i0, i1, ...`):

    Idx(k)                   the k-th loop index                     i1
    Const(c)                 an integer                              3
    BinOp(op, a, b)          + - * // % min max, comparisons, and/or  i0*2 + 1, min(i1, 4)
    Where(c, a, b)           a if c else b                           where(i0 < 3, i0, 0)
    Load(k, positions)       an element of integer operand k          $1[i0, 2]

`//` and `%` round toward negative infinity (Python's rules); comparisons and and/or give
0 or 1.  Loads read the primitive's operand number k (operand 0 is the array being indexed),
which is how a reindex becomes a gather and a reindex_reduce a scatter.

Expressions are immutable, compare and hash by structure (they are primitive params), print
readably, evaluate on NumPy index grids, and can be rewritten (`substitute`, `transform`).
Constant folding happens as they are built, so `i0*1 + 0` is `i0`.
"""
from __future__ import annotations

import numpy as np

_PRECEDENCE = {"or": 1, "and": 2, "lt": 3, "le": 3, "gt": 3, "ge": 3, "eq": 3, "ne": 3,
               "add": 4, "sub": 4, "mul": 5, "floordiv": 5, "mod": 5}
_SYMBOL = {"or": " or ", "and": " and ", "lt": " < ", "le": " <= ", "gt": " > ", "ge": " >= ",
           "eq": " == ", "ne": " != ", "add": " + ", "sub": " - ", "mul": "*", "floordiv": "//",
           "mod": " % "}

_PY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
    "min": min,
    "max": max,
    "lt": lambda a, b: int(a < b),
    "le": lambda a, b: int(a <= b),
    "gt": lambda a, b: int(a > b),
    "ge": lambda a, b: int(a >= b),
    "eq": lambda a, b: int(a == b),
    "ne": lambda a, b: int(a != b),
    "and": lambda a, b: int(bool(a) and bool(b)),
    "or": lambda a, b: int(bool(a) or bool(b)),
}

_NP_OPS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "floordiv": np.floor_divide,
    "mod": np.mod, "min": np.minimum, "max": np.maximum,
    "lt": lambda a, b: np.less(a, b).astype(np.int64),
    "le": lambda a, b: np.less_equal(a, b).astype(np.int64),
    "gt": lambda a, b: np.greater(a, b).astype(np.int64),
    "ge": lambda a, b: np.greater_equal(a, b).astype(np.int64),
    "eq": lambda a, b: np.equal(a, b).astype(np.int64),
    "ne": lambda a, b: np.not_equal(a, b).astype(np.int64),
    "and": lambda a, b: np.logical_and(a, b).astype(np.int64),
    "or": lambda a, b: np.logical_or(a, b).astype(np.int64),
}

BINARY_OPS = tuple(_PY_OPS)


class Expr:
    """Base class.  Subclasses define `_key` (the structure) in their constructor."""

    __slots__ = ("_key", "_hash")

    def _init_key(self, key):
        self._key = key
        self._hash = hash(key)

    def __eq__(self, other):
        return isinstance(other, Expr) and self._hash == other._hash and self._key == other._key

    def __hash__(self):
        return self._hash

    def __bool__(self):
        raise TypeError("an index expression has no truth value; use lt/eq/... to build a "
                        "comparison expression")

    # Building expressions with Python operators.
    def __add__(self, other):
        return binop("add", self, other)

    def __radd__(self, other):
        return binop("add", other, self)

    def __sub__(self, other):
        return binop("sub", self, other)

    def __rsub__(self, other):
        return binop("sub", other, self)

    def __mul__(self, other):
        return binop("mul", self, other)

    def __rmul__(self, other):
        return binop("mul", other, self)

    def __floordiv__(self, other):
        return binop("floordiv", self, other)

    def __rfloordiv__(self, other):
        return binop("floordiv", other, self)

    def __mod__(self, other):
        return binop("mod", self, other)

    def __rmod__(self, other):
        return binop("mod", other, self)

    def __neg__(self):
        return binop("sub", 0, self)

    def children(self) -> tuple:
        return ()

    def with_children(self, children) -> "Expr":
        """This node over new children, folded (constants, identities)."""
        return self

    def over(self, children) -> "Expr":
        """This node over new children as it is, not folded (for `transform`)."""
        return self

    def __repr__(self):
        return f"IndexExpr({self})"

    def __str__(self):
        return self.format(0)


class Idx(Expr):
    """The loop index of axis `axis` of the iteration space."""

    __slots__ = ("axis",)

    def __init__(self, axis: int):
        self.axis = int(axis)
        self._init_key(("idx", self.axis))

    def format(self, parent_prec):
        return f"i{self.axis}"

    def evaluate(self, env):
        return env.indices[self.axis]


class Const(Expr):
    __slots__ = ("value",)

    def __init__(self, value: int):
        # an int subclass stays as it is: the compiler tags sizes that vary between calls
        self.value = value if isinstance(value, int) and not isinstance(value, bool) \
            else int(value)
        self._init_key(("const", self.value, getattr(self.value, "twin", None)))

    def format(self, parent_prec):
        text = str(self.value)
        return f"({text})" if self.value < 0 and parent_prec > 0 else text

    def evaluate(self, env):
        return self.value


class BinOp(Expr):
    __slots__ = ("op", "a", "b")

    def __init__(self, op: str, a: Expr, b: Expr):
        if op not in _PY_OPS:
            raise ValueError(f"unknown index-expression operator {op!r}")
        self.op, self.a, self.b = op, a, b
        self._init_key(("bin", op, a._key, b._key))

    def children(self):
        return (self.a, self.b)

    def with_children(self, children):
        return binop(self.op, *children)

    def over(self, children):
        return BinOp(self.op, *children)

    def format(self, parent_prec):
        if self.op in ("min", "max"):
            return f"{self.op}({self.a.format(0)}, {self.b.format(0)})"
        prec = _PRECEDENCE[self.op]
        # Left-associative: the right operand needs parentheses at equal precedence;
        # comparisons do not chain, so both of theirs do.
        left = prec + 1 if prec == _PRECEDENCE["lt"] else prec
        text = f"{self.a.format(left)}{_SYMBOL[self.op]}{self.b.format(prec + 1)}"
        return f"({text})" if prec < parent_prec else text

    def evaluate(self, env):
        a, b = self.a.evaluate(env), self.b.evaluate(env)
        if isinstance(a, int) and isinstance(b, int):
            return _PY_OPS[self.op](a, b)
        return _NP_OPS[self.op](a, b)


class Where(Expr):
    __slots__ = ("cond", "a", "b")

    def __init__(self, cond: Expr, a: Expr, b: Expr):
        self.cond, self.a, self.b = cond, a, b
        self._init_key(("where", cond._key, a._key, b._key))

    def children(self):
        return (self.cond, self.a, self.b)

    def with_children(self, children):
        return where(*children)

    def over(self, children):
        return Where(*children)

    def format(self, parent_prec):
        return f"where({self.cond.format(0)}, {self.a.format(0)}, {self.b.format(0)})"

    def evaluate(self, env):
        c, a, b = (e.evaluate(env) for e in (self.cond, self.a, self.b))
        if isinstance(c, int):
            return a if c else b
        return np.where(c != 0, a, b)


class Load(Expr):
    """The value of integer operand `operand` of the primitive at `positions`.

    Positions outside the operand are clamped into it (they never are when fjit builds them).
    """

    __slots__ = ("operand", "positions")

    def __init__(self, operand: int, positions):
        self.operand = int(operand)
        self.positions = tuple(as_expr(p) for p in positions)
        self._init_key(("load", self.operand, tuple(p._key for p in self.positions)))

    def children(self):
        return self.positions

    def with_children(self, children):
        return Load(self.operand, children)

    def over(self, children):
        return Load(self.operand, children)

    def format(self, parent_prec):
        return f"${self.operand}[{', '.join(p.format(0) for p in self.positions)}]"

    def evaluate(self, env):
        array = env.operands[self.operand]
        if array.ndim != len(self.positions):
            raise ValueError(f"load ${self.operand} has {len(self.positions)} positions, the "
                             f"operand has rank {array.ndim}")
        if array.size == 0:
            # Nothing to read: any position is out of range, so the caller masks these out.
            shape = np.broadcast_shapes(*(np.shape(p.evaluate(env)) for p in self.positions))
            return np.zeros(shape, np.int64)
        pos = tuple(np.clip(p.evaluate(env), 0, n - 1) for p, n in zip(self.positions,
                                                                      array.shape))
        return np.asarray(array[pos], dtype=np.int64)


# --- constructors with constant folding -------------------------------------------------------

def as_expr(x) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, (bool, np.bool_)):
        return Const(int(x))
    if isinstance(x, (int, np.integer)):
        return Const(x)
    raise TypeError(f"cannot use {type(x).__name__} {x!r} in an index expression")


def idx(axis: int) -> Idx:
    return Idx(axis)


def binop(op: str, a, b) -> Expr:
    a, b = as_expr(a), as_expr(b)
    if isinstance(a, Const) and isinstance(b, Const):
        if op in ("floordiv", "mod") and b.value == 0:
            raise ZeroDivisionError("index expression divides by zero")
        return Const(_PY_OPS[op](a.value, b.value))
    if op == "add":
        if a == ZERO:
            return b
        if b == ZERO:
            return a
        if _is_negative_multiple(b):  # a + x*(-2) -> a - x*2
            return binop("sub", a, binop("mul", b.a, -b.b.value))
        if _is_negative_multiple(a):
            return binop("sub", b, binop("mul", a.a, -a.b.value))
        if isinstance(a, Const):  # constants on the right: i0 + 1
            return binop("add", b, a)
        if isinstance(b, Const) and b.value < 0:
            return binop("sub", a, Const(-b.value))
        if isinstance(a, BinOp) and a.op in ("add", "sub") and isinstance(a.b, Const) \
                and isinstance(b, Const):  # (x + c1) + c2
            c = a.b.value + b.value if a.op == "add" else -a.b.value + b.value
            return binop("add", a.a, c)
    elif op == "sub":
        if b == ZERO:
            return a
        if a == b:
            return ZERO
        if isinstance(a, BinOp) and a.op in ("add", "sub") and isinstance(a.b, Const) \
                and isinstance(b, Const):  # (x + c1) - c2
            c = a.b.value - b.value if a.op == "add" else -a.b.value - b.value
            return binop("add", a.a, c)
    elif op == "mul":
        if a == ZERO or b == ZERO:
            return ZERO
        if a == ONE:
            return b
        if b == ONE:
            return a
        if isinstance(a, Const):  # constants on the right: i0*2
            return BinOp("mul", b, a)
    elif op == "floordiv":
        if b == ONE:
            return a
        if isinstance(b, Const) and b.value == 0:
            raise ZeroDivisionError("index expression divides by zero")
    elif op == "mod":
        if b == ONE:
            return ZERO
        if isinstance(b, Const) and b.value == 0:
            raise ZeroDivisionError("index expression divides by zero")
    elif op in ("min", "max") and a == b:
        return a
    elif op == "and":
        if isinstance(a, Const):
            return b if a.value else ZERO
        if isinstance(b, Const):
            return a if b.value else ZERO
    elif op == "or":
        if isinstance(a, Const):
            return ONE if a.value else b
        if isinstance(b, Const):
            return ONE if b.value else a
    return BinOp(op, a, b)


def _is_negative_multiple(e):
    return isinstance(e, BinOp) and e.op == "mul" and isinstance(e.b, Const) and e.b.value < 0


ZERO = Const(0)
ONE = Const(1)


def minimum(a, b) -> Expr:
    return binop("min", a, b)


def maximum(a, b) -> Expr:
    return binop("max", a, b)


def clamp_index(p, n) -> Expr:
    """p clamped into [0, n): a position that is always safe to read an extent-n axis at."""
    return maximum(minimum(p, n - 1), 0) if n > 0 else ZERO


def lt(a, b) -> Expr:
    return binop("lt", a, b)


def le(a, b) -> Expr:
    return binop("le", a, b)


def gt(a, b) -> Expr:
    return binop("gt", a, b)


def ge(a, b) -> Expr:
    return binop("ge", a, b)


def eq(a, b) -> Expr:
    return binop("eq", a, b)


def ne(a, b) -> Expr:
    return binop("ne", a, b)


def logical_and(a, b) -> Expr:
    return binop("and", a, b)


def logical_or(a, b) -> Expr:
    return binop("or", a, b)


def where(cond, a, b) -> Expr:
    cond, a, b = as_expr(cond), as_expr(a), as_expr(b)
    if isinstance(cond, Const):
        return a if cond.value else b
    if a == b:
        return a
    return Where(cond, a, b)


def load(operand: int, positions) -> Load:
    return Load(operand, positions)


# --- rewriting and analysis -------------------------------------------------------------------

def transform(expr: Expr, fn) -> Expr:
    """Rebuild `expr` bottom-up, replacing each node `n` by `fn(n)` (return `n` to keep it).

    fn sees each node of `expr` exactly once, over its transformed children and not yet
    folded; what fn keeps is folded afterwards, and fn never sees the folded result.  A
    substitution must not apply twice: `i0 - 1` with i0 -> i0 + 1 folds to `i0`, which is
    the substituted index already, not one to substitute again (that lost the -1 of a pad
    read through a slice; tests/test_fuzz_regressions.py)."""
    kids = expr.children()
    if not kids:
        return fn(expr)
    new_kids = tuple(transform(k, fn) for k in kids)
    if all(n is o for n, o in zip(new_kids, kids)):
        return fn(expr)
    raw = expr.over(new_kids)
    out = fn(raw)
    return out.with_children(new_kids) if out is raw else out


def substitute(expr: Expr, mapping) -> Expr:
    """Replace loop indices: `mapping[k]` (an Expr or int) stands for `i{k}`."""
    mapping = {k: as_expr(v) for k, v in dict(mapping).items()}

    def fn(node):
        if isinstance(node, Idx) and node.axis in mapping:
            return mapping[node.axis]
        return node

    return transform(expr, fn)


def renumber_loads(expr: Expr, fn) -> Expr:
    """Change which operand each Load reads: operand k becomes fn(k)."""

    def rewrite(node):
        if isinstance(node, Load):
            return Load(fn(node.operand), node.positions)
        return node

    return transform(expr, rewrite)


def walk(expr: Expr):
    """Every node of `expr`, parents before children."""
    yield expr
    for kid in expr.children():
        yield from walk(kid)


def indices_used(expr: Expr) -> set:
    return {n.axis for n in walk(expr) if isinstance(n, Idx)}


def loads_used(expr: Expr) -> list:
    return [n for n in walk(expr) if isinstance(n, Load)]


class EvalEnv:
    """Where expressions are evaluated: index grids (broadcastable) and integer operands."""

    __slots__ = ("indices", "operands")

    def __init__(self, shape, operands=()):
        ndim = len(shape)
        self.indices = [np.arange(n, dtype=np.int64).reshape((n,) + (1,) * (ndim - k - 1))
                        for k, n in enumerate(shape)]
        self.operands = list(operands)


def evaluate(expr: Expr, shape, operands=()) -> np.ndarray:
    """`expr` at every point of an iteration space of `shape`, as an int64 array of `shape`."""
    env = EvalEnv(shape, operands)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = expr.evaluate(env)
    return np.broadcast_to(np.asarray(value, dtype=np.int64), tuple(shape))
