"""`jit` as a higher-order primitive: `outs = jit[name, program] args`.

The equation carries a closed Program (no constvars: captured values are leading operands).
Evaluated eagerly it runs the Program's executable from the configured backend; any other
trace can look inside it (later transformations re-interpret `program`).
"""
from __future__ import annotations

from ..core import Primitive, type_error
from ..interpreters.partial_eval import dce_program, dce_rules
from ..runtime.backend import executable_for


class JitPrimitive(Primitive):
    def __init__(self):
        super().__init__("jit", "call", multiple_results=True)

    def abstract_eval(self, *avals, program, name):
        expected = program.in_avals
        if len(avals) != len(expected):
            raise type_error(f"jit({name})", f"takes {len(expected)} operands, got "
                             f"{len(avals)}", *avals)
        for k, (got, want) in enumerate(zip(avals, expected)):
            if got.shape != want.shape or got.dtype != want.dtype:
                raise type_error(f"jit({name})", f"operand {k} is {got.str_short()}, the "
                                 f"Program expects {want.str_short()}", *avals)
        return program.out_avals

    def impl(self, *values, program, name):
        return executable_for(program)(list(values))


jit_p = JitPrimitive()


def _dce_jit(eqn, used_outputs):
    program, used_inputs = dce_program(eqn.params["program"], used_outputs, prune_inputs=True)
    if not program.outvars:
        return None, [False] * len(eqn.invars)
    new_eqn = type(eqn)(eqn.primitive, [v for v, u in zip(eqn.invars, used_inputs) if u],
                        dict(eqn.params, program=program),
                        [v for v, u in zip(eqn.outvars, used_outputs) if u], eqn.source_info)
    return new_eqn, used_inputs


dce_rules[jit_p] = _dce_jit
