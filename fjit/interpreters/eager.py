"""The bottom of every trace stack: evaluate primitives right away on concrete arrays."""
from __future__ import annotations

import numpy as np

from ..array import Array, concrete_operand
from ..config import config
from ..core import Program, Trace, Tracer, escaped_tracer_error
from ..runtime.memory import check_fits_in_memory


class EvalTrace(Trace):
    """Runs each primitive's NumPy reference implementation (or, for jit, the backend)."""

    def __init__(self):
        super().__init__(None)

    def describe(self):
        return "in eager evaluation"

    def process_primitive(self, primitive, args, params):
        values, avals = [], []
        for x in args:
            if type(x) is not Array:
                if isinstance(x, Tracer):
                    raise escaped_tracer_error(x)
                x = concrete_operand(x, primitive.name)
            values.append(x._value)
            avals.append(x.aval)
        out_avals = _abstract_eval(primitive, avals, params)
        with np.errstate(all="ignore"):  # like XLA: inf/nan results, no warnings
            outs = primitive.impl(*values, **params)
        if primitive.multiple_results:
            return [_wrap(primitive, o, a) for o, a in zip(outs, out_avals)]
        return _wrap(primitive, outs, out_avals)


_avals_cache: dict = {}


def _abstract_eval(primitive, avals, params):
    """primitive.abstract_eval, memoized on (primitive, operand types, params): an eager
    op on the same types (a loop in user code) skips the shape and dtype rules.  Params
    are hashable by construction; errors are never cached.  Not for higher-order
    primitives: eager control flow traces a new sub-Program per call, so their entries
    would never hit and would keep thousands of dead Programs alive (slow garbage
    collections)."""
    if any(isinstance(v, Program) or (type(v) is tuple and v and isinstance(v[0], Program))
           for v in params.values()):
        return primitive.abstract_eval(*avals, **params)
    try:
        key = (primitive, tuple(avals), tuple(params.items()), config.enable_x64)
        out = _avals_cache.get(key)
    except TypeError:   # an unhashable param: no memo
        return primitive.abstract_eval(*avals, **params)
    if out is None:
        out = primitive.abstract_eval(*avals, **params)
        for aval in (out if isinstance(out, (list, tuple)) else (out,)):
            # before NumPy starts filling it (a result it can allocate, overcommitted)
            check_fits_in_memory(aval.shape, aval.dtype, primitive.name)
        if len(_avals_cache) > 4096:
            _avals_cache.clear()
        _avals_cache[key] = out
    return out


def _wrap(primitive, value, aval) -> Array:
    if type(value) is not np.ndarray:
        value = np.asarray(value)
    if value.shape != aval.shape or value.dtype != aval.dtype:
        raise AssertionError(  # a bug in fjit, never the user's fault
            f"internal error: {primitive.name} produced {value.dtype}{list(value.shape)}, "
            f"its abstract evaluation said {aval.str_short()}")
    return Array(value, aval)
