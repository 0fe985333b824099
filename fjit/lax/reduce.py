"""The reduce family (fold over axes with a monoid) and argmax/argmin.

A row per monoid: its NumPy reduction, its identity (what an empty reduction returns) and
the dtypes it accepts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import dtypes
from ..core import Primitive, ShapedArray, type_error
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
                         x)


def _as_compute(x):
    """NumPy cannot reduce bfloat16: compute in float32."""
    if dtypes.bfloat16 is not None and x.dtype == dtypes.bfloat16:
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
            raise type_error(self.name, f"axis {axis!r} is not a dim of rank {x.ndim}", x)
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
