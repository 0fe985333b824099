"""Element-wise math with NumPy's names, broadcasting and JAX's dtype promotion."""
from __future__ import annotations

import numpy as np

from .. import dtypes, lax
from ._util import (as_bool, asarray, broadcast_shapes, broadcast_to_shape, promote_args,
                    promote_args_inexact, promote_args_numeric, promote_dtypes,
                    promote_dtypes_inexact, promote_dtypes_numeric, shape_of)
from ..errors import FjitTypeError, FjitValueError
from . import indexing  # it imports this module: read at call time


def _types(*xs):
    """The operands' types for a message, like f32[3], i32[]."""
    return ", ".join(x.aval.str_short() for x in xs)


def _one_inexact(fn, name):
    def ufunc(x, /):
        (x,) = promote_dtypes_inexact(x, opname=name)
        return fn(x)
    ufunc.__name__ = name
    ufunc.__doc__ = f"Element-wise {name} (integers are promoted to the default float)."
    return ufunc


def _one_numeric(fn, name):
    def ufunc(x, /):
        x = asarray(x, opname=name)
        return fn(x)
    ufunc.__name__ = name
    ufunc.__doc__ = f"Element-wise {name}."
    return ufunc


def _two(fn, name, inexact=False):
    def ufunc(x1, x2, /):
        promote = promote_args_inexact if inexact else promote_args
        return fn(*promote(name, x1, x2))
    ufunc.__name__ = name
    ufunc.__doc__ = f"Element-wise {name} with broadcasting."
    return ufunc


# --- unary ------------------------------------------------------------------------------------

exp = _one_inexact(lax.exp, "exp")
exp2 = _one_inexact(lax.exp2, "exp2")
log = _one_inexact(lax.log, "log")
log1p = _one_inexact(lax.log1p, "log1p")
expm1 = _one_inexact(lax.expm1, "expm1")
sqrt = _one_inexact(lax.sqrt, "sqrt")
cbrt = _one_inexact(lax.cbrt, "cbrt")
sin = _one_inexact(lax.sin, "sin")
cos = _one_inexact(lax.cos, "cos")
tan = _one_inexact(lax.tan, "tan")
tanh = _one_inexact(lax.tanh, "tanh")
arcsin = _one_inexact(lax.asin, "arcsin")
arccos = _one_inexact(lax.acos, "arccos")
arctan = _one_inexact(lax.atan, "arctan")
sinh = _one_inexact(lax.sinh, "sinh")
cosh = _one_inexact(lax.cosh, "cosh")
arcsinh = _one_inexact(lax.asinh, "arcsinh")
arccosh = _one_inexact(lax.acosh, "arccosh")
arctanh = _one_inexact(lax.atanh, "arctanh")
asin, acos, atan = arcsin, arccos, arctan
asinh, acosh, atanh = arcsinh, arccosh, arctanh


def log2(x, /):
    (x,) = promote_dtypes_inexact(x)
    return lax.div(lax.log(x), lax.log(lax.full((), 2.0, x.dtype)))


def log10(x, /):
    (x,) = promote_dtypes_inexact(x)
    return lax.div(lax.log(x), lax.log(lax.full((), 10.0, x.dtype)))


def deg2rad(x, /):
    (x,) = promote_dtypes_inexact(x)
    return lax.mul(x, np.pi / 180)


def rad2deg(x, /):
    (x,) = promote_dtypes_inexact(x)
    return lax.mul(x, 180 / np.pi)


radians, degrees = deg2rad, rad2deg


def _float_or_identity(fn):
    """floor/ceil/... leave integers as they are (NumPy keeps their dtype too)."""
    def apply(x):
        return fn(x) if dtypes.is_float(x.dtype) else x
    return apply


floor = _one_numeric(_float_or_identity(lax.floor), "floor")
ceil = _one_numeric(_float_or_identity(lax.ceil), "ceil")
rint = _one_inexact(lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), "rint")


def trunc(x, /):
    x = asarray(x)
    if not dtypes.is_float(x.dtype):
        return x
    return lax.select(lax.lt(x, 0.0), lax.ceil(x), lax.floor(x))


fix = trunc


