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
from .. import lax  # the package's functions, looked up when a rule runs (it imports this module)
from ..core import Primitive, ShapedArray, type_error
from ..errors import FjitTypeError, FjitValueError
from ..interpreters import ad, batching
from ..interpreters.ad import Zero, add_tangents, instantiate, is_linear, unbroadcast
from ..interpreters.batching import bdim_at_front
from ..limits import check_fits_in_memory

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
        raise FjitValueError("integer_pow of an integer array needs a non-negative exponent")
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


# --- derivatives (the table's jvp column) ----------------------------------------------------
#
# A jvp entry is `rule(primals, tangents, out, **params) -> tangent`, tangents possibly Zero.
# Most are written as partial derivatives: tangent = sum_i t_i * d_i(*primals, out).

def _c(x, value):
    """The constant `value` with x's dtype, as a rank-0 operand."""
    return lax.full((), value, x.dtype)


def partials(*derivatives):
    """jvp from one derivative function per operand (None: no dependence on that operand)."""
    def rule(primals, tangents, out, **params):
        total = Zero(None)
        for d, t in zip(derivatives, tangents):
            if d is not None and not isinstance(t, Zero):
                total = add_tangents(total, lax.mul(t, d(*primals, out, **params)))
        return total
    return rule


def zero_derivative(primals, tangents, out, **params):
    """Piecewise-constant ops (floor, sign, comparisons, ...) have zero derivative."""
    return Zero(None)


def _add_jvp(primals, tangents, out):
    return add_tangents(tangents[0], tangents[1])


def _sub_jvp(primals, tangents, out):
    tx, ty = tangents
    if isinstance(ty, Zero):
        return tx
    return lax.neg(ty) if isinstance(tx, Zero) else lax.sub(tx, ty)


def _neg_jvp(primals, tangents, out):
    return lax.neg(tangents[0])


def _select_jvp(primals, tangents, out):
    _, ta, tb = tangents
    if isinstance(ta, Zero) and isinstance(tb, Zero):
        return Zero(None)
    a, b = primals[1], primals[2]
    ta = instantiate(ta) if not isinstance(ta, Zero) else lax.full((), 0, a.dtype)
    tb = instantiate(tb) if not isinstance(tb, Zero) else lax.full((), 0, b.dtype)
    return lax.select(primals[0], ta, tb)


def _convert_jvp(primals, tangents, out, new_dtype, weak_type):
    if not dtypes.is_float(new_dtype) or not dtypes.is_float(primals[0].dtype):
        return Zero(None)
    return lax.convert_element_type(tangents[0], new_dtype)


def _extremum_jvp(wins_if):
    """max (wins_if=gt) / min (lt): each operand's tangent where it is chosen, half of it at
    ties (JAX's balanced rule), else 0.  Selected, not multiplied by a 0/1 mask, so an inf or
    NaN tangent of the operand that lost does not leak into the result."""
    def rule(primals, tangents, out):
        total = Zero(None)
        for mine, other, t in ((primals[0], primals[1], tangents[0]),
                               (primals[1], primals[0], tangents[1])):
            if isinstance(t, Zero):
                continue
            zero = lax.full((), 0, t.dtype)
            half = lax.select(lax.eq(mine, other), lax.mul(t, 0.5), zero)
            total = add_tangents(total, lax.select(getattr(lax, wins_if)(mine, other), t, half))
        return total
    return rule


def _indicator(cond, like):
    return lax.convert_element_type(cond, like.dtype)


def _clamp_partials():
    """clamp(lo, x, hi) follows whichever operand it returns (JAX's rule at the edges)."""
    def d_lo(lo, x, hi, out):
        return _indicator(lax.bitwise_and(lax.gt(lo, x), lax.lt(lo, hi)), x)

    def d_x(lo, x, hi, out):
        return _indicator(lax.bitwise_and(lax.gt(x, lo), lax.lt(x, hi)), x)

    def d_hi(lo, x, hi, out):
        return _indicator(lax.lt(hi, x), x)

    return partials(d_lo, d_x, d_hi)


def _pow_dx(x, y, out):
    safe = lax.select(lax.eq(y, 0.0), 0.0, lax.mul(y, lax.pow(x, lax.sub(y, 1.0))))
    return safe


