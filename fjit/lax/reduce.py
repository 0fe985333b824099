"""The reduce family (fold over axes with a monoid) and argmax/argmin.

A row per monoid: its NumPy reduction, its identity (what an empty reduction returns) and
the dtypes it accepts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import dtypes
from .. import lax  # the package's functions, looked up when a rule runs (it imports this module)
from ..core import Primitive, ShapedArray, type_error
from ..errors import FjitShapeError
from ..interpreters import ad, batching
from ..interpreters.ad import Zero
from . import indexexpr as ix
from .elementwise import ANY, INTBOOL, NUM


@dataclass(frozen=True, eq=False)
class Monoid:
    name: str              # the combining element-wise op: add, mul, max, min, and, or
    numpy: Callable        # numpy.ufunc whose .reduce folds
    identity: Callable     # dtype -> identity value
    kinds: tuple


MONOIDS = {
    "sum": Monoid("add", np.add, lambda d: 0, NUM),
    "prod": Monoid("mul", np.multiply, lambda d: 1, NUM),
    "max": Monoid("max", np.maximum, dtypes.lowest, ANY),
    "min": Monoid("min", np.minimum, dtypes.highest, ANY),
    "and": Monoid("and", np.bitwise_and, lambda d: True if dtypes.is_bool(d) else -1, INTBOOL),
    "or": Monoid("or", np.bitwise_or, lambda d: False if dtypes.is_bool(d) else 0, INTBOOL),
}


def _check_axes(opname, x, axes):
    if not isinstance(axes, tuple) or any(not isinstance(a, int) for a in axes):
        raise type_error(opname, f"axes must be a tuple of ints, got {axes!r}", x)
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes) \
            or list(axes) != sorted(axes):
        raise type_error(opname, f"axes {axes} must be distinct, sorted dims of rank {x.ndim}",
                         x, cls=FjitShapeError)


def _as_compute(x):
    """float16 and bfloat16 reduce in float32 and round once, as compiled code and XLA do
    (NumPy cannot reduce bfloat16 at all, and rounds float16 partial sums)."""
    if x.dtype == dtypes.float16 or (dtypes.bfloat16 is not None and x.dtype == dtypes.bfloat16):
        return x.astype(np.float32)
    return x


class ReducePrimitive(Primitive):
    """`reduce_<name>[axes] x`: fold the axes away with the monoid."""

    def __init__(self, name: str, monoid: Monoid):
        super().__init__(f"reduce_{name}", "reduce")
        self.monoid = monoid

    def abstract_eval(self, x, *, axes):
        _check_axes(self.name, x, axes)
        if dtypes.kind_name(x.dtype) not in self.monoid.kinds:
            raise type_error(self.name, f"does not accept dtype {x.dtype.name}", x)
        shape = tuple(d for k, d in enumerate(x.shape) if k not in axes)
        return ShapedArray(shape, x.dtype, x.weak_type)

    def impl(self, x, *, axes):
        if x.size > 0 and all(x.shape[a] == 1 for a in axes):
            # a reduction over one element is that element (as compiled code and XLA have
            # it): folding it into the identity would turn a sum's -0.0 into +0.0
            return np.asarray(x).reshape([d for k, d in enumerate(x.shape) if k not in axes])
        identity = self.monoid.identity(x.dtype)
        value = _as_compute(x)
        with np.errstate(all="ignore"):
            out = self.monoid.numpy.reduce(value, axis=axes, dtype=value.dtype,
                                           initial=np.asarray(identity).astype(value.dtype))
        return np.asarray(out).astype(x.dtype)


class ArgReducePrimitive(Primitive):
    """`argmax[axis, index_dtype] x`: the first position of the extreme value (NaN wins)."""

    def __init__(self, name: str, numpy_fn):
        super().__init__(name, "argreduce")
        self.numpy_fn = numpy_fn

    def abstract_eval(self, x, *, axis, index_dtype):
        if not isinstance(axis, int) or not 0 <= axis < x.ndim:
            raise type_error(self.name, f"axis {axis!r} is not a dim of rank {x.ndim}", x,
                             cls=FjitShapeError)
        if x.shape[axis] == 0:
            raise type_error(self.name, f"cannot take {self.name} over the empty axis {axis}",
                             x)
        if not dtypes.is_int(index_dtype):
            raise type_error(self.name, f"index_dtype must be an integer type, got "
                             f"{index_dtype}", x)
        shape = x.shape[:axis] + x.shape[axis + 1:]
        return ShapedArray(shape, index_dtype, False)

    def impl(self, x, *, axis, index_dtype):
        return np.asarray(self.numpy_fn(_as_compute(x), axis=axis)).astype(index_dtype)


REDUCE_PRIMITIVES = {name: ReducePrimitive(name, m) for name, m in MONOIDS.items()}
argmax_p = ArgReducePrimitive("argmax", np.argmax)
argmin_p = ArgReducePrimitive("argmin", np.argmin)


# --- transformation rules ---------------------------------------------------------------------

def _kept_dims(ndim, axes):
    return tuple(k for k in range(ndim) if k not in axes)


def _sum_jvp(primals, tangents, axes):
    prim = REDUCE_PRIMITIVES["sum"]
    return prim.bind(primals[0], axes=axes), prim.bind(tangents[0], axes=axes)


def _sum_transpose(ct, x, axes):
    if isinstance(ct, Zero):
        return [None]
    shape = x.aval.shape
    return [lax.broadcast_in_dim(ct, shape, _kept_dims(len(shape), axes))]


def _chooser_jvp(name):
    """max/min: the tangent at the chosen positions, averaged over ties (JAX's rule)."""
    def rule(primals, tangents, axes):
        x, t = primals[0], tangents[0]
        out = REDUCE_PRIMITIVES[name].bind(x, axes=axes)
        back = lax.broadcast_in_dim(out, x.shape, _kept_dims(x.ndim, axes))
        chosen = lax.convert_element_type(lax.eq(x, back), x.dtype)
        counts = lax.reduce_sum(chosen, axes)
        return out, lax.div(lax.reduce_sum(lax.mul(t, chosen), axes), counts)
    return rule


def _prod_jvp(primals, tangents, axes):
    """d prod = sum_i t_i * prod_{j != i} x_j, with the products of the others taken from
    exclusive prefix and suffix products (exact with zeros, no division)."""
    x, t = primals[0], tangents[0]
    out = REDUCE_PRIMITIVES["prod"].bind(x, axes=axes)
    kept = _kept_dims(x.ndim, axes)
    moved = lax.transpose(x, kept + axes)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = lax.reshape(moved, moved.shape[:len(kept)] + (n,))
    others = lax.mul(_exclusive_prod(flat, reverse=False), _exclusive_prod(flat, reverse=True))
    t_flat = lax.reshape(lax.transpose(t, kept + axes), flat.shape)
    return out, lax.reduce_sum(lax.mul(t_flat, others), (flat.ndim - 1,))


def _exclusive_prod(x, reverse):
    """Products of the elements strictly before (or after) each one along the last axis."""
    last = x.ndim - 1
    n = x.shape[last]
    index = [ix.idx(k) if k != last else (ix.idx(k) + 1 if reverse else ix.idx(k) - 1)
             for k in range(x.ndim)]
    acc = lax.reindex(x, x.shape, index, fill=1)  # shifted by one: the exclusive start
    shift = 1
    while shift < n:
        index = [ix.idx(k) if k != last else (ix.idx(k) + shift if reverse
                                                else ix.idx(k) - shift)
                 for k in range(x.ndim)]
        acc = lax.mul(acc, lax.reindex(acc, acc.shape, index, fill=1))
        shift *= 2
    return acc


def _reduce_batch(name):
    def rule(axis_size, values, dims, axes):
        d = dims[0]
        moved = tuple(a if a < d else a + 1 for a in axes)
        out_dim = d - sum(1 for a in axes if a < d)
        return REDUCE_PRIMITIVES[name].bind(values[0], axes=tuple(sorted(moved))), out_dim
    return rule


def _arg_jvp(primitive):
    def rule(primals, tangents, **params):
        return primitive.bind(primals[0], **params), Zero(None)
    return rule


def _arg_batch(primitive):
    def rule(axis_size, values, dims, axis, index_dtype):
        d = dims[0]
        moved = axis if axis < d else axis + 1
        out_dim = d if axis >= d else d - 1
        return primitive.bind(values[0], axis=moved, index_dtype=index_dtype), out_dim
    return rule


def _register_rules():
    ad.jvp_rules[REDUCE_PRIMITIVES["sum"]] = _sum_jvp
    ad.transpose_rules[REDUCE_PRIMITIVES["sum"]] = _sum_transpose
    ad.jvp_rules[REDUCE_PRIMITIVES["max"]] = _chooser_jvp("max")
    ad.jvp_rules[REDUCE_PRIMITIVES["min"]] = _chooser_jvp("min")
    ad.jvp_rules[REDUCE_PRIMITIVES["prod"]] = _prod_jvp
    for name, primitive in REDUCE_PRIMITIVES.items():
        batching.batching_rules[primitive] = _reduce_batch(name)
    for primitive in (argmax_p, argmin_p):
        ad.jvp_rules[primitive] = _arg_jvp(primitive)
        batching.batching_rules[primitive] = _arg_batch(primitive)


_register_rules()
