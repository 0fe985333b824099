"""Executables shared between equal Programs built by separate traces.

Eager control flow (a scan, while_loop or cond called outside jit) traces its body on every
call -- the body may read globals or closed-over arrays that changed since, so the trace is
never reused -- and each trace is a new Program.  Compiling each of them again cost ~0.5 ms
per call.  Instead, `shared(program)` returns the first Program seen that computes the same
thing, whose executables are already built: same structure, types, literals and params, and
constants with the same bytes.  Only the trace is repeated, never a compile.

Programs with a param that is not plain data (a Python callable, say) are not shared.
The table is guarded by a lock: eager loops run in several threads at once, and a lookup
racing an eviction raised KeyError.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from ..core import Literal, Program, ShapedArray, Var
from ..lax import indexexpr as ix

MAX_SHARED = 256   # Programs kept (least recently used first out)

_shared: OrderedDict = OrderedDict()
_lock = threading.Lock()


class NotData(Exception):
    """A param this module cannot compare by value."""


def shared(program: Program) -> Program:
    """A Program equal to `program` that was seen before (with its executables), or
    `program` itself, remembered from now on."""
    try:
        key = fingerprint(program)
    except NotData:
        return program
    with _lock:
        found = _shared.get(key)
        if found is not None:
            _shared.move_to_end(key)
            return found
        _shared[key] = program
        while len(_shared) > MAX_SHARED:
            _shared.popitem(last=False)
        return program


def fingerprint(program: Program) -> tuple:
    """A hashable value equal for Programs that compute the same thing (variables numbered
    in order of appearance).  Raises NotData for params that are not plain data."""
    number = {}

    def var(v):
        if v not in number:
            number[v] = len(number)
        return number[v]

    def atom(a):
        if isinstance(a, Literal):
            return ("lit", _aval(a.aval), _value(a.value))
        return ("var", var(a))

    invars = tuple((var(v), _aval(v.aval)) for v in program.invars)
    consts = tuple((var(v), _aval(v.aval), _array(np.asarray(c)))
                   for v, c in zip(program.constvars, program.consts))
    eqns = tuple((e.primitive, tuple(atom(a) for a in e.invars),
                  params_key(e.params),
                  tuple((var(v), _aval(v.aval)) for v in e.outvars)) for e in program.eqns)
    return invars, consts, eqns, tuple(atom(a) for a in program.outvars)


def params_key(params: dict) -> tuple:
    """A hashable value telling `params` apart as data (1, 1.0 and True differ, so do -0.0
    and 0.0); raises NotData for params that are not plain data."""
    return tuple(sorted((k, _value(p)) for k, p in params.items()))


def _aval(aval: ShapedArray):
    return aval.shape, aval.dtype, aval.weak_type


def _array(a: np.ndarray):
    data = np.ascontiguousarray(a)
    return a.dtype, a.shape, hashlib.blake2b(data.view(np.uint8).reshape(-1),
                                                 digest_size=16).digest()


def _value(p):
    """A param (or literal) as comparable data: Python type included, so 1, 1.0 and True
    differ; floats by their bits, so -0.0 and NaN compare as themselves."""
    if isinstance(p, Program):
        return ("program", fingerprint(p))
    if p is None or isinstance(p, (bool, int, str)):
        return (type(p).__name__, p)
    if isinstance(p, float):
        return ("float", np.float64(p).tobytes())
    if isinstance(p, np.dtype):
        return ("dtype", p)
    if isinstance(p, (np.generic, np.ndarray)):
        return ("array", _array(np.asarray(p)))
    if isinstance(p, ix.Expr):
        return ("index", p)
    if isinstance(p, (tuple, list)):
        return (type(p).__name__, tuple(_value(v) for v in p))
    if isinstance(p, Var):
        raise NotData(p)
    raise NotData(type(p).__name__)
