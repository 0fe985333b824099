"""Staging: trace a Python function into a Program, and dead-code elimination.

The staging trace records every primitive applied to its tracers as an equation.  Values
that are not its own tracers are constants to it: rank-0 concrete values become Literals,
arrays and tracers of enclosing traces become constvars (closure conversion happens when a
Program is handed to a higher-order primitive).
"""
from __future__ import annotations

import inspect

from ..array import concrete_operand
from ..config import config
from ..core import Eqn, Literal, Program, Trace, Tracer, Var, current_trace, set_current_trace
from ..devices import CPU
from ..errors import current_source_info
from ..tree_util import tree_flatten
from ..typecheck import typecheck


class DebugInfo:
    """What is being traced, for error messages: the function, where it is defined, and why."""

    __slots__ = ("purpose", "name", "short_name", "where")

    def __init__(self, purpose: str, fun):
        self.purpose = purpose
        self.short_name = getattr(fun, "__name__", None) or type(fun).__name__
        self.name = getattr(fun, "__qualname__", None) or self.short_name
        code = getattr(inspect.unwrap(fun), "__code__", None)
        self.where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None

    def __str__(self):
        where = f" (defined at {self.where})" if self.where else ""
        return f"while tracing the function {self.name}{where} for {self.purpose}"


class StagingTracer(Tracer):
    __slots__ = ("aval", "var")

    def __init__(self, trace, aval, var):
        self._trace = trace
        self.aval = aval
        self.var = var


class StagingTrace(Trace):
    """Builds one Program out of the primitives bound on its tracers."""

    def __init__(self, parent: Trace, debug: DebugInfo):
        super().__init__(parent)
        self.debug = debug
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.constvars: list[Var] = []
        self.consts: list = []
        self._constvar_of: dict[int, Var] = {}
        self._captured: list = []

    def describe(self):
        return str(self.debug)

    def new_arg(self, aval) -> StagingTracer:
        var = Var(aval)
        self.invars.append(var)
        return StagingTracer(self, aval, var)

    def to_atom(self, x):
        if isinstance(x, Tracer):
            if x._trace is self:
                return x.var
            self.check_foreign_tracer(x)
            return self._constvar(x, x)
        var = self._constvar_of.get(id(x))
        if var is not None:
            return var
        value = concrete_operand(x)
        if value.aval.shape == () and value.device is CPU:   # a device's value stays there
            return Literal(value._value, value.aval)
        return self._constvar(x, value)

    def _constvar(self, original, value) -> Var:
        """One constvar per captured object, however often it is used."""
        var = self._constvar_of.get(id(original))
        if var is None:
            var = Var(value.aval)
            self._constvar_of[id(original)] = var
            self._captured.append(original)  # keeps `original` alive, so its id stays unique
            self.constvars.append(var)
            self.consts.append(value)
        return var

    def process_primitive(self, primitive, args, params):
        atoms = [self.to_atom(x) for x in args]
        out_avals = primitive.abstract_eval(*(a.aval for a in atoms), **params)
        source = current_source_info()
        if primitive.multiple_results:
            outvars = [Var(a) for a in out_avals]
            self.eqns.append(Eqn(primitive, atoms, params, outvars, source))
            return [StagingTracer(self, v.aval, v) for v in outvars]
        outvar = Var(out_avals)
        self.eqns.append(Eqn(primitive, atoms, params, [outvar], source))
        return StagingTracer(self, out_avals, outvar)


    def to_program(self, outvars) -> Program:
        """The Program recorded so far, with `outvars` (atoms of this trace) as outputs, and
        without the equations nothing reads (work a transformation traced but dropped, such
        as the primal output of grad)."""
        program = dce(Program(self.invars, self.constvars, self.consts, self.eqns, outvars,
                              name=self.debug.short_name))
        if config.check_programs:
            typecheck(program)
        return program


