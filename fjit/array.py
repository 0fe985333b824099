"""`fjit.Array`: an immutable concrete array on a device.

Its NumPy-style operators and methods come from `fjit.numpy` (installed on `ArrayMethods`),
so eager code and traced code share one implementation.
"""
from __future__ import annotations

import numpy as np

from . import dtypes
from .core import ArrayMethods, ShapedArray, Tracer
from .devices import CPU, Device, default_device, devices
from .errors import FjitTypeError, FjitValueError, calling_function
from .tree_util import tree_map


class _OnDevice:
    """The `_pending` of a computed array on a device other than the CPU, so that the hot
    paths need one test, `_pending is None`, for "a NumPy buffer ready to read"."""

    __slots__ = ()

    def wait(self):
        pass


ON_DEVICE = _OnDevice()


class Array(ArrayMethods):
    """A concrete array: a buffer on its device that nobody mutates, and its abstract value.
    On the CPU the buffer is a NumPy array; another platform's buffer is whatever its
    executables take (fjit/devices.py), copied to the host once when first read.

    An output of an asynchronous call (fjit/runtime/dispatch.py) holds its buffer before
    the call has filled it, and a `pending` completion: reading `_value` waits for it.
    `_pending` is None exactly for a CPU array that is computed."""

    __slots__ = ("_buffer", "aval", "_device", "_pending", "_host", "__weakref__")

    def __init__(self, buffer, aval: ShapedArray, device: Device = CPU, pending=None):
        self._buffer = buffer
        self.aval = aval
        self._device = device
        self._pending = pending if device is CPU or pending is not None else ON_DEVICE
        # `_host` stays unset until a device array is read

    @property
    def _value(self) -> np.ndarray:
        """The value as a NumPy array, once whatever computes it has finished (on a device
        other than the CPU: a host copy, made on the first read)."""
        if self._pending is None:
            return self._buffer
        self._wait()
        if self._device is CPU:
            return self._buffer
        host = getattr(self, "_host", None)
        if host is None:
            host = self._host = self._device.to_host(self._buffer)
            host.flags.writeable = False
        return host

    # --- conversion to Python / NumPy ---------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        value = self._value
        if dtype is not None and np.dtype(dtype) != value.dtype:
            return value.astype(dtype)
        if copy:
            return value.copy()
        view = value.view()
        view.flags.writeable = False
        return view

    def item(self, *args):
        return self._value.item(*args)

    def tolist(self):
        return self._value.tolist()

    def __bool__(self):
        return bool(self._value)

    def __int__(self):
        return int(self._value)

    def __float__(self):
        return float(self._value)

    def __complex__(self):
        return complex(self._value)

    def __index__(self):
        if not dtypes.is_int(self.aval.dtype) and not dtypes.is_bool(self.aval.dtype):
            raise FjitTypeError(f"only integer arrays can be used as an index, got "
                                f"{self.aval.str_short()}")
        return self._value.__index__()

    def __iter__(self):
        if not self.aval.shape:
            raise FjitTypeError("iteration over a rank-0 array")
        return (self[i] for i in range(self.aval.shape[0]))

    def __reduce__(self):
        return (_rebuild, (self._value, self.aval.weak_type))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def copy(self):
        if self._device is not CPU:   # buffers are immutable: the copy may share it
            return Array(self._buffer, self.aval, self._device, self._pending)
        return Array(self._value.copy(), self.aval, self._device)

    def __setitem__(self, index, value):
        raise FjitTypeError("fjit arrays are immutable: use x = x.at[index].set(value) instead of "
                            "x[index] = value")

    def __hash__(self):
        raise FjitTypeError("unhashable type: 'fjit.Array'")

    # --- device -------------------------------------------------------------------------------
    @property
    def device(self) -> Device:
        return self._device

    def devices(self) -> set:
        return {self._device}

    def block_until_ready(self):
        """Wait until this array is computed (fjit.block_until_ready does a whole pytree)."""
        if self._pending is not None:
            self._wait()
            self._device.wait(self._buffer)
        return self

    def _wait(self):
        """Wait for the asynchronous call computing this array, raising its error."""
        pending = self._pending
        if pending is not None and pending is not ON_DEVICE:
            pending.wait()
            self._pending = None if self._device is CPU else ON_DEVICE

    def is_deleted(self) -> bool:
        return False

    # --- printing -----------------------------------------------------------------------------
    def __repr__(self):
        extra = f"dtype={self.aval.dtype.name}"
        if self.aval.weak_type:
            extra += ", weak_type=True"
        if self._value.size == 0:
            return f"Array([], shape={self.aval.shape}, {extra})"
        body = np.array2string(self._value, separator=", ", prefix="Array(")
        return f"Array({body}, {extra})"

    def __str__(self):
        return str(self._value)

    def __format__(self, spec):
        if self.aval.shape == ():
            return format(self._value[()], spec)
        return format(str(self), spec)


