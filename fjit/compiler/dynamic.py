"""Sizes that vary between calls: after a jitted function is called at a second batch size,
its code is built once more with those sizes kept out of every code decision, and that
build serves every later size.

fjit's kernels take sizes as run-time parameters, but some decisions still depend on the
values: a reduction over 8 images is unrolled (over 32 it is not), a batch offset of 64
equal to a stride of 64 shares its parameter, a fusion pays at one size and not another.
Decided on one size's values, such code is right for that size only, and each new batch size
built new code.  As torch.compile does with "automatic dynamic shapes", the first build is
specialised to the sizes it sees; when jit traces the same function again with other sizes
of the same ranks (`Program.sized_like`), `generalise` lines the two flattened Programs up
equation by equation and replaces every number that differs between them (a dimension, an
index-expression constant, a literal such as a mean's divisor) by a `Dyn` (`DynFloat`).
The compiler asks `is_dynamic`, `at_least`, `same_size` and `for_large` at its
size-dependent decisions and takes the choice that holds for any size (never unroll over
it, never write it as a literal, never share its parameter with a value that merely
happens to be equal, decide trade-offs as for large sizes), so the code no longer depends
on those sizes.  Programs that hold sub-Programs (scan, while, cond) are not lined up yet:
they are built for each size as before.

Tags only steer choices: every kernel still computes with its own call's values, so a tag
that is lost on the way (NumPy arithmetic drops it) costs sharing, never correctness.
"""
from __future__ import annotations

import operator

import numpy as np

from ..core import Eqn, Literal, Var
from ..lax import indexexpr as ix
from .flatten import FlatProgram


class _Varying:
    """What a varying int and a varying float share: the value at the other size seen
    (`twin`), arithmetic that keeps it (defined below), and NumPy-scalar looks."""

    _base = int

    def __new__(cls, value, twin):
        self = cls._base.__new__(cls, value)
        self.twin = cls._base(twin)
        return self

    def __reduce__(self):   # copy, deepcopy and pickle keep the twin
        return type(self), (self._base(self), self.twin)

    def __str__(self):      # printed (an aval in a message) as the number it is
        return str(self._base(self))

    def item(self):
        """The value, as a NumPy scalar's `item()` would give it (a literal may hold one)."""
        return self

    def __repr__(self):
        return f"{_plain(self)!r}~{self.twin!r}"

    def __neg__(self):
        return _tagged(-_plain(self), -self.twin)

    def __pos__(self):
        return self

    def __abs__(self):
        return _tagged(abs(_plain(self)), abs(self.twin))


class Dyn(_Varying, int):
    """A size of this call (its int value) that was `twin` at the other size seen.

    Arithmetic with other numbers keeps the tag, evaluated at both sizes, so two derived
    sizes are the same function of the varying size where both their values and their twins
    agree (`same_size`); a result equal at both sizes is a plain number again."""


class DynFloat(_Varying, float):
    """A floating-point literal of this call that was `twin` at the other size seen (a mean's
    divisor, 1/N): never folded or written into the code, never merged with an equal one."""
    _base = float


def twin(value):
    """`value` at the other size seen (itself where it does not vary)."""
    return value.twin if isinstance(value, _Varying) else value


def is_dynamic(value) -> bool:
    return isinstance(value, _Varying)


def same_size(a, b) -> bool:
    """Are `a` and `b` equal at every size: equal values and equal twins?  (Two sizes that
    merely coincide at this call are not.)"""
    return a == b and twin(a) == twin(b)


def at_least(value, bound) -> bool:
    """`value >= bound`, taken as true for a size that varies between calls: code decided
    on it (tile this loop, run it on threads, vectorize it) must suit every size, and is
    chosen for large ones."""
    return is_dynamic(value) or value >= bound


