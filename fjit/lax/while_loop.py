"""`while_loop` as a higher-order primitive.

    carry_out... = while[cond_program, body_program, cond_nconsts, body_nconsts]
                       cond_consts... body_consts... carry...

`cond_program` maps (cond_consts..., carry...) to a bool scalar and `body_program` maps
(body_consts..., carry...) to the next carry, whose types never change.  The values the
functions close over are the consts.

Forward-mode differentiation carries the tangents along in the loop (cond sees primals only);
vmap batches the body, and when the predicate itself is batched the loop runs until every lane
is done, updating only the lanes still running.  Reverse mode is impossible: the trip count is
known only at run time, so nothing can store the iterations' residuals.  Partial evaluation
runs the known carries in a loop of their own and stages the whole loop for the unknown ones;
transposing that staged loop raises the error that says so.
"""
from __future__ import annotations

from .. import dtypes
from .. import lax  # the package's functions, looked up at call time (it imports this module)
from ..array import aval_of
from ..core import (Eqn, Primitive, Program, Var, eval_program, evaluate_reference,
                    set_current_trace, type_error)
from ..errors import FjitTypeError, FjitValueError
from ..interpreters import ad, batching
from ..interpreters.partial_eval import (StagingTrace, dce_program, dce_rules,
                                         partial_eval_program, partial_eval_program_rules,
                                         partial_eval_rules)
from ..tree_util import tree_unflatten
from .cond import (batch_forced, batched_outputs, checked, flatten_args, jvp_call,
                   keep_inputs, leaf_paths, make_program, same_type, trace_closed)


class WhilePrimitive(Primitive):
    def __init__(self):
        super().__init__("while", "control", multiple_results=True)

    def abstract_eval(self, *avals, cond_program, body_program, cond_nconsts, body_nconsts):
        carry = avals[cond_nconsts + body_nconsts:]
        cond_in = avals[:cond_nconsts] + carry
        body_in = avals[cond_nconsts:cond_nconsts + body_nconsts] + carry
        for what, program, want in (("cond", cond_program, cond_in),
                                    ("body", body_program, body_in)):
            if len(program.invars) != len(want) or not all(map(same_type, want,
                                                               program.in_avals)):
                raise type_error("while", f"the {what} Program takes "
                                 f"{_types(program.in_avals)}, the operands give "
                                 f"{_types(want)}", *avals)
        outs = cond_program.out_avals
        if len(outs) != 1 or outs[0].shape != () or not dtypes.is_bool(outs[0].dtype):
            raise type_error("while", f"the cond Program returns {_types(outs)}, not a bool "
                             "scalar", *avals)
        if len(body_program.outvars) != len(carry) or not all(
                map(same_type, body_program.out_avals, carry)):
            raise type_error("while", f"the body Program returns "
                             f"{_types(body_program.out_avals)} for the carry "
                             f"{_types(carry)}", *avals)
        return list(carry)

    def impl(self, *values, cond_program, body_program, cond_nconsts, body_nconsts):
        cond_consts = list(values[:cond_nconsts])
        body_consts = list(values[cond_nconsts:cond_nconsts + body_nconsts])
        carry = list(values[cond_nconsts + body_nconsts:])
        while bool(evaluate_reference(cond_program, *cond_consts, *carry)[0]):
            carry = evaluate_reference(body_program, *body_consts, *carry)
        return carry


def _types(avals):
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


while_p = WhilePrimitive()


# --- user API ---------------------------------------------------------------------------------