def round(a, decimals=0, out=None):
    """Round half to even (NumPy's rule), to `decimals` places."""
    a = asarray(a)
    if not dtypes.is_float(a.dtype):
        if decimals >= 0:
            return a
        factor = 10 ** -decimals  # to a multiple of factor, halves to the even multiple
        q = floor_divide(a, factor)
        twice_r = lax.mul(lax.sub(a, lax.mul(q, factor)), 2)
        odd = lax.ne(lax.rem(q, 2), 0)
        up = lax.bitwise_or(lax.gt(twice_r, factor),
                            lax.bitwise_and(lax.eq(twice_r, factor), odd))
        return lax.mul(lax.select(up, lax.add(q, 1), q), factor)
    if decimals == 0:
        return lax.round(a, lax.RoundingMethod.TO_NEAREST_EVEN)
    factor = float(10.0 ** decimals)
    return lax.div(lax.round(lax.mul(a, factor), lax.RoundingMethod.TO_NEAREST_EVEN), factor)


around = round


def negative(x, /):
    x = asarray(x)
    if dtypes.is_bool(x.dtype):
        raise FjitTypeError(f"negative: the numpy boolean negative is not supported ({_types(x)}"
                            "); use logical_not or invert instead")
    return lax.neg(x)


def positive(x, /):
    return asarray(x)


def absolute(x, /):
    x = asarray(x)
    if dtypes.is_unsigned(x.dtype) or dtypes.is_bool(x.dtype):
        return x
    return lax.abs(x)


abs = absolute


def fabs(x, /):
    (x,) = promote_dtypes_inexact(x)
    return lax.abs(x)


def sign(x, /):
    x = asarray(x)
    if dtypes.is_bool(x.dtype):
        return x
    return lax.sign(x)


def square(x, /):
    (x,) = promote_dtypes_numeric(x)
    return lax.integer_pow(x, 2)


def reciprocal(x, /):
    (x,) = promote_dtypes_inexact(x)
    return lax.div(lax.full((), 1, x.dtype), x)


def isfinite(x, /):
    x = asarray(x)
    if not dtypes.is_float(x.dtype):
        return lax.full(x.shape, True)
    return lax.is_finite(x)


def isinf(x, /):
    x = asarray(x)
    if not dtypes.is_float(x.dtype):
        return lax.full(x.shape, False)
    return lax.eq(lax.abs(x), float("inf"))


def isnan(x, /):
    x = asarray(x)
    if not dtypes.is_float(x.dtype):
        return lax.full(x.shape, False)
    return lax.ne(x, x)


def isposinf(x, /):
    x = asarray(x)
    return lax.eq(x, float("inf")) if dtypes.is_float(x.dtype) else lax.full(x.shape, False)


def isneginf(x, /):
    x = asarray(x)
    return lax.eq(x, float("-inf")) if dtypes.is_float(x.dtype) else lax.full(x.shape, False)


def signbit(x, /):
    """True where the sign bit is set (including -0.0 and negative NaNs)."""
    x = asarray(x)
    if dtypes.is_bool(x.dtype) or dtypes.is_unsigned(x.dtype):
        return lax.full(x.shape, False)
    if dtypes.is_int(x.dtype):
        return lax.lt(x, 0)
    int_type = np.dtype(f"i{x.dtype.itemsize}")
    return lax.lt(lax.bitcast_convert_type(x, int_type), 0)


def logical_not(x, /):
    return lax.bitwise_not(as_bool(x))


def invert(x, /):
    x = asarray(x)
    if dtypes.is_float(x.dtype):
        raise FjitTypeError(f"invert: not defined for {_types(x)}; use an integer or bool "
                            "array")
    return lax.bitwise_not(x)


bitwise_not = bitwise_invert = invert


# --- binary -----------------------------------------------------------------------------------

def _no_bool(fn, name):
    def apply(x, y):
        if dtypes.is_bool(x.dtype):
            raise FjitTypeError(f"{name}: not defined for bool arrays ({_types(x, y)}); use "
                                "logical_xor / logical_and or cast to an integer type")
        return fn(x, y)
    return apply


def _bool_or(fn_bool, fn):
    def apply(x, y):
        return fn_bool(x, y) if dtypes.is_bool(x.dtype) else fn(x, y)
    return apply


