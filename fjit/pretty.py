"""Print Programs the way JAX prints jaxprs:

    { lambda ; a:f32[3,4] b:f32[4]. let
        c:f32[3,4] = broadcast_in_dim[broadcast_dimensions=(1,) shape=(3, 4)] b
        d:f32[3,4] = add a c
      in (d,) }
"""
from __future__ import annotations

import numpy as np

from .core import Literal, Program


class _Names:
    """Gives vars the names a, b, ..., z, ba, bb, ... in order of first appearance."""

    def __init__(self):
        self.names = {}

    def __call__(self, var) -> str:
        name = self.names.get(var)
        if name is None:
            name = self.names[var] = _letters(len(self.names))
        return name


def _letters(n: int) -> str:
    out = ""
    while True:
        out = chr(ord("a") + n % 26) + out
        n //= 26
        if n == 0:
            return out


def format_literal(lit: Literal) -> str:
    value = lit.value
    text = repr(value.item()) if isinstance(value, np.generic) else repr(value)
    return f"{text}:{lit.aval.str_short()}"


def format_param(value, indent: int) -> str:
    """A param value; nested Programs print as indented blocks starting at column `indent`."""
    if isinstance(value, Program):
        return format_program(value, indent)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, tuple):
        inner = ", ".join(format_param(v, indent) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return str(value)


def format_eqn(eqn, names=None, indent: int = 0) -> str:
    """One equation; `indent` is the column it starts at (for multi-line params)."""
    names = names or _Names()

    def atom(a):
        return format_literal(a) if isinstance(a, Literal) else names(a)

    outs = " ".join(f"{names(v)}:{v.aval.str_short()}" for v in eqn.outvars)
    params = sorted(eqn.primitive.format_params(eqn.params).items())
    ins = " ".join(atom(a) for a in eqn.invars)
    if not params:
        return f"{outs} = {eqn.primitive.name} {ins}".rstrip()
    if any(isinstance(v, Program) for _, v in params):
        pad = " " * (indent + 2)
        lines = [f"{pad}{k}={format_param(v, indent + 2)}" for k, v in params]
        body = "\n".join(lines)
        return f"{outs} = {eqn.primitive.name}[\n{body}\n{' ' * indent}] {ins}".rstrip()
    text = " ".join(f"{k}={format_param(v, indent)}" for k, v in params)
    return f"{outs} = {eqn.primitive.name}[{text}] {ins}".rstrip()


def format_program(program: Program, indent: int = 0, names=None, numbered=False) -> str:
    """The Program; its equations at column indent + 4 (`numbered`: each preceded by its
    number, at column indent + 6), `in` at indent + 2.  Pass `names` (a `Names`) to print
    more of the same Program's equations with the same names later."""
    names = names if names is not None else _Names()
    pad = " " * indent
    consts = " ".join(f"{names(v)}:{v.aval.str_short()}" for v in program.constvars)
    args = " ".join(f"{names(v)}:{v.aval.str_short()}" for v in program.invars)
    lines = [f"{{ lambda {consts}; {args}. let"]
    for k, eqn in enumerate(program.eqns):
        if numbered:
            lines.append(f"{pad}{k:>4}  {format_eqn(eqn, names, indent + 6)}")
        else:
            lines.append(f"{pad}    {format_eqn(eqn, names, indent + 4)}")
    outs = ", ".join(format_literal(v) if isinstance(v, Literal) else names(v)
                     for v in program.outvars)
    if len(program.outvars) == 1:
        outs += ","
    lines.append(f"{pad}  in ({outs}) }}")
    return "\n".join(lines)


Names = _Names
