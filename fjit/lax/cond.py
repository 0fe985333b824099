"""Conditionals as one higher-order primitive: `cond` and `switch`.

    outs = cond[branches] index consts... operands...

`branches` is a tuple of closed Programs that all take the same inputs and return the same
types; the int32 scalar `index` (clamped into range) picks the one that runs.  Values the
branch functions close over become leading operands shared by every branch.  `cond` is the
two-branch case (index 0 is false_fun, 1 is true_fun), as in JAX.

Transformations re-interpret the branches and bind `cond` again: jvp differentiates every
branch (zero tangents made explicit so the branches agree), transposition transposes every
branch (the index is never linear), vmap batches every branch or, when the index itself is
batched, runs them all and selects per lane.  Partial evaluation runs the known part of every
branch in one known `cond` and stages the rest; branches save different residuals, so each
known branch returns the union (zeros for the ones it does not make).

The helpers at the top are shared with `while_loop`.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import dtypes
from .. import lax  # the package's functions, looked up at call time (it imports this module)
from ..array import Array, aval_of, concrete_operand
from ..config import config
from ..core import (Eqn, Primitive, Program, Tracer, Var, current_trace, eval_program,
                    evaluate_reference, set_current_trace, type_error)
from ..errors import FjitTypeError, FjitValueError
from ..interpreters import ad, batching
from ..interpreters.partial_eval import (DebugInfo, StagingTrace, dce_program, dce_rules,
                                         param_program, partial_eval_program,
                                         partial_eval_program_rules, partial_eval_rules,
                                         trace_to_program)
from ..tree_util import keystr, tree_flatten, tree_unflatten, treedef_paths
from ..typecheck import typecheck


# --- helpers shared with while_loop -----------------------------------------------------------

def leaf_paths(treedef, prefix: str) -> list[str]:
    """Every leaf's path in JAX's keystr style (`init_val[0]['w'].field`), for messages."""
    return [prefix + keystr(path) for path in treedef_paths(treedef)]


def flatten_args(opname: str, what: str, tree):
    """(leaves, treedef, avals) of the array arguments of a control-flow function."""
    leaves, treedef = tree_flatten(tree)
    avals = []
    for path, leaf in zip(leaf_paths(treedef, what), leaves):
        try:
            avals.append(aval_of(leaf))
        except TypeError:
            raise FjitTypeError(f"{opname}: {path} is a {type(leaf).__name__}, not an array") \
                from None
    return leaves, treedef, avals


def trace_closed(fun, flat_fun, avals, opname):
    """Trace `flat_fun(*leaves)` (a wrapper of the user's `fun`) into a Program whose
    closed-over values are leading inputs: (program, those values, output treedef)."""
    program, out_tree = trace_to_program(flat_fun, avals, DebugInfo(opname, fun))
    closed, consts = program.closure_convert()
    return closed, consts, out_tree


def share_consts(traced):
    """[(program, consts)] -> (programs that all take every const first, the consts): the
    branches of one primitive must take the same inputs."""
    consts, slot_of = [], {}
    for _, values in traced:
        for c in values:
            if id(c) not in slot_of:
                slot_of[id(c)] = len(consts)
                consts.append(c)
    programs = []
    for program, values in traced:
        own = dict(zip((slot_of[id(c)] for c in values), program.invars))
        const_vars = [own[s] if s in own else Var(aval_of(c)) for s, c in enumerate(consts)]
        programs.append(checked(Program(const_vars + program.invars[len(values):], [], [],
                                        program.eqns, program.outvars, program.name)))
    return programs, consts


def checked(program: Program) -> Program:
    """A Program built by hand, typechecked when the tests ask for it."""
    if config.check_programs:
        typecheck(program)
    return program


def make_program(fun, in_avals, purpose, program):
    """Trace `fun` (flat arrays in and out) into a sub-Program derived from `program`."""
    new, _ = trace_to_program(fun, in_avals, DebugInfo(purpose, ad._Named(program.name or
                                                                         "program")))
    return param_program(new)


def keep_inputs(program: Program, keep) -> Program:
    """`program` without the inputs `keep` rules out (none of which it may read)."""
    if all(keep):
        return program
    return checked(Program([v for v, k in zip(program.invars, keep) if k], program.constvars,
                           program.consts, program.eqns, program.outvars, program.name))


def same_type(a, b) -> bool:
    """Shape and dtype agree (weak types may differ: they only steer promotion)."""
    return a.shape == b.shape and a.dtype == b.dtype


def jvp_call(program, nonzero, instantiate, primals, tangents):
    """Evaluate `program`'s jvp on the current trace: (outputs, tangents of the outputs that
    `instantiate` asks for, zeros where they are symbolic)."""
    tangents = iter(tangents)
    full = [next(tangents) if nz else ad.Zero(ad.tangent_aval(v.aval))
            for v, nz in zip(program.invars, nonzero)]
    outs, out_tangents = ad.jvp_flat(lambda *xs: eval_program(program, *xs), list(primals),
                                     full)
    kept = []
    for t, inst, v in zip(out_tangents, instantiate, program.outvars):
        if inst:
            kept.append(ad.zeros_like_aval(ad.tangent_aval(v.aval)) if isinstance(t, ad.Zero)
                        else t)
        elif not isinstance(t, ad.Zero):
            raise AssertionError("internal error: a non-zero tangent was dropped")
    return list(outs), kept


def batch_forced(program, in_dims, axis_size, out_batched):
    """`program` batched at `in_dims`, with output k batched at 0 iff out_batched[k]."""
    def compute():
        def fun(*args):
            outs, dims = batching.batch_flat(lambda *xs: eval_program(program, *xs),
                                             list(args), in_dims, axis_size)
            return [batching.move_batch_dim(o, d, 0 if b else None, axis_size)
                    for o, d, b in zip(outs, dims, out_batched)]
        avals = [a if d is None else a.update(shape=a.shape[:d] + (axis_size,) + a.shape[d:])
                 for a, d in zip(program.in_avals, in_dims)]
        return make_program(fun, avals, "vmap", program)
    return program.cached(("batch_forced", tuple(in_dims), axis_size, tuple(out_batched)),
                  compute)


def batched_outputs(program, in_dims, axis_size):
    """Which outputs of `program` depend on the batched inputs."""
    return [d is not None for d in batching.batch_program(program, in_dims, axis_size)[1]]


# --- the primitive ----------------------------------------------------------------------------

class CondPrimitive(Primitive):
    def __init__(self):
        super().__init__("cond", "control", multiple_results=True)

    def abstract_eval(self, index, *avals, branches):
        if not branches:
            raise type_error("cond", "needs at least one branch")
        if index.shape != () or index.dtype != dtypes.int32:
            raise type_error("cond", f"the branch index must be an i32 scalar, got "
                             f"{index.str_short()}", index, *avals)
        first = branches[0]
        for k, branch in enumerate(branches):
            if len(branch.invars) != len(avals):
                raise type_error("cond", f"branch {k} takes {len(branch.invars)} operands, got "
                                 f"{len(avals)}", index, *avals)
            for j, (got, want) in enumerate(zip(avals, branch.in_avals)):
                if not same_type(got, want):
                    raise type_error("cond", f"operand {j} is {got.str_short()}, branch {k} "
                                     f"expects {want.str_short()}", index, *avals)
            if len(branch.outvars) != len(first.outvars) or not all(
                    map(same_type, branch.out_avals, first.out_avals)):
                raise type_error("cond", f"branch {k} returns "
                                 f"{_types(branch.out_avals)}, branch 0 returns "
                                 f"{_types(first.out_avals)}")
        return [a.update(weak_type=all(b.outvars[j].aval.weak_type for b in branches))
                for j, a in enumerate(first.out_avals)]

    def impl(self, index, *values, branches):
        k = min(max(int(index), 0), len(branches) - 1)
        return evaluate_reference(branches[k], *values)

    def format_params(self, params):
        return {f"branch{k}": b for k, b in enumerate(params["branches"])}


def _types(avals):
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


cond_p = CondPrimitive()


# --- user API ---------------------------------------------------------------------------------

def cond(pred, true_fun, false_fun, *operands):
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, with a traced `pred`.

    `pred` is a scalar: bool, or a number compared with 0.  Both functions are traced (with
    the operands' types) and must return the same pytree of the same shapes and dtypes.
    """
    if not (callable(true_fun) and callable(false_fun)):
        raise FjitTypeError("cond: true_fun and false_fun must be callable")
    if pred is None:
        raise FjitTypeError("cond: the predicate is None")
    pred = _scalar_operand("cond", "the predicate", pred)
    dtype = pred.aval.dtype
    if not dtypes.is_bool(dtype):
        if not (dtypes.is_int(dtype) or dtypes.is_float(dtype)):
            raise FjitTypeError(f"cond: the predicate must be boolean or a number, got "
                                f"{pred.aval.str_short()}")
        pred = lax.ne(pred, 0)
    index = lax.convert_element_type(pred, np.int32)
    return _branch_call("cond", index, (false_fun, true_fun), ("false_fun", "true_fun"),
                        operands, compare=[(1, 0)])


