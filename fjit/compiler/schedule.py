"""Scheduling: a kernel becomes a loop nest and a body of statements, then loop passes run.

A MapKernel's body is its stores' expression DAG in SSA form: each node once (common
subexpressions shared), reductions as inner loops with an accumulator.  The passes, each a
small function over the schedule that can be switched off (`options`):

  reorder      a reduction over a strided axis is turned inside out: accumulate into the
               output along the unit-stride axis instead of striding through memory
  parallelize  the outermost loop runs on OpenMP threads when the work is large
  vectorize    the innermost loop gets `omp simd` (and reductions `simd reduction`)
  unroll       short constant-extent reduction loops are unrolled fully
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lax import indexexpr as ix
from . import scalar
from .fusion import GemmKernel, MapKernel, ScatterKernel

PARALLEL_MIN_WORK = 1 << 15     # elements x body cost below which threads cost more
UNROLL_MAX = 8


@dataclass
class Options:
    """Which loop passes run (all on by default); FJIT_PASSES=-vectorize,-parallelize
    switches some off."""
    reorder: bool = True
    parallelize: bool = True
    vectorize: bool = True
    unroll: bool = True

    @classmethod
    def from_string(cls, text: str | None):
        options = cls()
        for item in (text or "").split(","):
            item = item.strip()
            if item.startswith("-") and hasattr(options, item[1:]):
                setattr(options, item[1:], False)
        return options


@dataclass
class Loop:
    axis: int
    extent: int
    parallel: bool = False
    simd: bool = False


@dataclass
class Let:
    name: str
    node: scalar.SExpr
    args: list            # names of the operands


@dataclass
class ReduceStmt:
    name: str             # the accumulator, holding the result after the loops
    node: scalar.SExpr
    loops: list           # Loop per reduction axis
    body: list
    value: str            # the body's value, combined into the accumulator
    index: str = ""       # argreduce: the running index of the best value


@dataclass
class Store:
    buffer: int
    index: ix.Expr        # flat element index
    value: str


@dataclass
class Accumulate:
    """out[index] = out[index] <monoid> value (the reordered reduction and scatters)."""
    buffer: int
    index: ix.Expr
    monoid: str
    value: str
    guard: ix.Expr | None = None


@dataclass
class Fill:
    buffer: int
    size: int
    value: object
    dtype: np.dtype


@dataclass
class LoopNest:
    loops: list
    body: list
    prologue: list = field(default_factory=list)   # statements before the loops (fills)


@dataclass
class ScheduledKernel:
    name: str
    kind: str             # "loops" or "gemm"
    nests: list = field(default_factory=list)
    gemm: GemmKernel | None = None
    buffers: list = field(default_factory=list)    # buffer ids it touches
    work: int = 0
    comment: str = ""


def flat_index(shape, axes=None) -> ix.Expr:
    """Row-major linear index of loop indices `axes` (default 0..n-1) over `shape`."""
    axes = list(range(len(shape))) if axes is None else axes
    expr, stride = ix.ZERO, 1
    for axis, n in reversed(list(zip(axes, shape))):
        if n != 1:
            expr = expr + ix.idx(axis) * stride
        stride *= n
    return expr


class _Emitter:
    """SSA statements for expression DAGs; names are shared across a block and its inner
    blocks, never from an inner block out."""

    def __init__(self, counter):
        self.counter = counter

    def fresh(self, prefix="t"):
        self.counter[0] += 1
        return f"{prefix}{self.counter[0]}"

    def emit(self, node, stmts, names, unroll):
        if node in names:
            return names[node]
        if node.kind in ("reduce", "argreduce"):
            inner_names = dict(names)
            body = []
            value = self.emit(node.args[0], body, inner_names, unroll)
            if node.kind == "reduce":
                loops = [Loop(a, n) for a, n in node.data[1]]
            else:
                loops = [Loop(node.data[1], node.data[2])]
            name = self.fresh("acc")
            stmt = ReduceStmt(name, node, loops, body, value)
            if node.kind == "argreduce":
                stmt.index = self.fresh("arg")
            stmts.append(stmt)
            names[node] = stmt.index if node.kind == "argreduce" else name
            return names[node]
        args = [self.emit(a, stmts, names, unroll) for a in node.args]
        name = self.fresh()
        stmts.append(Let(name, node, args))
        names[node] = name
        return name


def schedule_kernel(kernel, name, plan, options: Options) -> ScheduledKernel:
    if isinstance(kernel, GemmKernel):
        return ScheduledKernel(name, "gemm", gemm=kernel,
                               buffers=[kernel.a, kernel.b, kernel.c],
                               work=kernel.batch * kernel.m * kernel.n * kernel.k)
    counter = [0]
    emitter = _Emitter(counter)
    shape = kernel.shape
    size = int(np.prod(shape, dtype=np.int64))
    if isinstance(kernel, ScatterKernel):
        return _schedule_scatter(kernel, name, plan, emitter, shape, size, options)

    if options.reorder:
        reordered = _reordered_reduction(kernel, name, plan, emitter, options)
        if reordered is not None:
            return reordered
    body, names = [], {}
    for buffer, expr in kernel.stores:
        value = emitter.emit(expr, body, names, options.unroll)
        body.append(Store(buffer, flat_index(shape), value))
    loops = [Loop(k, n) for k, n in enumerate(shape)]
    cost = max(sum(scalar.cost(e) for _, e in kernel.stores), 1)
    _mark(loops, body, size * min(cost, 1 << 10), options)
    buffers = sorted({b for b, _ in kernel.stores} | _loaded(kernel.stores))
    return ScheduledKernel(name, "loops", [LoopNest(loops, body)], buffers=buffers,
                           work=size * min(cost, 1 << 10))


def _loaded(stores):
    out = set()
    for _, expr in stores:
        for node in scalar.walk(expr):
            if node.kind == "load":
                out.add(node.data[0])
                for e in node.data[1]:
                    out.update(load.operand for load in ix.loads_used(e))
            if node.kind in ("iota", "guard"):
                out.update(load.operand for load in ix.loads_used(node.data))
    return out


def _mark(loops, body, work, options):
    """parallelize the outermost loop, vectorize the innermost, unroll short reductions."""
    if loops and options.parallelize and work >= PARALLEL_MIN_WORK and loops[0].extent > 1:
        loops[0].parallel = True
    if loops and options.vectorize and loops[-1].extent > 1:
        loops[-1].simd = True
    for stmt in _all_reduces(body):
        if options.vectorize and stmt.loops and stmt.node.kind == "reduce" \
                and stmt.node.data[0] in ("sum", "prod", "max", "min", "and", "or"):
            stmt.loops[-1].simd = True


def _all_reduces(body):
    for stmt in body:
        if isinstance(stmt, ReduceStmt):
            yield stmt
            yield from _all_reduces(stmt.body)


def _reordered_reduction(kernel, name, plan, emitter, options):
    """A single store of a sum/max/min/prod over axes that are strided in memory, while the
    kernel's own innermost index is unit-stride: loop over the reduced axes outside and
    accumulate into the output, so the inner loop walks memory contiguously."""
    if len(kernel.stores) != 1 or not kernel.shape:
        return None
    buffer, expr = kernel.stores[0]
    if expr.kind != "reduce" or expr.data[0] not in ("sum", "prod", "max", "min"):
        return None
    inner = len(kernel.shape) - 1
    red_axes = [a for a, _ in expr.data[1]]
    if not red_axes:
        return None
    loads = [n for n in scalar.walk(expr.args[0]) if n.kind == "load"]
    if not loads:
        return None

    def stride_of(load, axis):
        buf = plan.buffers[load.data[0]]
        coeff = 0
        stride = 1
        for e, n in reversed(list(zip(load.data[1], buf.shape))):
            c = _coefficient(e, axis)
            if c is None:
                return None
            coeff += c * stride
            stride *= n
        return coeff

    unit_inner = all(stride_of(ld, inner) in (0, 1) for ld in loads)
    red_strided = any(abs(stride_of(ld, red_axes[-1]) or 0) > 1 for ld in loads)
    if not (unit_inner and red_strided and kernel.shape[inner] > 1):
        return None
    monoid = expr.data[0]
    from ..lax.reduce import MONOIDS
    out_buf = plan.buffers[buffer]
    identity = MONOIDS[monoid].identity(out_buf.dtype)
    body, names = [], {}
    value = emitter.emit(expr.args[0], body, names, options.unroll)
    body.append(Accumulate(buffer, flat_index(kernel.shape), monoid, value))
    outer = [Loop(k, n) for k, n in enumerate(kernel.shape[:-1])]
    loops = outer + [Loop(a, n) for a, n in expr.data[1]] + [Loop(inner, kernel.shape[inner])]
    size = int(np.prod(kernel.shape, dtype=np.int64)) * int(
        np.prod([n for _, n in expr.data[1]], dtype=np.int64))
    if options.vectorize:
        loops[-1].simd = True
    if options.parallelize and outer and size >= PARALLEL_MIN_WORK and outer[0].extent > 1:
        outer[0].parallel = True
    nest = LoopNest(loops, body, prologue=[Fill(buffer, out_buf.size, identity,
                                                out_buf.dtype)])
    return ScheduledKernel(name, "loops", [nest],
                           buffers=sorted({buffer} | _loaded(kernel.stores)), work=size)


def _coefficient(expr, axis):
    """d expr / d i_axis if expr is affine in that index (None otherwise)."""
    if axis not in ix.indices_used(expr):
        return 0
    if isinstance(expr, ix.Idx):
        return 1
    if isinstance(expr, ix.BinOp):
        if expr.op in ("add", "sub"):
            a, b = _coefficient(expr.a, axis), _coefficient(expr.b, axis)
            if a is None or b is None:
                return None
            return a + b if expr.op == "add" else a - b
        if expr.op == "mul" and isinstance(expr.b, ix.Const):
            a = _coefficient(expr.a, axis)
            return None if a is None else a * expr.b.value
    return None


def _schedule_scatter(kernel, name, plan, emitter, shape, size, options):
    from ..lax.reduce import MONOIDS
    out_buf = plan.buffers[kernel.out]
    identity = MONOIDS[kernel.monoid].identity(out_buf.dtype)
    body, names = [], {}
    value = emitter.emit(kernel.value, body, names, options.unroll)
    bad = list(kernel.conds)
    for t, n in zip(kernel.targets, out_buf.shape):
        bad.append(ix.logical_or(ix.lt(t, 0), ix.ge(t, n)))
    guard = None
    if bad:
        guard = bad[0]
        for c in bad[1:]:
            guard = ix.logical_or(guard, c)
        guard = ix.eq(guard, 0)
    target = ix.ZERO
    stride = 1
    for t, n in reversed(list(zip(kernel.targets, out_buf.shape))):
        target = target + t * stride
        stride *= n
    body.append(Accumulate(kernel.out, target, kernel.monoid, value, guard))
    loops = [Loop(k, n) for k, n in enumerate(shape)]  # serial: targets may collide
    nest = LoopNest(loops, body, prologue=[Fill(kernel.out, out_buf.size, identity,
                                                out_buf.dtype)])
    buffers = sorted({kernel.out} | _loaded([(kernel.out, kernel.value)]) |
                     {load.operand for t in kernel.targets for load in ix.loads_used(t)})
    return ScheduledKernel(name, "loops", [nest], buffers=buffers, work=size)