add = _two(_bool_or(lax.bitwise_or, lax.add), "add")
subtract = _two(_no_bool(lax.sub, "subtract"), "subtract")
multiply = _two(_bool_or(lax.bitwise_and, lax.mul), "multiply")
true_divide = _two(lax.div, "true_divide", inexact=True)
divide = true_divide
arctan2 = _two(lax.atan2, "arctan2", inexact=True)
atan2 = arctan2
nextafter = _two(lax.nextafter, "nextafter", inexact=True)
maximum = _two(lax.max, "maximum")
minimum = _two(lax.min, "minimum")
equal = _two(lax.eq, "equal")
not_equal = _two(lax.ne, "not_equal")
less = _two(lax.lt, "less")
less_equal = _two(lax.le, "less_equal")
greater = _two(lax.gt, "greater")
greater_equal = _two(lax.ge, "greater_equal")


def _int_or_bool_only(fn, name):
    def apply(x, y):
        if dtypes.is_float(x.dtype):
            raise FjitTypeError(f"{name}: not defined for {_types(x, y)}; use integer or bool "
                                "arrays")
        return fn(x, y)
    return apply


bitwise_and = _two(_int_or_bool_only(lax.bitwise_and, "bitwise_and"), "bitwise_and")
bitwise_or = _two(_int_or_bool_only(lax.bitwise_or, "bitwise_or"), "bitwise_or")
bitwise_xor = _two(_int_or_bool_only(lax.bitwise_xor, "bitwise_xor"), "bitwise_xor")
def left_shift(x1, x2, /):
    x1, x2 = promote_args_numeric("left_shift", x1, x2)
    if not dtypes.is_int(x1.dtype):
        raise FjitTypeError(f"left_shift: not defined for {_types(x1, x2)}; use integer "
                            "arrays")
    return lax.shift_left(x1, x2)


bitwise_left_shift = left_shift


def right_shift(x1, x2, /):
    x1, x2 = promote_args_numeric("right_shift", x1, x2)
    if not dtypes.is_int(x1.dtype):
        raise FjitTypeError(f"right_shift: not defined for {_types(x1, x2)}; use integer "
                            "arrays")
    if dtypes.is_unsigned(x1.dtype):
        return lax.shift_right_logical(x1, x2)
    return lax.shift_right_arithmetic(x1, x2)


bitwise_right_shift = right_shift


def _logical(fn, name):
    def ufunc(x1, x2, /):
        x1, x2 = (as_bool(v) for v in (x1, x2))
        return fn(*promote_args(name, x1, x2))
    ufunc.__name__ = name
    return ufunc


logical_and = _logical(lax.bitwise_and, "logical_and")
logical_or = _logical(lax.bitwise_or, "logical_or")
logical_xor = _logical(lax.bitwise_xor, "logical_xor")


def _floor_divmod_float(x, y):
    """(floor(x / y), x mod y) for floats, as NumPy computes them."""
    mod = lax.rem(x, y)
    div = lax.div(lax.sub(x, mod), y)
    fix_sign = lax.bitwise_and(lax.ne(mod, 0.0), lax.ne(lax.lt(y, 0.0), lax.lt(mod, 0.0)))
    mod = lax.select(fix_sign, lax.add(mod, y), mod)
    div = lax.select(fix_sign, lax.sub(div, 1.0), div)
    div = lax.round(div, lax.RoundingMethod.TO_NEAREST_EVEN)
    return lax.select(lax.eq(y, 0.0), lax.div(x, y), div), mod  # x // 0 is +-inf or nan


def floor_divide(x1, x2, /):
    x1, x2 = promote_args_numeric("floor_divide", x1, x2)
    if dtypes.is_float(x1.dtype):
        return _floor_divmod_float(x1, x2)[0]
    q = lax.div(x1, x2)   # truncated; x // 0 is -1 (all ones unsigned), MIN // -1 is MIN
    if dtypes.is_unsigned(x1.dtype):
        return q
    # Round down where the signs differ and the division is inexact; with x2 == 0 that makes
    # x // 0 = -2 for x != 0 and 0 // 0 = -1, as in JAX (lax.rem(x, 0) is x).
    wrong = lax.bitwise_and(lax.ne(lax.sign(x1), lax.sign(x2)), lax.ne(lax.rem(x1, x2), 0))
    return lax.select(wrong, lax.sub(q, 1), q)