class PartialEvalTrace(StagingTrace):
    """Stages only the work that depends on its own tracers (the unknowns); everything else
    (the knowns) runs right away on the parent trace.  Known values an unknown equation reads
    become constvars of the Program: the residuals.

    This is how `linearize` works: with the primals known and the tangents unknown, the primal
    computation runs (concretely, in eager code) while the tangent computation is recorded as
    a linear Program over the residuals.
    """

    def process_primitive(self, primitive, args, params):
        if not any(isinstance(x, Tracer) and x._trace is self for x in args):
            with set_current_trace(self.parent):
                return primitive.bind(*args, **params)
        rule = partial_eval_rules.get(primitive)
        if rule is not None:
            return rule(self, args, params)
        return super().process_primitive(primitive, args, params)

    def is_unknown(self, x) -> bool:
        return isinstance(x, Tracer) and x._trace is self


def building_a_program(trace) -> bool:
    """Whether the trace stack ends in a Program being built (make_program, jit): then
    inline jit functions are traced straight into it.  Otherwise (eager code under grad or
    vmap) they stay one jit equation, so their work runs as one fused Program."""
    while trace is not None:
        if type(trace) is StagingTrace:
            return True
        trace = trace.parent
    return False


# primitive -> rule(trace, args, params) for higher-order primitives whose known part can run
# now while the unknown part is staged (jit, checkpoint).
partial_eval_rules: dict = {}


def trace_to_program(fun, in_avals, debug: DebugInfo):
    """Trace `fun(*tracers)` (flat array arguments) into a Program.

    Returns (program, out_tree): `fun` may return any pytree of arrays.
    """

    trace = StagingTrace(current_trace(), debug)
    try:
        with set_current_trace(trace):
            args = [trace.new_arg(aval) for aval in in_avals]
            out = fun(*args)
            flat_out, out_tree = tree_flatten(out)
            outvars = [_output_atom(trace, leaf, i, debug) for i, leaf in enumerate(flat_out)]
    finally:
        trace.alive = False
    return trace.to_program(outvars), out_tree


def _output_atom(trace: StagingTrace, leaf, index: int, debug: DebugInfo):
    try:
        return trace.to_atom(leaf)
    except TypeError:
        raise TypeError(f"output {index} of {debug.name} is a {type(leaf).__name__}, not an "
                        f"array ({debug})") from None


# --- dead-code elimination --------------------------------------------------------------------

# primitive -> rule(eqn, used_outputs) -> (new eqn or None, used_inputs); for higher-order
# primitives that can shrink their sub-Programs.  Everything else is kept or dropped whole.
dce_rules: dict = {}


def dce_program(program: Program, used_outputs=None, prune_inputs=False):
    """Drop equations whose results are not needed (every primitive is pure).

    Returns (new_program, used_inputs).  With `prune_inputs` the new Program also drops the
    invars it no longer reads; otherwise it keeps its signature.
    """
    if used_outputs is None:
        used_outputs = [True] * len(program.outvars)
    outvars = [v for v, used in zip(program.outvars, used_outputs) if used]
    live = {v for v in outvars if isinstance(v, Var)}
    kept = []
    for eqn in reversed(program.eqns):
        used = [v in live for v in eqn.outvars]
        if not any(used):
            continue
        rule = dce_rules.get(eqn.primitive)
        if rule is not None:
            new_eqn, used_inputs = rule(eqn, used)
            if new_eqn is None:
                continue
            live.update(v for v, u in zip(eqn.invars, used_inputs) if u and isinstance(v, Var))
            eqn = new_eqn
        else:
            live.update(v for v in eqn.invars if isinstance(v, Var))
        kept.append(eqn)
    kept.reverse()
    constvars, consts = [], []
    for var, value in zip(program.constvars, program.consts):
        if var in live:
            constvars.append(var)
            consts.append(value)
    used_inputs = [v in live for v in program.invars]
    invars = [v for v in program.invars if v in live] if prune_inputs else program.invars
    kept, outvars = _forward_trivial_calls(kept, outvars)
    return Program(invars, constvars, consts, kept, outvars, program.name), used_inputs


