"""Call-like higher-order primitives: `jit` and `checkpoint` (remat).

    outs = jit[name, program] args
    outs = checkpoint[name, program, policy] args

The equation carries a closed Program (captured tracers are leading operands; concrete
constants may stay inside).  Evaluated eagerly it runs the Program's executable from the
configured backend.  Every transformation re-interprets the Program and binds the same
primitive on the result, so `grad(jit(f))` and `vmap(jit(f))` stay one equation each.

`checkpoint` differs only in partial evaluation: instead of saving every intermediate value
of the forward pass for the backward pass, it saves what its `policy` allows and recomputes
the rest inside the backward pass.
"""
from __future__ import annotations

from ..core import (Eqn, Primitive, Var, eval_program, evaluate_reference, set_current_trace,
                    type_error)
from ..interpreters import ad, batching
from ..interpreters.partial_eval import (StagingTrace, dce_program, dce_rules, partial_eval_program,
                                         partial_eval_program_rules, partial_eval_rules)


class CallPrimitive(Primitive):
    def __init__(self, name):
        super().__init__(name, "call", multiple_results=True)

    def abstract_eval(self, *avals, program, name, **params):
        expected = program.in_avals
        if len(avals) != len(expected):
            raise type_error(f"{self.name}({name})", f"takes {len(expected)} operands, got "
                             f"{len(avals)}", *avals)
        for k, (got, want) in enumerate(zip(avals, expected)):
            if got.shape != want.shape or got.dtype != want.dtype:
                raise type_error(f"{self.name}({name})", f"operand {k} is {got.str_short()}, "
                                 f"the Program expects {want.str_short()}", *avals)
        return program.out_avals

    def impl(self, *values, program, name, **params):
        return evaluate_reference(program, *values)


jit_p = CallPrimitive("jit")
checkpoint_p = CallPrimitive("checkpoint")


# --- policies for checkpoint ------------------------------------------------------------------

class Policy:
    """Which equations' results checkpoint may save: `policy(eqn, producers) -> bool`."""

    def __init__(self, name, saveable):
        self.name, self.saveable = name, saveable

    def __call__(self, eqn, producers) -> bool:
        return self.saveable(eqn, producers)

    def __repr__(self):
        return self.name


def _is_contraction(eqn, producers) -> bool:
    """reduce_sum of a product: matmul, einsum and convolution results."""
    if eqn.primitive.name != "reduce_sum":
        return False
    producer = producers.get(eqn.invars[0])
    return producer is not None and producer.primitive.name == "mul"


nothing_saveable = Policy("nothing_saveable", lambda eqn, producers: False)
everything_saveable = Policy("everything_saveable", lambda eqn, producers: True)
dots_saveable = Policy("dots_saveable", _is_contraction)


def _policy(primitive, params, inherited):
    if primitive is checkpoint_p:
        return params["policy"] or nothing_saveable
    return inherited


# --- rules ------------------------------------------------------------------------------------

def _split(program, unknown, policy):
    return program.cached(("partial_eval", tuple(unknown), policy),
                          lambda: partial_eval_program(program, unknown, policy))


def _dce(eqn, used_outputs):
    if all(used_outputs):  # its Program was pruned when it was traced
        return eqn, [True] * len(eqn.invars)
    program = eqn.params["program"]
    program, used_inputs = program.cached(("dce", tuple(used_outputs)), lambda: dce_program(
        program, used_outputs, prune_inputs=True))
    if not program.outvars:
        return None, [False] * len(eqn.invars)
    new_eqn = Eqn(eqn.primitive, [v for v, u in zip(eqn.invars, used_inputs) if u],
                  dict(eqn.params, program=program),
                  [v for v, u in zip(eqn.outvars, used_outputs) if u], eqn.source_info)
    return new_eqn, used_inputs


