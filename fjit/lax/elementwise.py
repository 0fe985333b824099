"""The element-wise family: one table, one row per operation.

A row says how many operands the op takes, which dtypes it accepts and what it returns, and
how NumPy computes it (the reference).  The `c`, `cuda` and `jvp` slots are for the backends
and autodiff to fill; every rule for the family is written once over the table.

Operands have the same shape, except that rank-0 operands broadcast (as in JAX's lax).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import dtypes
from ..core import Primitive, ShapedArray, type_error

# --- dtype rules ------------------------------------------------------------------------------

FLOAT, INT, BOOL = "float", "int", "bool"
NUM = (INT, FLOAT)
INTBOOL = (INT, BOOL)
ANY = (INT, FLOAT, BOOL)


def _kinds(kinds):
    return (kinds,) if isinstance(kinds, str) else tuple(kinds)


def _check_kind(opname, dtype, kinds, avals, position):
    if dtypes.kind_name(dtype) not in kinds:
        raise type_error(opname, f"operand {position} has dtype {dtype.name}, but {opname} "
                         f"accepts only {' or '.join(kinds)} dtypes", *avals)


def _same_dtype(opname, avals, kinds, positions=None):
    positions = range(len(avals)) if positions is None else positions
    chosen = [avals[i] for i in positions]
    dtype = chosen[0].dtype
    for i in positions:
        if avals[i].dtype != dtype:
            raise type_error(opname, "operands must have the same dtype, got "
                             + ", ".join(a.dtype.name for a in chosen), *avals)
        _check_kind(opname, avals[i].dtype, kinds, avals, i)
    return dtype, all(a.weak_type for a in chosen)


def same(kinds):
    """All operands share one dtype of `kinds`; the result has it (weak if all are weak)."""
    kinds = _kinds(kinds)
    return lambda name, avals, params: _same_dtype(name, avals, kinds)


def predicate(kinds):
    """All operands share one dtype of `kinds`; the result is bool."""
    kinds = _kinds(kinds)

    def rule(name, avals, params):
        _same_dtype(name, avals, kinds)
        return dtypes.bool_, False
    return rule


def _select_rule(name, avals, params):
    if avals[0].dtype != dtypes.bool_:
        raise type_error(name, f"the predicate must be bool, got {avals[0].dtype.name}", *avals)
    return _same_dtype(name, avals, ANY, positions=(1, 2))


def _clamp_rule(name, avals, params):
    return _same_dtype(name, avals, NUM)


def _convert_rule(name, avals, params):
    return params["new_dtype"], params["weak_type"]


def _bitcast_rule(name, avals, params):
    src, dst = avals[0].dtype, params["new_dtype"]
    if dtypes.is_bool(src) or dtypes.is_bool(dst) or src.itemsize != dst.itemsize:
        raise type_error(name, f"cannot bitcast {src.name} to {dst.name}: both must be "
                         "non-bool types of the same width", *avals)
    return dst, False


def _is_finite_rule(name, avals, params):
    _same_dtype(name, avals, FLOAT)
    return dtypes.bool_, False


# --- NumPy reference implementations with XLA's semantics at the edges ------------------------

def _trunc_div(a, b):
    """Integer division rounding toward zero; x/0 = -1 and MIN/-1 = MIN like XLA."""
    safe_b = np.where(b == 0, 1, b)
    if dtypes.is_unsigned(a.dtype):
        q = a // safe_b
    else:
        safe_b = np.where((b == -1), 1, safe_b)
        q = a // safe_b
        q = np.where((a % safe_b != 0) & ((a < 0) != (safe_b < 0)), q + 1, q)
        q = np.where(b == -1, -a, q)  # -MIN wraps to MIN, as XLA does
    return np.where(b == 0, np.array(-1).astype(a.dtype), q).astype(a.dtype)


def _div(a, b):
    if dtypes.is_int(a.dtype):
        return _trunc_div(a, b)
    return np.true_divide(a, b)


def _rem(a, b):
    """Remainder with the sign of the dividend (C's %); x % 0 = x like XLA."""
    if dtypes.is_int(a.dtype):
        safe_b = np.where((b == 0) | (b == -1), 1, b) if not dtypes.is_unsigned(a.dtype) \
            else np.where(b == 0, 1, b)
        r = (a - _trunc_div(a, safe_b) * safe_b).astype(a.dtype)
        return np.where(b == 0, a, r).astype(a.dtype)
    return np.fmod(a, b)


def _bits(dtype):
    return dtype.itemsize * 8


def _shift_left(a, b):
    bad = (b < 0) | (b >= _bits(a.dtype))
    return np.where(bad, 0, np.left_shift(a, np.where(bad, 0, b))).astype(a.dtype)


def _shift_right_logical(a, b):
    bad = (b < 0) | (b >= _bits(a.dtype))
    unsigned = np.dtype(f"u{a.dtype.itemsize}")
    shifted = np.right_shift(a.astype(unsigned), np.where(bad, 0, b).astype(unsigned))
    return np.where(bad, 0, shifted.astype(a.dtype)).astype(a.dtype)


def _shift_right_arithmetic(a, b):
    """Shift in copies of the sign bit (of the bits read as signed, also for unsigned types)."""
    bits = _bits(a.dtype)
    amount = np.where((b < 0) | (b >= bits), bits - 1, b)
    signed = np.dtype(f"i{a.dtype.itemsize}")
    shifted = np.right_shift(np.array(a).view(signed), amount.astype(signed))
    return np.asarray(shifted).astype(signed).view(a.dtype)


def _round(x, rounding_method=0):
    if rounding_method == 1:  # to nearest even
        return np.round(x)
    t = np.trunc(x)  # half away from zero, without the x + 0.5 rounding trap
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t).astype(x.dtype)


