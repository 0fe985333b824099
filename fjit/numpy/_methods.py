"""Installs the NumPy-style operators and methods on arrays and tracers (`ArrayMethods`).

They are written with fjit.numpy, so an Array in eager code and a tracer inside a
transformation behave the same.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..array import device_put
from ..core import ArrayMethods
from . import contractions, indexing, manipulation, reductions, ufuncs
from ._util import asarray


def _swap(fn):
    return lambda self, other: fn(other, self)


def _defer(fn):
    """Binary operators return NotImplemented for types fjit cannot handle (like NumPy)."""
    def op(self, other):
        if not _operand_ok(other):
            return NotImplemented
        return fn(self, other)
    return op


def _operand_ok(x):
    return isinstance(x, (ArrayMethods, bool, int, float, np.ndarray, np.generic, list, tuple))


_BINARY = {
    "add": ufuncs.add, "sub": ufuncs.subtract, "mul": ufuncs.multiply,
    "truediv": ufuncs.true_divide, "floordiv": ufuncs.floor_divide, "mod": ufuncs.remainder,
    "pow": ufuncs.power, "matmul": contractions.matmul, "and": ufuncs.bitwise_and,
    "or": ufuncs.bitwise_or, "xor": ufuncs.bitwise_xor, "lshift": ufuncs.left_shift,
    "rshift": ufuncs.right_shift, "divmod": ufuncs.divmod,
}
_COMPARE = {"eq": ufuncs.equal, "ne": ufuncs.not_equal, "lt": ufuncs.less,
            "le": ufuncs.less_equal, "gt": ufuncs.greater, "ge": ufuncs.greater_equal}


def _astype(self, dtype, copy=False, device=None):
    out = asarray(self, dtype)
    return out if device is None else device_put(out, device)


def _reshape(self, *shape, order="C"):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return manipulation.reshape(self, shape, order)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return manipulation.transpose(self, axes or None)


def _builtin_round(self, ndigits=None):
    """Python's round(): an integer result without ndigits, like round(2.5) == 2."""
    if ndigits is None:
        return asarray(ufuncs.round(self), dtypes.default_int())
    return ufuncs.round(self, ndigits)


def install():
    for name, fn in _BINARY.items():
        setattr(ArrayMethods, f"__{name}__", _defer(fn))
        setattr(ArrayMethods, f"__r{name}__", _defer(_swap(fn)))
    for name, fn in _COMPARE.items():
        setattr(ArrayMethods, f"__{name}__", _defer(fn))
    ArrayMethods.__neg__ = ufuncs.negative
    ArrayMethods.__pos__ = ufuncs.positive
    ArrayMethods.__abs__ = ufuncs.absolute
    ArrayMethods.__invert__ = ufuncs.invert
    ArrayMethods.__getitem__ = indexing.getitem
    ArrayMethods.__round__ = _builtin_round

    ArrayMethods.T = property(lambda self: manipulation.transpose(self))
    ArrayMethods.mT = property(manipulation.matrix_transpose)
    ArrayMethods.at = property(indexing._IndexUpdateHelper)
    ArrayMethods.real = property(lambda self: self)
    ArrayMethods.astype = _astype
    ArrayMethods.reshape = _reshape
    ArrayMethods.transpose = _transpose
    ArrayMethods.ravel = manipulation.ravel
    ArrayMethods.flatten = manipulation.ravel
    ArrayMethods.squeeze = manipulation.squeeze
    ArrayMethods.swapaxes = manipulation.swapaxes
    ArrayMethods.repeat = manipulation.repeat
    ArrayMethods.diagonal = manipulation.diagonal
    ArrayMethods.trace = manipulation.trace
    ArrayMethods.take = indexing.take
    ArrayMethods.dot = contractions.dot
    ArrayMethods.clip = ufuncs.clip
    ArrayMethods.round = ufuncs.round
    ArrayMethods.conj = ArrayMethods.conjugate = lambda self: self
    for name in ("sum", "prod", "max", "min", "mean", "var", "std", "any", "all", "argmax",
                 "argmin", "cumsum", "cumprod", "ptp"):
        setattr(ArrayMethods, name, getattr(reductions, name))
