"""vmap: a BatchTrace carries (value, batch dimension) pairs through primitives.

`batching_rules[primitive](axis_size, values, dims, **params) -> (out, out_dim)` (lists for
multiple results); `dims[i]` is the batch dimension of `values[i]`, or None if that operand
is the same for every batch element.  Each primitive family registers one rule.
"""
from __future__ import annotations

from ..array import aval_of, concrete_operand
from ..core import (Program, ShapedArray, Trace, Tracer, current_trace, eval_program,
                    set_current_trace)
from . import array_ops
from .ad import _Named
from .partial_eval import DebugInfo, param_program, trace_to_program

batching_rules: dict = {}


class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim")

    def __init__(self, trace, val, batch_dim):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim

    @property
    def aval(self):
        aval = aval_of(self.val)
        shape = aval.shape[:self.batch_dim] + aval.shape[self.batch_dim + 1:]
        return ShapedArray(shape, aval.dtype, aval.weak_type)


class BatchTrace(Trace):
    def __init__(self, parent, axis_size: int):
        super().__init__(parent)
        self.axis_size = axis_size

    def describe(self):
        return "inside vmap"

    def lift(self, x):
        if isinstance(x, BatchTracer) and x._trace is self:
            return x.val, x.batch_dim
        if isinstance(x, Tracer):
            self.check_foreign_tracer(x)
        else:
            x = concrete_operand(x)  # rules see arrays, never Python scalars
        return x, None

    def wrap(self, val, dim):
        return val if dim is None else BatchTracer(self, val, dim)

    def process_primitive(self, primitive, args, params):
        vals, dims = zip(*(self.lift(x) for x in args)) if args else ((), ())
        with set_current_trace(self.parent):
            if all(d is None for d in dims):
                return primitive.bind(*vals, **params)
            rule = batching_rules.get(primitive)
            if rule is None:
                raise NotImplementedError(
                    f"batching rule for '{primitive.name}' is not implemented")
            out, out_dim = rule(self.axis_size, list(vals), list(dims), **params)
        if primitive.multiple_results:
            return [self.wrap(o, d) for o, d in zip(out, out_dim)]
        return self.wrap(out, out_dim)


# --- helpers for rules ------------------------------------------------------------------------

def moveaxis(x, src: int, dst: int):
    """x with axis `src` moved to position `dst`."""
    if src == dst:
        return x
    perm = list(range(aval_of(x).ndim))
    perm.insert(dst, perm.pop(src))
    return array_ops.transpose(x, perm)


def bdim_at_front(x, dim, size: int):
    """x with its batch dimension first; unbatched operands are broadcast along it."""
    if dim is None:
        aval = aval_of(x)
        return array_ops.broadcast_in_dim(x, (size,) + aval.shape, range(1, aval.ndim + 1))
    return moveaxis(x, dim, 0)


def move_batch_dim(x, dim, out_dim, size: int):
    """Put the batch dimension of x at `out_dim` (None: x must not be batched)."""
    if out_dim is None:
        if dim is not None:
            raise ValueError("vmap: out_axes=None, but the output depends on the mapped axis")
        return x
    if dim is None:
        x = bdim_at_front(x, None, size)
        dim = 0
    return moveaxis(x, dim, out_dim)


# --- entry points -----------------------------------------------------------------------------

def batch_flat(fun, args, in_dims, axis_size):
    """Run `fun(*flat)` with args[i] mapped over axis in_dims[i] (None: not mapped).
    Returns (flat outputs, their batch dims)."""
    trace = BatchTrace(current_trace(), axis_size)
    try:
        with set_current_trace(trace):
            # Unmapped arguments pass through as they are (functions, shapes, ...).
            outs = fun(*[trace.wrap(a if d is None or isinstance(a, Tracer)
                                    else concrete_operand(a), d)
                         for a, d in zip(args, in_dims)])
        pairs = [trace.lift(o) for o in outs]
    finally:
        trace.alive = False
    return [v for v, _ in pairs], [d for _, d in pairs]


def batch_program(program: Program, in_dims, axis_size: int, all_out_at_zero=False):
    """The batched version of a closed Program: (Program, out_dims).  With all_out_at_zero
    every output is batched along axis 0.  Cached on the Program."""
    key = ("batch", tuple(in_dims), axis_size, all_out_at_zero)
    return program.cached(key, lambda: _batch_program(program, in_dims, axis_size,
                                                      all_out_at_zero))


def _batch_program(program: Program, in_dims, axis_size: int, all_out_at_zero=False):

    out_dims = []

    def fun(*args):
        outs, dims = batch_flat(lambda *xs: eval_program(program, *xs), list(args), in_dims,
                                axis_size)
        if all_out_at_zero:
            outs = [move_batch_dim(o, d, 0, axis_size) for o, d in zip(outs, dims)]
            dims = [0] * len(outs)
        out_dims.extend(dims)
        return outs

    new_program, _ = trace_to_program(fun, batched_avals(program, in_dims, axis_size),
                                      DebugInfo("vmap", _Named(program.name or "program")))
    closed = param_program(new_program)
    return closed, out_dims


def batched_avals(program: Program, in_dims, axis_size: int):
    """The types of `program`'s invars with a batch axis of `axis_size` inserted at each
    in_dim (None: unbatched)."""
    return [v.aval if d is None else
            v.aval.update(shape=v.aval.shape[:d] + (axis_size,) + v.aval.shape[d:])
            for v, d in zip(program.invars, in_dims)]