def _forward_trivial_calls(eqns, outvars):
    """Drop jit/checkpoint equations whose Program computes nothing (its outputs are its
    inputs or literals), reading their inputs directly instead."""
    subst = {}

    def atom(a):
        return subst.get(a, a) if isinstance(a, Var) else a

    kept = []
    for eqn in eqns:
        invars = [atom(a) for a in eqn.invars]
        program = eqn.params.get("program")
        if eqn.primitive.family == "call" and not program.eqns and not program.constvars:
            position = {v: k for k, v in enumerate(program.invars)}
            for out, inner in zip(eqn.outvars, program.outvars):
                subst[out] = invars[position[inner]] if isinstance(inner, Var) else inner
            continue
        if invars != eqn.invars:
            eqn = Eqn(eqn.primitive, invars, eqn.params, eqn.outvars, eqn.source_info)
        kept.append(eqn)
    return kept, [atom(v) for v in outvars]


def dce(program: Program) -> Program:
    """The Program without dead equations; same inputs and outputs."""
    return dce_program(program)[0]


# --- partial evaluation of a Program ----------------------------------------------------------

# primitive -> rule(eqn, unknown_inputs, policy) -> (known_eqn | None, unknown_eqn,
# out_unknown); for higher-order primitives whose sub-Program can itself be split.
partial_eval_program_rules: dict = {}


def partial_eval_program(program: Program, unknown_inputs, policy=None):
    """Split `program` into the part computable from its known inputs and the rest.

    Returns (known, unknown, out_unknown, num_residuals):
      known:   known invars -> (known outputs..., residuals...)
      unknown: (residuals..., unknown invars) -> unknown outputs
    `policy(eqn, producers)` says whether a known equation's results may be saved as
    residuals; if not, the unknown Program recomputes them (rematerialisation).  Without a
    policy everything may be saved.
    """
    unknown_vars = {v for v, u in zip(program.invars, unknown_inputs) if u}
    producers = {}
    known_eqns, unknown_eqns = [], []
    for eqn in program.eqns:
        in_unknown = [isinstance(a, Var) and a in unknown_vars for a in eqn.invars]
        for v in eqn.outvars:
            producers[v] = eqn
        if not any(in_unknown):
            known_eqns.append(eqn)
            if policy is not None and not policy(eqn, producers):
                unknown_eqns.append(eqn)  # recomputed where it is needed
            continue
        rule = partial_eval_program_rules.get(eqn.primitive)
        if rule is None:
            unknown_eqns.append(eqn)
            unknown_vars.update(eqn.outvars)
            continue
        known_eqn, unknown_eqn, out_unknown = rule(eqn, in_unknown, policy)
        if known_eqn is not None:
            known_eqns.append(known_eqn)
        unknown_eqns.append(unknown_eqn)
        unknown_vars.update(v for v, u in zip(eqn.outvars, out_unknown) if u)

    out_unknown = [isinstance(v, Var) and v in unknown_vars for v in program.outvars]
    defined = {v for v, u in zip(program.invars, unknown_inputs) if u}
    candidates = []
    for eqn in unknown_eqns:
        for a in eqn.invars:
            if isinstance(a, Var) and a not in defined and a not in candidates:
                candidates.append(a)
        defined.update(eqn.outvars)
    unknown_invars = [v for v, u in zip(program.invars, unknown_inputs) if u]
    unknown_outs = [v for v, u in zip(program.outvars, out_unknown) if u]
    unknown = Program(candidates + unknown_invars, [], [], unknown_eqns, unknown_outs,
                      program.name)
    unknown, used = dce_program(unknown, prune_inputs=True)
    residuals = [v for v, u in zip(candidates, used[:len(candidates)]) if u]
    if len(unknown.invars) != len(residuals) + len(unknown_invars):
        # an unknown invar that nothing reads was pruned too: keep the signature
        unknown = Program(residuals + unknown_invars, [], [], unknown.eqns, unknown.outvars,
                          program.name)
    known_outs = [v for v, u in zip(program.outvars, out_unknown) if not u]
    known = Program([v for v, u in zip(program.invars, unknown_inputs) if not u],
                    program.constvars, program.consts, known_eqns, known_outs + residuals,
                    program.name)
    return dce(known), unknown, out_unknown, len(residuals)


def param_program(program: Program) -> Program:
    """`program` as a param of a higher-order primitive: it may keep concrete constants (a
    transformation rule can create some), but never a tracer of some trace."""
    if any(isinstance(c, Tracer) for c in program.consts):
        raise AssertionError("internal error: a transformed Program captured a tracer")
    return program