def _rebuild(value, weak_type):
    return Array(value, ShapedArray(value.shape, value.dtype, weak_type))


def _from_scalar(x) -> Array:
    dtype, weak = dtypes.scalar_type_of(x)
    if isinstance(x, int) and not isinstance(x, bool):
        info = np.iinfo(dtype)
        if not info.min <= x <= info.max:
            raise OverflowError(f"Python int {x} is too large to convert to {dtype.name}")
    return Array(np.asarray(x, dtype=dtype), ShapedArray((), dtype, weak))


def from_numpy(value, dtype=None, weak_type=False) -> Array:
    """A fresh Array holding a copy of `value` (NumPy data), with a canonical dtype."""
    value = np.asarray(value)
    target = dtypes.canonicalize(value.dtype if dtype is None else dtype)
    value = np.array(value, dtype=target, copy=True)
    return Array(value, ShapedArray(value.shape, target, weak_type))


def concrete_operand(x, opname: str = "operation") -> Array:
    """A concrete primitive operand as an Array: Arrays pass, scalars and NumPy data convert."""
    if type(x) is Array:
        return x
    if isinstance(x, (bool, int, float, complex)):
        return _from_scalar(x)
    if isinstance(x, (np.ndarray, np.generic)):
        return from_numpy(x)
    if isinstance(x, Tracer):
        raise FjitTypeError(f"{opname}: unexpected tracer {x!r}")
    if isinstance(x, (list, tuple)):
        raise FjitTypeError(f"{opname}: got a Python {type(x).__name__}, which is not an array; "
                            "convert it with fjit.numpy.asarray first")
    raise FjitTypeError(f"{opname}: value of type {type(x).__name__} is not a valid fjit array")


def aval_of(x) -> ShapedArray:
    """The abstract value of any array-like: Arrays and tracers carry one; Python scalars are
    weakly typed; NumPy data gets its canonical dtype; ShapeDtypeStruct-likes are taken as is."""
    aval = getattr(x, "aval", None)
    if aval is not None:
        return aval
    if isinstance(x, (bool, int, float)):
        dtype, weak = dtypes.scalar_type_of(x)
        return ShapedArray((), dtype, weak)
    if isinstance(x, (np.ndarray, np.generic)):
        return ShapedArray(np.shape(x), dtypes.canonicalize(x.dtype), False)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return ShapedArray(x.shape, dtypes.canonicalize(x.dtype), getattr(x, "weak_type", False))
    raise FjitTypeError(f"value of type {type(x).__name__} is not a valid array argument")


def device_put(x, device: Device | None = None):
    """Put a pytree of arrays on `device`: returns fjit Arrays.  Without a device, arrays on
    a device stay there and host data goes to the default device."""
    if device is not None and (not isinstance(device, Device) or device not in devices()):
        raise FjitValueError(f"fjit.device_put: device {device!r} is not available; "
                             f"available: {devices()}")

    def put(leaf):
        if isinstance(leaf, Tracer):
            if device is None or device == default_device():
                return leaf
            raise FjitValueError(
                f"fjit.device_put: cannot place a traced value ({leaf.aval.str_short()}) on "
                f"{device} inside a transformation; a Program runs on one device. Put its "
                "operands there before calling the transformed function")
        if type(leaf) is not Array:
            leaf = (from_numpy(leaf) if not isinstance(leaf, (bool, int, float))
                    else _from_scalar(leaf))
        target = device
        if target is None:   # data on the host goes to the default device (a GPU under
            if leaf._device is not CPU:   # FJIT_PLATFORM=cuda); a device's arrays stay
                return leaf
            target = default_device()
        if leaf._device == target:
            return leaf
        return Array(target.from_host(leaf._value), leaf.aval, target)

    return tree_map(put, x)


def device_get(x):
    """A pytree of Arrays as NumPy arrays on the host (copied from their devices); other
    leaves are returned as they are."""
    return tree_map(lambda leaf: np.asarray(leaf) if type(leaf) is Array else leaf, x)