def while_loop(cond_fun, body_fun, init_val):
    """`val = init_val; while cond_fun(val): val = body_fun(val); return val`, staged.

    `cond_fun` must return a bool scalar; `body_fun` must return a value of init_val's
    pytree structure, shapes and dtypes (weakly typed leaves of init_val, such as Python
    numbers, take the dtype body_fun gives them, like JAX).  Forward-mode differentiable;
    reverse mode raises (the trip count is dynamic).
    """
    if not (callable(cond_fun) and callable(body_fun)):
        raise FjitTypeError("while_loop: cond_fun and body_fun must be callable")
    leaves, tree, avals = flatten_args("while_loop", "init_val", init_val)
    cond_prog, cond_consts, body_prog, body_consts, body_tree = _trace(cond_fun, body_fun,
                                                                       tree, avals)
    if body_tree == tree:
        promoted = _promote_weak(leaves, avals, body_prog.out_avals)
        if promoted is not None:  # retrace with the carry's settled types
            leaves, avals = promoted
            cond_prog, cond_consts, body_prog, body_consts, body_tree = _trace(
                cond_fun, body_fun, tree, avals)
    _check_body(tree, body_tree, avals, body_prog.out_avals)
    outs = while_p.bind(*cond_consts, *body_consts, *leaves, cond_program=cond_prog,
                        body_program=body_prog, cond_nconsts=len(cond_consts),
                        body_nconsts=len(body_consts))
    return tree_unflatten(tree, outs)


def _trace(cond_fun, body_fun, tree, avals):
    cond_prog, cond_consts, cond_tree = trace_closed(
        cond_fun, lambda *xs: cond_fun(tree_unflatten(tree, xs)), avals, "while_loop")
    outs = cond_prog.out_avals
    if cond_tree.node_type is not None or outs[0].shape != () \
            or not dtypes.is_bool(outs[0].dtype):
        got = _types(outs) if cond_tree.node_type is None else str(cond_tree)
        raise FjitTypeError(f"while_loop: cond_fun must return a boolean scalar, but got "
                            f"{got}")
    body_prog, body_consts, body_tree = trace_closed(
        body_fun, lambda *xs: body_fun(tree_unflatten(tree, xs)), avals, "while_loop")
    return cond_prog, cond_consts, body_prog, body_consts, body_tree


def _promote_weak(leaves, avals, out_avals):
    """Weakly typed carry leaves that body_fun returns with another type take that type:
    (new leaves, new avals), or None if nothing changes."""
    changed = False
    new_leaves, new_avals = list(leaves), list(avals)
    for k, (a, b) in enumerate(zip(avals, out_avals)):
        if a.weak_type and a.shape == b.shape and (a.dtype != b.dtype or not b.weak_type):
            new_leaves[k] = lax.convert_element_type(leaves[k], b.dtype, weak_type=b.weak_type)
            new_avals[k] = aval_of(new_leaves[k])
            changed = True
    return (new_leaves, new_avals) if changed else None


def _check_body(tree, body_tree, avals, out_avals):
    if body_tree != tree:
        raise FjitTypeError(f"while_loop: body_fun must return the carry's pytree structure "
                            f"{tree}, got {body_tree}")
    for path, a, b in zip(leaf_paths(tree, "init_val"), avals, out_avals):
        if not same_type(a, b):
            raise FjitTypeError(f"while_loop: body_fun must keep the carry's types, but at "
                                f"{path} init_val is {a.str_short()} and body_fun returns "
                                f"{b.str_short()}")


def _split(values, cond_nconsts, body_nconsts):
    n = cond_nconsts + body_nconsts
    return list(values[:cond_nconsts]), list(values[cond_nconsts:n]), list(values[n:])


# --- jvp and transpose ------------------------------------------------------------------------

