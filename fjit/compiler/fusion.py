"""Fusion: decide which values get a buffer, and build kernels computing those buffers.

Every value of the (flattened) Program has a *generator*: given index expressions over some
kernel's loop indices, it returns the scalar expression for the value's element there.  A
value with a buffer generates a load; any other value generates its computation, inlining its
producers' generators, so broadcasts and reindexes become index arithmetic and element-wise
chains become one expression.

A value gets a buffer (is *materialized*) when it is a Program output, an index array, a
GEMM operand or result, a scatter (reindex_reduce) result, or when inlining it would compute
it too many times: a reduction read more than once, or an element-wise expression whose cost
times its extra reads exceeds a small budget (so softmax's exp(x - max) is recomputed in its
two consumers instead of being written out and read back).

Kernels:
  MapKernel      stores expressions at every point of an iteration space (several stores
                 when siblings over the same space are merged)
  ScatterKernel  reindex_reduce: identity-fill, then combine values into computed targets
  GemmKernel     a contraction routed to GEMM (BLAS where available)
"""
from __future__ import annotations

import math

from collections import defaultdict

import numpy as np

from .. import dtypes
from ..core import Literal, Var
from .dynamic import at_least, for_large, is_dynamic, literal_value
from ..lax import indexexpr as ix
from ..lax.reduce import MONOIDS
from ..lax.reindex import MONOID_OF_OP
from . import ranges, scalar
from .flatten import FlatProgram

class Buffer:
    __slots__ = ("id", "shape", "dtype", "role", "name")

    def __init__(self, id, shape, dtype, role):
        self.id, self.shape, self.dtype, self.role = id, tuple(shape), np.dtype(dtype), role
        self.name = f"b{id}"

    @property
    def size(self):
        return math.prod(self.shape)   # keeps a varying size's tag

    def __repr__(self):
        return f"{self.name}:{self.role}:{dtypes.short_name(self.dtype)}{list(self.shape)}"


class MapKernel:
    def __init__(self, shape, stores, eqns):
        self.shape = tuple(shape)
        self.stores = list(stores)   # (buffer id, SExpr)
        self.eqns = list(eqns)       # the Program equations it computes (for introspection)

    @property
    def outputs(self):
        return [b for b, _ in self.stores]


class ScatterKernel:
    def __init__(self, space, out, monoid, value, targets, conds, eqn):
        self.shape = tuple(space)     # the iteration space: the scattered array's shape
        self.out = out                # buffer id
        self.monoid = monoid          # name in lax.reduce.MONOIDS
        self.value = value            # SExpr over the space
        self.targets = tuple(targets) # index expressions into out (bounds-checked)
        self.conds = tuple(conds)     # extra drop conditions
        self.eqns = [eqn]

    @property
    def outputs(self):
        return [self.out]


class GemmKernel:
    def __init__(self, dtype, batch, m, n, k, a, trans_a, a_batch, b, trans_b, b_batch, c, eqns,
                 b_producer=None):
        self.dtype = np.dtype(dtype)
        self.batch, self.m, self.n, self.k = batch, m, n, k
        self.a, self.trans_a, self.a_batch = a, trans_a, a_batch   # buffer id, bool, stride
        self.b, self.trans_b, self.b_batch = b, trans_b, b_batch
        self.c = c
        self.eqns = list(eqns)
        # B computed while it is packed (see _b_producers): an expression over B's (row,
        # column) = (i0, i1); B then has no buffer (b is None)
        self.b_producer = b_producer

    @property
    def outputs(self):
        return [self.c]


class Plan:
    """Buffers, kernels in execution order, and how Program inputs/outputs map to buffers."""

    def __init__(self):
        self.buffers: list[Buffer] = []
        self.kernels: list = []
        self.inputs: list[int] = []          # buffer per Program invar
        self.consts: list[tuple] = []        # (buffer id, value)
        self.outputs: list = []              # per outvar: ("buffer", id) | ("literal", value)
        self.reasons: dict = {}              # buffer id -> why it is not inlined
        # the Program's (not loop bodies') vars that have a buffer: checked mode compares
        # each with the reference interpreter's value (fjit/compiler/checked.py)
        self.var_buffers: dict = {}

    def new_buffer(self, shape, dtype, role) -> Buffer:
        buf = Buffer(len(self.buffers), shape, dtype, role)
        self.buffers.append(buf)
        return buf