def _nonzero_divisor(x2):
    """Integer x2 with zeros replaced by ones: JAX's x % 0 and fmod(x, 0) are 0."""
    return lax.select(lax.eq(x2, 0), lax.full((), 1, x2.dtype), x2)


def remainder(x1, x2, /):
    """x1 mod x2 with the sign of x2 (Python's %)."""
    x1, x2 = promote_args_numeric("remainder", x1, x2)
    if dtypes.is_float(x1.dtype):
        return _floor_divmod_float(x1, x2)[1]
    x2 = _nonzero_divisor(x2)
    r = lax.rem(x1, x2)
    if dtypes.is_unsigned(x1.dtype):
        return r
    wrong = lax.bitwise_and(lax.ne(r, 0), lax.ne(lax.lt(r, 0), lax.lt(x2, 0)))
    return lax.select(wrong, lax.add(r, x2), r)


mod = remainder


def divmod(x1, x2, /):
    return floor_divide(x1, x2), remainder(x1, x2)


def fmod(x1, x2, /):
    """Remainder with the sign of x1 (C's fmod)."""
    x1, x2 = promote_args_numeric("fmod", x1, x2)
    if dtypes.is_int(x1.dtype):
        x2 = _nonzero_divisor(x2)
    return lax.rem(x1, x2)


def power(x1, x2, /):
    """x1 ** x2.  Integer powers of integers are exact (repeated squaring)."""
    if isinstance(x2, int) and not isinstance(x2, bool):
        x1 = asarray(x1)
        if dtypes.is_int(x1.dtype) and x2 < 0:
            raise FjitValueError("power: integers cannot be raised to negative integer powers")
        if not dtypes.is_bool(x1.dtype):
            return lax.integer_pow(x1, x2)
    x1, x2 = promote_args_numeric("power", x1, x2)
    if dtypes.is_float(x1.dtype):
        return lax.pow(x1, x2)
    return _integer_power(x1, x2)


pow = power


def _integer_power(base, exponent):
    """Exponentiation by squaring over the bits of an integer exponent array.  A negative
    exponent gives the integer part of the true power: 0, or +-1 for bases +-1."""
    base, exponent = _broadcast_all("power", base, exponent)
    acc, b, e = lax.full(base.shape, 1, base.dtype), base, exponent
    negative = lax.lt(exponent, 0)
    if not dtypes.is_unsigned(e.dtype):
        e = lax.select(negative, 0, e)
    for _ in range(8 * e.dtype.itemsize):
        acc = lax.select(lax.ne(lax.bitwise_and(e, 1), 0), lax.mul(acc, b), acc)
        b = lax.mul(b, b)
        e = lax.shift_right_logical(e, 1)
    if dtypes.is_unsigned(e.dtype):
        return acc
    odd = lax.ne(lax.bitwise_and(exponent, 1), 0)
    unit = lax.select(lax.eq(base, 1), 1,
                      lax.select(lax.eq(base, -1), lax.select(odd, lax.full((), -1, acc.dtype),
                                                              lax.full((), 1, acc.dtype)), 0))
    return lax.select(negative, unit, acc)


def float_power(x1, x2, /):
    x1, x2 = promote_args_inexact("float_power", x1, x2)
    return lax.pow(x1, x2)


def fmax(x1, x2, /):
    """Maximum that ignores NaNs (NaN only where both are NaN); at ties it is x2 (JAX)."""
    x1, x2 = promote_args("fmax", x1, x2)
    if not dtypes.is_float(x1.dtype):
        return lax.max(x1, x2)
    return lax.select(lax.bitwise_or(lax.gt(x1, x2), lax.ne(x2, x2)), x1, x2)


def fmin(x1, x2, /):
    x1, x2 = promote_args("fmin", x1, x2)
    if not dtypes.is_float(x1.dtype):
        return lax.min(x1, x2)
    return lax.select(lax.bitwise_or(lax.lt(x1, x2), lax.ne(x2, x2)), x1, x2)


def hypot(x1, x2, /):
    """sqrt(x1**2 + x2**2) without overflow for large inputs."""
    x1, x2 = promote_args_inexact("hypot", x1, x2)
    a, b = lax.abs(x1), lax.abs(x2)
    big, small = lax.max(a, b), lax.min(a, b)
    safe = lax.select(lax.eq(big, 0.0), 1.0, big)
    ratio = lax.div(small, safe)
    out = lax.mul(big, lax.sqrt(lax.add(lax.mul(ratio, ratio), 1.0)))
    out = lax.select(lax.eq(big, 0.0), big, out)
    infinite = lax.bitwise_or(lax.eq(a, float("inf")), lax.eq(b, float("inf")))
    return lax.select(infinite, float("inf"), out)  # inf even beside a NaN, like C's hypot