def for_large(difference, *values):
    """`difference(*values)` (a number compared with 0 by the caller, such as work minus a
    threshold) decided the same way at every size where some of `values` vary: by its
    trend between the two sizes seen, in the direction the first varying value grows (for
    the sizes and products of sizes the passes ask about, the direction the batch grows),
    or by its value where it has no trend."""
    now = difference(*values)
    varying = next((v for v in values if is_dynamic(v)), None)
    if varying is None:
        return now
    before = difference(*(twin(v) for v in values))
    trend = now - before if varying > varying.twin else before - now
    return trend if trend else now


def _tagged(value, twin_value):
    if value == twin_value:
        return value
    return DynFloat(value, twin_value) if isinstance(value, float) else Dyn(value, twin_value)


def _plain(x):
    return float(x) if isinstance(x, float) else int(x)


def _method(op):
    """`a op b` for a varying `a`, evaluated at both sizes."""
    def method(a, b):
        if not isinstance(b, (int, float)) or isinstance(b, bool):
            return NotImplemented
        try:
            return _tagged(op(_plain(a), _plain(b)), op(twin(a), twin(b)))
        except ZeroDivisionError:   # at the other size only (at this one it raises again):
            return op(_plain(a), _plain(b))   # the value stands without its tag
    return method


for _name, _op in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("floordiv", operator.floordiv), ("mod", operator.mod),
                   ("truediv", operator.truediv)]:
    setattr(_Varying, f"__{_name}__", _method(_op))
    setattr(_Varying, f"__r{_name}__", _method(lambda a, b, op=_op: op(b, a)))


def _describe(invars, most=3) -> str:
    """The varying input sizes, as the compile log names them: "input 3 dim 0 (8 -> 16)"."""
    found = [f"input {k} dim {d} ({n.twin} -> {int(n)})" for k, v in enumerate(invars)
             for d, n in enumerate(v.aval.shape) if is_dynamic(n)]
    more = f" and {len(found) - most} more" if len(found) > most else ""
    return ", ".join(found[:most]) + more


class TaggedLiteral(Literal):
    """A literal whose value varies between calls: `value` is its NumPy scalar, of its dtype,
    as for any literal (outputs, the reference interpreter and constants read it); `tagged`
    is the same number as a `Dyn`/`DynFloat`, which code generation reads."""

    __slots__ = ("tagged",)

    def __init__(self, value, aval, tagged):
        super().__init__(value, aval)
        self.tagged = tagged


def literal_value(atom):
    """What code generation makes of literal `atom`: its tagged value where it varies."""
    tagged = getattr(atom, "tagged", None)
    return tagged if tagged is not None else atom.value.item()


class _Mismatch(Exception):
    """The two Programs differ in more than sizes."""


def generalise(flat: FlatProgram, other: FlatProgram) -> FlatProgram | None:
    """`flat` with every integer that differs from `other` (the same function flattened at
    other sizes) tagged as a `Dyn`; None where the two differ in anything but sizes (a
    branch on a size in the user's code, a different fusion of equal equations by CSE), and
    `flat` unchanged is then compiled as it is."""
    try:
        return _Generaliser().program(flat, other)
    except _Mismatch:
        return None