class Context:
    """The loop indices of the kernel being built: extents, and fresh reduction indices."""

    def __init__(self, shape):
        self.extents = {k: n for k, n in enumerate(shape)}
        self.rank = len(shape)        # axes below this are the kernel's own (not reductions')
        self.next_axis = len(shape)
        self.memo = {}  # (var, index) -> expression: each value built once per index

    def new_axis(self, extent):
        axis = self.next_axis
        self.next_axis += 1
        self.extents[axis] = extent
        return axis


def _identity_index(shape):
    return tuple(ix.idx(k) for k in range(len(shape)))


# --- GEMM recognition ---------------------------------------------------------------------------

class _Gemm:
    """A reduce_sum(mul(broadcast X, broadcast Y)) eqn that maps onto batched GEMM."""

    def __init__(self, reduce_eqn, mul_eqn, a_var, b_var, batch, m, n, k, trans_a, trans_b,
                 a_has_batch, b_has_batch):
        self.reduce_eqn, self.mul_eqn = reduce_eqn, mul_eqn
        self.a_var, self.b_var = a_var, b_var
        self.batch, self.m, self.n, self.k = batch, m, n, k
        self.trans_a, self.trans_b = trans_a, trans_b
        self.a_has_batch, self.b_has_batch = a_has_batch, b_has_batch


def contraction_operands(eqn, producer, uses):
    """(mul eqn, [(a, dims), (b, dims)]) when `eqn` is a float reduce_sum(mul(broadcast a,
    broadcast b)) -- how matmul, einsum and convolution are written -- with no stretched
    size-1 dims; else None."""
    if eqn.primitive.name != "reduce_sum" or \
            eqn.outvars[0].aval.dtype not in (dtypes.float32, dtypes.float64):
        return None
    mul = producer.get(eqn.invars[0])
    if mul is None or mul.primitive.name != "mul" or uses[eqn.invars[0]] != 1:
        return None
    space = mul.outvars[0].aval.shape
    operands = []
    for a in mul.invars:
        bc = producer.get(a) if isinstance(a, Var) else None
        if bc is None or bc.primitive.name != "broadcast_in_dim" \
                or isinstance(bc.invars[0], Literal):
            return None
        x, dims = bc.invars[0], bc.params["broadcast_dimensions"]
        if any(x.aval.shape[k] != space[d] for k, d in enumerate(dims)):
            return None  # a stretched size-1 dim: not a plain GEMM operand
        operands.append((x, dims))
    return mul, operands


def find_gemms(flat: FlatProgram, producer, uses, target):
    found = {}
    if not target.gemm:
        return found
    for eqn in flat.eqns:
        match = contraction_operands(eqn, producer, uses)
        if match is None:
            continue
        mul, operands = match
        space = mul.outvars[0].aval.shape
        seen = [_through_transpose(x, dims, producer) for x, dims in operands]
        # transposes read in place if the layouts allow; mul commutes, so B @ A too.  The
        # operands' order is an accident of how the contraction was written (autodiff's
        # transposes swap it), so every reading is weighed, not the first that fits: a
        # convolution read patches-first is a batch of O matrix-vector products
        # (64 x 16384 x 1 x 48), read weight-first one 64 x 16384 x 48 GEMM.
        candidates = [g for ops in (seen, operands) for pair in (ops, ops[::-1])
                      if (g := _classify(eqn, mul, pair, space, target)) is not None]
        if candidates:
            found[eqn] = max(candidates, key=lambda g: _tile_fill(g, target))
    return found


