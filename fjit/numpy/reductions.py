"""Reductions (sum, mean, max, var, ...) and cumulative scans, on the reduce meta-op."""
from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes, lax
from ..lax import indexexpr as ix
from ._util import as_bool, asarray, broadcast_to_shape, normalize_axes, normalize_axis
from ..errors import FjitValueError
from . import manipulation  # it imports this module: read at call time


def _sum_dtype(dtype):
    """JAX's accumulation type for sum/prod: narrow ints and bool widen to the default int."""
    if dtypes.is_bool(dtype):
        return dtypes.default_int()
    if dtypes.is_int(dtype) and dtype.itemsize < dtypes.default_int().itemsize:
        return dtypes.default_uint() if dtypes.is_unsigned(dtype) else dtypes.default_int()
    return dtype


def _keep_dims(out, axes, ndim):
    if not axes:
        return out
    shape = list(out.shape)
    for a in axes:
        shape.insert(a, 1)
    return lax.reshape(out, tuple(shape))


def _reduction(name, reduce_fn, identity, a, axis, dtype, keepdims, initial, where,
               result_dtype=None, needs_identity=False):
    a = asarray(a)
    axes = normalize_axes(axis, a.ndim, name)
    target = dtypes.to_dtype(dtype) if dtype is not None else (
        result_dtype(a.dtype) if result_dtype else a.dtype)
    if a.dtype != target:
        a = lax.convert_element_type(a, target)
    if where is not None:
        if identity is None and initial is None:
            raise FjitValueError(f"{name}: reduction with where= needs initial=")
        fill = identity(target) if identity is not None else initial
        a = lax.select(broadcast_to_shape(asarray(where, dtypes.bool_), a.shape), a,
                       lax.full((), fill, target))
    if needs_identity and initial is None and builtins.any(a.shape[k] == 0 for k in axes):
        raise FjitValueError(f"zero-size array to reduction operation {name} which has no "
                             "identity")
    out = reduce_fn(a, axes)
    if initial is not None:
        combine = {"sum": lax.add, "prod": lax.mul, "max": lax.max, "min": lax.min}[name]
        out = combine(out, lax.full((), initial, target))
    if keepdims:
        out = _keep_dims(out, axes, a.ndim)
    return out


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _reduction("sum", lax.reduce_sum, lambda d: 0, a, axis, dtype, keepdims, initial,
                      where, _sum_dtype)


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _reduction("prod", lax.reduce_prod, lambda d: 1, a, axis, dtype, keepdims, initial,
                      where, _sum_dtype)


def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _reduction("max", lax.reduce_max, None, a, axis, None, keepdims, initial, where,
                      needs_identity=True)


def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _reduction("min", lax.reduce_min, None, a, axis, None, keepdims, initial, where,
                      needs_identity=True)


amax, amin = max, min


def all(a, axis=None, out=None, keepdims=False, *, where=None):
    return _reduction("all", lax.reduce_and, lambda d: True, as_bool(a), axis, None, keepdims,
                      None, where)


def any(a, axis=None, out=None, keepdims=False, *, where=None):
    return _reduction("any", lax.reduce_or, lambda d: False, as_bool(a), axis, None, keepdims,
                      None, where)


def _count(a, axes, where):
    if where is None:
        return int(np.prod([a.shape[k] for k in axes], dtype=np.int64))
    mask = broadcast_to_shape(asarray(where, dtypes.bool_), a.shape)
    return lax.reduce_sum(lax.convert_element_type(mask, dtypes.default_int()), axes)


def _mean_dtype(dtype, requested):
    if requested is not None:
        return dtypes.to_dtype(requested)
    return dtypes.to_inexact(dtype)


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    a = asarray(a)
    axes = normalize_axes(axis, a.ndim, "mean")
    target = _mean_dtype(a.dtype, dtype)
    total = sum(a, axis=axes, dtype=target, keepdims=keepdims, where=where)
    count = _count(a, axes, where)
    if isinstance(count, int):
        return lax.div(total, lax.full((), count, target))
    count = lax.convert_element_type(count, target)
    if keepdims:
        count = _keep_dims(count, axes, a.ndim)
    return lax.div(total, count)


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        correction=None):
    a = asarray(a)
    if correction is not None:
        ddof = correction
    axes = normalize_axes(axis, a.ndim, "var")
    target = _mean_dtype(a.dtype, dtype)
    a = lax.convert_element_type(a, target) if a.dtype != target else a
    centered = lax.sub(a, broadcast_to_shape(mean(a, axes, keepdims=True, where=where),
                                             a.shape))
    squares = lax.mul(centered, centered)
    total = sum(squares, axis=axes, keepdims=keepdims, where=where)
    count = _count(a, axes, where)
    if isinstance(count, int):
        return lax.div(total, lax.full((), builtins.max(count - ddof, 0), target))
    count = lax.sub(lax.convert_element_type(count, target), float(ddof))
    if keepdims:
        count = _keep_dims(count, axes, a.ndim)
    return lax.div(total, lax.max(count, 0.0))


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        correction=None):
    return lax.sqrt(var(a, axis, dtype, None, ddof, keepdims, where=where,
                        correction=correction))


