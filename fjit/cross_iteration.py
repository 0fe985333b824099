"""Scan-over-iterations (cross-iteration fusion), the functional way: rotate a scan so the
element-wise work at the end of its body -- an optimizer's update `p - lr * g` -- runs at the
start of the next iteration, next to the first code that reads its result.

A body splits into a *head* (everything up to the values the update reads: the forward and
backward pass) and a *tail* (element-wise equations whose results are only carries, such as
the update).  The rotated loop carries, for each rotated carry, its previous value and the
head values its tail reads, plus a `first` flag:

    c_cur = first ? c_prev : tail(c_prev, v_prev)        # last iteration's update, done now
    v, other carries, ys = head(c_cur, x)
    carry out: (c_cur, v, first=False)

and after the loop the final tail runs once.  Every float operation is the one the original
loop does, in the same order, only placed in the next iteration (the `select` moves values
bit for bit), so results are identical; the compiler then sees the update next to its
consumers in one body.  `fjit.cross_iteration(f)` applies this to every scan `f` runs at top
level; `fjit.train_loop(step, state, batches, cross_iteration=True)` is the common case.
"""
from __future__ import annotations

import functools

import numpy as np

from . import lax
from .array import aval_of
from .core import Program, ShapedArray, Var, eval_program
from .interpreters.partial_eval import DebugInfo, param_program, trace_to_program
from .lax.loops import _Named, scan, scan_p
from .tree_util import tree_flatten, tree_unflatten

TAIL_FAMILIES = ("elementwise", "broadcast")


def _split(body: Program, nc: int, nk: int):
    """(tail eqns, rotated carry positions, v vars) or None when nothing can rotate."""
    carry_in = body.invars[nc:nc + nk]
    xs_in = set(body.invars[nc + nk:])
    out_pos = {}
    for k, v in enumerate(body.outvars):
        if isinstance(v, Var):
            out_pos.setdefault(v, []).append(k)
    consumers = {}
    for e in body.eqns:
        for a in e.invars:
            if isinstance(a, Var):
                consumers.setdefault(a, []).append(e)
    tail = set()
    changed = True
    while changed:   # the largest set of element-wise eqns feeding only each other and carries
        changed = False
        for e in reversed(body.eqns):
            if id(e) in tail or e.primitive.family not in TAIL_FAMILIES:
                continue
            if any(isinstance(a, Var) and a in xs_in for a in e.invars):
                continue   # reading x_i one iteration late would be wrong
            ok = True
            for v in e.outvars:
                if any(k >= nk for k in out_pos.get(v, [])):
                    ok = False      # a ys output: stays in the head
                if any(id(c) not in tail for c in consumers.get(v, [])):
                    ok = False
                if not out_pos.get(v) and not consumers.get(v):
                    ok = False
            if ok:
                tail.add(id(e))
                changed = True
    # a tail may read the carries it rotates, consts, literals and head values -- not other
    # carries (they would be read one iteration late): drop eqns that do, to a fixed point
    while True:
        tail_eqns = [e for e in body.eqns if id(e) in tail]
        produced = {v for e in tail_eqns for v in e.outvars}
        rotated = sorted({k for k, v in enumerate(body.outvars[:nk])
                          if isinstance(v, Var) and v in produced})
        rotated_in = {carry_in[k] for k in rotated}
        bad = [e for e in tail_eqns if any(isinstance(a, Var) and a in carry_in and
                                           a not in rotated_in for a in e.invars)]
        if not bad:
            break
        for e in bad:
            tail.discard(id(e))
        # eqns feeding a removed one are no longer tail-only either
        changed = True
        while changed:
            changed = False
            for e in body.eqns:
                if id(e) in tail and any(id(c) not in tail for v in e.outvars
                                         for c in consumers.get(v, [])):
                    tail.discard(id(e))
                    changed = True
    if not rotated:
        return None
    head_vars = set(body.invars) | {v for e in body.eqns if id(e) not in tail
                                    for v in e.outvars}
    v_vars = []
    for e in tail_eqns:
        for a in e.invars:
            if isinstance(a, Var) and a in head_vars and a not in body.invars and \
                    a not in v_vars:
                v_vars.append(a)
    return tail_eqns, rotated, v_vars


