"""reindex (gather by index expressions) and reindex_reduce (scatter-reduce).

    y = reindex[shape, index, fill, fill_if] x idx1 idx2 ...
        y[i] = x[index[0](i), ..., index[n-1](i)]   over the output positions i,
        or `fill` where a position is outside x or any `fill_if` expression is non-zero.

    y = reindex_reduce[op, shape, index, drop_if] x idx1 idx2 ...
        y = identity(op) everywhere; then for every position i of x:
        y[index[0](i), ..., index[m-1](i)] op= x[i], unless that is outside y or a `drop_if`
        expression is non-zero.

`index` holds one expression (`fjit.lax.indexexpr`) per dimension of x (reindex) or of y
(reindex_reduce), over the loop indices of the iteration space (y for reindex, x for
reindex_reduce).  Integer operands after x are index arrays the expressions `Load` from:
that is how a reindex becomes a gather and a reindex_reduce a scatter.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, ShapedArray, type_error
from . import indexexpr as ix
from .reduce import MONOIDS

MONOID_OF_OP = {m.name: m for m in MONOIDS.values()}  # add, mul, max, min, and, or


def check_expressions(opname, exprs, space_rank, operand_avals, avals):
    """Every expression uses loop indices of the space and loads valid index operands."""
    for expr in exprs:
        if not isinstance(expr, ix.Expr):
            raise type_error(opname, f"index expressions must be fjit.lax.indexexpr.Expr, "
                             f"got {expr!r}", *avals)
        for axis in ix.indices_used(expr):
            if axis >= space_rank:
                raise type_error(opname, f"expression {expr} uses i{axis}, but the iteration "
                                 f"space has rank {space_rank}", *avals)
        for load in ix.loads_used(expr):
            k = load.operand
            if not 1 <= k < len(operand_avals):
                raise type_error(opname, f"expression {expr} loads operand ${k}, which does "
                                 "not exist", *avals)
            if len(load.positions) != operand_avals[k].ndim:
                raise type_error(opname, f"expression {expr} loads ${k} with "
                                 f"{len(load.positions)} positions, it has rank "
                                 f"{operand_avals[k].ndim}", *avals)


def _check_index_operands(opname, avals):
    for k, aval in enumerate(avals[1:], start=1):
        if not dtypes.is_int(aval.dtype):
            raise type_error(opname, f"index operand ${k} must have an integer dtype, got "
                             f"{aval.dtype.name}", *avals)


def check_fill(opname, fill, dtype, avals):
    if not isinstance(fill, (bool, int, float)):
        raise type_error(opname, f"fill must be a Python scalar, got {fill!r}", *avals)
    if dtypes.is_int(dtype):
        info = np.iinfo(dtype)
        if isinstance(fill, float) and not fill.is_integer() or not info.min <= fill <= info.max:
            raise type_error(opname, f"fill {fill!r} does not fit dtype {dtype.name}", *avals)


def _positions(exprs, shape, operands):
    return [ix.evaluate(e, shape, operands) for e in exprs]


def _in_bounds(positions, bounds, conds, shape, operands):
    valid = np.ones(shape, dtype=bool)
    for pos, n in zip(positions, bounds):
        valid &= (pos >= 0) & (pos < n)
    for cond in conds:
        valid &= ix.evaluate(cond, shape, operands) == 0
    return valid


def _compute(x):
    if dtypes.bfloat16 is not None and x.dtype == dtypes.bfloat16:
        return x.astype(np.float32)
    return x


class Reindex(Primitive):
    def __init__(self):
        super().__init__("reindex", "reindex")

    def abstract_eval(self, x, *index_avals, shape, index, fill, fill_if):
        avals = (x,) + index_avals
        if not isinstance(shape, tuple) or any(not isinstance(d, int) or d < 0 for d in shape):
            raise type_error(self.name, f"shape must be a tuple of non-negative ints, got "
                             f"{shape!r}", *avals)
        if len(index) != x.ndim:
            raise type_error(self.name, f"needs one index expression per operand dim "
                             f"({x.ndim}), got {len(index)}", *avals)
        _check_index_operands(self.name, avals)
        check_expressions(self.name, tuple(index) + tuple(fill_if), len(shape), avals, avals)
        check_fill(self.name, fill, x.dtype, avals)
        return ShapedArray(shape, x.dtype, x.weak_type)

    def impl(self, x, *index_arrays, shape, index, fill, fill_if):
        operands = (x,) + index_arrays
        if 0 in shape:
            return np.zeros(shape, x.dtype)
        positions = _positions(index, shape, operands)
        valid = _in_bounds(positions, x.shape, fill_if, shape, operands)
        fill_value = np.asarray(fill).astype(x.dtype)
        if x.size == 0:
            return np.full(shape, fill_value, x.dtype)
        clipped = tuple(np.clip(p, 0, n - 1) for p, n in zip(positions, x.shape))
        gathered = x[clipped] if x.ndim else np.broadcast_to(x, shape)
        return np.where(valid, gathered, fill_value).astype(x.dtype)

    def format_params(self, params):
        return {k: v for k, v in params.items() if not (k == "fill_if" and not v)}


class ReindexReduce(Primitive):
    def __init__(self):
        super().__init__("reindex_reduce", "reindex_reduce")

    def abstract_eval(self, x, *index_avals, op, shape, index, drop_if):
        avals = (x,) + index_avals
        if op not in MONOID_OF_OP:
            raise type_error(self.name, f"op must be one of {sorted(MONOID_OF_OP)}, got {op!r}",
                             *avals)
        if dtypes.kind_name(x.dtype) not in MONOID_OF_OP[op].kinds:
            raise type_error(self.name, f"op {op} does not accept dtype {x.dtype.name}", *avals)
        if not isinstance(shape, tuple) or any(not isinstance(d, int) or d < 0 for d in shape):
            raise type_error(self.name, f"shape must be a tuple of non-negative ints, got "
                             f"{shape!r}", *avals)
        if len(index) != len(shape):
            raise type_error(self.name, f"needs one index expression per output dim "
                             f"({len(shape)}), got {len(index)}", *avals)
        _check_index_operands(self.name, avals)
        check_expressions(self.name, tuple(index) + tuple(drop_if), x.ndim, avals, avals)
        return ShapedArray(shape, x.dtype, x.weak_type)

    def impl(self, x, *index_arrays, op, shape, index, drop_if):
        monoid = MONOID_OF_OP[op]
        value = _compute(x)
        identity = np.asarray(monoid.identity(x.dtype)).astype(value.dtype)
        out = np.full(int(np.prod(shape, dtype=np.int64)), identity, value.dtype)
        if x.size and out.size:
            operands = (x,) + index_arrays
            positions = _positions(index, x.shape, operands)
            valid = _in_bounds(positions, shape, drop_if, x.shape, operands)
            targets = np.ravel_multi_index(tuple(p[valid] for p in positions), shape) \
                if shape else np.zeros(int(valid.sum()), np.int64)
            with np.errstate(all="ignore"):
                monoid.numpy.at(out, targets, value[valid])
        return out.reshape(shape).astype(x.dtype)

    def format_params(self, params):
        return {k: v for k, v in params.items() if not (k == "drop_if" and not v)}


reindex_p = Reindex()
reindex_reduce_p = ReindexReduce()
