"""The Program typechecker: every variable assigned once and bound before use, params
hashable, and every equation's output types re-derived from its inputs.  Tests run it on
every Program they trace (config option `check_programs`)."""
from __future__ import annotations

import numpy as np

from .core import Literal, Program, Var


class ProgramTypeError(TypeError):
    """A Program is malformed; the message names the equation."""


def typecheck(program: Program) -> None:
    """Raise ProgramTypeError if `program` is not well formed; return None otherwise."""
    bound = set()

    def bind(var, where):
        if not isinstance(var, Var):
            raise ProgramTypeError(f"{where}: {var!r} is not a Var")
        if var in bound:
            raise ProgramTypeError(f"{where}: variable {var!r} is assigned more than once")
        bound.add(var)

    def read(atom, where):
        if isinstance(atom, Literal):
            value = np.asarray(atom.value)
            if value.shape != () or value.dtype != atom.aval.dtype or atom.aval.shape != ():
                raise ProgramTypeError(f"{where}: literal {atom!r} does not match its type")
            return atom.aval
        if atom not in bound:
            raise ProgramTypeError(f"{where}: variable {atom!r} is used before it is bound")
        return atom.aval

    for var, value in zip(program.constvars, program.consts):
        bind(var, "constvars")
        aval = getattr(value, "aval", None)
        if aval is not None and (aval.shape != var.aval.shape or aval.dtype != var.aval.dtype):
            raise ProgramTypeError(f"constvar {var!r} holds a value of type {aval.str_short()}")
    for var in program.invars:
        bind(var, "invars")

    for k, eqn in enumerate(program.eqns):
        where = f"equation {k} ({eqn.primitive.name})"
        in_avals = [read(a, where) for a in eqn.invars]
        try:
            hash(tuple(sorted(eqn.params.items(), key=lambda kv: kv[0])))
        except TypeError as err:
            raise ProgramTypeError(f"{where}: params are not hashable: {err}") from None
        for value in eqn.params.values():   # sub-Programs: one, or a tuple (cond's branches)
            for sub in value if isinstance(value, tuple) else (value,):
                if isinstance(sub, Program):
                    typecheck(sub)
        try:
            out = eqn.primitive.abstract_eval(*in_avals, **eqn.params)
        except TypeError as err:
            raise ProgramTypeError(f"{where}: {err}") from None
        outs = out if eqn.primitive.multiple_results else [out]
        if len(outs) != len(eqn.outvars):
            raise ProgramTypeError(f"{where}: {len(eqn.outvars)} outvars for {len(outs)} "
                                   "results")
        for var, aval in zip(eqn.outvars, outs):
            if var.aval != aval:
                raise ProgramTypeError(f"{where}: outvar has type {var.aval!r}, the inputs "
                                       f"give {aval!r}")
            bind(var, where)

    for atom in program.outvars:
        read(atom, "outvars")
