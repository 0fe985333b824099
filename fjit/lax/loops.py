"""scan: a loop with a carry, as a higher-order primitive holding the body's Program.

    carry..., ys... = scan[program, num_consts, num_carry, length, reverse, unroll, name]
                          consts... carry... xs...

The body Program maps (consts..., carry..., x slices...) -> (carry..., y slices...); the
xs are stacked along a leading axis of size `length`, and so are the ys.  `fori_loop` with a
static trip count and `map` are scans.  Every transformation is a rule over the body:
- jvp: the body's jvp, with carry tangents made non-zero until that is a fixed point;
- partial evaluation (linearize, grad): the body is split into its known part, run as one
  scan that also stacks the residuals, and its unknown part, a scan over those residuals;
  loop-invariant residuals (consts) are passed once, not stacked;
- transpose: a scan in the other direction over the transposed body, accumulating the
  cotangents of linear consts in its carry;
- vmap: the batched body (carries made batched until a fixed point), xs/ys batched at axis 1.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import lax  # the package's functions, looked up at call time (it imports this module)
from ..array import aval_of
from ..core import (Eqn, Primitive, Program, Var, eval_program, evaluate_reference,
                    set_current_trace, type_error)
from ..errors import FjitTypeError, FjitValueError
from ..interpreters import ad, batching
from ..interpreters.partial_eval import (DebugInfo, StagingTrace, dce, dce_program, dce_rules,
                                         param_program, partial_eval_program,
                                         partial_eval_program_rules, partial_eval_rules,
                                         trace_to_program)
from ..tree_util import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten
from .cond import leaf_paths
from .views import concatenate, slice_in_dim
from .while_loop import while_loop


class ScanPrimitive(Primitive):
    def __init__(self):
        super().__init__("scan", "control", multiple_results=True)

    def abstract_eval(self, *avals, program, num_consts, num_carry, length, reverse, unroll,
                      name):
        body = program.in_avals
        what = f"scan({name})"
        if len(avals) != len(body):
            raise type_error(what, f"takes {len(body)} operands, got {len(avals)}", *avals)
        for k, (got, want) in enumerate(zip(avals, body)):
            if k >= num_consts + num_carry:
                want = want.update(shape=(length,) + want.shape)
            if got.shape != want.shape or got.dtype != want.dtype:
                raise type_error(what, f"operand {k} is {got.str_short()}, the body expects "
                                 f"{want.str_short()}", *avals)
        outs = program.out_avals
        for k in range(num_carry):
            c_in, c_out = body[num_consts + k], outs[k]
            if c_in.shape != c_out.shape or c_in.dtype != c_out.dtype:
                raise type_error(what, f"carry {k} enters as {c_in.str_short()} and leaves as "
                                 f"{c_out.str_short()}", *avals)
        return [a.update(weak_type=avals[num_consts + k].weak_type)
                for k, a in enumerate(outs[:num_carry])] + \
            [a.update(shape=(length,) + a.shape) for a in outs[num_carry:]]

    def impl(self, *values, program, num_consts, num_carry, length, reverse, unroll, name):
        consts = list(values[:num_consts])
        carry = list(values[num_consts:num_consts + num_carry])
        xs = values[num_consts + num_carry:]
        ys = [np.empty((length,) + a.shape, a.dtype) for a in program.out_avals[num_carry:]]
        for it in range(length):
            i = length - 1 - it if reverse else it
            outs = evaluate_reference(program, *consts, *carry, *(x[i] for x in xs))
            carry = list(outs[:num_carry])
            for y, value in zip(ys, outs[num_carry:]):
                y[i] = value
        return carry + ys


scan_p = ScanPrimitive()


# --- the user-facing functions ----------------------------------------------------------------

def _leaf_paths(tree):
    return leaf_paths(tree_structure(tree), "")


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """JAX's lax.scan: `f(carry, x) -> (carry, y)` over the leading axis of `xs`; returns
    (final carry, stacked ys).  The carry must keep its structure, shapes and dtypes.
    `unroll` iterations run per trip of the generated C loop (True: all of them)."""
    name = getattr(f, "__name__", "body")
    x_leaves, x_tree = tree_flatten(xs)
    lengths = {int(np.shape(x)[0]) if np.ndim(x) else None for x in x_leaves}
    if None in lengths:
        raise FjitTypeError(f"scan({name}): every leaf of xs needs a leading axis to scan over; "
                            f"got shapes {[np.shape(x) for x in x_leaves]}")
    if length is not None:
        lengths.add(int(length))
    if len(lengths) > 1:
        raise FjitValueError(f"scan({name}): xs leaves and length disagree on the number of "
                             f"iterations: {sorted(lengths)} (leaves {_leaf_paths(xs)} have "
                             f"shapes {[np.shape(x) for x in x_leaves]})")
    if not lengths:
        raise FjitValueError(f"scan({name}): with no xs, pass length=")
    length = lengths.pop()
    if isinstance(unroll, bool):
        unroll = max(length, 1) if unroll else 1
    if int(unroll) < 1:
        raise FjitValueError(f"scan({name}): unroll must be a positive int or a bool, got "
                             f"{unroll}")
    carry_leaves, carry_tree = tree_flatten(init)
    carry_avals = [aval_of(c) for c in carry_leaves]
    x_avals = [aval_of(x).update(shape=np.shape(x)[1:]) for x in x_leaves]
    out_tree_box = []

    def body(*args):
        carry = tree_unflatten(carry_tree, args[:len(carry_avals)])
        x = tree_unflatten(x_tree, args[len(carry_avals):])
        out = f(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise FjitTypeError(f"scan({name}): the body must return a pair (carry, y), got "
                                f"{type(out).__name__}")
        new_carry, y = out
        new_leaves, new_tree = tree_flatten(new_carry)
        if new_tree != carry_tree:
            raise FjitTypeError(f"scan({name}): the body changed the carry's structure from "
                                f"{carry_tree} to {new_tree}")
        paths = _leaf_paths(init)
        for path, got, want in zip(paths, new_leaves, carry_avals):
            g = aval_of(got)
            if g.shape != want.shape or g.dtype != want.dtype:
                raise FjitTypeError(f"scan({name}): the carry leaf {path or '(root)'} enters the "
                                    f"body as {want.str_short()} and leaves it as "
                                    f"{g.str_short()}; it must keep its shape and dtype")
        y_leaves, y_tree = tree_flatten(y)
        out_tree_box.append(y_tree)
        return list(new_leaves) + list(y_leaves)

    program, _ = trace_to_program(body, carry_avals + x_avals, DebugInfo("scan", f))
    closed, consts = program.closure_convert()
    outs = scan_p.bind(*consts, *carry_leaves, *x_leaves, program=param_program(closed),
                       num_consts=len(consts), num_carry=len(carry_leaves), length=length,
                       reverse=bool(reverse), unroll=int(unroll), name=name)
    carry_out = tree_unflatten(carry_tree, outs[:len(carry_leaves)])
    return carry_out, tree_unflatten(out_tree_box[0], outs[len(carry_leaves):])


def fori_loop(lower, upper, body_fun, init_val, unroll=None):
    """JAX's lax.fori_loop: `body_fun(i, val) -> val` for i in [lower, upper).  With Python
    int bounds it is a scan (so it is reverse-differentiable); with traced bounds a
    while_loop."""
    if isinstance(lower, (int, np.integer)) and isinstance(upper, (int, np.integer)):
        lower, upper = int(lower), int(upper)

        def step(carry, _):
            i, val = carry
            return (i + 1, body_fun(i, val)), None
        # the index is a weakly typed int, as in JAX: `v + i` keeps v's integer type
        index = lax.convert_element_type(lower, dtypes.default_int(), weak_type=True)
        (_, val), _ = scan(step, (index, init_val), None,
                           length=max(upper - lower, 0), unroll=unroll or 1)
        return val
    dtype, _ = dtypes.promote(*(_dtype_and_weak(b) for b in (lower, upper)))
    lower, upper = lax.convert_element_type(lower, dtype), lax.convert_element_type(upper, dtype)
    _, val = while_loop(lambda c: c[0] < upper, lambda c: (c[0] + 1, body_fun(c[0], c[1])),
                        (lower, init_val))
    return val


def _dtype_and_weak(x):
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return dtypes.scalar_type_of(x)
    aval = aval_of(x)
    return aval.dtype, aval.weak_type


def map(f, xs, *, batch_size=None):
    """JAX's lax.map: f applied to each slice of xs along the leading axis, as a scan; with
    batch_size, f mapped (vmap) over chunks of that many slices (the remainder in one more
    call)."""
    if batch_size is None:
        _, ys = scan(lambda carry, x: ((), f(x)), (), xs)
        return ys
    n = int(aval_of(tree_leaves(xs)[0]).shape[0])
    size = max(1, min(int(batch_size), n))
    full = n // size * size
    chunks = tree_map(lambda x: lax.reshape(slice_in_dim(x, 0, full, axis=0),
                                            (n // size, size) + aval_of(x).shape[1:]), xs)
    _, ys = scan(lambda carry, x: ((), _mapped(f, x)), (), chunks)
    ys = tree_map(lambda y: lax.reshape(y, (full,) + aval_of(y).shape[2:]), ys)
    if full == n:
        return ys
    rest = _mapped(f, tree_map(lambda x: slice_in_dim(x, full, n, axis=0), xs))
    return tree_map(lambda a, b: concatenate([a, b], 0), ys, rest)


def _mapped(f, xs):
    """f mapped over axis 0 of every leaf of xs (vmap, built from the batching interpreter:
    lax stands below the user API)."""
    leaves, in_tree = tree_flatten(xs)
    size = aval_of(leaves[0]).shape[0]
    out_tree = []

    def flat(*flat_xs):
        out_leaves, tree = tree_flatten(f(tree_unflatten(in_tree, flat_xs)))
        out_tree.append(tree)
        return out_leaves
    outs, dims = batching.batch_flat(flat, leaves, [0] * len(leaves), size)
    return tree_unflatten(out_tree[0], [batching.move_batch_dim(o, d, 0, size)
                                        for o, d in zip(outs, dims)])


# --- rules: shared helpers --------------------------------------------------------------------

def _reordered(program, invars, outvars):
    """The same Program with its invars/outvars in another order (same variables)."""
    return Program(invars, program.constvars, program.consts, program.eqns, outvars,
                   program.name)


def _split_operands(values, num_consts, num_carry):
    return (list(values[:num_consts]), list(values[num_consts:num_consts + num_carry]),
            list(values[num_consts + num_carry:]))


# --- jvp --------------------------------------------------------------------------------------

def _jvp_body(program, nonzero, instantiate_out):
    """(primals..., nonzero tangents...) -> (primal outs..., tangents of outputs marked in
    instantiate_out or non-zero...) and which output tangents exist."""
    n = len(program.invars)
    out_nonzero = []

    def fun(*args):
        primals, tangents = list(args[:n]), iter(args[n:])
        full = [next(tangents) if nz else ad.Zero(v.aval)
                for v, nz in zip(program.invars, nonzero)]
        outs, touts = ad.jvp_flat(lambda *xs: eval_program(program, *xs), primals, full)
        keep = []
        for t, inst, v in zip(touts, instantiate_out, program.outvars):
            if inst and isinstance(t, ad.Zero):
                t = ad.zeros_like_aval(v.aval)
            out_nonzero.append(not isinstance(t, ad.Zero))
            if not isinstance(t, ad.Zero):
                keep.append(t)
        return outs + keep

    in_avals = program.in_avals + [v.aval for v, nz in zip(program.invars, nonzero) if nz]
    jvp_prog, _ = trace_to_program(fun, in_avals, DebugInfo("jvp of scan body",
                                                            _Named(program.name)))
    return param_program(jvp_prog), out_nonzero


class _Named:
    def __init__(self, name):
        self.__name__ = name or "body"


def _scan_jvp(primals, tangents, program, num_consts, num_carry, length, reverse, unroll,
              name):
    nz = [not isinstance(t, ad.Zero) and ad.is_differentiable(v.aval)
          for t, v in zip(tangents, program.invars)]
    nz_consts, nz_carry, nz_xs = _split_operands(nz, num_consts, num_carry)
    n_out_ys = len(program.outvars) - num_carry
    while True:  # carries whose tangent becomes non-zero in the body start non-zero
        instantiate = nz_carry + [False] * n_out_ys
        jvp_prog, out_nz = _jvp_body(program, nz_consts + nz_carry + nz_xs, instantiate)
        new_carry = [a or b for a, b in zip(nz_carry, out_nz[:num_carry])]
        if new_carry == nz_carry:
            break
        nz_carry = new_carry
    out_nz_ys = out_nz[num_carry:]
    # jvp_prog: (c, carry, xs, ct, carry_t, xs_t) -> (carry, ys, carry_t, ys_t); reorder to
    # consts (c, ct), carry (carry, carry_t), xs (xs, xs_t).
    inv = jvp_prog.invars
    n = len(program.invars)
    tan = iter(inv[n:])
    t_vars = [next(tan) if z else None for z in nz_consts + nz_carry + nz_xs]
    c, carry, xs = _split_operands(inv[:n], num_consts, num_carry)
    tc, tcarry, txs = _split_operands(t_vars, num_consts, num_carry)
    drop = lambda vs: [v for v in vs if v is not None]  # noqa: E731
    outv = jvp_prog.outvars
    n_primal_out = len(program.outvars)
    p_carry, p_ys = outv[:num_carry], outv[num_carry:n_primal_out]
    touts = iter(outv[n_primal_out:])
    t_out = [next(touts) if z else None for z in nz_carry + out_nz_ys]
    body = _reordered(jvp_prog, c + drop(tc) + carry + drop(tcarry) + xs + drop(txs),
                      p_carry + drop(t_out[:num_carry]) + p_ys + drop(t_out[num_carry:]))
    final_nz = nz_consts + nz_carry + nz_xs   # carries may have become non-zero above
    t_values = [(ad.zeros_like_aval(v.aval) if isinstance(t, ad.Zero) else t) if z else None
                for t, z, v in zip(tangents, final_nz, program.invars)]
    pc, pcarry, pxs = _split_operands(list(primals), num_consts, num_carry)
    vc, vcarry, vxs = _split_operands(t_values, num_consts, num_carry)
    outs = scan_p.bind(*pc, *drop(vc), *pcarry, *drop(vcarry), *pxs, *drop(vxs),
                       program=body, num_consts=num_consts + sum(nz_consts),
                       num_carry=num_carry + sum(nz_carry), length=length, reverse=reverse,
                       unroll=unroll, name=name)
    n_carry_all = num_carry + sum(nz_carry)
    carry_out, carry_t = outs[:num_carry], iter(outs[num_carry:n_carry_all])
    ys_all = outs[n_carry_all:]
    ys, ys_t = ys_all[:n_out_ys], iter(ys_all[n_out_ys:])
    tangent_out = [next(carry_t) if z else ad.Zero(None) for z in nz_carry] + \
        [next(ys_t) if z else ad.Zero(None) for z in out_nz_ys]
    return list(carry_out) + list(ys), tangent_out


ad.jvp_rules[scan_p] = _scan_jvp


# --- partial evaluation -----------------------------------------------------------------------

def _saveable(eqn, producers) -> bool:
    """Residuals of a scan are stacked per iteration, so a broadcast (or reshape) is never
    saved: the unknown body recomputes it from its operand.  Saving the broadcasts of a
    matmul's operands would stack (steps, batch, in, out) arrays: for an RNN's gradient,
    gigabytes where the hidden states take a few megabytes."""
    return eqn.primitive.name not in ("broadcast_in_dim", "reshape")


def _split_body(program, num_consts, num_carry, unknown):
    """Fixed point over the carry: (known body, unknown body, unknown flags, residuals)."""
    u_consts, u_carry, u_xs = _split_operands(unknown, num_consts, num_carry)
    while True:
        known, unknown_prog, out_unknown, num_res = partial_eval_program(
            program, u_consts + u_carry + u_xs, _saveable)
        new_carry = [a or b for a, b in zip(u_carry, out_unknown[:num_carry])]
        if new_carry == u_carry:
            break
        u_carry = new_carry
    # A known carry must stay known: if the body made it unknown we iterated above.  An
    # unknown carry whose output happens to be known is still treated as unknown.
    out_unknown = list(out_unknown)
    for k in range(num_carry):
        if u_carry[k] and not out_unknown[k]:
            return _split_forcing(program, num_consts, num_carry, u_consts, u_carry, u_xs)
    return known, unknown_prog, out_unknown, num_res, u_consts + u_carry + u_xs


def _split_forcing(program, num_consts, num_carry, u_consts, u_carry, u_xs):
    """Re-split with the unknown carries' outputs forced unknown: a carry that enters
    unknown but whose new value the body computes from known values alone (reset to a
    constant) still has to come out of the unknown scan.  select(True, new, old) has the
    value `new` and depends on the unknown `old`."""
    def fun(*args):
        outs = list(eval_program(program, *args))
        for k in range(num_carry):
            if u_carry[k]:
                old = args[num_consts + k]
                outs[k] = lax.select(lax.full(old.shape, True, bool), outs[k], old)
        return outs
    wrapped, _ = trace_to_program(fun, program.in_avals, DebugInfo("scan", _Named(
        program.name)))
    known, unknown_prog, out_unknown, num_res = partial_eval_program(
        wrapped, u_consts + u_carry + u_xs, _saveable)
    return known, unknown_prog, list(out_unknown), num_res, u_consts + u_carry + u_xs


def _partial_eval_plan(program, num_consts, num_carry, unknown):
    known, unknown_prog, out_unknown, num_res, unknown = _split_body(
        program, num_consts, num_carry, unknown)
    u_consts, u_carry, u_xs = _split_operands(unknown, num_consts, num_carry)
    residuals = unknown_prog.invars[:num_res]
    # residuals that are the body's known consts are loop-invariant: pass them once
    const_vars = program.invars[:num_consts]
    known_const_pos = {v: k for k, (v, u) in enumerate(zip(const_vars, u_consts)) if not u}
    invariant = [r for r in residuals if r in known_const_pos]
    stacked = [r for r in residuals if r not in known_const_pos]
    n_known_outs = len(known.outvars) - num_res
    known_res_out = known.outvars[n_known_outs:]
    stacked_out = [o for o, r in zip(known_res_out, residuals) if r not in known_const_pos]
    known = dce(_reordered(known, known.invars, known.outvars[:n_known_outs] + stacked_out))
    rest = unknown_prog.invars[num_res:]
    n_uc, n_ucarry = sum(u_consts), sum(u_carry)
    uc, ucarry, uxs = rest[:n_uc], rest[n_uc:n_uc + n_ucarry], rest[n_uc + n_ucarry:]
    unknown_body = _reordered(unknown_prog, invariant + list(uc) + list(ucarry) + stacked +
                              list(uxs), unknown_prog.outvars)
    return dict(known=param_program(known), unknown=param_program(unknown_body),
                out_unknown=out_unknown, unknown_in=unknown,
                invariant=[known_const_pos[r] for r in invariant], num_stacked=len(stacked),
                n_uc=n_uc, n_ucarry=n_ucarry)


def _known_counts(plan, num_consts, num_carry):
    u_consts, u_carry, _ = _split_operands(plan["unknown_in"], num_consts, num_carry)
    return num_consts - sum(u_consts), num_carry - sum(u_carry)


def _scan_partial_eval(trace, args, params):
    program, num_consts, num_carry = params["program"], params["num_consts"], params["num_carry"]
    unknown = [trace.is_unknown(a) for a in args]
    plan = _partial_eval_plan(program, num_consts, num_carry, unknown)
    unknown = plan["unknown_in"]
    # a carry that became unknown may still be a known value here: the staged equation
    # reads it like any known value (it becomes a residual of the trace)
    k_consts, k_carry = _known_counts(plan, num_consts, num_carry)
    known_args = [a for a, u in zip(args, unknown) if not u]
    with set_current_trace(trace.parent):
        known_outs = scan_p.bind(*known_args, **dict(params, program=plan["known"],
                                                     num_consts=k_consts, num_carry=k_carry))
    out_unknown = plan["out_unknown"]
    n_known = sum(1 for u in out_unknown if not u)
    residual_ys = known_outs[n_known:]
    consts = args[:num_consts]
    invariant = [consts[k] for k in plan["invariant"]]
    uc, ucarry, uxs = _split_operands([a for a, u in zip(args, unknown) if u], plan["n_uc"],
                                      plan["n_ucarry"])
    staged = StagingTrace.process_primitive(
        trace, scan_p, invariant + uc + ucarry + list(residual_ys) + uxs,
        dict(params, program=plan["unknown"], num_consts=len(invariant) + plan["n_uc"],
             num_carry=plan["n_ucarry"]))
    known_iter, staged_iter = iter(known_outs[:n_known]), iter(staged)
    return [next(staged_iter) if u else next(known_iter) for u in out_unknown]


def _scan_partial_eval_program(eqn, unknown, policy):
    params = eqn.params
    program, num_consts, num_carry = params["program"], params["num_consts"], params["num_carry"]
    plan = _partial_eval_plan(program, num_consts, num_carry, unknown)
    unknown = plan["unknown_in"]
    k_consts, k_carry = _known_counts(plan, num_consts, num_carry)
    out_unknown = plan["out_unknown"]
    length = params["length"]
    residual_vars = [Var(v.aval.update(shape=(length,) + v.aval.shape))
                     for v in plan["unknown"].invars[len(plan["invariant"]) + plan["n_uc"] +
                                                     plan["n_ucarry"]:][:plan["num_stacked"]]]
    known_eqn = Eqn(scan_p, [a for a, u in zip(eqn.invars, unknown) if not u],
                    dict(params, program=plan["known"], num_consts=k_consts, num_carry=k_carry),
                    [v for v, u in zip(eqn.outvars, out_unknown) if not u] + residual_vars,
                    eqn.source_info)
    consts = eqn.invars[:num_consts]
    invariant = [consts[k] for k in plan["invariant"]]
    uc, ucarry, uxs = _split_operands([a for a, u in zip(eqn.invars, unknown) if u],
                                      plan["n_uc"], plan["n_ucarry"])
    unknown_eqn = Eqn(scan_p, invariant + uc + ucarry + residual_vars + uxs,
                      dict(params, program=plan["unknown"],
                           num_consts=len(invariant) + plan["n_uc"],
                           num_carry=plan["n_ucarry"]),
                      [v for v, u in zip(eqn.outvars, out_unknown) if u], eqn.source_info)
    return known_eqn, unknown_eqn, out_unknown


partial_eval_rules[scan_p] = _scan_partial_eval
partial_eval_program_rules[scan_p] = _scan_partial_eval_program


# --- transpose --------------------------------------------------------------------------------

def _scan_transpose(cts, *args, program, num_consts, num_carry, length, reverse, unroll,
                    name):
    consts, carry, xs = _split_operands(list(args), num_consts, num_carry)
    lin_consts = [ad.is_linear(a) for a in consts]
    lin_xs = [ad.is_linear(a) for a in xs]
    # The body is linear in every carry (partial evaluation made them all unknown); a carry
    # whose initial value is known (a zero accumulator) gets no cotangent back.
    lin_carry = [ad.is_linear(a) for a in carry]
    ct_carry = [ad.instantiate(c) if not isinstance(c, ad.Zero) else ad.zeros_like_aval(a.aval)
                for c, a in zip(cts[:num_carry], carry)]
    ct_ys = [ad.instantiate(c) if not isinstance(c, ad.Zero) else
             ad.zeros_like_aval(v.aval.update(shape=(length,) + v.aval.shape))
             for c, v in zip(cts[num_carry:], program.outvars[num_carry:])]
    body_lin = lin_consts + [True] * num_carry + lin_xs
    c_vars, carry_vars, x_vars = _split_operands(program.invars, num_consts, num_carry)
    nl_const_avals = [v.aval for v, lin in zip(c_vars, lin_consts) if not lin]
    acc_avals = [v.aval for v, lin in zip(c_vars, lin_consts) if lin]
    carry_avals = [v.aval for v in carry_vars]
    nl_x_avals = [v.aval for v, lin in zip(x_vars, lin_xs) if not lin]
    y_avals = [v.aval for v in program.outvars[num_carry:]]

    def body_t(*a):
        it = iter(a)
        nl_consts = [next(it) for _ in nl_const_avals]
        acc = [next(it) for _ in acc_avals]
        ct_c = [next(it) for _ in carry_avals]
        nl_x = [next(it) for _ in nl_x_avals]
        ct_y = [next(it) for _ in y_avals]
        nl_c_it, nl_x_it = iter(nl_consts), iter(nl_x)
        full = [None if lin else next(nl_c_it) for lin in lin_consts] + [None] * num_carry + \
            [None if lin else next(nl_x_it) for lin in lin_xs]
        cts_in = ad.backward_pass(program, body_lin, full, ct_c + ct_y)
        c_ct, carry_ct, x_ct = _split_operands(cts_in, num_consts, num_carry)
        new_acc = [lax.add(s, ad.instantiate(g)) for s, g in
                   zip(acc, [g for g, lin in zip(c_ct, lin_consts) if lin])]
        return new_acc + [ad.instantiate(g) for g in carry_ct] + \
            [ad.instantiate(g) for g, lin in zip(x_ct, lin_xs) if lin]

    prog_t, _ = trace_to_program(body_t, nl_const_avals + acc_avals + carry_avals +
                                 nl_x_avals + y_avals,
                                 DebugInfo("transpose of scan body", _Named(name)))
    acc0 = [ad.zeros_like_aval(a) for a in acc_avals]
    outs = scan_p.bind(*[c for c in consts if not ad.is_linear(c)], *acc0, *ct_carry,
                       *[x for x in xs if not ad.is_linear(x)], *ct_ys,
                       program=param_program(prog_t), num_consts=len(nl_const_avals),
                       num_carry=len(acc_avals) + num_carry, length=length,
                       reverse=not reverse, unroll=unroll, name=f"transpose({name})")
    acc_out = iter(outs[:len(acc_avals)])
    carry_ct = outs[len(acc_avals):len(acc_avals) + num_carry]
    x_ct = iter(outs[len(acc_avals) + num_carry:])
    return [next(acc_out) if lin else None for lin in lin_consts] + \
        [ct if lin else None for ct, lin in zip(carry_ct, lin_carry)] + \
        [next(x_ct) if lin else None for lin in lin_xs]


ad.transpose_rules[scan_p] = _scan_transpose


# --- vmap -------------------------------------------------------------------------------------

def _scan_batch(axis_size, values, dims, program, num_consts, num_carry, length, reverse,
                unroll, name):
    consts, carry, xs = _split_operands(list(values), num_consts, num_carry)
    d_consts, d_carry, d_xs = _split_operands(list(dims), num_consts, num_carry)
    b_carry = [d is not None for d in d_carry]
    while True:
        in_dims = [d for d in d_consts] + [0 if b else None for b in b_carry] + \
            [None if d is None else 0 for d in d_xs]
        body, out_dims = batching.batch_program(program, in_dims, axis_size)
        new = [b or d is not None for b, d in zip(b_carry, out_dims[:num_carry])]
        if new == b_carry:
            break
        b_carry = new
    # every batched output at 0 (carries must match their inputs; ys stack at axis 1)
    out_b = b_carry + [d is not None for d in out_dims[num_carry:]]
    body, out_dims = _batch_with_outputs(program, in_dims, axis_size, out_b)
    carry = [batching.bdim_at_front(c, d, axis_size) if b else c
             for c, d, b in zip(carry, d_carry, b_carry)]
    xs = [x if d is None else batching.moveaxis(x, d, 1) for x, d in zip(xs, d_xs)]
    outs = scan_p.bind(*consts, *carry, *xs, program=body, num_consts=num_consts,
                       num_carry=num_carry, length=length, reverse=reverse, unroll=unroll,
                       name=name)
    return outs, [0 if b else None for b in b_carry] + \
        [1 if b else None for b in out_b[num_carry:]]


def _batch_with_outputs(program, in_dims, axis_size, out_batched):
    """The batched body with exactly the outputs in out_batched batched at axis 0."""

    def fun(*args):
        outs, dims = batching.batch_flat(lambda *xs: eval_program(program, *xs), list(args),
                                         in_dims, axis_size)
        result = []
        for o, d, want in zip(outs, dims, out_batched):
            if want:
                o = batching.move_batch_dim(o, d, 0, axis_size) if d is not None else \
                    batching.bdim_at_front(o, None, axis_size)
            result.append(o)
        return result

    prog, _ = trace_to_program(fun, batching.batched_avals(program, in_dims, axis_size),
                               DebugInfo("vmap of scan body", _Named(program.name)))
    return param_program(prog), [0 if b else None for b in out_batched]


batching.batching_rules[scan_p] = _scan_batch


# --- dead-code elimination --------------------------------------------------------------------

def _scan_dce(eqn, used_outputs):
    """Drop unused ys (and the body work only they needed) and unread consts/xs; carries
    stay, since each iteration's carry feeds the next."""
    params = eqn.params
    program, num_consts, num_carry = params["program"], params["num_consts"], params["num_carry"]
    if not any(used_outputs):
        return None, [False] * len(eqn.invars)
    used = [True] * num_carry + list(used_outputs[num_carry:])
    pruned, read = dce_program(program, used)
    keep = [r or num_consts <= k < num_consts + num_carry for k, r in enumerate(read)]
    body = Program([v for v, k in zip(program.invars, keep) if k], pruned.constvars,
                   pruned.consts, pruned.eqns, pruned.outvars, program.name)
    new_eqn = Eqn(scan_p, [a for a, k in zip(eqn.invars, keep) if k],
                  dict(params, program=param_program(body), num_consts=sum(keep[:num_consts])),
                  [v for v, u in zip(eqn.outvars, used) if u], eqn.source_info)
    return new_eqn, keep


dce_rules[scan_p] = _scan_dce
