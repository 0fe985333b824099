"""`fjit.lax`: the meta-op primitives as functions (JAX's lax, for the ops fjit has).

Element-wise functions want operands of one dtype and one shape (rank-0 operands broadcast);
a Python scalar operand takes the dtype of the array beside it.  `fjit.numpy` does NumPy-style
promotion and broadcasting on top of these.
"""
from __future__ import annotations

import enum

import numpy as np

from .. import dtypes
from ..array import Array, aval_of as _aval_of
from ..core import ShapedArray, Tracer, as_int
from ..errors import FjitTypeError
from ..interpreters import ad as _ad, array_ops as _array_ops
from ..tree_util import tree_map as _tree_map
from . import indexexpr
from .call import jit_p
from .elementwise import PRIMITIVES as _EW
from .reduce import REDUCE_PRIMITIVES as _RED, argmax_p, argmin_p
from .reindex import reindex_p, reindex_reduce_p
from .structural import broadcast_in_dim_p, iota_p, reshape_p


# --- operand helpers --------------------------------------------------------------------------

def _is_python_scalar(x):
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _dtype_of(x):
    if isinstance(x, (Array, Tracer)):
        return x.aval.dtype
    return dtypes.canonicalize(np.asarray(x).dtype)


def _weak_scalar(value, dtype):
    """A Python scalar as a weakly typed rank-0 array of `dtype`."""
    if dtypes.is_int(dtype) and isinstance(value, float) and not value.is_integer():
        raise FjitTypeError(f"cannot use the float {value!r} as an operand of integer type "
                            f"{dtype.name}")
    if dtypes.is_int(dtype) and not isinstance(value, bool):
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise OverflowError(f"Python scalar {value!r} does not fit {dtype.name}")
    return Array(np.asarray(value, dtype=dtype), ShapedArray((), dtype, not dtypes.is_bool(dtype)))


def _scalars_like(args, ref):
    """Give Python scalars in `args` the dtype of `ref` (the first non-scalar if None)."""
    if ref is None:
        ref = next((a for a in args if not _is_python_scalar(a)), None)
        if ref is None:
            return args
    dtype = _dtype_of(ref)
    return [_weak_scalar(a, dtype) if _is_python_scalar(a) else a for a in args]


def _unary(name):
    prim = _EW[name]

    def fn(x):
        return prim.bind(x)
    fn.__name__ = name
    fn.__doc__ = f"Element-wise {name} (the `{name}` primitive)."
    return fn


def _binary(name, prim_name=None):
    prim = _EW[prim_name or name]

    def fn(x, y):
        x, y = _scalars_like((x, y), None)
        return prim.bind(x, y)
    fn.__name__ = name
    fn.__doc__ = f"Element-wise {name} (the `{prim.name}` primitive)."
    return fn


# --- element-wise -----------------------------------------------------------------------------

neg, abs, sign = _unary("neg"), _unary("abs"), _unary("sign")
exp, exp2, log, log1p, expm1 = (_unary(n) for n in ("exp", "exp2", "log", "log1p", "expm1"))
sqrt, rsqrt, cbrt = _unary("sqrt"), _unary("rsqrt"), _unary("cbrt")
sin, cos, tan, tanh = _unary("sin"), _unary("cos"), _unary("tan"), _unary("tanh")
asin, acos, atan = _unary("asin"), _unary("acos"), _unary("atan")
sinh, cosh, asinh, acosh, atanh = (_unary(n) for n in ("sinh", "cosh", "asinh", "acosh",
                                                       "atanh"))
logistic, erf, floor, ceil = _unary("logistic"), _unary("erf"), _unary("floor"), _unary("ceil")
is_finite = _unary("is_finite")
bitwise_not = _unary("not")

add, sub, mul, div, rem = (_binary(n) for n in ("add", "sub", "mul", "div", "rem"))
pow, max, min = _binary("pow"), _binary("max"), _binary("min")
atan2, nextafter = _binary("atan2"), _binary("nextafter")
eq, ne, lt, le, gt, ge = (_binary(n) for n in ("eq", "ne", "lt", "le", "gt", "ge"))
bitwise_and, bitwise_or, bitwise_xor = (_binary("bitwise_" + n, n) for n in ("and", "or", "xor"))
shift_left = _binary("shift_left")
shift_right_logical = _binary("shift_right_logical")
shift_right_arithmetic = _binary("shift_right_arithmetic")