def _while_jvp(primals, tangents, cond_program, body_program, cond_nconsts, body_nconsts):
    cc, bc, init = _split(primals, cond_nconsts, body_nconsts)
    _, bc_dot, init_dot = _split(tangents, cond_nconsts, body_nconsts)
    bc_nz = [not isinstance(t, ad.Zero) for t in bc_dot]
    carry_nz = [not isinstance(t, ad.Zero) for t in init_dot]
    while True:  # a carry whose tangent the body makes non-zero starts non-zero
        out_nz = ad.jvp_program(body_program, bc_nz + carry_nz)[1]
        new = [a or b for a, b in zip(carry_nz, out_nz)]
        if new == carry_nz:
            break
        carry_nz = new
    carry_avals = body_program.in_avals[body_nconsts:]
    if not any(carry_nz):
        outs = while_p.bind(*primals, cond_program=cond_program, body_program=body_program,
                            cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
        return outs, [ad.Zero(a) for a in carry_avals]
    dot_avals = [ad.tangent_aval(a) for a, nz in zip(carry_avals, carry_nz) if nz]
    new_cond = cond_program.cached(("while_jvp_cond", tuple(carry_nz)), lambda: checked(
        Program(cond_program.invars + [Var(a) for a in dot_avals], cond_program.constvars,
                cond_program.consts, cond_program.eqns, cond_program.outvars,
                cond_program.name)))
    new_body = body_program.cached(("while_jvp_body", tuple(bc_nz), tuple(carry_nz)),
                      lambda: _jvp_body(body_program, body_nconsts, bc_nz, carry_nz))
    bc_dots = [t for t in bc_dot if not isinstance(t, ad.Zero)]
    carry_dots = [ad.zeros_like_aval(ad.tangent_aval(aval_of(p))) if isinstance(t, ad.Zero)
                  else t for p, t, nz in zip(init, init_dot, carry_nz) if nz]
    outs = while_p.bind(*cc, *bc, *bc_dots, *init, *carry_dots, cond_program=new_cond,
                        body_program=new_body, cond_nconsts=cond_nconsts,
                        body_nconsts=body_nconsts + len(bc_dots))
    n = len(init)
    out_dots = iter(outs[n:])
    return outs[:n], [next(out_dots) if nz else ad.Zero(a)
                      for nz, a in zip(carry_nz, carry_avals)]


def _jvp_body(body, nconsts, bc_nz, carry_nz):
    """(consts, const tangents, carry, carry tangents) -> (carry, carry tangents)."""
    consts_avals, carry_avals = body.in_avals[:nconsts], body.in_avals[nconsts:]
    n_bd, n_carry = sum(bc_nz), len(carry_avals)

    def fun(*args):
        bc, bc_dots = args[:nconsts], args[nconsts:nconsts + n_bd]
        carry = args[nconsts + n_bd:nconsts + n_bd + n_carry]
        carry_dots = args[nconsts + n_bd + n_carry:]
        outs, dots = jvp_call(body, bc_nz + carry_nz, carry_nz, bc + carry,
                              bc_dots + carry_dots)
        return outs + dots
    avals = (consts_avals + [ad.tangent_aval(a) for a, nz in zip(consts_avals, bc_nz) if nz]
             + carry_avals + [ad.tangent_aval(a) for a, nz in zip(carry_avals, carry_nz) if nz])
    return make_program(fun, avals, "jvp", body)


def _while_transpose(cts, *args, **params):
    raise FjitValueError(
        "Reverse-mode differentiation does not work for fjit.lax.while_loop: its trip count "
        "is only known at run time, so the iterations cannot be stored for the backward "
        "pass. Use forward mode (jvp, jacfwd), or write the loop as fjit.lax.scan or "
        "fori_loop with a static trip count.")


# --- vmap -------------------------------------------------------------------------------------

def _while_batch(axis_size, values, dims, cond_program, body_program, cond_nconsts,
                 body_nconsts):
    cc_d, bc_d, carry_d = _split(dims, cond_nconsts, body_nconsts)
    carry_bat = [d is not None for d in carry_d]
    bc_dims = [None if d is None else 0 for d in bc_d]
    cc_dims = [None if d is None else 0 for d in cc_d]
    while True:  # a carry the body batches is batched from the start
        out_bat = batched_outputs(body_program, bc_dims + _at0(carry_bat), axis_size)
        new = [a or b for a, b in zip(carry_bat, out_bat)]
        if new == carry_bat:
            break
        carry_bat = new
    pred_bat = batched_outputs(cond_program, cc_dims + _at0(carry_bat), axis_size)[0]
    if pred_bat:  # lanes finish at different times: every carry is per lane
        carry_bat = [True] * len(carry_bat)
    values = [x if d is None else batching.moveaxis(x, d, 0) for x, d in zip(values, dims)]
    cc, bc, carry = _split(values, cond_nconsts, body_nconsts)
    carry = [batching.bdim_at_front(x, d, axis_size) if b else x
             for x, d, b in zip(carry, [None if d is None else 0 for d in carry_d], carry_bat)]
    cond_dims, body_dims = cc_dims + _at0(carry_bat), bc_dims + _at0(carry_bat)
    body = batch_forced(body_program, body_dims, axis_size, carry_bat)
    if not pred_bat:
        cond = batch_forced(cond_program, cond_dims, axis_size, [False])
        outs = while_p.bind(*cc, *bc, *carry, cond_program=cond, body_program=body,
                            cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
        return outs, _at0(carry_bat)
    cond = batch_forced(cond_program, cond_dims, axis_size, [True])
    any_cond, masked_body = cond.cached(("while_lanewise", body, cond_nconsts, body_nconsts),
        lambda: _lanewise(cond, body, cond_nconsts, body_nconsts))
    outs = while_p.bind(*cc, *cc, *bc, *carry, cond_program=any_cond,
                        body_program=masked_body, cond_nconsts=cond_nconsts,
                        body_nconsts=cond_nconsts + body_nconsts)
    return outs, [0] * len(outs)


def _at0(batched):
    return [0 if b else None for b in batched]


def _lanewise(cond, body, cond_nconsts, body_nconsts):
    """A loop over lanes: it runs while any lane's cond holds; the body updates only the
    lanes whose cond still holds (the body also gets the cond's consts, first)."""
    def any_lane(*args):
        return [lax.reduce_or(eval_program(cond, *args)[0], (0,))]

    def step(*args):
        cc = args[:cond_nconsts]
        bc, carry = args[cond_nconsts:cond_nconsts + body_nconsts], \
            args[cond_nconsts + body_nconsts:]
        running = eval_program(cond, *cc, *carry)[0]
        new = eval_program(body, *bc, *carry)
        return [lax.select(lax.broadcast_in_dim(running, aval_of(n).shape, (0,)), n, old)
                for n, old in zip(new, carry)]
    cc_avals = cond.in_avals[:cond_nconsts]
    return (make_program(any_lane, cond.in_avals, "vmap", cond),
            make_program(step, cc_avals + body.in_avals, "vmap", body))


# --- partial evaluation -----------------------------------------------------------------------

def _carry_unknown(params, unknown):
    """Which carries are unknown, or None when the predicate is unknown (then nothing about
    the loop can run early)."""
    cond, body = params["cond_program"], params["body_program"]
    cc_uk, bc_uk, carry_uk = _split(unknown, params["cond_nconsts"], params["body_nconsts"])
    while True:
        out_uk = _split_program(body, bc_uk + carry_uk)[2]
        new = [a or b for a, b in zip(carry_uk, out_uk)]
        if new == carry_uk:
            break
        carry_uk = new
    if _split_program(cond, cc_uk + carry_uk)[2][0]:
        return None
    return carry_uk


def _split_program(program, unknown):
    return program.cached(("while_split", tuple(unknown)),
                  lambda: partial_eval_program(program, unknown))


def _known_loop(params, unknown, carry_uk):
    """The params of the loop over the known carries only, and which operands it takes."""
    cond, body = params["cond_program"], params["body_program"]
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    cc_uk, bc_uk, _ = _split(unknown, nc, nb)

    def compute():
        known_body, _, out_uk, _ = _split_program(body, bc_uk + carry_uk)
        used = [not carry_uk[j] for j, u in enumerate(out_uk) if not u]
        body_known = dce_program(known_body, used + [False] * (len(known_body.outvars)
                                                               - len(used)))[0]
        known_cond = _split_program(cond, cc_uk + carry_uk)[0]
        cond_known = dce_program(known_cond, [True] + [False] * (len(known_cond.outvars)
                                                                 - 1))[0]
        return dict(cond_program=cond_known, body_program=body_known,
                    cond_nconsts=nc - sum(cc_uk), body_nconsts=nb - sum(bc_uk))
    known_params = body.cached(("while_known", cond, tuple(unknown), tuple(carry_uk)),
                          compute)
    known_operands = [not u for u in cc_uk + bc_uk] + [not u for u in carry_uk]
    return known_params, known_operands


def _while_partial_eval(trace, args, params):
    unknown = [trace.is_unknown(a) for a in args]
    carry_uk = _carry_unknown(params, unknown)
    if carry_uk is None or all(carry_uk):
        return StagingTrace.process_primitive(trace, while_p, args, params)
    known_params, known_operands = _known_loop(params, unknown, carry_uk)
    with set_current_trace(trace.parent):
        known = while_p.bind(*[a for a, k in zip(args, known_operands) if k], **known_params)
    if not any(carry_uk):
        return known
    staged = StagingTrace.process_primitive(trace, while_p, args, params)
    known = iter(known)
    return [s if u else next(known) for s, u in zip(staged, carry_uk)]


def _while_partial_eval_program(eqn, unknown, policy):
    carry_uk = _carry_unknown(eqn.params, unknown)
    if carry_uk is None or all(carry_uk):
        return None, eqn, [True] * len(eqn.outvars)
    known_params, known_operands = _known_loop(eqn.params, unknown, carry_uk)
    known_eqn = Eqn(while_p, [a for a, k in zip(eqn.invars, known_operands) if k],
                    known_params, [v for v, u in zip(eqn.outvars, carry_uk) if not u],
                    eqn.source_info)
    unknown_eqn = Eqn(while_p, eqn.invars, eqn.params,
                      [v if u else Var(v.aval) for v, u in zip(eqn.outvars, carry_uk)],
                      eqn.source_info)
    return known_eqn, unknown_eqn, carry_uk


# --- dead-code elimination --------------------------------------------------------------------

def _while_dce(eqn, used_outputs):
    """Carries that neither the predicate nor a used carry reads leave the loop."""
    if not any(used_outputs):
        return None, [False] * len(eqn.invars)
    params = eqn.params
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    cond, body = params["cond_program"], params["body_program"]
    cond_used = dce_program(cond)[1]
    used = [u or c for u, c in zip(used_outputs, cond_used[nc:])]
    while True:
        body_used = dce_program(body, used)[1]
        new = [u or b for u, b in zip(used, body_used[nb:])]
        if new == used:
            break
        used = new
    if all(used) and all(cond_used[:nc]) and all(body_used[:nb]):
        return eqn, [True] * len(eqn.invars)
    new_params = body.cached(("while_dce", cond, tuple(used)), lambda: dict(
        params, cond_program=keep_inputs(cond, cond_used[:nc] + used),
        body_program=keep_inputs(dce_program(body, used)[0], body_used[:nb] + used),
        cond_nconsts=sum(cond_used[:nc]), body_nconsts=sum(body_used[:nb])))
    used_inputs = cond_used[:nc] + body_used[:nb] + used
    new_eqn = Eqn(while_p, [v for v, u in zip(eqn.invars, used_inputs) if u], new_params,
                  [v for v, u in zip(eqn.outvars, used) if u], eqn.source_info)
    return new_eqn, used_inputs


ad.jvp_rules[while_p] = _while_jvp
ad.transpose_rules[while_p] = _while_transpose
batching.batching_rules[while_p] = _while_batch
partial_eval_rules[while_p] = _while_partial_eval
partial_eval_program_rules[while_p] = _while_partial_eval_program
dce_rules[while_p] = _while_dce

__all__ = ["while_loop", "while_p"]