def _arg_reduce(prim_fn, name, a, axis, keepdims):
    a = asarray(a)
    if axis is None:
        if a.size == 0:
            raise FjitValueError(f"attempt to get {name} of an empty sequence")
        out = prim_fn(lax.reshape(a, (a.size,)), 0)
        return lax.reshape(out, (1,) * a.ndim) if keepdims else out
    axis = normalize_axis(axis, a.ndim, name)
    if a.shape[axis] == 0:
        raise FjitValueError(f"attempt to get {name} of an empty sequence")
    out = prim_fn(a, axis)
    return _keep_dims(out, (axis,), a.ndim) if keepdims else out


def argmax(a, axis=None, out=None, keepdims=False):
    return _arg_reduce(lax.argmax, "argmax", a, axis, keepdims)


def argmin(a, axis=None, out=None, keepdims=False):
    return _arg_reduce(lax.argmin, "argmin", a, axis, keepdims)


def count_nonzero(a, axis=None, keepdims=False):
    a = asarray(a)
    nonzero = a if dtypes.is_bool(a.dtype) else lax.ne(a, lax.full((), 0, a.dtype))
    return sum(nonzero, axis=axis, keepdims=keepdims)


def ptp(a, axis=None, out=None, keepdims=False):
    return lax.sub(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


# --- NaN-aware reductions ---------------------------------------------------------------------

def _nan_to(a, value):
    a = asarray(a)
    if not dtypes.is_float(a.dtype):
        return a
    return lax.select(lax.ne(a, a), lax.full((), value, a.dtype), a)


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return sum(_nan_to(a, 0.0), axis, dtype, None, keepdims, initial, where)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return prod(_nan_to(a, 1.0), axis, dtype, None, keepdims, initial, where)


def nanmax(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    a = asarray(a)
    result = max(_nan_to(a, -np.inf), axis, None, keepdims, initial, where)
    if dtypes.is_float(a.dtype):  # all-NaN slices stay NaN
        all_nan = all(lax.ne(a, a), axis, keepdims=keepdims)
        result = lax.select(all_nan, float("nan"), result)
    return result


def nanmin(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    a = asarray(a)
    result = min(_nan_to(a, np.inf), axis, None, keepdims, initial, where)
    if dtypes.is_float(a.dtype):
        all_nan = all(lax.ne(a, a), axis, keepdims=keepdims)
        result = lax.select(all_nan, float("nan"), result)
    return result


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    a = asarray(a)
    if not dtypes.is_float(a.dtype):
        return mean(a, axis, dtype, None, keepdims, where=where)
    valid = lax.eq(a, a)
    if where is not None:
        valid = lax.bitwise_and(valid, broadcast_to_shape(asarray(where, dtypes.bool_),
                                                          a.shape))
    return mean(a, axis, dtype, None, keepdims, where=valid)


# --- cumulative scans -------------------------------------------------------------------------

def _scan(name, combine, identity, a, axis, dtype, widen):
    """Inclusive scan in log2(n) doubling steps (Hillis-Steele): after step k each element
    combines the 2**k elements ending at it.  Each step is a shifted reindex and one op."""
    a = asarray(a)
    if axis is None:
        a = lax.reshape(a, (a.size,))
        axis = 0
    axis = normalize_axis(axis, a.ndim, name)
    target = dtypes.to_dtype(dtype) if dtype is not None else (
        widen(a.dtype) if widen else a.dtype)
    if a.dtype != target:
        a = lax.convert_element_type(a, target)
    n = a.shape[axis]
    fill = lax.fill_value_for(target, identity(target))
    shift = 1
    while shift < n:
        index = [ix.idx(k) - shift if k == axis else ix.idx(k) for k in range(a.ndim)]
        a = combine(a, lax.reindex(a, a.shape, index, fill=fill))
        shift *= 2
    return a


def _cum_dtype(dtype):
    return dtypes.default_int() if dtypes.is_bool(dtype) else dtype


def cumsum(a, axis=None, dtype=None):
    return _scan("cumsum", lax.add, lambda d: 0, a, axis, dtype, _cum_dtype)


def cumprod(a, axis=None, dtype=None):
    return _scan("cumprod", lax.mul, lambda d: 1, a, axis, dtype, _cum_dtype)


def cummax(a, axis=None, dtype=None):
    return _scan("cummax", lax.max, dtypes.lowest, a, axis, dtype, None)


def cummin(a, axis=None, dtype=None):
    return _scan("cummin", lax.min, dtypes.highest, a, axis, dtype, None)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """The array-API cumulative sum: narrow ints widen like sum; optionally starts with 0."""
    return _cumulative("cumulative_sum", cumsum, 0, x, axis, dtype, include_initial, _sum_dtype)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative("cumulative_prod", cumprod, 1, x, axis, dtype, include_initial,
                       _cum_dtype)


def _cumulative(name, scan, identity, x, axis, dtype, include_initial, widen):
    x = asarray(x)
    if axis is None:
        if x.ndim > 1:
            raise FjitValueError(f"{name}: axis is required for arrays of more than one dimension")
        axis = 0
    if x.ndim == 0:
        x = lax.reshape(x, (1,))
    axis = normalize_axis(axis, x.ndim, name)
    out = scan(x, axis, dtype if dtype is not None else widen(x.dtype))
    if include_initial:
        widths = [(1, 0) if k == axis else (0, 0) for k in range(out.ndim)]
        out = manipulation.pad(out, widths, constant_values=identity)
    return out