class RoundingMethod(enum.IntEnum):
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def round(x, rounding_method=RoundingMethod.AWAY_FROM_ZERO):
    """Round to integral values: half away from zero (default) or half to even."""
    return _EW["round"].bind(x, rounding_method=int(rounding_method))


def integer_pow(x, y: int):
    """x ** y for a static Python int y (negative y needs a float x)."""
    if not isinstance(y, (int, np.integer)):
        raise FjitTypeError(f"integer_pow: the exponent must be a Python int, got {y!r}")
    return _EW["integer_pow"].bind(x, y=int(y))


def select(pred, on_true, on_false):
    """`on_true` where `pred` else `on_false` (pred is bool)."""
    on_true, on_false = _scalars_like((on_true, on_false), None)
    return _EW["select"].bind(pred, on_true, on_false)


def clamp(min, x, max):
    """`min(max(x, min), max)` element-wise (JAX's argument order)."""
    lo, x, hi = _scalars_like((min, x, max), x)
    return _EW["clamp"].bind(lo, x, hi)


def convert_element_type(x, new_dtype, weak_type=False):
    """Cast to `new_dtype` (float->int truncates toward zero and saturates; NaN -> 0)."""
    new_dtype = dtypes.to_dtype(new_dtype)
    if _is_python_scalar(x):  # stays concrete: a literal, not an equation, under tracing
        value = _EW["convert_element_type"].impl(np.asarray(x), new_dtype=new_dtype,
                                                 weak_type=weak_type)
        return Array(value, ShapedArray((), new_dtype, weak_type))
    aval = x.aval if isinstance(x, (Array, Tracer)) else None
    if aval is not None and aval.dtype == new_dtype and aval.weak_type == weak_type:
        return x
    return _EW["convert_element_type"].bind(x, new_dtype=new_dtype, weak_type=bool(weak_type))


def bitcast_convert_type(x, new_dtype):
    """Reinterpret the bits as `new_dtype` (same width)."""
    return _EW["bitcast"].bind(x, new_dtype=dtypes.to_dtype(new_dtype))


# --- structural -------------------------------------------------------------------------------

def broadcast_in_dim(x, shape, broadcast_dimensions):
    shape, dims = tuple(as_int(d) for d in shape), tuple(int(d) for d in broadcast_dimensions)
    aval = getattr(x, "aval", None)
    if aval is not None and aval.shape == shape and dims == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=dims)


def broadcast(x, sizes):
    """Prepend dimensions of `sizes` to x."""
    ndim = len(np.shape(x)) if not isinstance(x, (Array, Tracer)) else x.ndim
    shape = tuple(sizes) + tuple(np.shape(x) if ndim else ())
    return broadcast_in_dim(x, shape, tuple(range(len(sizes), len(sizes) + ndim)))


def reshape(x, new_sizes, dimensions=None):
    """Row-major reshape; `dimensions` (a permutation) transposes first, like lax.reshape."""
    if dimensions is not None:
        x = transpose(x, dimensions)
    new_sizes = tuple(as_int(d) for d in new_sizes)
    if getattr(x, "aval", None) is not None and x.aval.shape == new_sizes:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes)


def iota(dtype, size: int):
    return iota_p.bind(dtype=dtypes.to_dtype(dtype), shape=(int(size),), dimension=0)


def broadcasted_iota(dtype, shape, dimension: int):
    return iota_p.bind(dtype=dtypes.to_dtype(dtype), shape=tuple(as_int(d) for d in shape),
                       dimension=int(dimension))


def full(shape, fill_value, dtype=None):
    """An array of `shape` filled with `fill_value` (a broadcast of one rank-0 value)."""
    shape = tuple(as_int(d) for d in shape)
    if dtype is not None:
        fill_value = convert_element_type(fill_value, dtype)
    elif _is_python_scalar(fill_value):
        fill_value = _weak_scalar(fill_value, dtypes.scalar_type_of(fill_value)[0])
    return broadcast_in_dim(fill_value, shape, ())


