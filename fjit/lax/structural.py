"""Structural primitives: broadcast_in_dim, reshape and iota.

broadcast_in_dim is a meta-op family of its own (`y[i] = x[i restricted to kept dims]`);
reshape and iota are cheaper as views/generators than as reindexes.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import lax  # the package's functions, looked up when a rule runs (it imports this module)
from ..core import Primitive, ShapedArray, type_error
from ..errors import FjitShapeError
from ..interpreters import ad, batching
from ..interpreters.ad import Zero
from ..interpreters.batching import moveaxis


def _check_shape(opname, shape):
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise type_error(opname, f"shape must be a tuple of non-negative ints, got {shape!r}")


class BroadcastInDim(Primitive):
    """`y = broadcast_in_dim[shape, broadcast_dimensions] x`: operand dim k becomes output dim
    broadcast_dimensions[k] (size equal, or 1 to be repeated); other output dims are new."""

    def __init__(self):
        super().__init__("broadcast_in_dim", "broadcast")

    def abstract_eval(self, x, *, shape, broadcast_dimensions):
        _check_shape(self.name, shape)
        dims = broadcast_dimensions
        if len(dims) != x.ndim:
            raise type_error(self.name, f"broadcast_dimensions {dims} must name one output dim "
                             f"per operand dim", x)
        if any(b <= a for a, b in zip(dims, dims[1:])) or any(not 0 <= d < len(shape)
                                                              for d in dims):
            raise type_error(self.name, f"broadcast_dimensions {dims} must be strictly "
                             f"increasing dims of the output shape {shape}", x)
        for k, d in enumerate(dims):
            if x.shape[k] not in (1, shape[d]):
                raise type_error(self.name, f"cannot broadcast operand dim {k} of size "
                                 f"{x.shape[k]} to output dim {d} of size {shape[d]}", x)
        return ShapedArray(shape, x.dtype, x.weak_type)

    def impl(self, x, *, shape, broadcast_dimensions):
        expanded = [1] * len(shape)
        for k, d in enumerate(broadcast_dimensions):
            expanded[d] = x.shape[k]
        return np.broadcast_to(x.reshape(expanded), shape)


class Reshape(Primitive):
    """Row-major reshape to `new_sizes` (same number of elements)."""

    def __init__(self):
        super().__init__("reshape", "reshape")

    def abstract_eval(self, x, *, new_sizes):
        _check_shape(self.name, new_sizes)
        if int(np.prod(new_sizes, dtype=np.int64)) != x.size:
            raise type_error(self.name, f"cannot reshape {x.shape} ({x.size} elements) into "
                             f"{new_sizes}", x, cls=FjitShapeError)
        return ShapedArray(new_sizes, x.dtype, x.weak_type)

    def impl(self, x, *, new_sizes):
        return x.reshape(new_sizes)


class Iota(Primitive):
    """`iota[dtype, shape, dimension]`: the index along `dimension` at every position."""

    def __init__(self):
        super().__init__("iota", "iota")

    def abstract_eval(self, *, dtype, shape, dimension):
        _check_shape(self.name, shape)
        if not 0 <= dimension < len(shape):
            raise type_error(self.name, f"dimension {dimension} is not a dim of {shape}")
        if not (dtypes.is_int(dtype) or dtypes.is_float(dtype)):
            raise type_error(self.name, f"dtype must be numeric, got {dtype}")
        return ShapedArray(shape, dtype, False)

    def impl(self, *, dtype, shape, dimension):
        line = np.arange(shape[dimension]).astype(dtype)
        view = line.reshape([-1 if d == dimension else 1 for d in range(len(shape))])
        return np.broadcast_to(view, shape)


broadcast_in_dim_p = BroadcastInDim()
reshape_p = Reshape()
iota_p = Iota()


# --- transformation rules ---------------------------------------------------------------------

def _broadcast_jvp(primals, tangents, shape, broadcast_dimensions):
    out = broadcast_in_dim_p.bind(primals[0], shape=shape,
                                  broadcast_dimensions=broadcast_dimensions)
    return out, broadcast_in_dim_p.bind(tangents[0], shape=shape,
                                        broadcast_dimensions=broadcast_dimensions)


def _broadcast_transpose(ct, x, shape, broadcast_dimensions):
    """Sum the cotangent over the dims the broadcast created or stretched."""
    if isinstance(ct, Zero):
        return [None]
    in_shape = x.aval.shape
    kept = {d: k for k, d in enumerate(broadcast_dimensions)}
    summed = tuple(d for d in range(len(shape))
                   if d not in kept or (in_shape[kept[d]] == 1 and shape[d] != 1))
    total = lax.reduce_sum(ct, summed) if summed else ct
    return [lax.reshape(total, in_shape)]


def _broadcast_batch(axis_size, values, dims, shape, broadcast_dimensions):
    x = moveaxis(values[0], dims[0], 0)
    out = broadcast_in_dim_p.bind(x, shape=(axis_size,) + shape,
                                  broadcast_dimensions=(0,) + tuple(d + 1 for d in
                                                                    broadcast_dimensions))
    return out, 0


def _reshape_jvp(primals, tangents, new_sizes):
    return (reshape_p.bind(primals[0], new_sizes=new_sizes),
            reshape_p.bind(tangents[0], new_sizes=new_sizes))


def _reshape_transpose(ct, x, new_sizes):
    return [None if isinstance(ct, Zero) else reshape_p.bind(ct, new_sizes=x.aval.shape)]


def _reshape_batch(axis_size, values, dims, new_sizes):
    x = moveaxis(values[0], dims[0], 0)
    return reshape_p.bind(x, new_sizes=(axis_size,) + new_sizes), 0


def _register_rules():
    ad.jvp_rules[broadcast_in_dim_p] = _broadcast_jvp
    ad.transpose_rules[broadcast_in_dim_p] = _broadcast_transpose
    batching.batching_rules[broadcast_in_dim_p] = _broadcast_batch
    ad.jvp_rules[reshape_p] = _reshape_jvp
    ad.transpose_rules[reshape_p] = _reshape_transpose
    batching.batching_rules[reshape_p] = _reshape_batch


_register_rules()