def switch(index, branches, *operands):
    """`branches[clamp(0, index, len(branches) - 1)](*operands)` with a traced `index`."""
    try:
        branches = tuple(branches)
    except TypeError:
        raise FjitTypeError("switch: branches must be a sequence of callables") from None
    if not all(callable(b) for b in branches):
        raise FjitTypeError("switch: branches must be a sequence of callables")
    index = _scalar_operand("switch", "the branch index", index)
    if not dtypes.is_int(index.aval.dtype):
        raise FjitTypeError(f"switch: the branch index must be an integer, got "
                            f"{index.aval.str_short()}")
    if not branches:
        raise FjitValueError("switch: empty branch sequence")
    if len(branches) == 1:
        return branches[0](*operands)
    index = lax.clamp(0, lax.convert_element_type(index, np.int32), len(branches) - 1)
    names = tuple(f"branch {k}" for k in range(len(branches)))
    return _branch_call("switch", index, branches, names, operands,
                        compare=[(0, k) for k in range(1, len(branches))])


def _scalar_operand(opname, what, x):
    if isinstance(x, (list, tuple)):
        raise FjitTypeError(f"{opname}: {what} must be a scalar, got a {type(x).__name__}")
    if not isinstance(x, (Array, Tracer)):
        try:
            x = concrete_operand(x, opname)
        except TypeError:
            raise FjitTypeError(f"{opname}: {what} must be a scalar array, got "
                                f"{type(x).__name__}") from None
    if x.aval.shape != ():
        raise FjitTypeError(f"{opname}: {what} must be a scalar, got shape {x.aval.shape}")
    return x


