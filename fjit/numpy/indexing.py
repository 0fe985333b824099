"""NumPy indexing as one reindex (gather) and `.at[...]` updates as one reindex_reduce (scatter).

An index tuple (ints, slices, None, Ellipsis, integer arrays, concrete boolean masks) is
planned into: the result shape, one index expression per dimension of the indexed array over
the result's loop indices, and the integer arrays those expressions load from.  `x[idx]` is
then a single reindex; `x.at[idx].add(v)` is a single reindex_reduce with the same
expressions, run over v's positions.

Out-of-bounds array indices follow JAX: `x[idx]` clamps (after wrapping negative indices),
`take` fills, and updates drop them.  Static Python ints out of bounds raise IndexError.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes, lax
from ..array import Array
from ..core import ShapedArray, Tracer
from ..errors import (FjitIndexError, FjitIndexTypeError, FjitShapeError, FjitTypeError,
                      FjitValueError, NonConcreteBooleanIndexError)
from ..lax import indexexpr as ix
from ._util import asarray, broadcast_shapes, broadcast_to_shape, is_array, normalize_axis
from . import manipulation, ufuncs  # both import this module: read at call time


class _Plan:
    """How an index tuple maps result positions to positions of the indexed array."""

    __slots__ = ("shape", "exprs", "arrays", "advanced")

    def __init__(self, shape, exprs, arrays, advanced):
        self.shape = tuple(shape)
        self.exprs = tuple(exprs)
        self.arrays = list(arrays)
        self.advanced = advanced


def _normalized(value: ix.Expr, n: int, mode: str, unsigned: bool) -> ix.Expr:
    """An index value read from an array, made into a position along a dim of size n."""
    if mode == "clip":  # clamp without wrapping negatives (JAX's take(mode='clip'))
        return ix.maximum(ix.minimum(value, n - 1), 0)
    if mode == "wrap":
        return value % n if n else value
    if not unsigned:
        value = ix.where(ix.lt(value, 0), value + n, value)
    if mode == "clamp":
        return ix.maximum(ix.minimum(value, n - 1), 0)
    return value  # "fill" / "drop": out-of-bounds positions are handled by the primitive


class _NewAxis:
    """What a rank-0 boolean index becomes: a new axis of length 1 (True) or 0 (False)."""

    __slots__ = ("size",)

    def __init__(self, size):
        self.size = size


def _as_index_array(entry):
    """An integer index array (Array/tracer), or None if `entry` is not an array index."""
    if is_array(entry):
        arr = entry
    elif isinstance(entry, list) and not entry:
        arr = asarray(np.zeros(0, np.int32))
    elif isinstance(entry, (list, np.ndarray)) or (isinstance(entry, np.generic)
                                                   and not isinstance(entry, np.integer)):
        arr = asarray(entry)
    else:
        return None
    if dtypes.is_bool(arr.dtype):
        return arr
    if not dtypes.is_int(arr.dtype):
        raise FjitIndexTypeError(f"arrays used as indices must be of integer (or boolean) "
                                 f"type, got {arr.aval.str_short()}")
    return arr


def _expand_booleans(entries):
    """Replace concrete boolean masks by the integer arrays of their True positions."""
    out = []
    for e in entries:
        if isinstance(e, (bool, np.bool_)):
            out.append(_NewAxis(int(e)))
            continue
        arr = _as_index_array(e) if not isinstance(e, (int, np.integer, slice)) and \
            e is not None and e is not Ellipsis else None
        if arr is not None and dtypes.is_bool(arr.dtype):
            if isinstance(arr, Tracer):
                raise NonConcreteBooleanIndexError(
                    f"boolean mask indexing with a traced mask {arr.aval.str_short()}: the "
                    "result's shape would depend on the mask's values, which are not known "
                    "while tracing. Use fjit.numpy.where(mask, x, 0) (or a masked reduction) "
                    "instead.")
            mask = np.asarray(arr)
            if mask.ndim == 0:
                out.append(_NewAxis(int(mask)))
                continue
            positions = np.nonzero(mask)
            out.extend(Array(p.astype(np.int32), _int_aval(p.shape)) for p in positions)
        else:
            out.append(arr if arr is not None else e)
    return out


def _int_aval(shape):
    return ShapedArray(shape, dtypes.int32, False)


def plan_index(shape, index, mode="clamp") -> _Plan:
    """Plan `x[index]` for an array of `shape`."""
    if not isinstance(index, tuple):
        index = (index,)
    entries = _expand_booleans(list(index))
    n_ellipsis = sum(e is Ellipsis for e in entries)
    if n_ellipsis > 1:
        raise FjitIndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(1 for e in entries
                   if e is not None and e is not Ellipsis and not isinstance(e, _NewAxis))
    if consumed > len(shape):
        raise FjitIndexError(f"too many indices for array: array of shape {tuple(shape)} is "
                             f"{len(shape)}-dimensional, but {consumed} were indexed")
    if n_ellipsis:
        k = entries.index(Ellipsis)
        entries[k:k + 1] = [slice(None)] * (len(shape) - consumed)
    else:
        entries += [slice(None)] * (len(shape) - consumed)

    arrays_at = [k for k, e in enumerate(entries) if is_array(e)]
    advanced = bool(arrays_at)
    # With array indices present, ints are advanced indices too (NumPy's rule).
    adv_positions = [k for k, e in enumerate(entries)
                     if is_array(e) or (advanced and isinstance(e, (int, np.integer)))]
    adjacent = adv_positions == list(range(adv_positions[0], adv_positions[-1] + 1)) \
        if adv_positions else True
    adv_shape = broadcast_shapes("indexing", *(entries[k].shape for k in arrays_at)) \
        if arrays_at else ()

    out_shape, exprs, arrays = [], [], []
    adv_start = None

    def place_advanced():
        nonlocal adv_start
        adv_start = len(out_shape)
        out_shape.extend(adv_shape)

    if advanced and not adjacent:
        place_advanced()
    dim = 0
    pending_exprs = []  # (input dim, builder taking adv_start) for advanced entries
    for k, e in enumerate(entries):
        if e is None or isinstance(e, _NewAxis):
            out_shape.append(1 if e is None else e.size)
            continue
        n = shape[dim]
        if isinstance(e, slice):
            start, stop, step = e.indices(n)
            length = len(range(start, stop, step))
            exprs.append(start + ix.idx(len(out_shape)) * step)
            out_shape.append(length)
        elif isinstance(e, (int, np.integer)):
            v = int(e)
            if not -n <= v < n:
                raise FjitIndexError(f"index {v} is out of bounds for axis {dim} with size {n} "
                                     f"(array of shape {tuple(shape)})")
            exprs.append(ix.as_expr(v % n))
            if advanced and adjacent and adv_start is None and k == adv_positions[0]:
                place_advanced()
        elif is_array(e):
            if adv_start is None:
                place_advanced()
            arrays.append(e)
            pending_exprs.append((len(exprs), len(arrays), e, n))
            exprs.append(None)
        else:
            raise FjitIndexTypeError(f"invalid index {e!r} of type {type(e).__name__} for an "
                                     f"array of shape {tuple(shape)}: use ints, slices, None, "
                                     "Ellipsis or integer/boolean arrays")
        dim += 1
    for slot, operand, arr, n in pending_exprs:
        offset = adv_start + len(adv_shape) - arr.ndim
        positions = [ix.idx(offset + j) if size == adv_shape[len(adv_shape) - arr.ndim + j]
                     else 0 for j, size in enumerate(arr.shape)]
        value = ix.load(operand, positions)
        exprs[slot] = _normalized(value, n, mode, dtypes.is_unsigned(arr.dtype))
    return _Plan(out_shape, exprs, arrays, advanced)


def fill_value_default(dtype):
    """JAX's fill for out-of-bounds gathers: NaN, the int minimum, the uint maximum, True."""
    if dtypes.is_float(dtype):
        return float("nan")
    if dtypes.is_bool(dtype):
        return True
    info = np.iinfo(dtype)
    return int(info.max) if dtypes.is_unsigned(dtype) else int(info.min)