def rotate_scan(params, operands):
    """The outputs of scan[params](operands), computed by the rotated loop (or the plain
    one when its body has no tail to rotate)."""
    body, nc, nk = params["program"], params["num_consts"], params["num_carry"]
    split = _split(body, nc, nk)
    if split is None:
        return scan_p.bind(*operands, **params)
    tail_eqns, rotated, v_vars = split
    consts, carry_in = body.invars[:nc], body.invars[nc:nc + nk]
    tail_prog = Program(consts + [carry_in[k] for k in rotated] + v_vars, body.constvars,
                        body.consts, tail_eqns, [body.outvars[k] for k in rotated])
    tail_ids = {id(e) for e in tail_eqns}
    others = [k for k in range(nk) if k not in rotated]
    head_prog = Program(list(body.invars), body.constvars, body.consts,
                        [e for e in body.eqns if id(e) not in tail_ids],
                        list(v_vars) + [body.outvars[k] for k in others] +
                        list(body.outvars[nk:]))

    def rotated_body(*args):
        c = list(args[:nc])
        carry = list(args[nc:nc + nk])
        vs = list(args[nc + nk:nc + nk + len(v_vars)])
        first = args[nc + nk + len(v_vars)]
        xs = list(args[nc + nk + len(v_vars) + 1:])
        updated = eval_program(tail_prog, *c, *[carry[k] for k in rotated], *vs)
        current = list(carry)
        for k, new in zip(rotated, updated):
            current[k] = lax.select(lax.broadcast_in_dim(first, new.shape, ()), carry[k], new)
        outs = eval_program(head_prog, *c, *current, *xs)
        new_vs, rest = outs[:len(v_vars)], outs[len(v_vars):]
        new_carry = list(current)
        for k, value in zip(others, rest[:len(others)]):
            new_carry[k] = value
        false = lax.convert_element_type(False, first.dtype)
        return new_carry + list(new_vs) + [false] + list(rest[len(others):])

    bool_aval = ShapedArray((), np.dtype(bool))
    avals = (body.in_avals[:nc + nk] + [v.aval for v in v_vars] + [bool_aval] +
             body.in_avals[nc + nk:])
    program, _ = trace_to_program(rotated_body, avals, DebugInfo(
        "cross_iteration", _Named(params["name"])))
    closed, captured = program.closure_convert()
    o_consts, o_carry, o_xs = (operands[:nc], operands[nc:nc + nk], operands[nc + nk:])
    v_init = [lax.full(v.aval.shape, 0, v.aval.dtype) for v in v_vars]
    outs = scan_p.bind(*captured, *o_consts, *o_carry, *v_init, lax.full((), True, bool), *o_xs,
                       **dict(params, program=param_program(closed),
                              num_consts=len(captured) + nc,
                              num_carry=nk + len(v_vars) + 1))
    carry_out = list(outs[:nk])
    v_out = outs[nk:nk + len(v_vars)]
    first_out = outs[nk + len(v_vars)]
    final = eval_program(tail_prog, *o_consts, *[carry_out[k] for k in rotated], *v_out)
    for k, new in zip(rotated, final):
        carry_out[k] = lax.select(lax.broadcast_in_dim(first_out, new.shape, ()), carry_out[k],
                                  new)
    return carry_out + list(outs[nk + len(v_vars) + 1:])


def cross_iteration(fun):
    """`fun` with every scan it runs rotated for cross-iteration fusion (module docstring).
    Composes with jit, grad and vmap like any transformation: it traces `fun`, rewrites the
    Program's scans and evaluates the result under whatever trace is current."""

    @functools.wraps(fun)
    def rotated(*args):
        leaves, in_tree = tree_flatten(args)
        program, out_tree = trace_to_program(
            lambda *flat: fun(*tree_unflatten(in_tree, flat)), [aval_of(x) for x in leaves],
            DebugInfo("cross_iteration", fun))
        outs = eval_program(program, *leaves, rules={scan_p: rotate_scan})
        return tree_unflatten(out_tree, outs)
    return rotated


def train_loop(step, state, batches, *, cross_iteration=False, unroll=1):
    """Run `step(state, batch) -> (state, metrics)` over the leading axis of `batches` as one
    loop (a scan): returns (final state, stacked metrics).  With cross_iteration=True the
    loop is rotated so each step's update runs next to the next step's first use of it
    (same results, bit for bit).  Put it inside `jit`; vmap over it trains several models
    (seeds, hyperparameters) at once."""
    run = functools.partial(scan, step, unroll=unroll)
    if cross_iteration:
        return _rotating(run)(state, batches)
    return run(state, batches)


_rotating = cross_iteration   # train_loop's keyword shadows the name
