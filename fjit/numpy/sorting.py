"""sort and argsort as a bitonic sorting network of meta-ops.

The axis is padded to a power of two P; each of the log2(P) * (log2(P) + 1) / 2 stages is
one reindex that reads every position's partner (an index expression along the sorted axis)
plus a compare and two selects.  The network sorts (key, original position) pairs, a strict
total order, so the result is unique: the sort is stable.

Keys are integers ordered like the values (NumPy's order): a float becomes the signed integer
of its bits with the magnitude bits flipped for negatives, after -0.0 -> +0.0 and every NaN ->
one positive NaN, so NaNs sort last and compare equal; descending flips all bits.  Padding
holds the largest key, and its positions (>= n) put it after every real element.

Values are a gather of the input by the argsort, so grad(sort) scatters the cotangent back
through the permutation (the reindex transpose rule) and vmap/jit need nothing special.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes, lax
from ..lax import indexexpr as ix
from ._util import asarray, normalize_axis
from ..errors import FjitTypeError, FjitValueError


def _order_keys(x, descending):
    """Integer keys whose signed/unsigned order is NumPy's sort order of x."""
    x = lax.stop_gradient(x)
    if dtypes.is_bool(x.dtype):
        x = lax.convert_element_type(x, dtypes.int32)
    if dtypes.is_float(x.dtype):
        bits = x.dtype.itemsize * 8
        int_dtype = np.dtype(f"int{bits}")
        x = lax.add(x, lax.full((), 0.0, x.dtype))  # -0.0 + 0.0 is +0.0
        x = lax.select(lax.ne(x, x), lax.full(x.shape, float("nan"), x.dtype), x)
        b = lax.bitcast_convert_type(x, int_dtype)
        magnitude = lax.shift_right_logical(lax.shift_right_arithmetic(b, bits - 1), 1)
        x = lax.bitwise_xor(b, magnitude)  # negatives: flip all but the sign bit
    if descending:
        x = lax.bitwise_not(x)
    return x


def _partner(i, k, j):
    """Index expression of position i's partner: the mirror in its block of k (j == k // 2),
    or i with bit j flipped."""
    if j == k // 2:
        return (i // k) * k + (k - 1) - i % k
    return ix.where(ix.eq((i // j) % 2, 0), i + j, i - j)


def _is_lower(p, axis, shape, j):
    """True where a position is the lower of its pair in a stage of distance j (mirror
    stages pair positions symmetric in blocks of 2j, which gives the same halves)."""
    pos = lax.broadcasted_iota(dtypes.int32, (p,), 0)
    low = lax.lt(lax.rem(pos, lax.full((), 2 * j, dtypes.int32)),
                 lax.full((), j, dtypes.int32))
    return lax.broadcast_in_dim(low, shape, (axis,))


def _bitonic(keys, axis):
    """Positions along `axis` of the stable ascending order of integer `keys`."""
    n = keys.shape[axis]
    index_dtype = dtypes.int32 if n < 2 ** 31 else dtypes.int64
    p = 1 << max(n - 1, 0).bit_length()
    shape = keys.shape[:axis] + (p,) + keys.shape[axis + 1:]
    pos = lax.broadcasted_iota(index_dtype, shape, axis)
    if p != n:
        top = int(np.iinfo(keys.dtype).max)
        keys = lax.pad(keys, lax.full((), top, keys.dtype),
                       [(0, p - n if d == axis else 0, 0) for d in range(keys.ndim)])
    k = 2
    while k <= p:
        j = k // 2
        while j >= 1:
            index = [ix.idx(d) for d in range(len(shape))]
            index[axis] = _partner(ix.idx(axis), k, j)
            other_key = lax.reindex(keys, shape, index)
            other_pos = lax.reindex(pos, shape, index)
            less = lax.bitwise_or(lax.lt(keys, other_key),
                                  lax.bitwise_and(lax.eq(keys, other_key),
                                                  lax.lt(pos, other_pos)))
            keep = lax.eq(_is_lower(p, axis, shape, j), less)  # lower keeps the smaller
            keys = lax.select(keep, keys, other_key)
            pos = lax.select(keep, pos, other_pos)
            j //= 2
        k *= 2
    if p != n:
        pos = lax.slice_in_dim(pos, 0, n, axis=axis)
    return pos


def _check(name, a, kind, order):
    if order is not None:
        raise FjitValueError(f"{name}: 'order' is not supported (got {order!r})")
    if kind is not None and kind not in ("stable", "quicksort", "mergesort", "heapsort"):
        raise FjitValueError(f"{name}: unknown kind {kind!r}")
    a = asarray(a)
    if not (dtypes.is_float(a.dtype) or dtypes.is_int(a.dtype) or dtypes.is_bool(a.dtype)):
        raise FjitTypeError(f"{name}: cannot sort an array of dtype {a.dtype.name}")
    return a


def _flatten_if_none(a, axis):
    if axis is None:
        return lax.reshape(a, (a.size,)), 0
    return a, normalize_axis(axis, a.ndim, "sort")


def argsort(a, axis=-1, kind=None, order=None, stable=True, descending=False):
    """Indices that sort `a` along `axis` (stable; NaNs last, or first if descending)."""
    a = _check("argsort", a, kind, order)
    if a.ndim == 0 and axis is not None:
        raise FjitValueError(f"argsort: axis {axis} is out of bounds for a 0-d array; use "
                             "axis=None")
    a, axis = _flatten_if_none(a, axis)
    out_dtype = dtypes.default_int()
    if a.shape[axis] <= 1:
        return lax.broadcasted_iota(out_dtype, a.shape, axis)
    pos = _bitonic(_order_keys(a, descending), axis)
    return lax.convert_element_type(pos, out_dtype)


def sort(a, axis=-1, kind=None, order=None, stable=True, descending=False):
    """`a` sorted along `axis` (stable; NaNs last, or first if descending).  The gradient
    is the cotangent scattered back through the sorting permutation."""
    a = _check("sort", a, kind, order)
    if a.ndim == 0 and axis is not None:
        raise FjitValueError(f"sort: axis {axis} is out of bounds for a 0-d array; use axis=None")
    a, axis = _flatten_if_none(a, axis)
    if a.shape[axis] <= 1:
        return a
    pos = _bitonic(_order_keys(a, descending), axis)
    index = [ix.idx(d) for d in range(a.ndim)]
    index[axis] = ix.load(1, [ix.idx(d) for d in range(a.ndim)])
    return lax.reindex(a, a.shape, index, index_arrays=[pos])