def gather(x, index, mode=None, fill_value=None):
    """x[index]; mode None/'clamp' clamps, 'fill' fills, 'wrap' wraps, 'clip' clips."""
    x = asarray(x)
    mode = mode or "clamp"
    if mode in ("promise_in_bounds",):
        mode = "clamp"
    if mode not in ("clamp", "fill", "wrap", "clip"):
        raise FjitValueError(f"unknown indexing mode {mode!r}")
    plan = plan_index(x.shape, index, mode)
    fill = 0
    if mode == "fill":
        fill = fill_value_default(x.dtype) if fill_value is None else fill_value
    if not plan.arrays and plan.shape == x.shape and all(
            e == ix.idx(k) for k, e in enumerate(plan.exprs)):
        return x
    return lax.reindex(x, plan.shape, plan.exprs, fill=fill, index_arrays=plan.arrays)


def getitem(x, index):
    return gather(x, index)


# --- scatter: x.at[index] ---------------------------------------------------------------------

def _updates(x, plan, values, op):
    values = asarray(values)
    if values.dtype != x.dtype:
        values = lax.convert_element_type(values, x.dtype)
    if not _broadcasts_to(values.shape, plan.shape):
        raise FjitShapeError(f"at[...].{op}: updates of shape {values.shape} do not broadcast "
                             f"to the indexed shape {plan.shape} (array of shape {x.shape})")
    return broadcast_to_shape(values, plan.shape)