def _branch_call(opname, index, funs, names, operands, compare):
    leaves, in_tree, avals = flatten_args(opname, "operands", operands)
    traced, out_trees = [], []
    for fun in funs:
        program, consts, out_tree = trace_closed(
            fun, lambda *xs, fun=fun: fun(*tree_unflatten(in_tree, xs)), avals, opname)
        traced.append((program, consts))
        out_trees.append(out_tree)
    for a, b in compare:
        _check_same_outputs(opname, names[a], names[b], out_trees[a], out_trees[b],
                            traced[a][0].out_avals, traced[b][0].out_avals)
    programs, consts = share_consts(traced)
    if current_trace().evaluates_eagerly:  # run the chosen branch only
        k = min(max(int(index), 0), len(programs) - 1)
        outs = eval_program(programs[k], *consts, *map(concrete_operand, leaves))
        outs = [_with_type(o, a) for o, a in
                zip(outs, cond_p.abstract_eval(index.aval, *programs[k].in_avals,
                                               branches=tuple(programs)))]
    else:
        outs = cond_p.bind(index, *consts, *leaves, branches=tuple(programs))
    return tree_unflatten(out_trees[0], outs)


def _with_type(x, aval):
    if x.aval.weak_type != aval.weak_type:
        return lax.convert_element_type(x, aval.dtype, weak_type=aval.weak_type)
    return x


