"""`fjit.numpy`: NumPy's API written with fjit's meta-op primitives (like `jax.numpy`)."""
from __future__ import annotations

import numpy as _np

from .. import dtypes as _dtypes
from ..core import ArrayMethods as ndarray  # concrete arrays and tracers alike, as in JAX
from ._util import result_type
from .contractions import dot, einsum, inner, kron, matmul, outer, tensordot, vdot
from .creation import (arange, array, asarray, copy, empty, empty_like, eye, full, full_like,
                       geomspace, identity, indices, linspace, logspace, meshgrid, ones,
                       ones_like, tri, tril, triu, zeros, zeros_like)
from .indexing import argwhere, nonzero, take, take_along_axis
from .manipulation import (array_split, atleast_1d, atleast_2d, atleast_3d, broadcast_arrays,
                           broadcast_shapes, broadcast_to, column_stack, concat, concatenate,
                           diag, diagonal, dsplit, dstack, expand_dims, flip, fliplr, flipud,
                           hsplit, hstack, matrix_transpose, moveaxis, pad, permute_dims, ravel,
                           repeat, reshape, roll, rot90, row_stack, split, squeeze, stack,
                           swapaxes, tile, trace, transpose, vsplit, vstack)
from .reductions import (all, amax, amin, any, argmax, argmin, count_nonzero, cummax, cummin,
                         cumprod, cumsum, cumulative_prod, cumulative_sum, max, mean, min,
                         nanmax, nanmean, nanmin, nanprod, nansum, prod, ptp, std, sum, var)
from .sorting import argsort, sort
from .scalar_types import (bool_, float16, float32, float64, int8, int16, int32, int64, uint8,
                           uint16, uint32, uint64)
from .ufuncs import (abs, absolute, acos, acosh, add, allclose, arccos, arccosh, arcsin,
                     arcsinh, arctan, arctan2, arctanh, around, array_equal, asin, asinh, atan,
                     atan2, atanh, bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_not,
                     bitwise_or, bitwise_right_shift, bitwise_xor, cbrt, ceil, clip, copysign,
                     cos, cosh, deg2rad, degrees, divide, divmod, equal, exp, exp2, expm1, fabs,
                     fix, float_power, floor, floor_divide, fmax, fmin, fmod, greater,
                     greater_equal, heaviside, hypot, invert, isclose, isfinite, isinf, isnan,
                     isneginf, isposinf, left_shift, less, less_equal, log, log1p, log2, log10,
                     logaddexp, logaddexp2, logical_and, logical_not, logical_or, logical_xor,
                     maximum, minimum, mod, multiply, negative, nextafter, not_equal, positive,
                     pow, power, rad2deg, radians, reciprocal, remainder, right_shift, rint,
                     round, sign, signbit, sin, sinh, sqrt, square, subtract, tan, tanh,
                     true_divide, trunc, where)
from . import _methods

if _dtypes.bfloat16 is not None:
    from .scalar_types import bfloat16

_methods.install()

# NumPy names that need nothing of fjit's own.
dtype = _np.dtype
issubdtype = _np.issubdtype
generic, number, inexact, floating, integer = (_np.generic, _np.number, _np.inexact,
                                               _np.floating, _np.integer)
signedinteger, unsignedinteger = _np.signedinteger, _np.unsignedinteger
pi, e, inf, nan, euler_gamma = _np.pi, _np.e, _np.inf, _np.nan, _np.euler_gamma
newaxis = None
finfo = _dtypes.finfo
iinfo = _dtypes.iinfo
shape = _np.shape
ndim = _np.ndim
size = _np.size
float_ = float64
int_ = int64


def promote_types(a, b):
    """The dtype JAX's lattice promotes `a` and `b` to (both taken as strong types)."""
    return _dtypes.promote((_dtypes.to_dtype(a), False), (_dtypes.to_dtype(b), False))[0]


def can_cast(from_, to, casting="safe"):
    return _np.can_cast(from_, to, casting)


def isscalar(element):
    if isinstance(element, ndarray):
        return element.ndim == 0
    return _np.isscalar(element)