def _tile_fill(gemm, target) -> float:
    """How much of the register tiles a GEMM's shape fills, over its calls: the first of the
    best scores wins, so in-place reads and the written order break ties."""
    rows, cols = target.gemm_tile

    def full(size, edge):   # a size that varies between calls is taken as large
        return 1.0 if is_dynamic(size) else int(size) / (-(-int(size) // edge) * edge)
    batch = 1 if is_dynamic(gemm.batch) else int(gemm.batch)
    return full(gemm.m, rows) * full(gemm.n, cols) / (1 + 0.01 * (batch - 1))


def _through_transpose(x, dims, producer):
    """(source, dims) for an operand that is a pure transpose of another value: GEMM reads
    the source with a transposed layout instead of a kernel materialising the transpose
    (`a @ b.T`).  Otherwise (x, dims) unchanged."""
    eqn = producer.get(x)
    if eqn is None or eqn.primitive.name != "reindex" or len(eqn.invars) != 1 \
            or eqn.params["fill_if"]:
        return x, dims
    index, source = eqn.params["index"], eqn.invars[0]
    if not isinstance(source, Var) or len(index) != len(source.aval.shape) or \
            not all(isinstance(e, ix.Idx) for e in index) or \
            sorted(e.axis for e in index) != list(range(len(index))) or \
            any(n != x.aval.shape[e.axis] for e, n in zip(index, source.aval.shape)):
        return x, dims  # not a permutation (a slice also reads i_k, from a bigger source)
    # source axis k is read by output axis index[k].axis, which the broadcast puts at dims[..]
    return source, tuple(dims[e.axis] for e in index)


def _one_sided_batch(kinds):
    """Leading output dims that only one operand has (a convolution's batch dim: out[n] =
    W @ patches[n]) become batch dims of a GEMM whose other operand is shared (batch stride
    0).  Only when there are no two-sided batch dims, and the rest is then M before N."""
    if "B" in kinds:
        return None
    out = [d for d, k in enumerate(kinds) if k != "K"]
    if not out:
        return None
    side = kinds[out[0]]
    kinds = list(kinds)
    for d in out:
        if kinds[d] != side:
            break
        kinds[d] = "B"
    rest = [k for k in kinds if k not in ("K", "B")]
    if not rest or rest != sorted(rest):
        return None
    return kinds


def _classify(eqn, mul, operands, space, target):
    axes = set(eqn.params["axes"])
    (xa, da), (xb, db) = operands
    sa, sb = set(da), set(db)
    kinds = []
    for d in range(len(space)):
        in_a, in_b, in_out = d in sa, d in sb, d not in axes
        if in_a and in_b and in_out:
            kinds.append("B")
        elif in_a and in_out:
            kinds.append("M")
        elif in_b and in_out:
            kinds.append("N")
        elif in_a and in_b:
            kinds.append("K")
        else:
            return None
    order = {"B": 0, "M": 1, "N": 2}
    out_kinds = [k for k in kinds if k != "K"]
    if [order[k] for k in out_kinds] != sorted(order[k] for k in out_kinds):
        kinds = _one_sided_batch(kinds)
        if kinds is None:
            return None

    def layout(dims, free):
        """(transposed, has_batch) if the operand's dims are [B...][free...][K...] or
        [B...][K...][free...]; None otherwise."""
        seq = [kinds[d] for d in dims]
        for kind in set(seq):  # flattened B/M/N/K positions must agree with the output's
            same = [d for d in dims if kinds[d] == kind]
            if same != sorted(same):
                return None
        n_batch = sum(1 for k in seq if k == "B")
        if seq[:n_batch] != ["B"] * n_batch:
            return None
        rest = seq[n_batch:]
        if not rest:
            return False, n_batch > 0
        if rest == sorted(rest, key=lambda k: (k == "K")):        # free then K
            return False, n_batch > 0
        if rest == sorted(rest, key=lambda k: (k != "K")):        # K then free
            return True, n_batch > 0
        return None

    la, lb = layout(da, "M"), layout(db, "N")
    if la is None or lb is None:
        return None
    size = {k: 1 for k in "BMNK"}
    for d, k in enumerate(kinds):
        size[k] *= space[d]
    if not at_least(size["K"], target.gemm_min_k):
        return None  # an outer product or nearly: a map kernel does it in one pass
    if not at_least(size["B"] * size["M"] * size["N"] * size["K"], target.gemm_min_work):
        return None  # a loop nest fused with its neighbours beats a call for so little
    # BLAS wants A as [M][K] or its transpose; our "free then K" is A = M x K (not transposed);
    # for B the natural layout is [K][N]: "free then K" means [N][K], i.e. transposed.
    trans_a = la[0]
    trans_b = not lb[0]
    return _Gemm(eqn, mul, xa, xb, size["B"], size["M"], size["N"], size["K"], trans_a,
                 trans_b, la[1], lb[1])


# --- the planner ---------------------------------------------------------------------------------

def plan_program(flat: FlatProgram, target) -> Plan:
    plan = Plan()
    in_buffers = []
    for var in flat.invars:
        buf = plan.new_buffer(var.aval.shape, var.aval.dtype, "input")
        plan.inputs.append(buf.id)
        in_buffers.append(buf.id)
    plan.outputs = plan_block(plan, flat, in_buffers, plan.kernels, target, "output",
                              plan.var_buffers)
    return plan


def plan_block(plan, flat, in_buffers, kernels, target, out_role, buffer_of=None):
    """Plan `flat`'s equations into `kernels` (the Program's, or a loop body's), its invars
    already in `in_buffers`, filling `buffer_of` (var -> buffer id) as vars get buffers.
    Returns, per outvar, ("buffer", id) or ("literal", value)."""
    producer, uses, consumers = {}, defaultdict(int), defaultdict(list)
    for eqn in flat.eqns:
        for v in eqn.outvars:
            producer[v] = eqn
        for pos, a in enumerate(eqn.invars):
            if isinstance(a, Var):
                uses[a] += 1
                consumers[a].append((eqn, pos))
    outset = {v for v in flat.outvars if isinstance(v, Var)}
    for v in outset:
        uses[v] += 1

    gemms = find_gemms(flat, producer, uses, target)
    # vars that need a buffer whatever their cost, and why (lower().explain() prints it)
    forced = dict.fromkeys(outset, "output is returned" if out_role == "output"
                           else "returned by the loop body or branch")
    for gemm in gemms.values():
        for v in (gemm.a_var, gemm.b_var):
            forced.setdefault(v, "operand of a contraction that goes to GEMM")
    for eqn in flat.eqns:
        if eqn.primitive.family in ("reindex", "reindex_reduce"):
            for a in eqn.invars[1:]:
                if isinstance(a, Var):
                    forced.setdefault(a, f"index array of {eqn.primitive.name} (read at "
                                         "computed positions)")
        if eqn.primitive.family == "control":  # loops and branches read memory
            for a in eqn.invars:
                if isinstance(a, Var):
                    forced.setdefault(a, f"operand of {eqn.primitive.name} (loops and "
                                         "branches read their operands from memory)")
    skipped = {id(g.mul_eqn) for g in gemms.values()}
    producible = _b_producers(flat, gemms, producer, consumers)
    produced = {}   # B operand -> its expression, computed by its GEMM while packing

    gens = {}
    buffer_of = {} if buffer_of is None else buffer_of

    def materialize_as(var, buf):
        buffer_of[var] = buf.id
        gens[var] = lambda idx, ctx, b=buf: scalar.load(b.id, idx, b.dtype)

    for var, b in zip(flat.invars, in_buffers):
        materialize_as(var, plan.buffers[b])
    for var, value in zip(flat.constvars, flat.consts):
        buf = plan.new_buffer(var.aval.shape, var.aval.dtype, "const")
        plan.consts.append((buf.id, value))
        materialize_as(var, buf)

    def materialize_map(v, eqn, why):
        """v in a buffer of its own, computed by a map kernel (none when it is empty)."""
        buf = plan.new_buffer(v.aval.shape, v.aval.dtype, out_role if v in outset else "temp")
        plan.reasons[buf.id] = why
        if v.aval.size:
            expr = gens[v](_identity_index(v.aval.shape), Context(v.aval.shape))
            kernels.append(MapKernel(v.aval.shape, [(buf.id, expr)], [eqn]))
        materialize_as(v, buf)

    # A strided reduction's epilogue: the element-wise ops applied to its result alone (a
    # bias gradient's `* 2`, an optimizer's update of it) are computed by the reduction's
    # kernel once it has accumulated (schedule.py `_reordered_reduction`), not by kernels
    # of their own reading a temporary.
    epilogue, epilogue_end = set(), set()

    def epilogue_consumer(v) -> bool:
        """Is v read once, by an element-wise op at its own index keeping shape and dtype?"""
        if uses[v] != 1 or v in forced or len(consumers[v]) != 1:
            return False
        eqn, _ = consumers[v][0]
        out = eqn.outvars[0]
        return (eqn.primitive.family == "elementwise" and id(eqn) not in skipped
                and len(eqn.outvars) == 1 and out.aval.shape == v.aval.shape
                and out.aval.dtype == v.aval.dtype)

    builder = _GeneratorBuilder(gens, buffer_of)
    for eqn in flat.eqns:
        if id(eqn) in skipped:
            continue
        out = eqn.outvars[0]
        role = out_role if out in outset else "temp"
        if eqn in gemms:
            g = gemms[eqn]
            buf = plan.new_buffer(out.aval.shape, out.aval.dtype, role)
            plan.reasons[buf.id] = "contraction goes to GEMM"
            b_expr = produced.pop(g.b_var, None)
            own = [g.mul_eqn, eqn] + ([producer[g.b_var]] if b_expr is not None else [])
            kernels.append(GemmKernel(
                out.aval.dtype, g.batch, g.m, g.n, g.k, buffer_of[g.a_var], g.trans_a,
                g.m * g.k if g.a_has_batch else 0, None if b_expr is not None else
                buffer_of[g.b_var], g.trans_b, g.k * g.n if g.b_has_batch else 0, buf.id,
                own, b_producer=b_expr))
            materialize_as(out, buf)
            continue
        if eqn.primitive.name == "reindex_reduce":
            buf = plan.new_buffer(out.aval.shape, out.aval.dtype, role)
            plan.reasons[buf.id] = "a scatter accumulates into a buffer of its own"
            kernels.append(builder.scatter_kernel(eqn, buf))
            materialize_as(out, buf)
            continue
        if eqn.primitive.family == "control":   # scan, while, cond: see control.py
            from .control import plan_control
            roles = [out_role if v in outset else "temp" for v in eqn.outvars]
            kernel = plan_control(plan, eqn, [_operand_buffer(plan, a, buffer_of)
                                              for a in eqn.invars], roles, target)
            kernels.append(kernel)
            for v, b in zip(eqn.outvars, kernel.outputs):
                plan.reasons.setdefault(b, f"written by a {eqn.primitive.name}")
                materialize_as(v, plan.buffers[b])
            continue
        for p in [a for a in eqn.invars if isinstance(a, Var) and a in epilogue]:
            epilogue.discard(p)
            if _epilogue_operands_ok(eqn, p, gens, buffer_of):
                # p stays inlined: this op joins the epilogue, or ends it with a buffer
                (epilogue if epilogue_consumer(eqn.outvars[0]) else epilogue_end).add(
                    eqn.outvars[0])
            else:
                materialize_map(p, producer[p], _STRIDED + "; its consumer cannot run in "
                                "its epilogue (it reads another reduction)")
        builder.define(eqn)
        for v in eqn.outvars:
            if uses[v] == 0 or v in epilogue:
                continue
            if v in producible and uses[v] == 1:
                expr = gens[v](_identity_index(v.aval.shape), Context(v.aval.shape))
                if _producible_expr(expr, target):
                    produced[v] = expr
                    continue
            if _strided_reduction(eqn) and v not in forced and epilogue_consumer(v):
                epilogue.add(v)   # its kernel also computes the element-wise ops after it
                continue
            why = forced.get(v) or _recompute_cost(v, gens, consumers, target) or (
                _STRIDED if _strided_reduction(eqn) else None) or (
                "ends a strided reduction's epilogue" if v in epilogue_end else None)
            if why:
                materialize_map(v, eqn, why)

    outputs = [("literal", v.value) if isinstance(v, Literal) else ("buffer", buffer_of[v])
               for v in flat.outvars]
    _attribute_inlined_eqns(kernels, flat, buffer_of)
    return outputs


def _b_producers(flat, gemms, producer, consumers):
    """B operands a GEMM computes while packing them, instead of a kernel writing them out
    and the packing reading them back (`x @ (w * mask)`, a weight converted or scaled on
    the way): float32 [K, N] values (not transposed, no batch) computed by the block and
    read by nothing but this GEMM.  Whether the value's expression qualifies (no
    reductions, cheap) is decided when it is built (_producible_expr).

    Values read elsewhere too are stored by their own kernel as before: storing them from
    inside the packing as well was measured slower (the stores compete with the GEMM for
    cache; 128x784x512: 350 against 324 us), while computing a value nothing else reads
    saves its round trip through memory (295 against 335 us)."""
    operand_of = defaultdict(int)   # how many GEMM operand slots each value fills
    for g in gemms.values():
        operand_of[g.a_var] += 1
        operand_of[g.b_var] += 1
    found = set()
    for g in gemms.values():
        v = g.b_var
        # a value two GEMMs read (`g @ b` and `a.T @ g` of a gradient share one broadcast
        # of the cotangent) needs a buffer: the first GEMM would consume its expression
        if operand_of[v] != 1 or not isinstance(v, Var) or v not in producer:
            continue
        made = producer[v]
        if made in gemms or made.primitive.family in ("reindex_reduce", "control"):
            continue
        if v.aval.dtype != dtypes.float32 or g.trans_b or g.b_has_batch or g.batch != 1 \
                or v.aval.shape != (g.k, g.n):
            continue
        readers = [e for e, _ in consumers[v]]
        if len(readers) != 1:
            continue
        spread = readers[0].outvars[0]   # the broadcast: this GEMM's mul must be its only reader
        if [e for e, _ in consumers[spread]] == [g.mul_eqn] and \
                any(x is spread for x in g.mul_eqn.invars):
            found.add(v)
    return found


def _producible_expr(expr, target) -> bool:
    nodes = list(scalar.walk(expr))
    return all(n.kind in ("load", "const", "op", "iota", "guard") for n in nodes) and \
        scalar.cost(expr) <= target.producer_max_cost


def _operand_buffer(plan, atom, buffer_of):
    """The buffer holding an operand (a literal gets a constant buffer of its own)."""
    if isinstance(atom, Literal):
        buf = plan.new_buffer((), atom.aval.dtype, "const")
        plan.consts.append((buf.id, atom.value))
        return buf.id
    return buffer_of[atom]


def _read_factor(eqn, pos, var):
    """How many times each element of `var` is read to compute `eqn`'s output once."""
    family = eqn.primitive.family
    out = eqn.outvars[0].aval
    size = max(var.aval.size, 1)
    if family in ("elementwise", "broadcast"):
        return max(out.size / size, 1) if out.size else 0
    if family == "reindex":
        return max(out.size / size, 1) if out.size else 0
    return 1


def _epilogue_operands_ok(eqn, p, gens, buffer_of) -> bool:
    """Can element-wise `eqn` run in the epilogue of the reduction `p` stands for?  Its other
    operands must hold no reduction of their own (the epilogue loop would compute it at
    every element, walking memory the wrong way, as the reduction's own kernel would not)."""
    for a in eqn.invars:
        if a is p or isinstance(a, Literal) or a in buffer_of:
            continue
        expr = gens[a](_identity_index(a.aval.shape), Context(a.aval.shape))
        if any(n.kind in ("reduce", "argreduce") for n in scalar.walk(expr)):
            return False
    return True


def _strided_reduction(eqn) -> bool:
    """A sum/max/min/prod that keeps its operand's last (contiguous) axis, e.g. a bias
    gradient summed over the batch: its own kernel, so the schedule can reorder it to
    accumulate whole rows (unit stride) instead of walking each column down memory."""
    if eqn.primitive.family != "reduce" or eqn.primitive.name not in (
            "reduce_sum", "reduce_max", "reduce_min", "reduce_prod"):
        return False
    shape, axes = eqn.invars[0].aval.shape, eqn.params["axes"]
    return bool(axes) and (len(shape) - 1) not in axes and at_least(shape[-1], 2) and \
        at_least(eqn.outvars[0].aval.size, 2) and all(at_least(shape[a], 2) for a in axes)


_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")


_STRIDED = ("reduction keeping the contiguous last axis: its own kernel accumulates whole "
            "rows")


def _recompute_cost(var, gens, consumers, target) -> str | None:
    """Why `var` is worth a buffer rather than being recomputed by its readers, or None."""
    uses = consumers[var]
    reads = sum(_read_factor(eqn, pos, var) for eqn, pos in uses)
    if for_large(lambda r: r - 1, reads) <= 0:
        return None
    expr = gens[var](_identity_index(var.aval.shape), Context(var.aval.shape))
    if _compared_with_itself(var, consumers) and scalar.calls_libm(expr):
        return ("compared with itself after a math function that vectorised and scalar "
                "code may round differently: computed once")
    extra = scalar.cost(expr) * (reads - 1)
    if for_large(lambda e: e - target.recompute_budget, extra) > 0:
        return (f"read {reads:g} times per element: inlined, its readers would recompute "
                f"each element {reads - 1:g} more times (cost {extra:,.0f} > recompute "
                f"budget {target.recompute_budget})")
    return None


_MOVES = ("broadcast", "reindex")   # families that only move elements


def _compared_with_itself(var, consumers) -> bool:
    """A value compared (directly or after broadcasts, slices, gathers) and also read other
    than element by element: `y == max(y)` and the gradient of max and min (whose indicator
    is exactly that), `y == y[argmax(y)]`, `y[:, None] == y[None, :]`.  The comparison must
    see the very bits the other read saw, but recomputed at two places a libm call may round
    differently (a vectorised loop calls libmvec, a scalar one libm), and no element equals
    the maximum.  A value read only element-wise is computed once per kernel."""
    elsewhere = any(eqn.primitive.family != "elementwise" for eqn, _ in consumers[var])
    seen, frontier = set(), [var]
    while frontier:
        v = frontier.pop()
        for eqn, _ in consumers.get(v, ()):
            if eqn.primitive.name in _COMPARISONS:
                return elsewhere
            if eqn.primitive.family in _MOVES and id(eqn) not in seen:
                seen.add(id(eqn))
                frontier.extend(eqn.outvars)
    return False


def _attribute_inlined_eqns(kernels, flat, buffer_of):
    """Record, for introspection, which equations each kernel computes (inlined ones
    included): walk back from each kernel's own equations to non-materialized producers."""
    producer = {v: e for e in flat.eqns for v in e.outvars}
    order = {id(e): k for k, e in enumerate(flat.eqns)}
    for kernel in kernels:
        seen = {id(e) for e in kernel.eqns}
        stack = list(kernel.eqns)
        while stack:
            eqn = stack.pop()
            for a in eqn.invars:
                if isinstance(a, Var) and a not in buffer_of and a in producer:
                    p = producer[a]
                    if id(p) not in seen:
                        seen.add(id(p))
                        kernel.eqns.append(p)
                        stack.append(p)
        kernel.eqns.sort(key=lambda e: order.get(id(e), -1))


class _GeneratorBuilder:
    """Generators (index expressions -> scalar expression) for each primitive family."""

    def __init__(self, gens, buffer_of):
        self.gens, self.buffer_of = gens, buffer_of

    def operand(self, atom):
        if isinstance(atom, Literal):
            return lambda idx, ctx, a=atom: scalar.const(literal_value(a), a.aval.dtype)
        return self.gens[atom]

    def define(self, eqn):
        family = eqn.primitive.family
        handler = getattr(self, f"_{family}")
        handler(eqn)
        for v in eqn.outvars:
            self.gens[v] = _memoized(v, self.gens[v])

    # element-wise: one op node over the operands at the same index (rank-0 at ())
    def _elementwise(self, eqn):
        out = eqn.outvars[0]
        ins = [(self.operand(a), a.aval.shape) for a in eqn.invars]
        name = eqn.primitive.name
        params = tuple(sorted(eqn.params.items()))

        def gen(idx, ctx):
            args = [g(idx if shape == out.aval.shape else (), ctx) for g, shape in ins]
            if name == "stop_gradient":
                return args[0]
            return scalar.op(name, args, out.aval.dtype, params)
        self.gens[out] = gen

    def _broadcast(self, eqn):
        x = eqn.invars[0]
        g = self.operand(x)
        dims = eqn.params["broadcast_dimensions"]
        shape = eqn.params["shape"]
        in_shape = x.aval.shape

        def gen(idx, ctx):
            return g(tuple(idx[d] if in_shape[k] == shape[d] else ix.ZERO
                           for k, d in enumerate(dims)), ctx)
        self.gens[eqn.outvars[0]] = gen

    def _reshape(self, eqn):
        x = eqn.invars[0]
        g = self.operand(x)
        out_shape, in_shape = eqn.params["new_sizes"], x.aval.shape

        def gen(idx, ctx):
            flat = _ravel(idx, out_shape)
            positions = _unravel(flat, in_shape)
            return g(tuple(ranges.simplify(p, ctx.extents) for p in positions), ctx)
        self.gens[eqn.outvars[0]] = gen

    def _iota(self, eqn):
        dimension = eqn.params["dimension"]
        dtype = eqn.params["dtype"]
        self.gens[eqn.outvars[0]] = lambda idx, ctx: scalar.iota(idx[dimension], dtype)

    def _reduce(self, eqn):
        x = eqn.invars[0]
        g = self.operand(x)
        axes = eqn.params["axes"]
        monoid = eqn.primitive.name[len("reduce_"):]

        def gen(idx, ctx):
            it = iter(idx)
            full, loops = [], []
            for d, n in enumerate(x.aval.shape):
                if d in axes and n == 1:
                    full.append(ix.ZERO)    # a reduction over one element is that element
                elif d in axes:
                    a = ctx.new_axis(n)
                    loops.append((a, n))
                    full.append(ix.idx(a))
                else:
                    full.append(next(it))
            body = g(tuple(full), ctx)
            if not loops and x.aval.size > 0:
                return body
            return scalar.reduce(monoid, loops, body)
        self.gens[eqn.outvars[0]] = gen

    def _argreduce(self, eqn):
        x = eqn.invars[0]
        g = self.operand(x)
        axis, index_dtype = eqn.params["axis"], eqn.params["index_dtype"]
        kind = eqn.primitive.name

        def gen(idx, ctx):
            a = ctx.new_axis(x.aval.shape[axis])
            full = list(idx[:axis]) + [ix.idx(a)] + list(idx[axis:])
            return scalar.argreduce(kind, a, x.aval.shape[axis], g(tuple(full), ctx),
                                    index_dtype)
        self.gens[eqn.outvars[0]] = gen

    def _reindex(self, eqn):
        x, index_arrays = eqn.invars[0], eqn.invars[1:]
        g = self.operand(x)
        params = eqn.params
        buffers = [self.buffer_of[a] for a in index_arrays]
        fill = scalar.const(params["fill"], x.aval.dtype)

        def gen(idx, ctx):
            subst = dict(enumerate(idx))
            positions = [_resolve(e, subst, buffers, ctx) for e in params["index"]]
            conds = [_resolve(c, subst, buffers, ctx) for c in params["fill_if"]]
            return _guarded(g, positions, x.aval.shape, conds, fill, ctx)
        self.gens[eqn.outvars[0]] = gen

    def scatter_kernel(self, eqn, buf) -> ScatterKernel:
        x, index_arrays = eqn.invars[0], eqn.invars[1:]
        g = self.operand(x)
        params = eqn.params
        buffers = [self.buffer_of[a] for a in index_arrays]
        space = x.aval.shape
        ctx = Context(space)
        idx = _identity_index(space)
        subst = dict(enumerate(idx))
        targets = [_resolve(e, subst, buffers, ctx) for e in params["index"]]
        conds = [_resolve(c, subst, buffers, ctx) for c in params["drop_if"]]
        monoid = next(name for name, m in MONOIDS.items()
                      if m is MONOID_OF_OP[params["op"]])
        return ScatterKernel(space, buf.id, monoid, g(idx, ctx), targets, conds, eqn)


def _memoized(var, gen):
    """A generator that builds each (value, index) once per kernel: without this, a value
    read twice at the same index (x * x, repeated squaring) is rebuilt exponentially often."""
    def memo_gen(idx, ctx):
        key = (var, idx)
        expr = ctx.memo.get(key)
        if expr is None:
            expr = ctx.memo[key] = gen(idx, ctx)
        return expr
    return memo_gen


def _resolve(expr, subst, buffers, ctx):
    """An eqn's index expression in the kernel: loop indices substituted, loads from index
    operands turned into loads from their buffers."""
    expr = ix.renumber_loads(expr, lambda k: buffers[k - 1])  # before the substitution
    expr = ix.substitute(expr, subst)  # brings in the caller's loads (already buffer ids)
    return ranges.simplify(expr, ctx.extents)


def _guarded(gen, positions, shape, conds, fill, ctx):
    """gen at `positions`, or `fill` where a position is out of range or a condition holds.

    Where gen is a plain load from a buffer (a convolution's window gather, a pad) in a kernel
    whose innermost loop is long, the load happens only where the position is in range: a
    conditional load, which the vectorised loop does as one masked contiguous load.  Otherwise
    the positions are clamped and the value is computed everywhere; clamped indices are not
    affine, so gcc leaves such a loop scalar (ResNet-18's 32-wide im2col gathers ran 4x
    slower).  Not in a short innermost loop nor under a reduction's loops: gcc 12.2 unrolls
    those completely and vectorises the loop around them, and its masked loads there are
    wrong code (toolchain.py, tests/test_compiler_regressions.py)."""
    checks = list(conds)
    safe, unsafe = [], False
    for p, n in zip(positions, shape):
        if ranges.within(p, n, ctx.extents):
            safe.append(p)
            continue
        unsafe = True
        checks.append(ix.logical_or(ix.lt(p, 0), ix.ge(p, n)))
        safe.append(ix.clamp_index(p, n))
    if not checks:
        return gen(tuple(safe), ctx)
    bad = checks[0]
    for c in checks[1:]:
        bad = ix.logical_or(bad, c)
    ok = ix.eq(bad, 0)
    if unsafe and _long_innermost_loop(positions, ctx):
        direct = gen(tuple(positions), ctx)
        if direct.kind == "load" and scalar.load_condition(direct) is None and \
                not any(ix.loads_used(e) for e in direct.data[1]):
            return scalar.guard(ok, scalar.load(direct.data[0], direct.data[1], direct.dtype,
                                                only_if=ok), fill)
    return scalar.guard(ok, gen(tuple(safe), ctx), fill)


# gcc unrolls loops of up to 16 iterations completely (its max-completely-peel-times): loads
# under a condition go only into longer innermost loops (see _guarded; schedule.py's scatters)
PEELED_MAX = 16


def _long_innermost_loop(positions, ctx) -> bool:
    """Do `positions` read only the kernel's own axes, in a kernel whose innermost loop is
    longer than gcc unrolls completely (or varies between calls)?"""
    if ctx.rank == 0 or any(a >= ctx.rank for p in positions for a in ix.indices_used(p)):
        return False
    inner = ctx.extents[ctx.rank - 1]
    return is_dynamic(inner) or inner > PEELED_MAX


def _ravel(idx, shape):
    flat, stride = ix.ZERO, 1
    for i, n in reversed(list(zip(idx, shape))):
        flat = flat + i * stride if n != 1 else flat
        stride *= n
    return flat


def _unravel(flat, shape):
    if 0 in shape:   # no element to find: nothing reads a value with zero elements
        return [ix.ZERO] * len(shape)
    out, stride = [], 1
    strides = []
    for n in reversed(shape):
        strides.append(stride)
        stride *= n
    strides.reverse()
    for k, (n, s) in enumerate(zip(shape, strides)):
        if n == 1:
            out.append(ix.ZERO)
            continue
        p = flat // s if s != 1 else flat
        if k > 0:
            p = p % n
        out.append(p)
    return out