def _check_same_outputs(opname, name_a, name_b, tree_a, tree_b, avals_a, avals_b):
    if tree_a != tree_b:
        raise FjitTypeError(f"{opname}: {name_a} and {name_b} must return the same pytree "
                            f"structure, got {tree_a} and {tree_b}")
    for path, a, b in zip(leaf_paths(tree_a, "output"), avals_a, avals_b):
        if not same_type(a, b):
            raise FjitTypeError(f"{opname}: {name_a} and {name_b} must return the same types, "
                                f"but at {path} {name_a} returns {a.str_short()} and "
                                f"{name_b} returns {b.str_short()}")


# --- jvp and transpose ------------------------------------------------------------------------

def _cond_jvp(primals, tangents, branches):
    index, ops = primals[0], primals[1:]
    nonzero = [not isinstance(t, ad.Zero) for t in tangents[1:]]
    out_nz = [any(nz) for nz in zip(*(ad.jvp_program(b, nonzero)[1] for b in branches))]
    new = tuple(b.cached(("cond_jvp", tuple(nonzero), tuple(out_nz)),
                       lambda b=b: _jvp_branch(b, nonzero, out_nz)) for b in branches)
    dots = [t for t in tangents[1:] if not isinstance(t, ad.Zero)]
    outs = cond_p.bind(index, *ops, *dots, branches=new)
    n = len(branches[0].outvars)
    out_dots = iter(outs[n:])
    return outs[:n], [next(out_dots) if nz else ad.Zero(a)
                      for nz, a in zip(out_nz, branches[0].out_avals)]


def _jvp_branch(program, nonzero, instantiate):
    n = len(program.invars)

    def fun(*args):
        outs, dots = jvp_call(program, nonzero, instantiate, args[:n], args[n:])
        return outs + dots
    avals = program.in_avals + [ad.tangent_aval(a) for a, nz in zip(program.in_avals, nonzero)
                                if nz]
    return make_program(fun, avals, "jvp", program)


def _cond_transpose(cts, index, *ops, branches):
    if ad.is_linear(index):
        raise FjitTypeError("cond: the branch index cannot be linear")
    linear = [ad.is_linear(x) for x in ops]
    transposed = tuple(ad.transpose_program(b, linear) for b in branches)
    cts = [ad.zeros_like_aval(ad.tangent_aval(a)) if isinstance(c, ad.Zero) else c
           for c, a in zip(cts, branches[0].out_avals)]
    outs = iter(cond_p.bind(index, *[x for x in ops if not ad.is_linear(x)], *cts,
                            branches=transposed))
    return [None] + [next(outs) if lin else None for lin in linear]


# --- vmap -------------------------------------------------------------------------------------

def _cond_batch(axis_size, values, dims, branches):
    index, ops = values[0], values[1:]
    op_dims = dims[1:]
    if dims[0] is None:  # one branch for every lane: batch each branch
        out_batched = [any(bs) for bs in zip(*(batched_outputs(b, op_dims, axis_size)
                                               for b in branches))]
        new = tuple(batch_forced(b, op_dims, axis_size, out_batched) for b in branches)
        outs = cond_p.bind(index, *ops, branches=new)
        return outs, [0 if b else None for b in out_batched]
    return _select_branches(axis_size, index, dims[0], ops, op_dims, branches)