def _pow_dy(x, y, out):
    return lax.mul(lax.log(lax.select(lax.eq(x, 0.0), 1.0, x)), out)


def _rem_dy(x, y, out):
    q = lax.div(x, y)
    return lax.neg(lax.mul(lax.sign(q), lax.floor(lax.abs(q))))


def _integer_pow_dx(x, out, y):
    if y == 0:
        return lax.full((), 0, x.dtype)
    if y == 1:
        return lax.full((), 1, x.dtype)
    return lax.mul(_c(x, y), x if y == 2 else lax.integer_pow(x, y - 1))


def _atan2_partials():
    def denominator(x, y):
        return lax.add(lax.mul(x, x), lax.mul(y, y))
    return partials(lambda x, y, out: lax.div(y, denominator(x, y)),
                    lambda x, y, out: lax.neg(lax.div(x, denominator(x, y))))


def _u(fn):
    """A unary derivative written in terms of (x, out)."""
    return partials(lambda x, out, **params: fn(lax, x, out))


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)

# --- the table --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ElementwiseOp:
    """One row of the table.

    `numpy(*arrays, **params)` is the reference; `dtype_rule(name, avals, params)` returns the
    result (dtype, weak_type) or raises; `jvp(primals, tangents, out, **params)` the tangent
    (derivatives above).  Each compiled target has its own code for every row
    (fjit/compiler/targets/c_family/ops.py).
    """
    name: str
    nin: int
    numpy: Callable
    dtype_rule: Callable
    jvp: Callable
    params: tuple = ()


def _unary(name, fn, kinds, jvp):
    return ElementwiseOp(name, 1, fn, same(kinds), jvp)


def _binary(name, fn, kinds, jvp):
    return ElementwiseOp(name, 2, fn, same(kinds), jvp)


Z = zero_derivative

