"""Contractions whose operands are laid out so that no GEMM can read them become GEMMs over
transposed copies.

A convolution's weight gradient is dW[o, c] = sum over (n, s) of dY[n, o, s] * P[n, c, s]:
its contracted dims (n, s) are not contiguous in dY, so fusion's GEMM recognition (which
only reads operands in place, possibly transposed) leaves it to a loop nest that runs at a
few GFLOP/s.  Copying dY to (o, n, s) and P to (c, n, s) costs two passes over memory and
then one GEMM does the work.  This pass rewrites such a reduce_sum(mul(broadcast a,
broadcast b)) into

    a' = transpose a     to [batch][free of a][contracted]
    b' = transpose b     to [batch][free of b][contracted]
    c  = reduce_sum(mul(broadcast a', broadcast b'))           -- a GEMM by construction
    out = transpose c    back to the original output order     (when it differs)

only when the arithmetic outweighs the copies (each element copied takes part in at least
`Target.copy_ratio` multiply-adds).  Everything stays meta-ops: the copies are reindex equations.
"""
from __future__ import annotations

import math
from collections import defaultdict

from .. import lax
from ..core import Var
from ..interpreters.partial_eval import DebugInfo, trace_to_program
from .flatten import FlatProgram, flatten
from . import fusion
from .dynamic import for_large

def _plan(space, axes, dims_a, dims_b):
    """Dim roles, or None when some dim is in neither operand (a pure broadcast)."""
    batch, free_a, free_b, contracted = [], [], [], []
    for d in range(len(space)):
        in_a, in_b, reduced = d in dims_a, d in dims_b, d in axes
        if in_a and in_b:
            (contracted if reduced else batch).append(d)
        elif in_a and not reduced:
            free_a.append(d)
        elif in_b and not reduced:
            free_b.append(d)
        else:
            return None
    return batch, free_a, free_b, contracted


def _rewrite(eqn, a, dims_a, b, dims_b, mul, target):
    space = mul.outvars[0].aval.shape
    axes = set(eqn.params["axes"])
    roles = _plan(space, axes, dims_a, dims_b)
    if roles is None:
        return None
    batch, free_a, free_b, contracted = roles
    if not contracted:
        return None
    macs = math.prod(space)
    copies = a.aval.size + b.aval.size + eqn.outvars[0].aval.size
    if for_large(lambda m, c: m - target.copy_ratio * c, macs, copies) < 0:
        return None
    # [batch][M][N][K]: both copies end in the contracted dims, which the GEMM reads
    # contiguously (measured: for a LeNet weight gradient, M=6, N=25, K=50176, this order
    # is 5x faster than [M][K] @ [K][N]).
    canon = batch + free_a + free_b + contracted
    where = {d: k for k, d in enumerate(canon)}
    a_axes = sorted(dims_a, key=where.get)
    b_axes = sorted(dims_b, key=where.get)
    perm_a = [dims_a.index(d) for d in a_axes]
    perm_b = [dims_b.index(d) for d in b_axes]
    out_dims = [d for d in range(len(space)) if d not in axes]          # original order
    canon_out = batch + free_a + free_b
    back = [canon_out.index(d) for d in out_dims]

    def contraction(x, y):
        x = lax.transpose(x, perm_a) if perm_a != sorted(perm_a) else x
        y = lax.transpose(y, perm_b) if perm_b != sorted(perm_b) else y
        shape = tuple(space[d] for d in canon)
        xb = lax.broadcast_in_dim(x, shape, tuple(where[d] for d in a_axes))
        yb = lax.broadcast_in_dim(y, shape, tuple(where[d] for d in b_axes))
        c = lax.reduce_sum(lax.mul(xb, yb), tuple(where[d] for d in contracted))
        return lax.transpose(c, back) if back != sorted(back) else c

    avals = [a.aval.strip_weak_type(), b.aval.strip_weak_type()]
    program, _ = trace_to_program(contraction, avals, DebugInfo("contraction", contraction))
    return flatten(program)


def canonicalize(flat: FlatProgram, target) -> FlatProgram:
    producer, uses = {}, defaultdict(int)
    for e in flat.eqns:
        for v in e.outvars:
            producer[v] = e
        for x in e.invars:
            if isinstance(x, Var):
                uses[x] += 1
    for v in flat.outvars:
        if isinstance(v, Var):
            uses[v] += 1
    gemms = fusion.find_gemms(flat, producer, uses, target)
    replaced = {}  # id(reduce eqn) -> new eqns producing its outvar
    dropped = set()
    for e in flat.eqns:
        if e in gemms:
            continue
        found = fusion.contraction_operands(e, producer, uses)
        if found is None:
            continue
        mul, ((a, dims_a), (b, dims_b)) = found
        sub = _rewrite(e, a, dims_a, b, dims_b, mul, target)
        if sub is None:
            continue
        env = {sub.invars[0]: a, sub.invars[1]: b, sub.outvars[0]: e.outvars[0]}
        new_eqns = []
        for s in sub.eqns:
            for v in s.outvars:
                env.setdefault(v, Var(v.aval))
            new_eqns.append(type(s)(s.primitive, [env.get(x, x) for x in s.invars], s.params,
                                    [env[v] for v in s.outvars], e.source_info))
        replaced[id(e)] = new_eqns
        dropped.add(id(mul))
        dropped.update(id(producer[v]) for v in mul.invars if uses[v] == 1)
    if not replaced:
        return flat
    eqns = []
    for e in flat.eqns:
        if id(e) in dropped:
            continue
        eqns.extend(replaced.get(id(e), [e]))
    return FlatProgram(flat.invars, flat.constvars, flat.consts, eqns, flat.outvars,
                       flat.varying)