def _broadcasts_to(shape, target):
    lead = len(target) - len(shape)
    return lead >= 0 and all(s in (1, t) for s, t in zip(shape, target[lead:]))


def scatter(x, index, values, op):
    """x with `values` combined into x[index]: op is 'set', 'add', 'mul', 'min' or 'max'."""
    x = asarray(x)
    plan = plan_index(x.shape, index, mode="drop")
    values = _updates(x, plan, values, op)
    if op == "set":
        return _scatter_set(x, plan, values)
    combine = {"add": lax.add, "mul": lax.mul, "min": lax.min, "max": lax.max}[op]
    if dtypes.is_bool(x.dtype):
        op, combine = {"add": ("or", lax.bitwise_or), "mul": ("and", lax.bitwise_and),
                       "min": ("min", lax.min), "max": ("max", lax.max)}[op]
    scattered = lax.reindex_reduce(values, op, x.shape, plan.exprs, index_arrays=plan.arrays)
    return combine(x, scattered)


def _scatter_set(x, plan, values):
    """Last write wins (NumPy's order): scatter-max the flat position of each update, then
    gather the winning update where one landed."""
    n = values.size
    if n == 0:
        return x
    order = lax.reshape(lax.iota(dtypes.int32, n), values.shape)
    winner = lax.reindex_reduce(order, "max", x.shape, plan.exprs, index_arrays=plan.arrays)
    flat = lax.reshape(values, (n,))
    positions = [ix.idx(k) for k in range(x.ndim)]
    picked = lax.reindex(flat, x.shape, [ix.load(1, positions)], fill=0, index_arrays=[winner])
    return lax.select(lax.ge(winner, 0), picked, x)


class _IndexUpdateRef:
    """`x.at[index]`: the functional versions of `x[index] = v`, `x[index] += v`, ..."""

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self, *, mode=None, fill_value=None, indices_are_sorted=False,
            unique_indices=False):
        return gather(self.array, self.index, mode, fill_value)

    def set(self, values, **kwargs):
        return scatter(self.array, self.index, values, "set")

    def add(self, values, **kwargs):
        return scatter(self.array, self.index, values, "add")

    def subtract(self, values, **kwargs):
        return scatter(self.array, self.index, ufuncs.negative(values), "add")

    def multiply(self, values, **kwargs):
        return scatter(self.array, self.index, values, "mul")

    mul = multiply

    def min(self, values, **kwargs):
        return scatter(self.array, self.index, values, "min")

    def max(self, values, **kwargs):
        return scatter(self.array, self.index, values, "max")

    def apply(self, func, **kwargs):
        """x[index] = func(x[index]) (for unique indices)."""
        return self.set(func(gather(self.array, self.index)))

    def divide(self, values, **kwargs):
        """x[index] /= values, with true division's result type (ints give floats)."""
        quotient = ufuncs.divide(gather(self.array, self.index), values)
        return scatter(asarray(self.array, quotient.dtype), self.index, quotient, "set")

    def power(self, values, **kwargs):
        current = gather(self.array, self.index)
        return self.set(asarray(ufuncs.power(current, values), self.array.dtype))

    def __repr__(self):
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"


