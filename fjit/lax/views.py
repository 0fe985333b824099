"""Transpose, slice, reverse, pad, concatenate and dynamic slices, all written as reindex.

Each function builds index expressions over the output's loop indices; nothing here is a
primitive of its own, so every rule of the reindex family applies to all of them.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes
from .. import lax  # the package's functions, looked up at call time (it imports this module)
from ..array import Array
from ..core import Tracer
from . import indexexpr as ix
from ..errors import FjitShapeError, FjitTypeError


def _shape(x):
    return x.aval.shape if isinstance(x, (Array, Tracer)) else np.shape(x)


def transpose(x, permutation):
    """Permute dimensions: output dim k is input dim permutation[k]."""
    shape = _shape(x)
    perm = tuple(int(p) % builtins.max(len(shape), 1) for p in permutation)
    if sorted(perm) != list(range(len(shape))):
        raise FjitTypeError(f"transpose: permutation {tuple(permutation)} is not a permutation of "
                            f"the {len(shape)} dims of shape {shape}")
    if perm == tuple(range(len(shape))):
        return x
    index = [None] * len(shape)
    for k, p in enumerate(perm):
        index[p] = ix.idx(k)
    return lax.reindex(x, tuple(shape[p] for p in perm), index)


def slice(x, start_indices, limit_indices, strides=None):
    """`x[start:limit:stride]` per dim with non-negative bounds and positive strides (lax.slice)."""
    shape = _shape(x)
    strides = strides or (1,) * len(shape)
    if not (len(start_indices) == len(limit_indices) == len(strides) == len(shape)):
        raise FjitTypeError(f"slice: start {start_indices}, limit {limit_indices} and strides "
                            f"{strides} must each have one entry per dim of {shape}")
    out_shape, index = [], []
    for k, (lo, hi, st, n) in enumerate(zip(start_indices, limit_indices, strides, shape)):
        if st <= 0 or not 0 <= lo <= hi <= n:
            raise FjitTypeError(f"slice: invalid bounds {lo}:{hi}:{st} for dim {k} of size {n} "
                                f"(shape {tuple(shape)})")
        out_shape.append(-(-(hi - lo) // st))
        index.append(lo + ix.idx(k) * st)
    if tuple(out_shape) == tuple(shape):
        return x
    return lax.reindex(x, out_shape, index)


def slice_in_dim(x, start_index, limit_index, stride=1, axis=0):
    shape = _shape(x)
    axis = axis % len(shape)
    n = shape[axis]
    start_index = start_index + n if start_index < 0 else start_index  # JAX wraps negatives
    limit_index = limit_index + n if limit_index < 0 else limit_index
    starts = [0] * len(shape)
    limits = list(shape)
    strides = [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start_index, limit_index, stride
    return slice(x, starts, limits, strides)


def rev(x, dimensions):
    """Reverse the order of elements along `dimensions`."""
    shape = _shape(x)
    dims = {int(d) % len(shape) for d in dimensions}
    if not dims:
        return x
    index = [(n - 1) - ix.idx(k) if k in dims else ix.idx(k) for k, n in enumerate(shape)]
    return lax.reindex(x, shape, index)


def pad(x, padding_value, padding_config):
    """Pad with (low, high, interior) per dim; negative low/high crop (lax.pad)."""
    shape = _shape(x)
    if len(padding_config) != len(shape):
        raise FjitShapeError(f"pad: padding_config needs one (low, high, interior) per dim of "
                             f"{shape}, got {padding_config}")
    out_shape, index, fill_if = [], [], []
    for k, ((lo, hi, interior), n) in enumerate(zip(padding_config, shape)):
        if interior < 0:
            raise FjitTypeError(f"pad: interior padding must be non-negative, got {interior}")
        size = lo + hi + n + builtins.max(n - 1, 0) * interior
        if size < 0:
            raise FjitTypeError(f"pad: padding {(lo, hi, interior)} leaves dim {k} of size {n} "
                                "with negative size")
        out_shape.append(size)
        offset = ix.idx(k) - lo
        if interior:
            index.append(offset // (interior + 1))
            fill_if.append(ix.ne(offset % (interior + 1), 0))
        else:
            index.append(offset)
    value = padding_value
    if isinstance(value, (bool, int, float)) or (isinstance(value, Array)
                                                 and value.aval.shape == ()):
        fill = value._value.item() if isinstance(value, Array) else value
        return lax.reindex(x, out_shape, index, fill=fill, fill_if=fill_if)
    # A traced padding value: pad with zeros, then select it where nothing was copied.
    copied = lax.reindex(lax.full(shape, True), out_shape, index, fill=False, fill_if=fill_if)
    padded = lax.reindex(x, out_shape, index, fill=0, fill_if=fill_if)
    return lax.select(copied, padded, lax.broadcast_in_dim(value, tuple(out_shape), ()))


def concatenate(operands, dimension):
    """Join arrays along `dimension`: each piece is a reindex into the output, and a select
    on the position along `dimension` picks the piece."""
    operands = list(operands)
    if not operands:
        raise FjitTypeError("concatenate: needs at least one array")
    shapes = [_shape(x) for x in operands]
    ndim = len(shapes[0])
    if ndim == 0:
        raise FjitTypeError("concatenate: cannot concatenate rank-0 arrays")
    dim = dimension % ndim
    for s in shapes:
        if len(s) != ndim:
            raise FjitTypeError(f"concatenate: cannot concatenate arrays of different ranks, "
                                f"got shapes {shapes}")
        if any(a != b for k, (a, b) in enumerate(zip(s, shapes[0])) if k != dim):
            raise FjitTypeError(f"concatenate: shapes {shapes} differ outside dimension {dim}")
    dts = {x.aval.dtype for x in operands}
    if len(dts) != 1:
        raise FjitTypeError(f"concatenate: operands must have one dtype, got "
                            f"{sorted(d.name for d in dts)}")
    pieces = [(x, s) for x, s in zip(operands, shapes) if s[dim] > 0] or [(operands[0],
                                                                         shapes[0])]
    if len(pieces) == 1:
        return pieces[0][0]
    total = sum(s[dim] for _, s in pieces)
    out_shape = tuple(total if k == dim else n for k, n in enumerate(shapes[0]))
    position = lax.broadcasted_iota(dtypes.int32, out_shape, dim)
    result = None
    offset = total
    for x, s in reversed(pieces):  # build the select chain from the last piece backwards
        offset -= s[dim]
        index = [ix.idx(k) - offset if k == dim else ix.idx(k) for k in range(ndim)]
        placed = lax.reindex(x, out_shape, index)
        if result is None:
            result = placed
        else:
            result = lax.select(lax.lt(position, offset + s[dim]), placed, result)
    return result


def _start_expressions(start_indices, shape, slice_sizes):
    """Index operands and start expressions for dynamic slicing.  Like JAX, a negative start
    counts from the end, and starts are clamped so the window stays inside the array."""
    index_arrays, starts = [], []
    for k, (s, n, size) in enumerate(zip(start_indices, shape, slice_sizes)):
        if size > n or size < 0:
            raise FjitTypeError(f"dynamic_slice: slice size {size} does not fit dim {k} of size "
                                f"{n} (shape {tuple(shape)})")
        if isinstance(s, np.ndarray) and s.shape == () and dtypes.is_int(s.dtype):
            s = s.item()
        if isinstance(s, (int, np.integer)):
            s = int(s) + n if s < 0 else int(s)
            starts.append(ix.as_expr(builtins.min(builtins.max(s, 0), n - size)))
            continue
        aval = getattr(s, "aval", None)
        if aval is None or aval.shape != () or not dtypes.is_int(aval.dtype):
            raise FjitTypeError(f"dynamic_slice: start index {k} must be a scalar integer, got "
                                f"{s!r}")
        index_arrays.append(s)
        load = ix.load(len(index_arrays), ())
        wrapped = ix.where(ix.lt(load, 0), load + n, load)
        starts.append(ix.maximum(ix.minimum(wrapped, n - size), 0))
    return index_arrays, starts


def dynamic_slice(x, start_indices, slice_sizes):
    """`x[s0:s0+size0, ...]` with start indices that may be traced scalars."""
    shape = _shape(x)
    if len(start_indices) != len(shape) or len(slice_sizes) != len(shape):
        raise FjitShapeError(f"dynamic_slice: needs one start index and slice size per dim of "
                             f"{shape}, got {len(start_indices)} start indices and slice sizes "
                             f"{tuple(slice_sizes)}")
    index_arrays, starts = _start_expressions(start_indices, shape, slice_sizes)
    index = [start + ix.idx(k) for k, start in enumerate(starts)]
    return lax.reindex(x, tuple(slice_sizes), index, index_arrays=index_arrays)


def dynamic_update_slice(x, update, start_indices):
    """`x` with the window at `start_indices` replaced by `update`."""
    shape, ushape = _shape(x), _shape(update)
    if len(ushape) != len(shape):
        raise FjitTypeError(f"dynamic_update_slice: update {ushape} and operand {shape} ranks "
                            "differ")
    index_arrays, starts = _start_expressions(start_indices, shape, ushape)
    # Loads in the reindexes below read operand 1.. of each reindex; same numbering here.
    index = [ix.idx(k) - start for k, start in enumerate(starts)]
    inside = lax.reindex(lax.full(ushape, True), shape, index, fill=False,
                         index_arrays=index_arrays)
    placed = lax.reindex(update, shape, index, fill=0, index_arrays=index_arrays)
    return lax.select(inside, placed, x)


def windows(x, window_shape, strides=None, padding=None, dilation=None, fill=0):
    """Sliding windows (im2col) as one reindex: an array of shape `out + window_shape` with

        y[o..., w...] = x[o * stride + w * dilation - low_padding]

    and `fill` where that lands in the padding.  Convolutions and pooling are this followed
    by a contraction or a reduction over the window axes.  `padding` is a (low, high) pair
    per dim; a window size of 1 leaves a dim (batch, channels) untouched.
    """
    shape = _shape(x)
    ndim = len(shape)
    window_shape = tuple(int(w) for w in window_shape)
    strides = tuple(strides or (1,) * ndim)
    dilation = tuple(dilation or (1,) * ndim)
    padding = tuple(tuple(p) for p in (padding or ((0, 0),) * ndim))
    if not (len(window_shape) == len(strides) == len(dilation) == len(padding) == ndim):
        raise FjitTypeError(f"windows: window_shape {window_shape}, strides {strides}, dilation "
                            f"{dilation} and padding {padding} need one entry per dim of {shape}")
    out_shape, index = [], []
    for k, (n, w, s, d, (lo, hi)) in enumerate(zip(shape, window_shape, strides, dilation,
                                                   padding)):
        if w < 1 or s < 1 or d < 1:
            raise FjitTypeError(f"windows: window size, stride and dilation must be positive "
                                f"(dim {k}: {w}, {s}, {d})")
        span = d * (w - 1) + 1
        out_shape.append(builtins.max((n + lo + hi - span) // s + 1, 0))
        index.append(ix.idx(k) * s + ix.idx(ndim + k) * d - lo)
    return lax.reindex(x, tuple(out_shape) + window_shape, index, fill=fill)