def _select_branches(axis_size, index, index_dim, ops, op_dims, branches):
    """A batched index: every branch runs on every lane and each lane selects its result
    (JAX converts to select too).  A branch sees its operands through stop_gradient in the
    lanes that do not take it, so its derivative there (a NaN, say) cannot leak out."""
    index = lax.clamp(0, batching.moveaxis(index, index_dim, 0), len(branches) - 1)
    ops = [batching.bdim_at_front(x, d, axis_size) for x, d in zip(ops, op_dims)]
    n_out = len(branches[0].outvars)
    result = None
    for k, branch in enumerate(branches):
        batched = batch_forced(branch, [0] * len(ops), axis_size, [True] * n_out)
        taken = lax.eq(index, k)
        guarded = [_select_lanes(taken, x, lax.stop_gradient(x))
                   if ad.is_differentiable(aval_of(x)) else x for x in ops]
        outs = eval_program(batched, *guarded)
        result = outs if result is None else [_select_lanes(taken, o, r)
                                              for o, r in zip(outs, result)]
    return result, [0] * n_out


def _select_lanes(lanes, on_true, on_false):
    shape = aval_of(on_true).shape
    return lax.select(lax.broadcast_in_dim(lanes, shape, (0,)), on_true, on_false)


# --- partial evaluation -----------------------------------------------------------------------

def _split_branches(branches, ops_unknown, policy):
    """(known branches, unknown branches, out_unknown, number of residuals).

    known:   known operands -> (known outputs..., residuals...)
    unknown: (residuals..., unknown operands...) -> unknown outputs
    An output unknown in any branch is unknown in all: a branch that knows it passes it on
    as a residual.  The residual list is the union over branches (merged by type); each
    known branch returns zeros for the residuals it does not make.
    """
    key = ("cond_split", branches, tuple(ops_unknown), policy)
    return branches[0].cached(key, lambda: _compute_split(branches, ops_unknown, policy))


def _compute_split(branches, ops_unknown, policy):
    splits = [partial_eval_program(b, ops_unknown, policy) for b in branches]
    out_uk = [any(us) for us in zip(*(s[2] for s in splits))]
    plans = []
    for known, unknown, b_uk, num_res in splits:
        known_pos = [j for j, u in enumerate(b_uk) if not u]
        forced = [j for j in known_pos if out_uk[j]]
        res_avals = [v.aval for v in unknown.invars[:num_res]]
        res_avals += [known.outvars[known_pos.index(j)].aval for j in forced]
        plans.append((known, unknown, b_uk, num_res, known_pos, forced, res_avals))
    slots, slot_index = _merge_residuals([p[-1] for p in plans])
    known_avals = [a for a, u in zip(branches[0].in_avals, ops_unknown) if not u]
    unknown_avals = slots + [a for a, u in zip(branches[0].in_avals, ops_unknown) if u]
    known_branches, unknown_branches = [], []
    for plan, where in zip(plans, slot_index):
        known_branches.append(make_program(_known_branch(plan, where, slots, out_uk),
                                           known_avals, "partial_eval", plan[0]))
        unknown_branches.append(make_program(_unknown_branch(plan, where, len(slots), out_uk),
                                             unknown_avals, "partial_eval", plan[1]))
    return tuple(known_branches), tuple(unknown_branches), out_uk, len(slots)


def _merge_residuals(per_branch):
    """Residual slots shared by the branches: the k-th residual of one type in a branch
    reuses the k-th slot of that type.  Returns (slot avals, per branch: its slots)."""
    slots, slot_of, where = [], {}, []
    for avals in per_branch:
        seen, mine = collections.Counter(), []
        for a in avals:
            key = (a, seen[a])
            seen[a] += 1
            if key not in slot_of:
                slot_of[key] = len(slots)
                slots.append(a)
            mine.append(slot_of[key])
        where.append(mine)
    return slots, where


def _known_branch(plan, where, slots, out_uk):
    known, _, _, _, known_pos, forced, _ = plan

    def fun(*ops):
        outs = eval_program(known, *ops)
        by_pos = dict(zip(known_pos, outs))
        mine = list(outs[len(known_pos):]) + [by_pos[j] for j in forced]
        res = [None] * len(slots)
        for s, value in zip(where, mine):
            res[s] = value
        res = [ad.zeros_like_aval(a) if r is None else r for r, a in zip(res, slots)]
        return [by_pos[j] for j, u in enumerate(out_uk) if not u] + res
    return fun