def squeeze(x, dimensions):
    dims = {d % x.ndim for d in dimensions}
    for d in dims:
        if x.shape[d] != 1:
            raise FjitTypeError(f"squeeze: dimension {d} of {x.aval.str_short()} has size "
                                f"{x.shape[d]}, not 1")
    return reshape(x, tuple(s for k, s in enumerate(x.shape) if k not in dims))


def expand_dims(x, dimensions):
    ndim = x.ndim + len(dimensions)
    dims = sorted(d % ndim for d in dimensions)
    shape = list(x.shape)
    for d in dims:
        shape.insert(d, 1)
    return reshape(x, tuple(shape))


# --- reductions -------------------------------------------------------------------------------

def _reducer(name):
    prim = _RED[name]

    def fn(x, axes):
        return prim.bind(x, axes=tuple(sorted(int(a) for a in axes)))
    fn.__name__ = f"reduce_{name}"
    fn.__doc__ = f"Reduce `axes` away with {prim.monoid.name}."
    return fn


reduce_sum, reduce_prod = _reducer("sum"), _reducer("prod")
reduce_max, reduce_min = _reducer("max"), _reducer("min")
reduce_and, reduce_or = _reducer("and"), _reducer("or")


def argmax(x, axis: int, index_dtype=None):
    return argmax_p.bind(x, axis=int(axis),
                         index_dtype=dtypes.to_dtype(index_dtype or dtypes.default_int()))


def argmin(x, axis: int, index_dtype=None):
    return argmin_p.bind(x, axis=int(axis),
                         index_dtype=dtypes.to_dtype(index_dtype or dtypes.default_int()))


# --- reindex ----------------------------------------------------------------------------------

def fill_value_for(dtype, value):
    """`value` as the Python scalar a reindex's `fill` param holds for `dtype`."""
    if isinstance(value, np.generic):
        value = value.item()
    if dtypes.is_bool(dtype):
        return bool(value)
    if dtypes.is_int(dtype):
        # A fractional value stays as it is, for the primitive to reject with its name.
        return int(value) if float(value).is_integer() else value
    return float(value)


def reindex(x, shape, index, fill=0, fill_if=(), index_arrays=()):
    """Gather: `y[i] = x[index(i)]`, or `fill` out of bounds / where a `fill_if` holds."""
    return reindex_p.bind(x, *index_arrays, shape=tuple(as_int(d) for d in shape),
                          index=tuple(indexexpr.as_expr(e) for e in index),
                          fill=fill_value_for(_dtype_of(x), fill),
                          fill_if=tuple(indexexpr.as_expr(e) for e in fill_if))


def reindex_reduce(x, op, shape, index, drop_if=(), index_arrays=()):
    """Scatter-reduce: `y[index(i)] op= x[i]` into an identity-filled `shape`."""
    return reindex_reduce_p.bind(x, *index_arrays, op=op, shape=tuple(as_int(d) for d in shape),
                                 index=tuple(indexexpr.as_expr(e) for e in index),
                                 drop_if=tuple(indexexpr.as_expr(e) for e in drop_if))


def stop_gradient(x):
    """x with zero derivative (every floating-point leaf of a pytree)."""
    def stop(leaf):
        if _ad.is_differentiable(_aval_of(leaf)):
            return _EW["stop_gradient"].bind(leaf)
        return leaf
    return _tree_map(stop, x)


from .views import (concatenate, dynamic_slice, dynamic_update_slice, pad,  # noqa: E402
                    rev, slice, slice_in_dim, transpose, windows)
from .loops import fori_loop, map, scan  # noqa: E402
from .cond import cond, switch  # noqa: E402
from .while_loop import while_loop  # noqa: E402

_array_ops.provide(add=add, broadcast_in_dim=broadcast_in_dim,
                   convert_element_type=convert_element_type, reduce_sum=reduce_sum,
                   transpose=transpose)
