"""Array creation: array/asarray, zeros/ones/full, arange/linspace, eye, tri/tril/triu, ..."""
from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from .. import dtypes, lax
from ..array import Array, device_put
from ..core import Tracer
from ..devices import default_device
from ._util import asarray as _asarray, broadcast_to_shape, normalize_axis, promote_dtypes
from .manipulation import stack
from .ufuncs import absolute, log10, power, sign
from ..limits import check_fits_in_memory
from ..errors import (FjitError, FjitShapeError, FjitTypeError, FjitValueError,
                      FjitZeroDivisionError, calling_function)


def _dtype(dtype, default):
    return dtypes.to_dtype(dtype) if dtype is not None else default


def _shape(shape, dtype=None, opname=None):
    """A shape argument as a tuple of ints (not floats, as in JAX), none negative; with
    `dtype`, also refused when the array would not fit in this machine's memory."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except FjitError:
        raise  # a traced size: the concretization error says where
    except TypeError:
        raise FjitTypeError(f"{opname or calling_function()}: shapes must be integers or "
                            f"sequences of integers, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise FjitShapeError(f"{opname or calling_function()}: negative dimensions are not "
                             f"allowed, got shape {shape}")
    if dtype is not None:
        check_fits_in_memory(shape, dtype, opname)
    return shape


def asarray(a, dtype=None, order=None, *, copy=None):
    return _asarray(a, dtype)


def array(object, dtype=None, copy=True, order="K", ndmin=0):
    out = _asarray(object, dtype)
    if ndmin > out.ndim:
        out = lax.reshape(out, (1,) * (ndmin - out.ndim) + out.shape)
    return out


def copy(a, order=None):
    return _asarray(a)


def _placed(out, device):
    """The `device=` keyword of creation functions: the result put there.  A device taken
    from an operand (`_like`) applies to concrete results only: traced ones are placed
    where the computation runs."""
    if device is None or (isinstance(device, _Inferred) and type(out) is not Array):
        return out
    return device_put(out, device.device if isinstance(device, _Inferred) else device)


class _Inferred:
    """A device taken from an operand, not asked for."""

    def __init__(self, device):
        self.device = device


def zeros(shape, dtype=None, *, device=None):
    dtype = _dtype(dtype, dtypes.default_float())
    return _placed(lax.full(_shape(shape, dtype, "zeros"), 0, dtype), device)


def ones(shape, dtype=None, *, device=None):
    dtype = _dtype(dtype, dtypes.default_float())
    return _placed(lax.full(_shape(shape, dtype, "ones"), 1, dtype), device)


def empty(shape, dtype=None, *, device=None):
    """Like zeros: fjit arrays are never uninitialised."""
    return zeros(shape, dtype, device=device)


def full(shape, fill_value, dtype=None, *, device=None):
    shape = _shape(shape, opname="full")
    fill = _asarray(fill_value, dtype, opname="full")
    check_fits_in_memory(shape, fill.dtype, "full")
    return _placed(broadcast_to_shape(fill, shape), device)


def _like(a, dtype, shape, device):
    """(dtype, shape, device) of an array like `a`: on `a`'s device unless told otherwise,
    as in JAX (a committed operand keeps its results on its device)."""
    if device is None and type(a) is Array and a.device != default_device():
        device = _Inferred(a.device)
    a = _asarray(a)
    dtype = a.dtype if dtype is None else dtypes.to_dtype(dtype)
    return dtype, a.shape if shape is None else _shape(shape, dtype), device


def zeros_like(a, dtype=None, shape=None, *, device=None):
    dtype, shape, device = _like(a, dtype, shape, device)
    return _placed(lax.full(shape, 0, dtype), device)


def ones_like(a, dtype=None, shape=None, *, device=None):
    dtype, shape, device = _like(a, dtype, shape, device)
    return _placed(lax.full(shape, 1, dtype), device)


def empty_like(a, dtype=None, shape=None, *, device=None):
    return zeros_like(a, dtype, shape, device=device)


def full_like(a, fill_value, dtype=None, shape=None, *, device=None):
    dtype, shape, device = _like(a, dtype, shape, device)
    return _placed(broadcast_to_shape(_asarray(fill_value, dtype), shape), device)


def _concrete_scalar(x, name):
    if isinstance(x, Tracer):
        raise FjitTypeError(f"arange: the {name} argument must be concrete (the result's length "
                            "depends on it), got a traced value")
    return np.asarray(x).item() if hasattr(x, "aval") or isinstance(x, np.generic) else x


def arange(start, stop=None, step=None, dtype=None, *, device=None):
    """Evenly spaced values: start + i * step for i in range(length).  The bounds must be
    concrete; the values come from iota, so Programs hold no large constants."""
    start = _concrete_scalar(start, "start")
    stop = _concrete_scalar(stop, "stop") if stop is not None else None
    step = _concrete_scalar(step, "step") if step is not None else None
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    if step == 0:
        raise FjitZeroDivisionError(f"arange: step must not be zero (start {start}, stop "
                                    f"{stop})")
    length = builtins.max(0, math.ceil((stop - start) / step))
    all_int = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                  for v in (start, stop, step))
    out_dtype = _dtype(dtype, dtypes.default_int() if all_int else dtypes.default_float())
    compute = out_dtype if all_int or dtypes.is_float(out_dtype) else dtypes.default_float()
    check_fits_in_memory((length,), compute, "arange")
    values = lax.iota(compute, length)
    if step != 1:
        values = lax.mul(values, lax.full((), step, compute))
    if start != 0:
        values = lax.add(values, lax.full((), start, compute))
    if values.dtype != out_dtype:
        values = lax.convert_element_type(values, out_dtype)
    return _placed(values, device)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
             device=None):
    """`num` evenly spaced values from start to stop (inclusive with endpoint)."""
    num = int(num)
    if num < 0:
        raise FjitValueError(f"linspace: number of samples {num} must be non-negative")
    out_dtype = _dtype(dtype, None)
    start, stop = promote_dtypes(start, stop)
    compute = start.dtype if dtypes.is_float(start.dtype) else dtypes.default_float()
    start, stop = lax.convert_element_type(start, compute), lax.convert_element_type(stop,
                                                                                      compute)
    shape = np.broadcast_shapes(start.shape, stop.shape)
    start, stop = broadcast_to_shape(start, shape), broadcast_to_shape(stop, shape)
    div = (num - 1) if endpoint else num
    out_shape = (num,) + tuple(shape)
    check_fits_in_memory(out_shape, compute, "linspace")
    steps = lax.broadcasted_iota(compute, out_shape, 0)
    s = lax.broadcast_in_dim(start, out_shape, tuple(range(1, len(out_shape))))
    e = lax.broadcast_in_dim(stop, out_shape, tuple(range(1, len(out_shape))))
    if div > 0:
        step = lax.div(lax.sub(stop, start), lax.full((), div, compute))
        values = lax.add(s, lax.mul(steps, lax.broadcast_in_dim(
            step, out_shape, tuple(range(1, len(out_shape))))))
        if endpoint and num > 1:  # the last sample is exactly `stop`
            values = lax.select(lax.eq(steps, lax.full((), num - 1, compute)), e, values)
    else:
        step = lax.full(tuple(shape), float("nan"), compute)
        values = s
    axis = normalize_axis(axis, len(out_shape), "linspace")
    if axis:
        values = lax.transpose(values, list(range(1, axis + 1)) + [0] + list(
            range(axis + 1, len(out_shape))))
    if out_dtype is not None and values.dtype != out_dtype:
        if dtypes.is_int(out_dtype):
            values = lax.floor(values)
        values = lax.convert_element_type(values, out_dtype)
    return _placed((values, step) if retstep else values, device)


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    values = linspace(start, stop, num, endpoint, dtype=None, axis=axis)
    out = power(_asarray(base, values.dtype), values)
    return out if dtype is None else _asarray(out, dtype)


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """A geometric progression; both ends negative gives the negated positive progression."""
    start, stop = promote_dtypes(start, stop)
    values = linspace(log10(absolute(start)), log10(absolute(stop)), num, endpoint, axis=axis)
    out = power(_asarray(10.0, values.dtype), values)
    signs = lax.convert_element_type(sign(start), out.dtype)
    out = lax.mul(out, linspace(signs, signs, num, endpoint, axis=axis))  # laid out like out
    return out if dtype is None else _asarray(out, dtype)


def _diagonal_mask(n, m, k, compare):
    rows = lax.broadcasted_iota(dtypes.int32, (n, m), 0)
    cols = lax.broadcasted_iota(dtypes.int32, (n, m), 1)
    return compare(lax.add(rows, lax.full((), k, dtypes.int32)), cols)


def eye(N, M=None, k=0, dtype=None, *, device=None):
    M = N if M is None else M
    dtype = _dtype(dtype, dtypes.default_float())
    N, M = _shape((N, M), dtype, "eye")
    mask = _diagonal_mask(N, M, int(k), lax.eq)
    return _placed(lax.convert_element_type(mask, dtype), device)


def identity(n, dtype=None):
    return eye(n, dtype=dtype)


def tri(N, M=None, k=0, dtype=None):
    """Ones at and below the k-th diagonal."""
    M = N if M is None else M
    dtype = _dtype(dtype, dtypes.default_float())
    N, M = _shape((N, M), dtype, "tri")
    mask = _diagonal_mask(N, M, int(k), lax.ge)
    return lax.convert_element_type(mask, dtype)


def _triangle(m, k, lower):
    m = _asarray(m)
    if m.ndim < 2:
        raise FjitValueError(f"{'tril' if lower else 'triu'}: needs at least 2 dimensions, got "
                             f"shape {m.shape}")
    n_rows, n_cols = m.shape[-2:]
    mask = _diagonal_mask(n_rows, n_cols, k if lower else k - 1, lax.ge)
    if not lower:
        mask = lax.bitwise_not(mask)
    mask = lax.broadcast_in_dim(mask, m.shape, (m.ndim - 2, m.ndim - 1))
    return lax.select(mask, m, lax.full((), 0, m.dtype))


def tril(m, k=0):
    return _triangle(m, k, lower=True)


def triu(m, k=0):
    return _triangle(m, k, lower=False)


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise FjitValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    arrays = [lax.reshape(_asarray(x), (_asarray(x).size,)) for x in xi]
    if indexing == "xy" and len(arrays) >= 2:
        arrays[0], arrays[1] = arrays[1], arrays[0]
    shape = tuple(a.shape[0] for a in arrays)
    out = []
    for k, a in enumerate(arrays):
        if sparse:
            s = [1] * len(shape)
            s[k] = a.shape[0]
            out.append(lax.reshape(a, tuple(s)))
        else:
            out.append(lax.broadcast_in_dim(a, shape, (k,)))
    if indexing == "xy" and len(out) >= 2:  # built as 'ij' of (y, x, ...): swap back
        out[0], out[1] = out[1], out[0]
    return out


def indices(dimensions, dtype=None, sparse=False):
    dtype = _dtype(dtype, dtypes.default_int())
    dimensions = _shape(dimensions, dtype, "indices")
    out = []
    for k, n in enumerate(dimensions):
        if sparse:
            s = [1] * len(dimensions)
            s[k] = n
            out.append(lax.reshape(lax.iota(dtype, n), tuple(s)))
        else:
            out.append(lax.broadcasted_iota(dtype, dimensions, k))
    if sparse:
        return tuple(out)
    if not out:
        return lax.full((0,), 0, dtype)
    return stack(out)
