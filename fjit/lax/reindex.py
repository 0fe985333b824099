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
from .. import lax  # the package's functions, looked up when a rule runs (it imports this module)
from ..core import Primitive, ShapedArray, type_error
from ..errors import FjitTypeError
from ..interpreters import ad, batching
from ..interpreters.ad import Zero, is_linear
from ..interpreters.batching import bdim_at_front, moveaxis
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


# --- transformation rules ---------------------------------------------------------------------
#
# reindex and reindex_reduce(add) are each other's transposes: the same index expressions,
# read as a gather one way and as a scatter the other.

def _reindex_jvp(primals, tangents, shape, index, fill, fill_if):
    x, *index_arrays = primals
    out = reindex_p.bind(x, *index_arrays, shape=shape, index=index, fill=fill, fill_if=fill_if)
    zero = 0.0 if dtypes.is_float(x.dtype) else 0
    return out, reindex_p.bind(tangents[0], *index_arrays, shape=shape, index=index, fill=zero,
                               fill_if=fill_if)


def _reindex_transpose(ct, x, *index_arrays, shape, index, fill, fill_if):
    if any(is_linear(a) for a in index_arrays):
        raise FjitTypeError("transpose of reindex: index operands cannot be linear")
    if isinstance(ct, Zero):
        return [None] * (1 + len(index_arrays))
    inverse = _inverse_permutation(x.aval.shape, shape, index, fill_if, index_arrays)
    if inverse is not None:   # a transpose: its transpose is the inverse transpose, a gather
        back = reindex_p.bind(ct, shape=x.aval.shape, index=inverse, fill=0, fill_if=())
        return [back]
    back = reindex_reduce_p.bind(ct, *index_arrays, op="add", shape=x.aval.shape, index=index,
                                 drop_if=fill_if)
    return [back] + [None] * len(index_arrays)


def _inverse_permutation(in_shape, out_shape, index, fill_if, index_arrays):
    """For a reindex that only permutes axes (x's axis k read by output axis p_k), the index
    of the reindex undoing it; else None.  Transposing such a reindex as a scatter-add would
    zero the whole cotangent and add every element into it once."""
    if index_arrays or fill_if or len(index) != len(in_shape) or \
            len(out_shape) != len(in_shape) or not all(isinstance(e, ix.Idx) for e in index):
        return None
    axes = [e.axis for e in index]
    if sorted(axes) != list(range(len(axes))) or \
            any(out_shape[p] != n for p, n in zip(axes, in_shape)):
        return None
    back = [None] * len(axes)
    for k, p in enumerate(axes):
        back[p] = ix.idx(k)
    return tuple(back)


def _scatter_add_transpose(ct, x, *index_arrays, op, shape, index, drop_if):
    if op != "add" or any(is_linear(a) for a in index_arrays):
        raise FjitTypeError(f"transpose of reindex_reduce: only op='add' with non-linear index "
                            f"operands is linear (got op={op!r})")
    if isinstance(ct, Zero):
        return [None] * (1 + len(index_arrays))
    zero = 0.0 if dtypes.is_float(ct.dtype) else 0
    back = reindex_p.bind(ct, *index_arrays, shape=x.aval.shape, index=index, fill=zero,
                          fill_if=drop_if)
    return [back] + [None] * len(index_arrays)


def _reindex_reduce_jvp(primals, tangents, op, shape, index, drop_if):
    """add is linear.  max/min: the tangents of the elements that won each target (averaged
    over ties).  mul: each element's tangent times the product of the others that share its
    target, counted with zeros so no division by zero happens."""
    x, *index_arrays = primals
    t = tangents[0]
    out = reindex_reduce_p.bind(x, *index_arrays, op=op, shape=shape, index=index,
                                drop_if=drop_if)

    def scatter_add(v):
        return reindex_reduce_p.bind(v, *index_arrays, op="add", shape=shape, index=index,
                                     drop_if=drop_if)

    def gather(v, fill=0.0):  # each x position reads its target's value
        return reindex_p.bind(v, *index_arrays, shape=x.shape, index=index, fill=fill,
                              fill_if=drop_if)

    if op == "add":
        return out, scatter_add(t)
    if op in ("max", "min"):
        won = lax.convert_element_type(lax.eq(x, gather(out)), x.dtype)
        counts = scatter_add(won)
        total = scatter_add(lax.mul(t, won))
        return out, lax.div(total, lax.max(counts, 1.0))
    if op == "mul":
        return out, scatter_add(lax.mul(t, _product_of_others(x, gather, scatter_add,
                                                              index_arrays, shape, index,
                                                              drop_if)))
    raise NotImplementedError(f"reindex_reduce with op={op!r} has no derivative")