def _jvp(primitive):
    def rule(primals, tangents, program, **params):
        nonzero = [not isinstance(t, ad.Zero) for t in tangents]
        jvp_prog, out_nonzero = ad.jvp_program(program, nonzero)
        outs = primitive.bind(*primals, *[t for t in tangents if not isinstance(t, ad.Zero)],
                              program=jvp_prog, **params)
        n = len(program.outvars)
        tangents_out = iter(outs[n:])
        return outs[:n], [next(tangents_out) if nz else ad.Zero(None) for nz in out_nonzero]
    return rule


def _batch(primitive):
    def rule(axis_size, values, dims, program, **params):
        batched, out_dims = batching.batch_program(program, dims, axis_size)
        return primitive.bind(*values, program=batched, **params), out_dims
    return rule


def _transpose(primitive):
    def rule(cts, *args, program, **params):
        linear = [ad.is_linear(a) for a in args]
        transposed = ad.transpose_program(program, linear)
        cts = [ad.instantiate(c) if not isinstance(c, ad.Zero) else
               ad.zeros_like_aval(v.aval) for c, v in zip(cts, program.outvars)]
        outs = jit_p.bind(*[a for a in args if not ad.is_linear(a)], *cts, program=transposed,
                          name=f"transpose({params['name']})")
        outs = iter(outs)
        return [next(outs) if lin else None for lin in linear]
    return rule


def _partial_eval(primitive):
    """Run the known part now (on the parent trace), stage the unknown part."""
    def rule(trace, args, params):
        program = params["program"]
        unknown = [trace.is_unknown(a) for a in args]
        policy = _policy(primitive, params, None)
        known_prog, unknown_prog, out_unknown, num_res = _split(program, unknown, policy)
        known_args = [a for a, u in zip(args, unknown) if not u]
        with set_current_trace(trace.parent):
            if known_prog.eqns:
                known_outs = primitive.bind(*known_args, **dict(params, program=known_prog))
            else:  # nothing to compute: the residuals are inputs (checkpoint saves nothing)
                known_outs = eval_program(known_prog, *known_args)
        n_known = len(known_outs) - num_res
        residuals = known_outs[n_known:]
        staged = StagingTrace.process_primitive(
            trace, primitive, list(residuals) + [a for a, u in zip(args, unknown) if u],
            dict(params, program=unknown_prog))
        known_iter, staged_iter = iter(known_outs[:n_known]), iter(staged)
        return [next(staged_iter) if u else next(known_iter) for u in out_unknown]
    return rule


def _partial_eval_program(primitive):
    """The same split inside a Program being partially evaluated (nested jit/checkpoint)."""
    def rule(eqn, unknown, policy):
        params = eqn.params
        policy = _policy(primitive, params, policy)
        known_prog, unknown_prog, out_unknown, num_res = _split(params["program"], unknown,
                                                                policy)
        residuals = [Var(v.aval) for v in unknown_prog.invars[:num_res]]
        known_eqn = Eqn(primitive, [a for a, u in zip(eqn.invars, unknown) if not u],
                        dict(params, program=known_prog),
                        [v for v, u in zip(eqn.outvars, out_unknown) if not u] + residuals,
                        eqn.source_info)
        unknown_eqn = Eqn(primitive, residuals + [a for a, u in zip(eqn.invars, unknown) if u],
                          dict(params, program=unknown_prog),
                          [v for v, u in zip(eqn.outvars, out_unknown) if u], eqn.source_info)
        return known_eqn, unknown_eqn, out_unknown
    return rule


for _primitive in (jit_p, checkpoint_p):
    dce_rules[_primitive] = _dce
    ad.jvp_rules[_primitive] = _jvp(_primitive)
    ad.transpose_rules[_primitive] = _transpose(_primitive)
    batching.batching_rules[_primitive] = _batch(_primitive)
    partial_eval_rules[_primitive] = _partial_eval(_primitive)
    partial_eval_program_rules[_primitive] = _partial_eval_program(_primitive)