class _Generaliser:
    def __init__(self):
        self.vars = {}   # var of `flat` -> the var standing for it (retagged where it varies)
        self.other = {}  # var of `flat` -> the var of the other Program at the same place
        self.changed = False   # has any number been tagged?

    def program(self, flat, other):
        if (len(flat.eqns), len(flat.invars), len(flat.constvars), len(flat.outvars)) != \
                (len(other.eqns), len(other.invars), len(other.constvars), len(other.outvars)):
            raise _Mismatch
        invars = [self.var(v, o) for v, o in zip(flat.invars, other.invars)]
        constvars = [self.var(v, o) for v, o in zip(flat.constvars, other.constvars)]
        eqns = [self.eqn(e, o) for e, o in zip(flat.eqns, other.eqns)]
        outvars = [self.atom(v, o) for v, o in zip(flat.outvars, other.outvars)]
        if not self.changed:
            return flat
        return FlatProgram(invars, constvars, flat.consts, eqns, outvars, _describe(invars))

    def var(self, v, o):
        if v.aval.ndim != o.aval.ndim or v.aval.dtype != o.aval.dtype:
            raise _Mismatch
        self.other[v] = o
        shape = tuple(_tagged(n, m) for n, m in zip(v.aval.shape, o.aval.shape))
        if shape == v.aval.shape and not any(map(is_dynamic, shape)):
            self.vars[v] = v
        else:
            self.vars[v] = Var(v.aval.update(shape=shape))
            self.changed = True
        return self.vars[v]

    def atom(self, a, o):
        if isinstance(a, Literal):
            if not isinstance(o, Literal) or a.aval.dtype != o.aval.dtype:
                raise _Mismatch
            if a.value == o.value:
                return a
            kind = a.aval.dtype.kind
            if kind not in "iuf":
                raise _Mismatch
            value = Dyn(int(a.value), int(o.value)) if kind in "iu" else \
                DynFloat(float(a.value), float(o.value))
            self.changed = True
            return TaggedLiteral(a.value, a.aval, value)
        if isinstance(o, Literal):
            raise _Mismatch
        known = self.vars.get(a)
        if known is None or self.other.get(a) is not o:   # not the same dataflow
            raise _Mismatch
        return known

    def eqn(self, e, o):
        if e.primitive is not o.primitive or len(e.invars) != len(o.invars) \
                or len(e.outvars) != len(o.outvars) or e.params.keys() != o.params.keys():
            raise _Mismatch
        invars = [self.atom(a, b) for a, b in zip(e.invars, o.invars)]
        params = {k: self.param(v, o.params[k]) for k, v in e.params.items()}
        outvars = [self.var(v, w) for v, w in zip(e.outvars, o.outvars)]
        if all(a is b for a, b in zip(invars, e.invars)) \
                and all(a is b for a, b in zip(outvars, e.outvars)) \
                and all(params[k] is e.params[k] for k in params):
            return e
        return Eqn(e.primitive, invars, params, outvars, e.source_info)

    def param(self, value, other):
        if isinstance(value, bool) or isinstance(other, bool):
            if value is not other:
                raise _Mismatch
            return value
        if isinstance(value, int) and isinstance(other, int):
            if value == other:
                return value
            self.changed = True
            return Dyn(value, other)
        if isinstance(value, (tuple, list)):
            if type(value) is not type(other) or len(value) != len(other):
                raise _Mismatch
            items = [self.param(v, w) for v, w in zip(value, other)]
            if all(a is b for a, b in zip(items, value)):
                return value
            return type(value)(items)
        if isinstance(value, ix.Expr):
            return self.expr(value, other)
        if isinstance(value, np.ndarray) or isinstance(other, np.ndarray):
            if not (isinstance(value, np.ndarray) and isinstance(other, np.ndarray)
                    and value.dtype == other.dtype and np.array_equal(value, other)):
                raise _Mismatch
            return value
        if value is other:
            return value
        try:
            if value == other:
                return value
        except Exception:
            pass
        raise _Mismatch

    def expr(self, e, o):
        if not isinstance(o, ix.Expr) or type(e) is not type(o):
            raise _Mismatch
        if e == o:
            return e
        if isinstance(e, ix.Const):
            self.changed = True
            return ix.Const(Dyn(e.value, o.value))
        if isinstance(e, ix.Idx):
            raise _Mismatch
        mine, theirs = e.children(), o.children()
        if len(mine) != len(theirs) or getattr(e, "op", None) != getattr(o, "op", None) \
                or getattr(e, "operand", None) != getattr(o, "operand", None):
            raise _Mismatch
        return e.over(tuple(self.expr(a, b) for a, b in zip(mine, theirs)))