def _product_of_others(x, gather, scatter_add, index_arrays, shape, index, drop_if):
    """For each element, the product of the other elements scattered to its target, without
    dividing by zero.  The zeros and the non-zeros of a target are multiplied separately (each
    a scatter-multiply, so differentiable again); an element that is itself zero multiplies
    the other zeros: none (1), one (its value: the group's zero-sum minus this one), or more
    (0; exact to first order, which is what second derivatives need)."""

    def scatter_mul(v):
        return reindex_reduce_p.bind(v, *index_arrays, op="mul", shape=shape, index=index,
                                     drop_if=drop_if)

    is_zero = lax.eq(x, 0.0)
    zeros_here = gather(scatter_add(lax.convert_element_type(is_zero, x.dtype)))
    zero_product = gather(scatter_mul(lax.select(is_zero, x, 1.0)), fill=1.0)
    nonzero_product = gather(scatter_mul(lax.select(is_zero, 1.0, x)), fill=1.0)
    zero_sum = gather(scatter_add(lax.select(is_zero, x, 0.0)))
    for_nonzero = lax.div(lax.mul(zero_product, nonzero_product), lax.select(is_zero, 1.0, x))
    other_zeros = lax.select(lax.eq(zeros_here, 1.0), 1.0,
                             lax.select(lax.eq(zeros_here, 2.0), lax.sub(zero_sum, x), 0.0))
    return lax.select(is_zero, lax.mul(other_zeros, nonzero_product), for_nonzero)


def _shift_for_batch(expr, batched_operands):
    """Loop indices move up by one (the batch index is i0); loads from batched index
    operands read their batch row i0."""
    def rewrite(node):
        if isinstance(node, ix.Idx):
            return ix.Idx(node.axis + 1)
        if isinstance(node, ix.Load) and node.operand in batched_operands:
            return ix.Load(node.operand, (ix.Idx(0),) + node.positions)
        return node
    return ix.transform(expr, rewrite)


def _batch_operands(axis_size, values, dims, x_must_batch):
    x, x_dim = values[0], dims[0]
    if x_dim is not None or x_must_batch:
        x = bdim_at_front(x, x_dim, axis_size)
    index_arrays = [a if d is None else moveaxis(a, d, 0) for a, d in zip(values[1:], dims[1:])]
    batched = {k for k, d in enumerate(dims) if d is not None and k > 0}
    return x, x_dim is not None or x_must_batch, index_arrays, batched


def _reindex_batch(axis_size, values, dims, shape, index, fill, fill_if):
    x, x_batched, index_arrays, batched = _batch_operands(axis_size, values, dims, False)
    new_index = tuple(_shift_for_batch(e, batched) for e in index)
    if x_batched:
        new_index = (ix.Idx(0),) + new_index
    out = reindex_p.bind(x, *index_arrays, shape=(axis_size,) + shape, index=new_index,
                         fill=fill, fill_if=tuple(_shift_for_batch(e, batched) for e in fill_if))
    return out, 0


def _reindex_reduce_batch(axis_size, values, dims, op, shape, index, drop_if):
    # The iteration space is x's, so x carries the batch dim even if only indices are batched.
    x, _, index_arrays, batched = _batch_operands(axis_size, values, dims, True)
    new_index = (ix.Idx(0),) + tuple(_shift_for_batch(e, batched) for e in index)
    out = reindex_reduce_p.bind(x, *index_arrays, op=op, shape=(axis_size,) + shape,
                                index=new_index,
                                drop_if=tuple(_shift_for_batch(e, batched) for e in drop_if))
    return out, 0


def _register_rules():
    ad.jvp_rules[reindex_p] = _reindex_jvp
    ad.transpose_rules[reindex_p] = _reindex_transpose
    batching.batching_rules[reindex_p] = _reindex_batch
    ad.jvp_rules[reindex_reduce_p] = _reindex_reduce_jvp
    ad.transpose_rules[reindex_reduce_p] = _scatter_add_transpose
    batching.batching_rules[reindex_reduce_p] = _reindex_reduce_batch


_register_rules()
