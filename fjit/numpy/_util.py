"""Shared helpers for fjit.numpy: turning inputs into arrays, NumPy-style dtype promotion and
broadcasting, and axis arguments."""
from __future__ import annotations

import operator

import numpy as np

from .. import dtypes, lax
from ..array import Array, _from_scalar, from_numpy
from ..core import Tracer
from ..errors import (FjitAxisError, FjitError, FjitShapeError, FjitTypeError,
                      FjitValueError, calling_function)


class ShapeMismatchError(FjitShapeError):
    """Shapes that do not broadcast: a TypeError (JAX's rule) and a ValueError (NumPy's)."""


def is_array(x) -> bool:
    return isinstance(x, (Array, Tracer))


def is_python_scalar(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _contains_array(x) -> bool:
    if is_array(x):
        return True
    if isinstance(x, (list, tuple)):
        return any(_contains_array(e) for e in x)
    return False


def asarray(x, dtype=None, *, opname=None):
    """`x` as an fjit array (Array or tracer), optionally cast to `dtype`.  `opname` names the
    operation in the error for an input that is not an array (default: the fjit function the
    user called)."""
    if is_array(x):
        out = x
    elif is_python_scalar(x):
        out = _from_scalar(x)
    elif isinstance(x, (np.ndarray, np.generic)):
        out = from_numpy(x)
    elif isinstance(x, (list, tuple)):
        if _contains_array(x):
            out = manipulation.stack([asarray(e, opname=opname) for e in x])
        else:
            out = from_numpy(_numpy_value(x, opname))
    elif hasattr(x, "__array__"):
        out = from_numpy(np.asarray(x))
    else:
        raise FjitTypeError(f"{opname or calling_function()}: cannot convert {_describe(x)} to "
                            "an fjit array")
    if dtype is not None:
        out = lax.convert_element_type(out, dtypes.to_dtype(dtype))
    return out


def _describe(x):
    text = repr(x)
    return f"{type(x).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _numpy_value(x, opname):
    """A nested list or tuple of numbers as a NumPy array (ragged or non-numeric: an error)."""
    try:
        value = np.asarray(x)
    except ValueError as e:
        raise FjitValueError(f"{opname or calling_function()}: cannot make an array from "
                             f"{_describe(x)}: {str(e).splitlines()[0]}") from None
    if value.dtype == object or value.dtype.kind in "USV":
        raise FjitTypeError(f"{opname or calling_function()}: cannot make an array from "
                            f"{_describe(x)}")
    return value


def as_bool(x):
    """x != 0 for non-bool arrays (NumPy's truthiness)."""
    x = asarray(x)
    return x if dtypes.is_bool(x.dtype) else lax.ne(x, lax.full((), 0, x.dtype))


def dtype_and_weak(x, opname=None):
    if is_array(x):
        return x.aval.dtype, x.aval.weak_type
    if is_python_scalar(x):
        return dtypes.scalar_type_of(x)
    if isinstance(x, (np.ndarray, np.generic)):
        return dtypes.canonicalize(x.dtype), False
    return dtype_and_weak(asarray(x, opname=opname))


def result_type(*args):
    """NumPy-style result dtype of the arguments under JAX's promotion rules."""
    return dtypes.promote(*(dtype_and_weak(a) for a in args))[0]


def _convert(x, dtype, weak, opname=None):
    """x (any input) as an array of `dtype`; Python scalars stay concrete rank-0 values."""
    if is_python_scalar(x):
        return lax._weak_scalar(x, dtype)
    x = asarray(x, opname=opname)
    if x.aval.dtype != dtype:
        x = lax.convert_element_type(x, dtype, weak_type=weak)
    return x


def promote_dtypes(*args, opname=None):
    """All arguments as arrays of their common (JAX-promoted) dtype; shapes untouched."""
    if not args:
        return []
    dtype, weak = dtypes.promote(*(dtype_and_weak(a, opname) for a in args))
    return [_convert(a, dtype, weak, opname) for a in args]


def promote_dtypes_inexact(*args, opname=None):
    """Like promote_dtypes, but integers and bools become floats (dtypes.to_inexact)."""
    dtype, weak = dtypes.promote(*(dtype_and_weak(a, opname) for a in args))
    return [_convert(a, dtypes.to_inexact(dtype), weak, opname) for a in args]


def promote_dtypes_numeric(*args, opname=None):
    """Like promote_dtypes, but bools become the default int (for arithmetic on bools)."""
    dtype, weak = dtypes.promote(*(dtype_and_weak(a, opname) for a in args))
    if dtypes.is_bool(dtype):
        dtype = dtypes.default_int()
    return [_convert(a, dtype, weak, opname) for a in args]


def shape_of(x):
    return x.aval.shape if is_array(x) else np.shape(x)


def broadcast_shapes(opname, *shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeMismatchError(f"{opname}: shapes {', '.join(map(str, shapes))} do not "
                                 "broadcast together") from None


def broadcast_to_shape(x, shape):
    """x broadcast to `shape` with NumPy's rules (right-aligned, size-1 dims stretch)."""
    x = asarray(x)
    if x.aval.shape == tuple(shape):
        return x
    nlead = len(shape) - x.ndim
    if nlead < 0 or any(s not in (1, t) for s, t in zip(x.aval.shape, shape[nlead:])):
        raise ShapeMismatchError(f"broadcast_to: cannot broadcast {x.aval.shape} to "
                                 f"{tuple(shape)}")
    return lax.broadcast_in_dim(x, tuple(shape), tuple(range(nlead, len(shape))))


def broadcast_operands(opname, *args):
    """Arrays of one shape, except concrete rank-0 values, which element-wise ops broadcast
    themselves (they become literals in Programs)."""
    shapes = [shape_of(a) for a in args]
    if all(s == shapes[0] for s in shapes):
        return list(args)
    shaped = {s for s in shapes if s != ()}
    if len(shaped) == 1 and all(s != () or not isinstance(a, Tracer)
                                for a, s in zip(args, shapes)):
        return list(args)   # one shape and concrete scalars (x * 2): nothing to broadcast
    shape = broadcast_shapes(opname, *shapes)
    out = []
    for a, s in zip(args, shapes):
        if s == shape or (s == () and not isinstance(a, Tracer)):
            out.append(a)
        else:
            out.append(broadcast_to_shape(a, shape))
    return out


def promote_args(opname, *args):
    """promote_dtypes then broadcast_operands: ready for an element-wise primitive."""
    if len(args) == 2:
        fast = _strong_float_and_scalar(*args)
        if fast is not None:
            return fast
    return broadcast_operands(opname, *promote_dtypes(*args, opname=opname))


def _strong_float_and_scalar(a, b):
    """The commonest eager case, `x * 2` with x a concrete, strongly typed float array and a
    Python int or float: the scalar takes x's dtype (JAX's weak-type rule) and needs no
    broadcast.  None for anything else (the general path decides)."""
    if type(a) is Array and type(b) in (int, float):
        x, scalar, scalar_first = a, b, False
    elif type(b) is Array and type(a) in (int, float):
        x, scalar, scalar_first = b, a, True
    else:
        return None
    aval = x.aval
    if aval.weak_type or not dtypes.is_float(aval.dtype):
        return None
    weak = lax._weak_scalar(scalar, aval.dtype)
    return [weak, x] if scalar_first else [x, weak]


def promote_args_inexact(opname, *args):
    return broadcast_operands(opname, *promote_dtypes_inexact(*args, opname=opname))


def promote_args_numeric(opname, *args):
    return broadcast_operands(opname, *promote_dtypes_numeric(*args, opname=opname))


def normalize_axis(axis, ndim, opname=None):
    """`axis` as a non-negative int < ndim (negative counts from the end)."""
    try:
        axis = operator.index(axis)
    except FjitError:
        raise
    except TypeError:
        raise FjitTypeError(f"{opname or calling_function()}: axis must be an integer, got "
                            f"{axis!r}") from None
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise FjitAxisError(f"{opname or calling_function()}: axis {axis} is out of bounds for "
                            f"an array of dimension {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim, opname=None):
    """None -> all axes; int or sequence -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    opname = opname or calling_function()
    axes = tuple(sorted(normalize_axis(a, ndim, opname) for a in axis))
    if len(set(axes)) != len(axes):
        raise FjitValueError(f"{opname}: repeated axis in {axis}")
    return axes


def concrete_value(x, what: str):
    """The NumPy value of a concrete argument (raises a ConcretizationTypeError if traced)."""
    if isinstance(x, Tracer):
        np.asarray(x)  # raises with the user's source line
    return np.asarray(x)


# Last: manipulation imports this module's helpers by name; asarray stacks with it at call time.
from . import manipulation  # noqa: E402