def _unknown_branch(plan, where, num_slots, out_uk):
    _, unknown, b_uk, num_res, _, _, _ = plan

    def fun(*args):
        mine = [args[s] for s in where]
        outs = iter(eval_program(unknown, *mine[:num_res], *args[num_slots:]))
        passed = iter(mine[num_res:])
        return [next(outs) if b_uk[j] else next(passed) for j, u in enumerate(out_uk) if u]
    return fun


def _cond_partial_eval(trace, args, params):
    branches = params["branches"]
    unknown = [trace.is_unknown(a) for a in args]
    if unknown[0]:  # an unknown index: the whole cond waits
        return StagingTrace.process_primitive(trace, cond_p, args, params)
    known_br, unknown_br, out_uk, num_res = _split_branches(branches, unknown[1:], None)
    index, ops = args[0], args[1:]
    known_outs = []
    if known_br[0].outvars:
        with set_current_trace(trace.parent):
            known_outs = cond_p.bind(index, *[x for x, u in zip(ops, unknown[1:]) if not u],
                                     branches=known_br)
    n_known = len(known_outs) - num_res
    staged = []
    if any(out_uk):
        staged = StagingTrace.process_primitive(
            trace, cond_p, [index, *known_outs[n_known:],
                            *[x for x, u in zip(ops, unknown[1:]) if u]],
            dict(params, branches=unknown_br))
    known_iter, staged_iter = iter(known_outs[:n_known]), iter(staged)
    return [next(staged_iter) if u else next(known_iter) for u in out_uk]


def _cond_partial_eval_program(eqn, unknown, policy):
    if unknown[0]:
        return None, eqn, [True] * len(eqn.outvars)
    known_br, unknown_br, out_uk, num_res = _split_branches(eqn.params["branches"],
                                                            unknown[1:], policy)
    residuals = [Var(a) for a in unknown_br[0].in_avals[:num_res]]
    index, ops = eqn.invars[0], eqn.invars[1:]
    known_eqn = Eqn(cond_p, [index] + [x for x, u in zip(ops, unknown[1:]) if not u],
                    dict(eqn.params, branches=known_br),
                    [v for v, u in zip(eqn.outvars, out_uk) if not u] + residuals,
                    eqn.source_info)
    unknown_eqn = Eqn(cond_p, [index] + residuals + [x for x, u in zip(ops, unknown[1:]) if u],
                      dict(eqn.params, branches=unknown_br),
                      [v for v, u in zip(eqn.outvars, out_uk) if u], eqn.source_info)
    return known_eqn, unknown_eqn, out_uk


# --- dead-code elimination --------------------------------------------------------------------

def _cond_dce(eqn, used_outputs):
    if not any(used_outputs):
        return None, [False] * len(eqn.invars)
    branches = eqn.params["branches"]
    new, used = branches[0].cached(("cond_dce", branches, tuple(used_outputs)),
                       lambda: _dce_branches(branches, used_outputs))
    if new is branches:
        return eqn, [True] * len(eqn.invars)
    new_eqn = Eqn(cond_p, [eqn.invars[0]] + [v for v, u in zip(eqn.invars[1:], used) if u],
                  dict(eqn.params, branches=new),
                  [v for v, u in zip(eqn.outvars, used_outputs) if u], eqn.source_info)
    return new_eqn, [True] + used


def _dce_branches(branches, used_outputs):
    pruned = [dce_program(b, used_outputs) for b in branches]
    used = [any(us) for us in zip(*(p[1] for p in pruned))]
    if all(used_outputs) and all(used):
        return branches, used
    return tuple(keep_inputs(p, used) for p, _ in pruned), used


ad.jvp_rules[cond_p] = _cond_jvp
ad.transpose_rules[cond_p] = _cond_transpose
batching.batching_rules[cond_p] = _cond_batch
partial_eval_rules[cond_p] = _cond_partial_eval
partial_eval_program_rules[cond_p] = _cond_partial_eval_program
dce_rules[cond_p] = _cond_dce

__all__ = ["cond", "switch", "cond_p"]
