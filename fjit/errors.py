"""fjit's error types, and the helpers that find the user's source line and the fjit function
the user called, for messages.

Every error about the user's input derives from FjitError (so one `except` catches them all)
and from the built-in type JAX raises for that mistake, so code written for JAX keeps working.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class SourceInfo(tuple):
    """(filename, line number, function name) of the user code that made an equation."""

    __slots__ = ()

    def __new__(cls, filename, lineno, function):
        return tuple.__new__(cls, (filename, lineno, function))

    filename = property(lambda self: self[0])
    lineno = property(lambda self: self[1])
    function = property(lambda self: self[2])

    def __str__(self):
        return f"{self[0]}:{self[1]} ({self[2]})"


_state = threading.local()


def current_source_info() -> SourceInfo | None:
    """The user frame calling into fjit right now.

    While a Program is being re-interpreted the equation's own source info is used instead, so
    transformed Programs keep pointing at the user's code.
    """
    override = getattr(_state, "source", None)
    if override is not None:
        return override
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR):
            return SourceInfo(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


def calling_function() -> str:
    """The name of the fjit function the user called (the outermost fjit frame below the
    user's), for messages about arguments that a helper deep inside rejected."""
    name = "fjit"
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        if frame.f_code.co_name not in _WRAPPER_NAMES:
            name = frame.f_code.co_name.lstrip("_") or name
        frame = frame.f_back
    return name


_WRAPPER_NAMES = frozenset({"<lambda>", "op", "ufunc", "apply", "wrapper", "fun", "f"})


class source_info_override:
    """Context manager: equations created inside get `info` as their source."""

    __slots__ = ("info", "saved")

    def __init__(self, info):
        self.info = info

    def __enter__(self):
        self.saved = getattr(_state, "source", None)
        _state.source = self.info

    def __exit__(self, *exc):
        _state.source = self.saved


def where_text(info: SourceInfo | None) -> str:
    return f"\n  (from {info})" if info is not None else ""


def _rebuild(cls, args):
    """Unpickle: the built-in base's __init__, without FjitError's (the line is in args)."""
    error = cls.__new__(cls)
    super(FjitError, error).__init__(*args)
    return error


class FjitError(Exception):
    """Base of every error fjit raises about its user's input, so `except fjit.FjitError`
    catches them all; each also subclasses the built-in type JAX raises (TypeError,
    ValueError, ...), so `except TypeError` keeps working.  The message names the operation
    and its operands, and ends with the user's source line that called it."""

    _append_source = True

    def __init__(self, message: str = ""):
        if self._append_source:
            message = message + where_text(current_source_info())
        super().__init__(message)
        self.args = (message,)  # AxisError's __init__ leaves the constructor's argument

    def __reduce__(self):  # unpickling must not append the source line a second time
        return _rebuild, (type(self), self.args)


class FjitTypeError(FjitError, TypeError):
    """A dtype or shape error (JAX's lax raises TypeError for both)."""


class FjitValueError(FjitError, ValueError):
    """A bad value of an argument (a negative size, an unknown mode, ...)."""


class FjitIndexError(FjitError, IndexError):
    """An index out of range, or too many indices."""


class FjitShapeError(FjitTypeError, FjitValueError):
    """Shapes that do not fit an operation.  JAX raises TypeError for some of these and
    ValueError for others, NumPy ValueError: this is both, so either `except` works."""


class FjitAxisError(FjitError, np.exceptions.AxisError):
    """An axis out of range for the array's rank (NumPy's AxisError: a ValueError, as JAX
    raises, and an IndexError)."""


class FjitIndexTypeError(FjitIndexError, FjitTypeError):
    """An index of the wrong type (JAX: TypeError; NumPy: IndexError)."""


class FjitZeroDivisionError(FjitValueError, ZeroDivisionError):
    """A zero step or count (JAX and NumPy raise ZeroDivisionError for arange's step)."""


class FjitMemoryError(FjitError, MemoryError, RuntimeError):
    """An array larger than this machine's memory: raised before anything is allocated or
    computed, naming the shape, the dtype and the size in bytes (NumPy raises MemoryError;
    JAX a RuntimeError, RESOURCE_EXHAUSTED)."""


class PytreeRecursionError(FjitValueError, RecursionError):
    """A pytree that contains itself (a list appended to itself): it has no leaves to list."""


class PytreeKeyError(FjitValueError, FjitTypeError):
    """A dict in a pytree whose keys cannot be sorted (mixed int and str keys); JAX raises
    ValueError, Python's sort TypeError."""


class ConcretizationTypeError(FjitTypeError):
    """A traced (abstract) value was used where Python needs a concrete one."""

    _append_source = False  # its message says where the problem arose


class TracerArrayConversionError(ConcretizationTypeError):
    """np.asarray() (or __array__) was called on a traced value."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """int()/operator.index() was called on a traced value."""


class TracerBoolConversionError(ConcretizationTypeError):
    """bool() (an `if`, `while`, `and`, `or`) was applied to a traced value."""


class UnexpectedTracerError(FjitError):
    """A tracer was used after the transformation that made it had finished."""

    _append_source = False  # its message names where the tracer was made


class NonConcreteBooleanIndexError(FjitIndexError):
    """Boolean-mask indexing needs concrete masks: its result shape depends on the values."""