def _logistic(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


_erf64 = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    return np.asarray(_erf64(x.astype(np.float64)), dtype=np.float64).astype(x.dtype)


def _integer_pow(x, y):
    """x ** y by repeated squaring in x's own type (integers wrap, like XLA)."""
    if dtypes.is_int(x.dtype) and y < 0:
        raise ValueError("integer_pow of an integer array needs a non-negative exponent")
    result, base, e = np.ones_like(x), x, abs(y)
    while e:
        if e & 1:
            result = (result * base).astype(x.dtype)
        base = (base * base).astype(x.dtype)
        e >>= 1
    return result if y >= 0 else (np.asarray(1, x.dtype) / result).astype(x.dtype)


def _convert(x, new_dtype, weak_type):
    src = x.dtype
    if dtypes.is_bool(new_dtype):
        return x != 0
    if dtypes.is_float(src) and dtypes.is_int(new_dtype):  # saturate; NaN -> 0 (XLA)
        info = np.iinfo(new_dtype)
        wide = x.astype(np.float64)
        out = np.trunc(np.nan_to_num(wide, nan=0.0, posinf=0.0, neginf=0.0))
        out = np.clip(out, info.min, info.max)
        too_big = (wide >= float(info.max)) | (wide == np.inf)
        too_small = (wide <= float(info.min)) | (wide == -np.inf)
        result = np.where(too_big | too_small, 0, out).astype(new_dtype)
        result = np.where(too_big, np.array(info.max, new_dtype), result)
        return np.where(too_small, np.array(info.min, new_dtype), result).astype(new_dtype)
    return x.astype(new_dtype)


def _bitcast(x, new_dtype):
    return np.array(x).view(new_dtype)  # a contiguous copy; rank 0 stays rank 0


# --- the table --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ElementwiseOp:
    """One row of the table.

    `numpy(*arrays, **params)` is the reference; `dtype_rule(name, avals, params)` returns the
    result (dtype, weak_type) or raises.  `c`/`cuda` (expression templates) and `jvp` are filled
    by the backends and by autodiff.
    """
    name: str
    nin: int
    numpy: Callable
    dtype_rule: Callable
    params: tuple = ()
    c: str | None = None
    cuda: str | None = None
    jvp: Callable | None = None


def _unary(name, fn, kinds):
    return ElementwiseOp(name, 1, fn, same(kinds))


def _binary(name, fn, kinds):
    return ElementwiseOp(name, 2, fn, same(kinds))


TABLE = [
    # unary, any numeric type
    _unary("neg", np.negative, NUM),
    _unary("abs", np.abs, NUM),
    _unary("sign", np.sign, NUM),
    ElementwiseOp("integer_pow", 1, _integer_pow, same(NUM), params=("y",)),
    # unary, floating point
    _unary("exp", np.exp, FLOAT),
    _unary("exp2", np.exp2, FLOAT),
    _unary("log", np.log, FLOAT),
    _unary("log1p", np.log1p, FLOAT),
    _unary("expm1", np.expm1, FLOAT),
    _unary("sqrt", np.sqrt, FLOAT),
    _unary("rsqrt", lambda x: (1 / np.sqrt(x)).astype(x.dtype), FLOAT),
    _unary("cbrt", np.cbrt, FLOAT),
    _unary("sin", np.sin, FLOAT),
    _unary("cos", np.cos, FLOAT),
    _unary("tan", np.tan, FLOAT),
    _unary("tanh", np.tanh, FLOAT),
    _unary("asin", np.arcsin, FLOAT),
    _unary("acos", np.arccos, FLOAT),
    _unary("atan", np.arctan, FLOAT),
    _unary("sinh", np.sinh, FLOAT),
    _unary("cosh", np.cosh, FLOAT),
    _unary("asinh", np.arcsinh, FLOAT),
    _unary("acosh", np.arccosh, FLOAT),
    _unary("atanh", np.arctanh, FLOAT),
    _unary("logistic", _logistic, FLOAT),
    _unary("erf", _erf, FLOAT),
    _unary("floor", np.floor, FLOAT),
    _unary("ceil", np.ceil, FLOAT),
    ElementwiseOp("round", 1, _round, same(FLOAT), params=("rounding_method",)),
    ElementwiseOp("is_finite", 1, np.isfinite, _is_finite_rule),
    # unary, bitwise / logical
    _unary("not", np.invert, INTBOOL),
    # binary arithmetic
    _binary("add", np.add, NUM),
    _binary("sub", np.subtract, NUM),
    _binary("mul", np.multiply, NUM),
    _binary("div", _div, NUM),
    _binary("rem", _rem, NUM),
    _binary("pow", np.power, FLOAT),
    _binary("max", np.maximum, ANY),
    _binary("min", np.minimum, ANY),
    _binary("atan2", np.arctan2, FLOAT),
    _binary("nextafter", np.nextafter, FLOAT),
    # comparisons
    ElementwiseOp("eq", 2, np.equal, predicate(ANY)),
    ElementwiseOp("ne", 2, np.not_equal, predicate(ANY)),
    ElementwiseOp("lt", 2, np.less, predicate(ANY)),
    ElementwiseOp("le", 2, np.less_equal, predicate(ANY)),
    ElementwiseOp("gt", 2, np.greater, predicate(ANY)),
    ElementwiseOp("ge", 2, np.greater_equal, predicate(ANY)),
    # bitwise / logical (bool operands make them logical)
    _binary("and", np.bitwise_and, INTBOOL),
    _binary("or", np.bitwise_or, INTBOOL),
    _binary("xor", np.bitwise_xor, INTBOOL),
    _binary("shift_left", _shift_left, INT),
    _binary("shift_right_logical", _shift_right_logical, INT),
    _binary("shift_right_arithmetic", _shift_right_arithmetic, INT),
    # ternary
    ElementwiseOp("select", 3, lambda p, a, b: np.where(p, a, b), _select_rule),
    ElementwiseOp("clamp", 3, lambda lo, x, hi: np.minimum(np.maximum(x, lo), hi), _clamp_rule),
    # conversions
    ElementwiseOp("convert_element_type", 1, _convert, _convert_rule,
                  params=("new_dtype", "weak_type")),
    ElementwiseOp("bitcast", 1, _bitcast, _bitcast_rule, params=("new_dtype",)),
]

OPS = {op.name: op for op in TABLE}


# --- the primitives ---------------------------------------------------------------------------

class ElementwisePrimitive(Primitive):
    """A primitive made from a table row; its rules read the row."""

    def __init__(self, op: ElementwiseOp):
        super().__init__(op.name, "elementwise")
        self.op = op

    def abstract_eval(self, *avals, **params):
        op = self.op
        if len(avals) != op.nin:
            raise type_error(op.name, f"takes {op.nin} operands, got {len(avals)}", *avals)
        if set(params) != set(op.params):
            raise type_error(op.name, f"takes params {op.params}, got {tuple(params)}")
        shape = ()
        for aval in avals:
            if aval.shape != () and aval.shape != shape:
                if shape != ():
                    raise type_error(op.name, "operands must have the same shape (or be "
                                     "rank 0), got " + ", ".join(str(a.shape) for a in avals),
                                     *avals)
                shape = aval.shape
        dtype, weak = op.dtype_rule(op.name, avals, params)
        return ShapedArray(shape, dtype, weak)

    def impl(self, *values, **params):
        # NumPy has no bfloat16 arithmetic: compute in float32 and round the result back.
        upcast = self.name != "bitcast" and any(v.dtype == dtypes.bfloat16 for v in values) \
            and dtypes.bfloat16 is not None
        if upcast:
            values = [v.astype(np.float32) if v.dtype == dtypes.bfloat16 else v for v in values]
        out = np.asarray(self.op.numpy(*values, **params))  # callers silence FP warnings
        if upcast and out.dtype == np.float32 and "new_dtype" not in params:
            out = out.astype(dtypes.bfloat16)
        return out


PRIMITIVES = {op.name: ElementwisePrimitive(op) for op in TABLE}