def logaddexp(x1, x2, /):
    """log(exp(x1) + exp(x2)) without overflow."""
    x1, x2 = promote_args_inexact("logaddexp", x1, x2)
    big = lax.max(x1, x2)
    delta = lax.sub(x1, x2)
    # min - big rather than -|x1 - x2|: at a tie both derivatives are 1/2 (max splits ties,
    # and so does min), where abs'(0) = 1 would give 0 and 1.
    stable = lax.add(big, lax.log1p(lax.exp(lax.sub(lax.min(x1, x2), big))))
    return lax.select(lax.ne(delta, delta), lax.add(x1, x2), stable)


def logaddexp2(x1, x2, /):
    x1, x2 = promote_args_inexact("logaddexp2", x1, x2)
    ln2 = float(np.log(2))
    return lax.div(logaddexp(lax.mul(x1, ln2), lax.mul(x2, ln2)), ln2)


def copysign(x1, x2, /):
    x1, x2 = promote_args_inexact("copysign", x1, x2)
    return lax.select(signbit(x2), lax.neg(lax.abs(x1)), lax.abs(x1))


def heaviside(x1, x2, /):
    """0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0."""
    x1, x2 = _broadcast_all("heaviside", *promote_dtypes_inexact(x1, x2))
    below = lax.select(lax.lt(x1, 0.0), 0.0, x1)  # NaN stays NaN
    return lax.select(lax.eq(x1, 0.0), x2, lax.select(lax.gt(x1, 0.0), 1.0, below))


# --- ternary and predicates -------------------------------------------------------------------

def where(condition, x=None, y=None, /):
    """Elements of x where condition, else of y (both given), with broadcasting."""
    if x is None and y is None:
        return indexing.nonzero(condition)
    if x is None or y is None:
        raise FjitValueError("where: give both x and y, or neither")
    condition = as_bool(condition)
    x, y = promote_dtypes(x, y)
    condition, x, y = _broadcast_all("where", condition, x, y)
    return lax.select(condition, x, y)


def _broadcast_all(name, *args):
    shape = broadcast_shapes(name, *(shape_of(a) for a in args))
    return [broadcast_to_shape(a, shape) for a in args]


def clip(arr=None, /, min=None, max=None, *, a=None, a_min=None, a_max=None):
    """Limit values to [min, max] (either may be None)."""
    arr = a if arr is None else arr
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    if arr is None:
        raise FjitTypeError("clip: missing the array argument")
    out = asarray(arr, opname="clip")
    if lo is not None:
        out = lax.max(*promote_args("clip", out, lo))
    if hi is not None:
        out = lax.min(*promote_args("clip", out, hi))
    return out


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = promote_args_inexact("isclose", a, b)
    close = lax.le(lax.abs(lax.sub(a, b)), lax.add(lax.mul(lax.abs(b), rtol), atol))
    same = lax.eq(a, b)  # infinities equal only to themselves
    finite = lax.bitwise_and(lax.is_finite(a), lax.is_finite(b))
    out = lax.bitwise_or(same, lax.bitwise_and(finite, close))
    if equal_nan:
        out = lax.bitwise_or(out, lax.bitwise_and(lax.ne(a, a), lax.ne(b, b)))
    return out


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    close = isclose(a, b, rtol, atol, equal_nan)
    return lax.reduce_and(close, tuple(range(close.ndim)))


def array_equal(a1, a2, equal_nan=False):
    a1, a2 = asarray(a1), asarray(a2)
    if a1.shape != a2.shape:
        return asarray(False)
    a1, a2 = promote_dtypes(a1, a2)
    eq = lax.eq(a1, a2)
    if equal_nan and dtypes.is_float(a1.dtype):
        eq = lax.bitwise_or(eq, lax.bitwise_and(lax.ne(a1, a1), lax.ne(a2, a2)))
    return lax.reduce_and(eq, tuple(range(eq.ndim)))
