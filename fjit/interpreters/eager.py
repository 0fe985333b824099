"""The bottom of every trace stack: evaluate primitives right away on concrete arrays."""
from __future__ import annotations

import numpy as np

from ..array import Array, concrete_operand
from ..core import Trace, Tracer, escaped_tracer_error


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
        out_avals = primitive.abstract_eval(*avals, **params)
        with np.errstate(all="ignore"):  # like XLA: inf/nan results, no warnings
            outs = primitive.impl(*values, **params)
        if primitive.multiple_results:
            return [_wrap(primitive, o, a) for o, a in zip(outs, out_avals)]
        return _wrap(primitive, outs, out_avals)


def _wrap(primitive, value, aval) -> Array:
    if type(value) is not np.ndarray:
        value = np.asarray(value)
    if value.shape != aval.shape or value.dtype != aval.dtype:
        raise AssertionError(  # a bug in fjit, never the user's fault
            f"internal error: {primitive.name} produced {value.dtype}{list(value.shape)}, "
            f"its abstract evaluation said {aval.str_short()}")
    return Array(value, aval)