TABLE = [
    # unary, any numeric type
    _unary("neg", np.negative, NUM, _neg_jvp),
    _unary("abs", np.abs, NUM, _u(lambda l, x, y: l.select(l.ge(x, 0), _c(x, 1), _c(x, -1)))),
    _unary("sign", np.sign, NUM, Z),
    ElementwiseOp("integer_pow", 1, _integer_pow, same(NUM), partials(_integer_pow_dx),
                  params=("y",)),
    # unary, floating point
    _unary("exp", np.exp, FLOAT, _u(lambda l, x, y: y)),
    _unary("exp2", np.exp2, FLOAT, _u(lambda l, x, y: l.mul(y, math.log(2)))),
    _unary("log", np.log, FLOAT, _u(lambda l, x, y: l.div(1.0, x))),
    _unary("log1p", np.log1p, FLOAT, _u(lambda l, x, y: l.div(1.0, l.add(x, 1.0)))),
    _unary("expm1", np.expm1, FLOAT, _u(lambda l, x, y: l.add(y, 1.0))),
    _unary("sqrt", np.sqrt, FLOAT, _u(lambda l, x, y: l.div(0.5, y))),
    _unary("rsqrt", lambda x: (1 / np.sqrt(x)).astype(x.dtype), FLOAT,
           _u(lambda l, x, y: l.mul(l.div(y, x), -0.5))),
    _unary("cbrt", np.cbrt, FLOAT, _u(lambda l, x, y: l.div(1.0, l.mul(l.mul(y, y), 3.0)))),
    _unary("sin", np.sin, FLOAT, _u(lambda l, x, y: l.cos(x))),
    _unary("cos", np.cos, FLOAT, _u(lambda l, x, y: l.neg(l.sin(x)))),
    _unary("tan", np.tan, FLOAT, _u(lambda l, x, y: l.add(l.mul(y, y), 1.0))),
    _unary("tanh", np.tanh, FLOAT, _u(lambda l, x, y: l.sub(1.0, l.mul(y, y)))),
    _unary("asin", np.arcsin, FLOAT, _u(lambda l, x, y: l.rsqrt(l.sub(1.0, l.mul(x, x))))),
    _unary("acos", np.arccos, FLOAT,
           _u(lambda l, x, y: l.neg(l.rsqrt(l.sub(1.0, l.mul(x, x)))))),
    _unary("atan", np.arctan, FLOAT, _u(lambda l, x, y: l.div(1.0, l.add(l.mul(x, x), 1.0)))),
    _unary("sinh", np.sinh, FLOAT, _u(lambda l, x, y: l.cosh(x))),
    _unary("cosh", np.cosh, FLOAT, _u(lambda l, x, y: l.sinh(x))),
    _unary("asinh", np.arcsinh, FLOAT, _u(lambda l, x, y: l.rsqrt(l.add(l.mul(x, x), 1.0)))),
    _unary("acosh", np.arccosh, FLOAT,
           _u(lambda l, x, y: l.rsqrt(l.mul(l.sub(x, 1.0), l.add(x, 1.0))))),
    _unary("atanh", np.arctanh, FLOAT, _u(lambda l, x, y: l.div(1.0, l.sub(1.0, l.mul(x, x))))),
    _unary("logistic", _logistic, FLOAT, _u(lambda l, x, y: l.mul(y, l.sub(1.0, y)))),
    _unary("erf", _erf, FLOAT,
           _u(lambda l, x, y: l.mul(l.exp(l.neg(l.mul(x, x))), _TWO_OVER_SQRT_PI))),
    _unary("floor", np.floor, FLOAT, Z),
    _unary("ceil", np.ceil, FLOAT, Z),
    ElementwiseOp("round", 1, _round, same(FLOAT), Z, params=("rounding_method",)),
    ElementwiseOp("is_finite", 1, np.isfinite, _is_finite_rule, Z),
    _unary("stop_gradient", lambda x: x, ANY, Z),
    # unary, bitwise / logical
    _unary("not", np.invert, INTBOOL, Z),
    # binary arithmetic
    _binary("add", np.add, NUM, _add_jvp),
    _binary("sub", np.subtract, NUM, _sub_jvp),
    _binary("mul", np.multiply, NUM, partials(lambda x, y, out: y, lambda x, y, out: x)),
    _binary("div", _div, NUM, partials(lambda x, y, out: lax.div(1.0, y),
                                       lambda x, y, out: lax.neg(lax.div(out, y)))),
    _binary("rem", _rem, NUM, partials(lambda x, y, out: _c(x, 1), _rem_dy)),
    _binary("pow", np.power, FLOAT, partials(_pow_dx, _pow_dy)),
    _binary("max", np.maximum, ANY, _extremum_jvp("gt")),
    _binary("min", np.minimum, ANY, _extremum_jvp("lt")),
    _binary("atan2", np.arctan2, FLOAT, _atan2_partials()),
    _binary("nextafter", np.nextafter, FLOAT, Z),
    # comparisons
    ElementwiseOp("eq", 2, np.equal, predicate(ANY), Z),
    ElementwiseOp("ne", 2, np.not_equal, predicate(ANY), Z),
    ElementwiseOp("lt", 2, np.less, predicate(ANY), Z),
    ElementwiseOp("le", 2, np.less_equal, predicate(ANY), Z),
    ElementwiseOp("gt", 2, np.greater, predicate(ANY), Z),
    ElementwiseOp("ge", 2, np.greater_equal, predicate(ANY), Z),
    # bitwise / logical (bool operands make them logical)
    _binary("and", np.bitwise_and, INTBOOL, Z),
    _binary("or", np.bitwise_or, INTBOOL, Z),
    _binary("xor", np.bitwise_xor, INTBOOL, Z),
    _binary("shift_left", _shift_left, INT, Z),
    _binary("shift_right_logical", _shift_right_logical, INT, Z),
    _binary("shift_right_arithmetic", _shift_right_arithmetic, INT, Z),
    # ternary
    ElementwiseOp("select", 3, lambda p, a, b: np.where(p, a, b), _select_rule, _select_jvp),
    ElementwiseOp("clamp", 3, lambda lo, x, hi: np.minimum(np.maximum(x, lo), hi), _clamp_rule,
                  _clamp_partials()),
    # conversions
    ElementwiseOp("convert_element_type", 1, _convert, _convert_rule, _convert_jvp,
                  params=("new_dtype", "weak_type")),
    ElementwiseOp("bitcast", 1, _bitcast, _bitcast_rule, Z, params=("new_dtype",)),
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
        try:
            out = np.asarray(self.op.numpy(*values, **params))  # callers silence FP warnings
        except MemoryError:  # NumPy could not allocate the result: say which and how large
            shape = np.broadcast_shapes(*(v.shape for v in values))
            check_fits_in_memory(shape, np.result_type(*values), self.name)
            raise
        if upcast and out.dtype == np.float32 and "new_dtype" not in params:
            out = out.astype(dtypes.bfloat16)
        return out


PRIMITIVES = {op.name: ElementwisePrimitive(op) for op in TABLE}


# --- transformation rules (one per family, reading the table) ---------------------------------

def _jvp_rule(primitive):
    def rule(primals, tangents, **params):
        out = primitive.bind(*primals, **params)
        if not dtypes.is_float(out.dtype):
            return out, Zero(None)
        tangent = primitive.op.jvp(primals, tangents, out, **params)
        if isinstance(tangent, Zero):
            return out, Zero(None)
        if tangent.shape != out.shape:  # only rank-0 operands had tangents
            tangent = lax.broadcast_in_dim(tangent, out.shape, ())
        return out, tangent
    return rule


def _batching_rule(primitive):
    """Element-wise ops batch element-wise: batch dims to the front, unbatched full-shape
    operands broadcast along it (rank-0 operands broadcast by themselves)."""
    def rule(axis_size, values, dims, **params):
        shapes = [v.shape if d is None else v.shape[:d] + v.shape[d + 1:]
                  for v, d in zip(values, dims)]
        shape = next((sh for sh in shapes if sh != ()), ())
        out = []
        for v, d, sh in zip(values, dims, shapes):
            if d is None and sh == ():
                out.append(v)
                continue
            v = bdim_at_front(v, d, axis_size)
            if sh != shape:  # a batched rank-0 operand among full-shape ones
                v = lax.broadcast_in_dim(v, (axis_size,) + shape, (0,))
            out.append(v)
        return primitive.bind(*out, **params), 0
    return rule


def _transpose_add(ct, x, y):
    return [unbroadcast(x.aval, ct) if is_linear(x) else None,
            unbroadcast(y.aval, ct) if is_linear(y) else None]


def _transpose_sub(ct, x, y):
    neg = ct if isinstance(ct, Zero) else lax.neg(ct)
    return [unbroadcast(x.aval, ct) if is_linear(x) else None,
            unbroadcast(y.aval, neg) if is_linear(y) else None]


def _transpose_neg(ct, x):
    return [ct if isinstance(ct, Zero) else lax.neg(ct)]


def _transpose_mul(ct, x, y):
    if is_linear(x) and is_linear(y):
        raise FjitTypeError("transpose of mul: both operands are linear, so the product is not")
    if isinstance(ct, Zero):
        return [None, None]
    if is_linear(x):
        return [unbroadcast(x.aval, lax.mul(ct, y)), None]
    return [None, unbroadcast(y.aval, lax.mul(x, ct))]


def _transpose_div(ct, x, y):
    if is_linear(y):
        raise FjitTypeError("transpose of div: the divisor is linear, so the quotient is not")
    if isinstance(ct, Zero):
        return [None, None]
    return [unbroadcast(x.aval, lax.div(ct, y)), None]


def _transpose_select(ct, pred, a, b):
    if is_linear(pred):
        raise FjitTypeError("transpose of select: the predicate cannot be linear")
    if isinstance(ct, Zero):
        return [None, None, None]
    zero = lax.full((), 0, ct.dtype)
    return [None,
            unbroadcast(a.aval, lax.select(pred, ct, zero)) if is_linear(a) else None,
            unbroadcast(b.aval, lax.select(pred, zero, ct)) if is_linear(b) else None]


def _transpose_convert(ct, x, new_dtype, weak_type):
    if isinstance(ct, Zero):
        return [None]
    return [lax.convert_element_type(ct, x.aval.dtype, x.aval.weak_type)]


def _register_rules():
    for primitive in PRIMITIVES.values():
        ad.jvp_rules[primitive] = _jvp_rule(primitive)
        batching.batching_rules[primitive] = _batching_rule(primitive)
    for name, rule in [("add", _transpose_add), ("sub", _transpose_sub),
                       ("neg", _transpose_neg), ("mul", _transpose_mul),
                       ("div", _transpose_div), ("select", _transpose_select),
                       ("convert_element_type", _transpose_convert)]:
        ad.transpose_rules[PRIMITIVES[name]] = rule


_register_rules()
