"""Scheduling: a kernel becomes a loop nest with statements at each loop level, then loop
passes run.

A kernel's expressions become SSA statements (each node once: common subexpressions are
shared), each placed at the outermost loop level where all the loop indices it reads are
bound: constants before all loops, a row's max next to the row loop, so invariant work is
hoisted out of inner loops.  Reductions become inner loops with an accumulator.  Loop passes,
each small and each possible to switch off (FJIT_PASSES=-vectorize,-parallelize, ...):

  reorder      a reduction over an axis that is strided in memory is turned inside out:
               accumulate into the output along the unit-stride axis
  tile         a map that reads some operand transposed (unit stride along an outer axis,
               strided along the innermost) walks both axes in tile x tile blocks, so each
               cache line read is used `tile` times while it is still in cache
  parallelize  the outermost loop runs on OpenMP threads when the work is large
  vectorize    the innermost loop gets `omp simd` (reductions `simd reduction`)
  unroll       reduction loops of at most `unroll_max` iterations (3x3 windows, small
               contractions) are unrolled completely instead, innermost first, while the
               unrolled body stays within `unroll_budget` statements
  fuse_rows    consecutive kernels sharing their outer loops, reading each other's results
               only at the same outer index, run in one outer loop (softmax, layer norm:
               one pass per row while the row is in cache)
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..config import PASSES, parse_passes
from ..lax import indexexpr as ix
from ..lax.reduce import MONOIDS
from . import ranges, scalar
from .dynamic import at_least, is_dynamic, same_size
from .fusion import PEELED_MAX, GemmKernel, ScatterKernel

_ROUNDED_STORAGE = {d for d in (dtypes.float16, dtypes.bfloat16) if d is not None}


@dataclass
class Options:
    reorder: bool = True
    tile: bool = True
    parallelize: bool = True
    vectorize: bool = True
    unroll: bool = True
    fuse_rows: bool = True

    @classmethod
    def from_string(cls, text: str | None):
        """Options with the passes named '-pass' in a comma-separated `text` turned off."""
        options = cls()
        for name in parse_passes(text):
            setattr(options, name, False)
        return options


@dataclass
class Loop:
    """for i<axis> in range(extent); split by the tile pass into a loop over blocks
    (block=size: its variable steps through block starts) and a loop within one block
    (tile=size: i<axis> runs from the block's start for at most `size` steps)."""
    axis: int
    extent: int
    parallel: bool = False   # its iterations may run on threads
    simd: bool = False
    unroll: bool = False
    block: int = 0
    tile: int = 0
    threads: bool = False    # parallel, with work enough that threads pay: a target decides
    # this per call where it can (the C target does), so code is shared across sizes


@dataclass
class Let:
    name: str
    node: scalar.SExpr
    args: list            # names of the operands


@dataclass
class ReduceStmt:
    name: str             # the accumulator (argreduce: the best value so far)
    node: scalar.SExpr
    loops: list           # Loop per reduction axis
    body: list
    value: str            # the body's value, combined into the accumulator
    index: str = ""       # argreduce: the position of the best value


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
class PackStore:
    """A GEMM's B producer (fusion._b_producers) puts its value into the packed panel."""
    value: str


@dataclass
class Fill:
    buffer: int
    size: int
    value: object
    dtype: np.dtype


@dataclass
class SubNest:
    """Loops with statements at each level: levels[0] runs before the loops, levels[d + 1]
    inside loop d (before loop d + 1)."""
    loops: list
    levels: list


@dataclass
class LoopNest(SubNest):
    prologue: list = field(default_factory=list)   # identity fills before everything


@dataclass
class ScheduledKernel:
    name: str
    kind: str             # "loops", "gemm", or "scan"/"while"/"cond" (control.py)
    nests: list = field(default_factory=list)
    gemm: GemmKernel | None = None
    control: object = None                         # the control.*Kernel
    parts: list = field(default_factory=list)      # its sub-Programs' ScheduledKernels
    buffers: list = field(default_factory=list)    # buffer ids it touches
    work: int = 0
    comment: str = ""
    members: list = field(default_factory=list)    # the plan's kernels it computes
    source: object = None   # the user's line of its first equation that has one (errors)

    @property
    def body(self):
        """Every scheduled kernel of its sub-Programs, in order."""
        return [sk for part in self.parts for sk in part]


def first_source(eqns):
    """The source_info of the first equation that has one (the user's line), or None."""
    return next((e.source_info for e in eqns if getattr(e, "source_info", None) is not None),
                None)


def flat_index(shape, axes=None) -> ix.Expr:
    """Row-major linear index of loop indices `axes` (default 0..n-1) over `shape`."""
    axes = list(range(len(shape))) if axes is None else axes
    expr, stride = ix.ZERO, 1
    for axis, n in reversed(list(zip(axes, shape))):
        if n != 1:
            expr = expr + ix.idx(axis) * stride
        stride *= n
    return expr


# --- emitting statements at the right loop level ----------------------------------------------

class _Scope:
    def __init__(self, axes):
        self.axes = frozenset(axes)
        self.stmts = []


class Emitter:
    """SSA statements for expression DAGs, each placed at the outermost scope binding all the
    loop indices it reads.  Names are unique in the whole Program (row fusion merges
    kernels' scopes)."""

    def __init__(self, counter):
        self.counter = counter
        self.names = {}
        self._axes = {}

    def fresh(self, prefix="t"):
        return f"{prefix}{next(self.counter)}"

    def axes_of(self, node) -> frozenset:
        found = self._axes.get(node)
        if found is None:
            axes = set()
            if node.kind == "load":
                for e in node.data[1] + node.data[2:]:   # index, and the condition if any
                    axes |= ix.indices_used(e)
            elif node.kind in ("iota", "guard"):
                axes |= ix.indices_used(node.data)
            for a in node.args:
                axes |= self.axes_of(a)
            if node.kind == "reduce":
                axes -= {a for a, _ in node.data[1]}
            elif node.kind == "argreduce":
                axes -= {node.data[1]}
            found = self._axes[node] = frozenset(axes)
        return found

    def emit(self, node, chain) -> str:
        if node in self.names:
            return self.names[node]
        needed = self.axes_of(node)
        bound, level = set(), len(chain) - 1
        for k, scope in enumerate(chain):
            bound |= scope.axes
            if needed <= bound:
                level = k
                break
        if node.kind in ("reduce", "argreduce"):
            loops = ([Loop(a, n) for a, n in node.data[1]] if node.kind == "reduce"
                     else [Loop(node.data[1], node.data[2])])
            inner = _Scope([l.axis for l in loops])
            value = self.emit(node.args[0], chain[:level + 1] + [inner])
            stmt = ReduceStmt(self.fresh("acc"), node, loops, inner.stmts, value)
            if node.kind == "argreduce":
                stmt.index = self.fresh("arg")
            chain[level].stmts.append(stmt)
            name = stmt.index or stmt.name
        else:
            args = [self.emit(a, chain) for a in node.args]
            name = self.fresh()
            chain[level].stmts.append(Let(name, node, args))
        self.names[node] = name
        return name


def _nest(loops, emit_body, counter, prologue=()):
    """A LoopNest over `loops` whose innermost statements come from emit_body(emitter,
    chain), which returns the final statement (a Store or Accumulate).  A loop over blocks
    binds no index: statements reading its axis go inside the loop within the block."""
    emitter = Emitter(counter)
    chain = [_Scope(())] + [_Scope([] if l.block else [l.axis]) for l in loops]
    final = emit_body(emitter, chain)
    chain[-1].stmts.append(final)
    return LoopNest(loops, [s.stmts for s in chain], list(prologue))


# --- kernels ----------------------------------------------------------------------------------

def schedule_kernel(kernel, name, plan, options: Options, target,
                    counter=None) -> ScheduledKernel:
    """`kernel` as loop nests, with the loop passes `options` allows and `target` (a
    fjit.compiler.target.Target) pays for."""
    counter = counter if counter is not None else itertools.count(1)
    if isinstance(kernel, GemmKernel):
        operands = {b for b in (kernel.a, kernel.b, kernel.c) if b is not None}  # a @ a: once
        sk = ScheduledKernel(name, "gemm", gemm=kernel, buffers=sorted(operands),
                             work=kernel.batch * kernel.m * kernel.n * kernel.k)
        if kernel.b_producer is not None:
            sk.nests = [_producer_nest(kernel, options, counter)]
            sk.buffers = sorted(set(sk.buffers) | _loaded([kernel.b_producer]))
        return sk
    # conditional loads (fusion._guarded) beside a reduction, whose loop may be unrolled
    # completely inside the loop holding them: gcc 12.2's wrong-code shape for masked loads
    # (toolchain.py), so those loads go back to clamped positions
    if isinstance(kernel, ScatterKernel):
        if _has_reduction(kernel.value):
            kernel.value = _unconditional_loads(kernel.value, plan)
        return _schedule_scatter(kernel, name, plan, options, target, counter)
    if hasattr(kernel, "parts"):   # scan, while, cond
        return _schedule_control(kernel, name, plan, options, target, counter)
    if _has_reduction(*(e for _, e in kernel.stores)):
        kernel.stores = [(b, _unconditional_loads(e, plan)) for b, e in kernel.stores]
    if options.reorder:
        reordered = _reordered_reduction(kernel, name, plan, options, target, counter)
        if reordered is not None:
            return reordered
    shape = kernel.shape
    size = math.prod(shape)
    loops = [Loop(k, n) for k, n in enumerate(shape)]
    stores = list(kernel.stores)
    if options.tile:
        loops = _tiled(loops, [e for _, e in stores], plan, target.tile)

    def body(emitter, chain):
        values = [emitter.emit(expr, chain) for _, expr in stores]
        finals = [Store(b, flat_index(shape), v) for (b, _), v in zip(stores, values)]
        for extra in finals[:-1]:
            chain[-1].stmts.append(extra)
        return finals[-1]

    nest = _nest(loops, body, counter)
    cost = max(sum(scalar.cost(e) for _, e in stores), 1)
    work = size * cost
    _mark(nest, work, options, target)
    buffers = sorted({b for b, _ in stores} | _loaded([e for _, e in stores]))
    return ScheduledKernel(name, "loops", [nest], buffers=buffers, work=work)


def _producer_nest(kernel, options, counter):
    """The loops computing a block of a GEMM's B while it is packed: rows i0 and columns i1
    (the template bounds them to the block the packing asks for); never parallel -- the
    GEMM's threads call it, each for its own panels."""
    loops = [Loop(0, kernel.k), Loop(1, kernel.n, simd=options.vectorize)]

    def body(emitter, chain):
        return PackStore(emitter.emit(kernel.b_producer, chain))
    return _nest(loops, body, counter)


def _tiled(loops, exprs, plan, tile):
    """The tile pass (module docstring): loops p and q (the innermost) become
    [.., p-blocks, .., q-blocks, p within a block, q within a block] when a load is unit
    stride along p but strided along q.  Only for maps: a value computed once per row
    outside q would be recomputed once per block."""
    q = len(loops) - 1
    if q < 1 or not at_least(loops[q].extent, 2 * tile):
        return loops
    nodes = [n for e in exprs for n in scalar.walk(e)]
    if any(n.kind in ("reduce", "argreduce") for n in nodes):
        return loops
    for load in (n for n in nodes if n.kind == "load"):
        along_q = _stride(plan, load, q)
        if along_q is None or abs(along_q) <= 1:
            continue
        for p in range(q):
            if at_least(loops[p].extent, 2 * tile) and _stride(plan, load, p) == 1:
                lp, lq = loops[p], loops[q]
                return (loops[:p] + [Loop(p, lp.extent, block=tile)] + loops[p + 1:q] +
                        [Loop(q, lq.extent, block=tile), Loop(p, lp.extent, tile=tile),
                         Loop(q, lq.extent, tile=tile)])
    return loops


def _loaded(exprs):
    out = set()
    for expr in exprs:
        for node in scalar.walk(expr):
            if node.kind == "load":
                out.add(node.data[0])
                for e in node.data[1] + node.data[2:]:
                    out.update(load.operand for load in ix.loads_used(e))
            if node.kind in ("iota", "guard"):
                out.update(load.operand for load in ix.loads_used(node.data))
    return out


def _innermost_statements(nest):
    return nest.levels[-1]


# Work per iteration of a parallel loop from which it is one whatever its extent: its extent
# is usually the batch size, and whether threads pay is then decided per call.
ROW_WORK_FOR_THREADS = 8


def _may_thread(work, target, extent=1) -> bool:
    """Is a loop nest of `work`, whose parallel loop has `extent` iterations, worth a parallel
    loop whose use of threads is decided per call (`Loop.threads`)?  Yes when its work is
    within 8 times the threshold, or when each iteration has some work (so that a batch
    size does not change the code).  Not for tiny nests: a parallel region that then runs on
    one thread still costs about 1 us (a 3-element map: 7.4 -> 8.5 us per call).  Loop
    bodies decide once (`_serial_unless_threads`)."""
    return at_least(work, target.parallel_min_work // 8) or \
        at_least(work, ROW_WORK_FOR_THREADS * max(extent, 1))


def _serial_unless_threads(scheduled):
    """In the body of a scan or while loop a parallel region that runs on one thread is paid
    at every iteration (an RNN's [8, 64] step: 3.7 -> 4.8 ms per call), and the body's sizes
    are those of every iteration: its loops use threads or are serial, decided here."""
    for sk in scheduled:
        for nest in sk.nests:
            for loop in nest.loops:
                if loop.parallel and not loop.threads:
                    loop.parallel = False


def _mark(nest, work, options, target):
    """unroll short reduction loops; vectorize each remaining reduction's innermost loop, or
    the kernel's innermost loop when no rolled loop sits inside it; parallelize the
    outermost loop when the work is large."""
    loops = nest.loops
    outer = _outermost_real_loop(loops)
    if outer is not None and options.parallelize and _may_thread(work, target,
                                                                   outer.extent):
        outer.parallel, outer.threads = True, work >= target.parallel_min_work
    if options.unroll:
        for stmts in nest.levels:
            _unrolled_size(stmts, target)
    for stmt in _all_reduces(nest.levels):
        if options.vectorize and stmt.node.kind == "reduce" and stmt.loops \
                and not stmt.loops[-1].unroll:
            stmt.loops[-1].simd = True
    rolled_inside = any(not all(l.unroll for l in s.loops) or s.node.kind == "argreduce"
                        for s in _all_reduces([_innermost_statements(nest)]))
    if loops and options.vectorize and at_least(loops[-1].extent, 2) and not rolled_inside:
        loops[-1].simd = True


def _unrolled_size(stmts, target) -> int:
    """Statements `stmts` become in C once their reductions' loops are unrolled (choosing
    those unrolls on the way, inner reductions first)."""
    return sum(_unroll_reduction(s, target) if isinstance(s, ReduceStmt) else 1
               for s in stmts)


def _unroll_reduction(stmt, target) -> int:
    """Unroll a reduction's loops from the innermost out while each has at most `unroll_max`
    iterations and the unrolled body stays within `unroll_budget` statements; stop at the
    first loop left rolled (unrolling around a loop only copies the loop: it does not pay).
    Returns the statements the reduction becomes.  Unrolling every short loop of a nest
    made a 16 x 16 x 16 reduction 4096 copies of its body: gcc took 18-46 s on it."""
    size = _unrolled_size(stmt.body, target) + 1     # + the combine
    for loop in reversed(stmt.loops):
        if is_dynamic(loop.extent) or loop.extent > target.unroll_max \
                or size * loop.extent > target.unroll_budget:
            break
        loop.unroll = True
        size *= loop.extent
    return size


def _outermost_real_loop(loops):
    """The loop threads split: the outermost one with more than one iteration, when every
    loop around it has exactly one (a kernel over [1, 5, 5, 64, 28, 28] splits the 5, not
    nothing); None when there is none."""
    for loop in loops:
        if at_least(loop.extent, 2):
            return loop     # a loop over tile blocks too: each thread takes whole blocks
    return None


def _all_reduces(levels):
    for stmts in levels:
        for stmt in stmts:
            if isinstance(stmt, ReduceStmt):
                yield stmt
                yield from _all_reduces([stmt.body])


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


def _stride(plan, load, axis):
    """Elements moved in load's buffer per step of loop index `axis` (None: not affine)."""
    buf = plan.buffers[load.data[0]]
    total, stride = 0, 1
    for e, n in reversed(list(zip(load.data[1], buf.shape))):
        c = _coefficient(e, axis)
        if c is None:
            return None
        total += c * stride
        stride *= n
    return total


def _reordered_reduction(kernel, name, plan, options, target, counter):
    """A single store of a sum/max/min/prod whose reduced axis is strided in memory while the
    kernel's innermost index is unit-stride: loop over the reduced axes outside and
    accumulate into the output, so the innermost loop walks memory contiguously."""
    if len(kernel.stores) != 1 or not kernel.shape:
        return None
    buffer, stored = kernel.stores[0]
    expr, epilogue = _reduction_and_epilogue(stored, plan.buffers[buffer].dtype)
    if expr is None or expr.data[0] not in ("sum", "prod", "max", "min"):
        return None
    if expr.data[0] in ("sum", "prod") and plan.buffers[buffer].dtype in _ROUNDED_STORAGE:
        return None  # the output buffer would be a float16 accumulator: keep one in float
    red_axes = [a for a, _ in expr.data[1]]
    inner = len(kernel.shape) - 1
    loads = [n for n in scalar.walk(expr.args[0]) if n.kind == "load"]
    if not red_axes or not loads or kernel.shape[inner] < 2:
        return None
    unit_inner = all(_stride(plan, ld, inner) in (0, 1) for ld in loads)
    red_strided = any(abs(_stride(plan, ld, red_axes[-1]) or 0) > 1 for ld in loads)
    if not (unit_inner and red_strided):
        return None
    monoid = expr.data[0]
    out_buf = plan.buffers[buffer]
    outer = [Loop(k, n) for k, n in enumerate(kernel.shape[:-1])]
    loops = outer + [Loop(a, n) for a, n in expr.data[1]] + [Loop(inner, kernel.shape[inner])]

    def body(emitter, chain):
        value = emitter.emit(expr.args[0], chain)
        return Accumulate(buffer, flat_index(kernel.shape), monoid, value)

    fill = Fill(buffer, out_buf.size, MONOIDS[monoid].identity(out_buf.dtype), out_buf.dtype)
    nest = _nest(loops, body, counter, [fill])
    size = math.prod(kernel.shape) * math.prod(n for _, n in expr.data[1])
    if options.vectorize:
        loops[-1].simd = True
    split = _outermost_real_loop(outer)
    if options.parallelize and split is not None and _may_thread(size, target,
                                                                  split.extent):
        split.parallel, split.threads = True, size >= target.parallel_min_work
    nests, loaded = [nest], _loaded([expr])
    if epilogue is not None:   # then, in place: out = epilogue(out)
        at = scalar.load(buffer, tuple(ix.idx(k) for k in range(len(kernel.shape))),
                         out_buf.dtype)
        epilogue = scalar.replace(epilogue, expr, at)

        def epilogue_body(emitter, chain):
            return Store(buffer, flat_index(kernel.shape), emitter.emit(epilogue, chain))
        nests.append(_nest([Loop(k, n) for k, n in enumerate(kernel.shape)], epilogue_body,
                           counter))
        _mark(nests[-1], out_buf.size * max(scalar.cost(epilogue), 1), options, target)
        loaded |= _loaded([epilogue])
    return ScheduledKernel(name, "loops", nests, buffers=sorted({buffer} | loaded), work=size)


def _reduction_and_epilogue(expr, dtype):
    """(the reduction, the whole expression) when `expr` is element-wise ops applied to one
    reduction of the stored dtype (fusion's epilogue), (the reduction, None) when it is that
    reduction, (None, None) otherwise."""
    if expr.kind == "reduce":
        return expr, None
    reductions = [n for n in scalar.walk(expr) if n.kind in ("reduce", "argreduce")]
    if len(reductions) != 1 or reductions[0].kind != "reduce" or reductions[0].dtype != dtype:
        return None, None
    return reductions[0], expr


def _schedule_control(kernel, name, plan, options, target, counter):
    """Control flow: each sub-Program's kernels are scheduled (and row-fused) like a
    Program's, named after the kernel; the loop or switch itself is rendered by the
    template.  `members` index the sub-Programs' kernels counted across parts."""
    parts, offset = [], 0
    for part in kernel.parts:
        scheduled = []
        for j, k in enumerate(part):
            sk = schedule_kernel(k, f"{name}_{offset + j}", plan, options, target, counter)
            sk.comment = ", ".join(e.primitive.name for e in k.eqns)
            sk.source = first_source(k.eqns)
            sk.members = [offset + j]
            scheduled.append(sk)
        scheduled = fuse_rows(scheduled, options)
        _serial_unless_threads(scheduled)
        parts.append(scheduled)
        offset += len(part)
    kind = kernel.eqns[0].primitive.name
    trips = getattr(kernel, "length", 1)
    return ScheduledKernel(name, kind, control=kernel, parts=parts,
                           work=trips * sum(sk.work for part in parts for sk in part))


def _has_reduction(*exprs) -> bool:
    return any(n.kind in ("reduce", "argreduce") for e in exprs for n in scalar.walk(e))


def _unconditional_loads(expr, plan):
    """`expr` with its conditional loads made unconditional at clamped positions; the guard
    around each still selects the fill."""
    for node in list(scalar.walk(expr)):
        if node.kind == "load" and scalar.load_condition(node) is not None:
            shape = plan.buffers[node.data[0]].shape
            safe = [ix.clamp_index(p, n) for p, n in zip(node.data[1], shape)]
            expr = scalar.replace(expr, node, scalar.load(node.data[0], safe, node.dtype))
    return expr


def _scatter_vectorizes(kernel, out_buf, loops, guarded) -> bool:
    """May the innermost loop of a scatter run as SIMD lanes?  Where its iterations write
    distinct elements: every target coordinate affine in the innermost index, moving the
    address by a nonzero step (a convolution's input gradient adds each window row into a
    shifted image row).  Guarded accumulates become masked loads and stores, so a guarded
    scatter only in a loop longer than gcc unrolls completely and with no reduction inside:
    gcc 12.2's masked loads in a loop around a completely unrolled one are wrong code
    (toolchain.py)."""
    q = len(loops) - 1
    if q < 1 or (guarded and not (is_dynamic(loops[q].extent) or loops[q].extent > PEELED_MAX)):
        return False
    if _has_reduction(kernel.value):
        return False
    step, stride = 0, 1
    for t, n in reversed(list(zip(kernel.targets, out_buf.shape))):
        c = _coefficient(t, q)
        if c is None:
            return False
        step += c * stride
        stride *= n
    return step != 0


def _schedule_scatter(kernel, name, plan, options, target, counter):
    out_buf = plan.buffers[kernel.out]
    bad = list(kernel.conds)
    extents = dict(enumerate(kernel.shape))
    for t, n in zip(kernel.targets, out_buf.shape):
        if not ranges.within(t, n, extents):  # most scatters never leave their output
            bad.append(ix.logical_or(ix.lt(t, 0), ix.ge(t, n)))
    guard = None
    if bad:
        guard = bad[0]
        for c in bad[1:]:
            guard = ix.logical_or(guard, c)
        guard = ix.eq(guard, 0)
    at, stride = ix.ZERO, 1
    for t, n in reversed(list(zip(kernel.targets, out_buf.shape))):
        at = at + t * stride
        stride *= n

    def body(emitter, chain):
        value = emitter.emit(kernel.value, chain)
        return Accumulate(kernel.out, at, kernel.monoid, value, guard)

    loops = [Loop(k, n) for k, n in enumerate(kernel.shape)]
    # Serial in general (targets may collide), but when one target coordinate is the outer
    # loop index itself, different outer iterations write disjoint slices (a convolution's
    # input gradient: each example scatters into its own image).
    size = math.prod(kernel.shape)
    if options.parallelize and loops and loops[0].extent > 1 \
            and _may_thread(size, target, loops[0].extent) \
            and any(t == ix.idx(0) for t in kernel.targets):
        loops[0].parallel, loops[0].threads = True, size >= target.parallel_min_work
    if options.vectorize and _scatter_vectorizes(kernel, out_buf, loops, guard is not None):
        loops[-1].simd = True
    fill = Fill(kernel.out, out_buf.size, MONOIDS[kernel.monoid].identity(out_buf.dtype),
                out_buf.dtype)
    nest = _nest(loops, body, counter, [fill])
    buffers = sorted({kernel.out} | _loaded([kernel.value]) |
                     {load.operand for t in kernel.targets for load in ix.loads_used(t)})
    return ScheduledKernel(name, "loops", [nest], buffers=buffers, work=size)


# --- row fusion -------------------------------------------------------------------------------

def walk_statements(levels):
    for stmts in levels:
        for stmt in stmts:
            yield stmt
            if isinstance(stmt, ReduceStmt):
                yield from walk_statements([stmt.body])
            elif isinstance(stmt, SubNest):
                yield from walk_statements(stmt.levels)


def _reads(nest):
    """(buffer, positions) of every load, and buffers read through index expressions."""
    loads, indirect = [], set()
    for stmt in walk_statements(nest.levels):
        if isinstance(stmt, Let):
            node = stmt.node
            if node.kind == "load":
                loads.append(node.data[:2])
                for e in node.data[1] + node.data[2:]:
                    indirect.update(l.operand for l in ix.loads_used(e))
            elif node.kind in ("iota", "guard"):
                indirect.update(l.operand for l in ix.loads_used(node.data))
        elif isinstance(stmt, (Store, Accumulate)):
            indirect.update(l.operand for l in ix.loads_used(stmt.index))
    return loads, indirect


def _written(sk):
    return {s.buffer for nest in sk.nests for s in walk_statements(nest.levels)
            if isinstance(s, (Store, Accumulate))}


def _fusable(sk):
    return (sk.kind == "loops" and len(sk.nests) == 1 and not sk.nests[0].prologue
            and not any(isinstance(s, Accumulate) for s in walk_statements(sk.nests[0].levels)))


def fuse_rows(scheduled, options):
    """Merge runs of kernels that share their outer loops (see the module docstring)."""
    if not options.fuse_rows:
        return scheduled
    out = []
    for sk in scheduled:
        prefix = _shared_prefix(out[-1], sk) if out else 0
        if prefix:
            out[-1] = _merge(out[-1], sk, prefix)
        else:
            out.append(sk)
    return out


def _shared_prefix(group, sk) -> int:
    if not (_fusable(group) and _fusable(sk)):
        return 0
    a, b = group.nests[0].loops, sk.nests[0].loops
    p = 0
    while p < min(len(a), len(b)) and same_size(a[p].extent, b[p].extent) and a[p].axis == p \
            and b[p].axis == p and not (a[p].block or a[p].tile or b[p].block or b[p].tile):
        p += 1
    if p == 0 or not at_least(a[0].extent, 2):
        return 0
    written = _written(group)
    loads, indirect = _reads(sk.nests[0])
    if written & indirect:
        return 0
    for depth in range(p, 0, -1):  # the deepest prefix at which every read is row-local
        want = tuple(ix.idx(k) for k in range(depth))
        if all(tuple(positions[:depth]) == want for buffer, positions in loads
               if buffer in written):
            return depth
    return 0


def _inner(nest, p):
    """What `nest` runs inside its first p loops, as statements of level p: one sub-nest (its
    own scope, so kernels' names cannot clash), or, for a group merged before, its sub-nests
    as they are, so merging n kernels nests the code one level deep, not n (n deep overflowed
    the template's recursion on a 128-kernel integer power chain)."""
    if len(nest.loops) == p and all(isinstance(s, SubNest) for s in nest.levels[p]):
        return list(nest.levels[p])
    return [SubNest(nest.loops[p:], nest.levels[p:])]


def _merge(group, sk, p):
    """The shared outer loops once; inside them, each kernel's remaining loops in turn.  A
    statement of the later kernel above level p cannot read the earlier one's results (those
    reads use all p outer indices), so outer levels simply concatenate."""
    a, b = group.nests[0], sk.nests[0]
    levels = [a.levels[d] + b.levels[d] for d in range(p)]
    levels.append(_inner(a, p) + _inner(b, p))
    loops = [Loop(x.axis, x.extent, x.parallel or y.parallel, False,
                  threads=x.threads or y.threads)
             for x, y in zip(a.loops[:p], b.loops[:p])]
    return ScheduledKernel(group.name, "loops", [LoopNest(loops, levels)],
                           buffers=sorted(set(group.buffers) | set(sk.buffers)),
                           work=group.work + sk.work, comment=f"{group.comment}; {sk.comment}",
                           members=group.members + sk.members,
                           source=group.source or sk.source)
