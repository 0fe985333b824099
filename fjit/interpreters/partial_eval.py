"""Staging: trace a Python function into a Program, and dead-code elimination.

The staging trace records every primitive applied to its tracers as an equation.  Values
that are not its own tracers are constants to it: rank-0 concrete values become Literals,
arrays and tracers of enclosing traces become constvars (closure conversion happens when a
Program is handed to a higher-order primitive).
"""
from __future__ import annotations

from ..array import concrete_operand
from ..config import config
from ..core import Eqn, Literal, Program, Trace, Tracer, Var
from ..errors import current_source_info
from ..tree_util import tree_flatten


class DebugInfo:
    """What is being traced, for error messages: the function, where it is defined, and why."""

    __slots__ = ("purpose", "name", "short_name", "where")

    def __init__(self, purpose: str, fun):
        self.purpose = purpose
        self.short_name = getattr(fun, "__name__", None) or type(fun).__name__
        self.name = getattr(fun, "__qualname__", None) or self.short_name
        code = getattr(fun, "__code__", None)
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
        if value.aval.shape == ():
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


def trace_to_program(fun, in_avals, debug: DebugInfo):
    """Trace `fun(*tracers)` (flat array arguments) into a Program.

    Returns (program, out_tree): `fun` may return any pytree of arrays.
    """
    from ..core import current_trace, set_current_trace

    trace = StagingTrace(current_trace(), debug)
    try:
        with set_current_trace(trace):
            args = [trace.new_arg(aval) for aval in in_avals]
            out = fun(*args)
            flat_out, out_tree = tree_flatten(out)
            outvars = [_output_atom(trace, leaf, i, debug) for i, leaf in enumerate(flat_out)]
    finally:
        trace.alive = False
    program = Program(trace.invars, trace.constvars, trace.consts, trace.eqns, outvars,
                      name=debug.short_name)
    if config.check_programs:
        from ..typecheck import typecheck
        typecheck(program)
    return program, out_tree


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
    return Program(invars, constvars, consts, kept, outvars, program.name), used_inputs


def dce(program: Program) -> Program:
    """The Program without dead equations; same inputs and outputs."""
    return dce_program(program)[0]
