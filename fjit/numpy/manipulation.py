"""Shape manipulation: reshape, transpose, stacking, splitting, tiling, padding, rolling...
Everything that moves elements is a reindex (via fjit.lax), so it fuses and differentiates
like any other reindex."""
from __future__ import annotations

import builtins
import operator

import numpy as np

from .. import lax
from ..core import Tracer
from ..lax import indexexpr as ix
from ._util import (asarray, broadcast_shapes as _broadcast_shapes, broadcast_to_shape,
                    normalize_axes, normalize_axis, promote_dtypes)
from ..errors import (FjitError, FjitShapeError, FjitTypeError, FjitValueError,
                      calling_function)
from . import indexing, reductions  # both import this module: read at call time


def _shape_arg(shape, opname=None):
    """A shape argument as a tuple of Python ints (ints, not floats, as in JAX)."""
    try:
        if isinstance(shape, (int, np.integer)):
            return (operator.index(shape),)
        return tuple(operator.index(d) for d in shape)
    except FjitError:
        raise  # a traced size: the concretization error says where
    except TypeError:
        raise FjitTypeError(f"{opname or calling_function()}: shapes must be integers or "
                            f"sequences of integers, got {shape!r}") from None


def _infer_shape(opname, a, shape):
    """The shape `a` is reshaped to, with one -1 replaced by the size it must have."""
    size = a.size
    shape = list(_shape_arg(shape, opname))
    unknown = [k for k, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        raise FjitShapeError(f"{opname}: can only specify one unknown dimension (-1), got "
                             f"{tuple(shape)} for an array of shape {a.shape}")
    if any(d < -1 for d in shape):
        raise FjitShapeError(f"{opname}: negative dimensions are not allowed, got "
                             f"{tuple(shape)} for an array of shape {a.shape}")
    if unknown:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise FjitShapeError(f"{opname}: cannot reshape an array of shape {a.shape} (size "
                                 f"{size}) into shape {tuple(shape)}")
        shape[unknown[0]] = size // known
    elif int(np.prod(shape, dtype=np.int64)) != size:
        raise FjitShapeError(f"{opname}: cannot reshape an array of shape {a.shape} (size "
                             f"{size}) into shape {tuple(shape)} (size "
                             f"{int(np.prod(shape, dtype=np.int64))})")
    return tuple(shape)


def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    a = asarray(a)
    if shape is None:
        shape = newshape
    if shape is None:
        raise FjitTypeError("reshape: missing the shape argument")
    shape = _infer_shape("reshape", a, shape)
    if order == "F":
        return transpose(lax.reshape(transpose(a), shape[::-1]))
    if order not in ("C", "A"):
        raise FjitValueError(f"reshape: order must be 'C' or 'F', got {order!r}")
    return lax.reshape(a, shape)


def ravel(a, order="C"):
    a = asarray(a)
    return reshape(a, (a.size,), order)


def transpose(a, axes=None):
    a = asarray(a)
    axes = tuple(range(a.ndim))[::-1] if axes is None else tuple(
        normalize_axis(x, a.ndim, "transpose") for x in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise FjitShapeError(f"transpose: axes {axes} are not a permutation of the {a.ndim} "
                             f"dims of an array of shape {a.shape}")
    return lax.transpose(a, axes)


def permute_dims(a, axes):
    return transpose(a, axes)


def matrix_transpose(x):
    x = asarray(x)
    if x.ndim < 2:
        raise FjitValueError(f"matrix_transpose: needs at least 2 dimensions, got shape "
                             f"{x.shape}")
    return swapaxes(x, -1, -2)


def swapaxes(a, axis1, axis2):
    a = asarray(a)
    perm = list(range(a.ndim))
    i, j = normalize_axis(axis1, a.ndim), normalize_axis(axis2, a.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return lax.transpose(a, perm)


def moveaxis(a, source, destination):
    a = asarray(a)
    src = tuple(normalize_axis(s, a.ndim) for s in (
        source if isinstance(source, (list, tuple)) else (source,)))
    dst = tuple(normalize_axis(d, a.ndim) for d in (
        destination if isinstance(destination, (list, tuple)) else (destination,)))
    if len(src) != len(dst):
        raise FjitValueError(f"moveaxis: source {source} and destination {destination} need "
                             f"the same number of axes (array of shape {a.shape})")
    for name, axes, arg in (("source", src, source), ("destination", dst, destination)):
        if len(set(axes)) != len(axes):
            raise FjitValueError(f"moveaxis: repeated axis in {name} {arg} (array of shape "
                                 f"{a.shape})")
    order = [k for k in range(a.ndim) if k not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return lax.transpose(a, order)


def expand_dims(a, axis):
    a = asarray(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = a.ndim + len(axes)
    axes = sorted(normalize_axis(x, ndim, "expand_dims") for x in axes)
    if len(set(axes)) != len(axes):
        raise FjitValueError(f"expand_dims: repeated axis in {axis} (array of shape "
                             f"{a.shape})")
    shape = list(a.shape)
    for x in axes:
        shape.insert(x, 1)
    return lax.reshape(a, tuple(shape))


def squeeze(a, axis=None):
    a = asarray(a)
    if axis is None:
        axes = tuple(k for k, d in enumerate(a.shape) if d == 1)
    else:
        axes = normalize_axes(axis, a.ndim, "squeeze")
        for k in axes:
            if a.shape[k] != 1:
                raise FjitValueError(f"squeeze: cannot select an axis to squeeze out which has "
                                     f"size not equal to one (axis {k} of shape {a.shape})")
    return lax.reshape(a, tuple(d for k, d in enumerate(a.shape) if k not in axes))


def broadcast_to(array, shape):
    return broadcast_to_shape(asarray(array), _shape_arg(shape))


def broadcast_shapes(*shapes):
    return _broadcast_shapes("broadcast_shapes", *(_shape_arg(s) for s in shapes))


def broadcast_arrays(*args):
    arrays = [asarray(a) for a in args]
    shape = _broadcast_shapes("broadcast_arrays", *(a.shape for a in arrays))
    return [broadcast_to_shape(a, shape) for a in arrays]


def atleast_1d(*arys):
    out = [asarray(a) if asarray(a).ndim >= 1 else reshape(a, (1,)) for a in arys]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys):
    out = []
    for a in arys:
        a = asarray(a)
        out.append(a if a.ndim >= 2 else reshape(a, (1,) * (2 - a.ndim) + a.shape))
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys):
    out = []
    for a in arys:
        a = asarray(a)
        if a.ndim == 0:
            a = reshape(a, (1, 1, 1))
        elif a.ndim == 1:
            a = reshape(a, (1, a.shape[0], 1))
        elif a.ndim == 2:
            a = reshape(a, a.shape + (1,))
        out.append(a)
    return out[0] if len(out) == 1 else out


# --- joining and splitting --------------------------------------------------------------------

def concatenate(arrays, axis=0, dtype=None):
    if isinstance(arrays, Tracer) or hasattr(arrays, "aval"):
        arrays = [arrays[k] for k in range(arrays.shape[0])]
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise FjitValueError("concatenate: need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    arrays = promote_dtypes(*arrays)
    if dtype is not None:
        arrays = [asarray(a, dtype) for a in arrays]
    if any(a.ndim == 0 for a in arrays):
        raise FjitValueError(f"concatenate: zero-dimensional arrays cannot be concatenated, "
                             f"got shapes {[a.shape for a in arrays]}")
    axis = normalize_axis(axis, arrays[0].ndim, "concatenate")
    return lax.concatenate(arrays, axis)


concat = concatenate


def stack(arrays, axis=0, out=None, dtype=None):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise FjitValueError("stack: need at least one array to stack")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise FjitValueError(f"stack: all input arrays must have the same shape, got "
                             f"{sorted(shapes)}")
    axis = normalize_axis(axis, arrays[0].ndim + 1, "stack")
    return concatenate([expand_dims(a, axis) for a in arrays], axis, dtype)


def hstack(tup, dtype=None):
    arrays = [atleast_1d(a) for a in tup]
    return concatenate(arrays, 0 if arrays[0].ndim == 1 else 1, dtype)


def vstack(tup, dtype=None):
    return concatenate([atleast_2d(a) for a in tup], 0, dtype)


row_stack = vstack


def dstack(tup, dtype=None):
    return concatenate([atleast_3d(a) for a in tup], 2, dtype)


def column_stack(tup):
    arrays = []
    for a in tup:
        a = asarray(a)
        arrays.append(reshape(a, (a.shape[0], 1)) if a.ndim < 2 else a)
    return concatenate(arrays, 1)


def _split_points(opname, n, indices_or_sections, even):
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise FjitValueError(f"{opname}: number of sections must be larger than 0")
        if even and n % sections:
            raise FjitValueError(f"{opname}: array split does not result in an equal division "
                                 f"(an axis of size {n} into {sections})")
        size, extra = divmod(n, sections)
        bounds = [0]
        for k in range(sections):
            bounds.append(bounds[-1] + size + (1 if k < extra else 0))
        return bounds
    points = [int(p) for p in np.asarray(indices_or_sections)]
    return [0] + points + [n]


def split(ary, indices_or_sections, axis=0):
    return _split("split", ary, indices_or_sections, axis, even=True)


def array_split(ary, indices_or_sections, axis=0):
    return _split("array_split", ary, indices_or_sections, axis, even=False)


def _split(opname, ary, indices_or_sections, axis, even):
    ary = asarray(ary)
    axis = normalize_axis(axis, ary.ndim, opname)
    n = ary.shape[axis]
    bounds = _split_points(opname, n, indices_or_sections, even)
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        lo, hi = builtins.min(builtins.max(lo if lo >= 0 else lo + n, 0), n), \
            builtins.min(builtins.max(hi if hi >= 0 else hi + n, 0), n)
        hi = builtins.max(hi, lo)
        out.append(lax.slice_in_dim(ary, lo, hi, 1, axis))
    return out


def hsplit(ary, indices_or_sections):
    ary = asarray(ary)
    return split(ary, indices_or_sections, 0 if ary.ndim == 1 else 1)


def vsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, 0)


def dsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, 2)


# --- repetition -------------------------------------------------------------------------------

def tile(A, reps):
    """Repeat the whole array `reps` times per dim: a reindex with i % n."""
    A = asarray(A)
    reps = _shape_arg(reps, "tile")
    if any(r < 0 for r in reps):
        raise FjitShapeError(f"tile: reps must be non-negative, got {reps} for an array of "
                             f"shape {A.shape}")
    ndim = builtins.max(len(reps), A.ndim)
    A = reshape(A, (1,) * (ndim - A.ndim) + A.shape)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = tuple(n * r for n, r in zip(A.shape, reps))
    index = [ix.idx(k) % n if r != 1 and n else ix.idx(k)
             for k, (n, r) in enumerate(zip(A.shape, reps))]
    if shape == A.shape:
        return A
    return lax.reindex(A, shape, index)


def repeat(a, repeats, axis=None, *, total_repeat_length=None):
    """Repeat each element: a reindex with i // r for a scalar r, or a gather through the
    cumulative counts for per-element repeats (which must be concrete)."""
    a = asarray(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = normalize_axis(axis, a.ndim, "repeat")
    n = a.shape[axis]
    if isinstance(repeats, (int, np.integer)):
        r = int(repeats)
        if r < 0:
            raise FjitValueError("repeat: repeats may not be negative")
        if total_repeat_length is None:
            shape = a.shape[:axis] + (n * r,) + a.shape[axis + 1:]
            index = [ix.idx(k) // r if k == axis and r else ix.idx(k) for k in range(a.ndim)]
            return lax.reindex(a, shape, index)
        repeats = np.full(n, r)
    if isinstance(repeats, Tracer):
        raise FjitTypeError("repeat: per-element repeats must be concrete (the output size "
                            "depends on them); pass a NumPy array or a list")
    try:
        counts = np.broadcast_to(np.asarray(repeats), (n,))
    except ValueError:
        raise FjitValueError(f"repeat: repeats of shape {np.shape(repeats)} do not fit axis "
                             f"{axis} of an array of shape {a.shape}") from None
    if (counts < 0).any():
        raise FjitValueError("repeat: repeats may not be negative")
    source = np.repeat(np.arange(n), counts).astype(np.int32)
    if total_repeat_length is not None:  # truncate, or pad with the last element
        source = source[:total_repeat_length]
        extra = total_repeat_length - len(source)
        if extra:
            last = source[-1] if len(source) else 0
            source = np.concatenate([source, np.full(extra, last, np.int32)])
    return indexing.take(a, asarray(source), axis=axis, mode="clip")


# --- reordering -------------------------------------------------------------------------------

def flip(m, axis=None):
    m = asarray(m)
    axes = normalize_axes(axis, m.ndim, "flip")
    return lax.rev(m, axes)


def fliplr(m):
    m = asarray(m)
    if m.ndim < 2:
        raise FjitValueError("fliplr: needs at least 2 dimensions")
    return flip(m, 1)


def flipud(m):
    m = asarray(m)
    if m.ndim < 1:
        raise FjitValueError("flipud: needs at least 1 dimension")
    return flip(m, 0)


def rot90(m, k=1, axes=(0, 1)):
    m = asarray(m)
    a0, a1 = (normalize_axis(x, m.ndim, "rot90") for x in axes)
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    perm = list(range(m.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return transpose(flip(m, a1), perm)
    return flip(transpose(m, perm), a1)


def roll(a, shift, axis=None):
    """Shift elements cyclically: a reindex with (i - shift) mod n; a traced shift is loaded
    from an index operand."""
    a = asarray(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    shifts = (shift,) * len(axes) if isinstance(shift, (int, np.integer)) or \
        (hasattr(shift, "ndim") and shift.ndim == 0) else tuple(shift)
    if len(shifts) != len(axes):
        shifts, axes = np.broadcast_arrays(np.asarray(shifts), np.asarray(axes))
    index = [ix.idx(k) for k in range(a.ndim)]
    index_arrays = []
    for s, ax in zip(shifts, axes):
        ax = normalize_axis(int(ax), a.ndim, "roll")
        n = a.shape[ax]
        if n == 0:
            continue
        if isinstance(s, (int, np.integer)):
            amount = ix.as_expr(int(s) % n)
        else:
            index_arrays.append(asarray(s))
            amount = ix.load(len(index_arrays), ())
        index[ax] = (index[ax] - amount) % n
    return lax.reindex(a, a.shape, index, index_arrays=index_arrays)


# --- padding ----------------------------------------------------------------------------------

def _pad_widths(pad_width, shape):
    ndim = len(shape)
    widths = np.asarray(pad_width, dtype=np.int64)
    if widths.ndim == 0:
        widths = np.broadcast_to(widths, (ndim, 2))
    elif widths.ndim == 1:
        widths = np.broadcast_to(widths, (ndim, 2)) if widths.size == 2 or widths.size == 1 \
            else None
    if widths is None or widths.shape != (ndim, 2):
        raise FjitValueError(f"pad: pad_width {pad_width} does not fit an array of rank {ndim}"
                             f" (shape {shape})")
    if (widths < 0).any():
        raise FjitValueError(f"pad: pad widths must be non-negative, got {pad_width}")
    return [tuple(int(v) for v in w) for w in widths]


def pad(array, pad_width, mode="constant", **kwargs):
    """NumPy's pad for the modes constant, edge, wrap, reflect and symmetric.  Each is one
    reindex: only the index expression for the border positions differs."""
    array = asarray(array)
    widths = _pad_widths(pad_width, array.shape)
    if mode == "constant":
        value = kwargs.get("constant_values", 0)
        values = np.asarray(value) if not hasattr(value, "aval") else None
        if values is not None and values.size == 1:
            config = [(lo, hi, 0) for lo, hi in widths]
            fill = lax.fill_value_for(array.dtype, values.reshape(()).item())
            return lax.pad(array, fill, config)
        if values is None:  # a traced scalar value
            return lax.pad(array, asarray(value, array.dtype), [(lo, hi, 0) for lo, hi in widths])
        # Per-side values: pad one dim at a time, as NumPy does.
        values = np.broadcast_to(values, (array.ndim, 2))
        out = array
        for k, (lo, hi) in enumerate(widths):
            config = [(0, 0, 0)] * array.ndim
            config[k] = (lo, 0, 0)
            out = lax.pad(out, lax.fill_value_for(array.dtype, values[k][0].item()), config)
            config[k] = (0, hi, 0)
            out = lax.pad(out, lax.fill_value_for(array.dtype, values[k][1].item()), config)
        return out
    if mode not in ("edge", "wrap", "reflect", "symmetric"):
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; fjit has constant, "
                                  "edge, wrap, reflect and symmetric")
    if kwargs.get("reflect_type", "even") != "even":
        raise NotImplementedError("pad: only reflect_type='even' is supported")
    shape, index = [], []
    for k, ((lo, hi), n) in enumerate(zip(widths, array.shape)):
        shape.append(n + lo + hi)
        if (lo or hi) and n == 0:
            raise FjitValueError(f"pad: can't extend empty axis {k} using modes other than "
                                 "'constant'")
        index.append(_border_index(mode, ix.idx(k) - lo, n) if lo or hi else ix.idx(k))
    return lax.reindex(array, tuple(shape), index)


def _border_index(mode, t, n):
    """Where position t (t < 0 or t >= n on the borders) reads from, for each pad mode."""
    if mode == "edge":
        return ix.maximum(ix.minimum(t, n - 1), 0)
    if mode == "wrap":
        return t % n
    if mode == "reflect":
        if n == 1:
            return ix.as_expr(0)
        period = 2 * (n - 1)
        r = t % period
        return ix.where(ix.lt(r, n), r, period - r)
    period = 2 * n  # symmetric
    r = t % period
    return ix.where(ix.lt(r, n), r, period - 1 - r)


# --- diagonals --------------------------------------------------------------------------------

def diagonal(a, offset=0, axis1=0, axis2=1):
    a = asarray(a)
    if a.ndim < 2:
        raise FjitValueError(f"diagonal: needs at least 2 dimensions, got shape {a.shape}")
    axis1, axis2 = normalize_axis(axis1, a.ndim), normalize_axis(axis2, a.ndim)
    if axis1 == axis2:
        raise FjitValueError(f"diagonal: axis1 and axis2 cannot be the same (both {axis1}, "
                             f"array of shape {a.shape})")
    n1, n2 = a.shape[axis1], a.shape[axis2]
    length = builtins.max(0, builtins.min(n1 + builtins.min(offset, 0),
                                          n2 - builtins.max(offset, 0)))
    rest = [k for k in range(a.ndim) if k not in (axis1, axis2)]
    shape = tuple(a.shape[k] for k in rest) + (length,)
    diag_i = ix.idx(len(rest))
    index = [None] * a.ndim
    for out_k, k in enumerate(rest):
        index[k] = ix.idx(out_k)
    index[axis1] = diag_i + builtins.max(-offset, 0)
    index[axis2] = diag_i + builtins.max(offset, 0)
    return lax.reindex(a, shape, index)


def diag(v, k=0):
    """The k-th diagonal of a matrix, or a matrix with `v` on its k-th diagonal."""
    v = asarray(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise FjitValueError(f"diag: input must be 1- or 2-dimensional, got shape {v.shape}")
    n = v.shape[0] + builtins.abs(k)
    i, j = ix.idx(0), ix.idx(1)
    source = i if k >= 0 else j
    return lax.reindex(v, (n, n), [source], fill=0, fill_if=[ix.ne(j - i, k)])


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    return reductions.sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)