class _IndexUpdateHelper:
    """The `.at` property: `x.at[index]` makes an update reference."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexUpdateRef(self.array, index)


# --- take / take_along_axis -------------------------------------------------------------------

def take(a, indices, axis=None, out=None, mode=None, unique_indices=False,
         indices_are_sorted=False, fill_value=None):
    """Elements of `a` at `indices` along `axis` (flattened if None).  Out-of-bounds indices
    give `fill_value` (NaN / int minimum by default) unless mode is 'clip' or 'wrap'."""
    a = asarray(a)
    if axis is None:
        a = lax.reshape(a, (a.size,))
        axis = 0
    axis = normalize_axis(axis, a.ndim, "take")
    indices = asarray(indices)
    if not dtypes.is_int(indices.dtype):
        raise FjitTypeError(f"take: indices must be integers, got {indices.dtype.name}")
    mode = mode or "fill"
    index = (slice(None),) * axis + (indices,)
    return gather(a, index, mode=mode, fill_value=fill_value)


def take_along_axis(arr, indices, axis, mode=None, fill_value=None):
    """out[..., i, ...] = arr[..., indices[..., i, ...], ...] along `axis`."""
    arr, indices = asarray(arr), asarray(indices)
    if axis is None:
        arr = lax.reshape(arr, (arr.size,))
        indices = lax.reshape(indices, (indices.size,))
        axis = 0
    if arr.ndim != indices.ndim:
        raise FjitValueError(f"take_along_axis: indices {indices.shape} and array {arr.shape} "
                             "must have the same number of dimensions")
    if not dtypes.is_int(indices.dtype):
        raise FjitTypeError(f"take_along_axis: indices must be integers, got {indices.dtype.name}")
    axis = normalize_axis(axis, arr.ndim, "take_along_axis")
    others = [s for k, s in enumerate(arr.shape) if k != axis]
    other_idx = [s for k, s in enumerate(indices.shape) if k != axis]
    merged = broadcast_shapes("take_along_axis", tuple(others), tuple(other_idx))
    out_shape = list(merged)
    out_shape.insert(axis, indices.shape[axis])
    positions = [ix.idx(k) if indices.shape[k] == out_shape[k] else 0
                 for k in range(indices.ndim)]
    mode = mode or "fill"
    value = _normalized(ix.load(1, positions), arr.shape[axis],
                        "clamp" if mode == "clip" else mode,  # JAX wraps negatives here
                        dtypes.is_unsigned(indices.dtype))
    exprs = [value if k == axis else (ix.idx(k) if arr.shape[k] == out_shape[k] else 0)
             for k in range(arr.ndim)]
    fill = fill_value_default(arr.dtype) if fill_value is None and mode == "fill" else (
        fill_value or 0)
    return lax.reindex(arr, tuple(out_shape), exprs, fill=fill, index_arrays=[indices])


def nonzero(a, *, size=None, fill_value=None):
    """Indices of the non-zero elements (needs a concrete array: the count sets the shape)."""
    if isinstance(a, Tracer):
        raise NonConcreteBooleanIndexError(
            "nonzero (and one-argument where) needs a concrete array: the number of results "
            "sets the output shape. Use where(condition, x, y) inside jit.")
    value = np.asarray(a)
    result = np.nonzero(value)
    if size is not None:
        pad = fill_value if fill_value is not None else 0
        result = tuple(np.concatenate([r[:size], np.full(max(size - len(r), 0), pad)])
                       for r in result)
    return tuple(asarray(r.astype(np.int64), dtypes.default_int()) for r in result)


def argwhere(a, *, size=None, fill_value=None):
    positions = nonzero(a, size=size, fill_value=fill_value)
    value = np.asarray(a)
    if not positions:
        return asarray(np.zeros((int(bool(value)), 0), np.int32))
    return manipulation.stack(positions, axis=1)
