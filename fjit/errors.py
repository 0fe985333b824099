"""fjit's error types, and the helper that finds the user's source line for a message."""
from __future__ import annotations

import os
import sys
import threading

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


class FjitTypeError(TypeError):
    """A shape or dtype error from an operation; the message names the op and its operands,
    and ends with the user's source line that called it."""

    def __init__(self, message: str):
        super().__init__(message + where_text(current_source_info()))


class ConcretizationTypeError(TypeError):
    """A traced (abstract) value was used where Python needs a concrete one."""


class TracerArrayConversionError(ConcretizationTypeError):
    """np.asarray() (or __array__) was called on a traced value."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """int()/operator.index() was called on a traced value."""


class TracerBoolConversionError(ConcretizationTypeError):
    """bool() (an `if`, `while`, `and`, `or`) was applied to a traced value."""


class UnexpectedTracerError(Exception):
    """A tracer was used after the transformation that made it had finished."""


class NonConcreteBooleanIndexError(IndexError):
    """Boolean-mask indexing needs concrete masks: its result shape depends on the values."""
