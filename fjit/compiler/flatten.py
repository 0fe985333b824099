"""Inline call-like equations (jit, checkpoint, custom_jvp/vjp calls) so the compiler sees one
flat list of meta-op equations, and merge duplicate equations (CSE)."""
from __future__ import annotations

import numpy as np

from ..core import Eqn, Literal, Program, Var


class FlatProgram:
    """invars, (constvars, consts), eqns without calls, outvars."""

    __slots__ = ("invars", "constvars", "consts", "eqns", "outvars", "varying")

    def __init__(self, invars, constvars, consts, eqns, outvars, varying=""):
        self.invars, self.constvars, self.consts = invars, constvars, consts
        self.eqns, self.outvars = eqns, outvars
        self.varying = varying   # the input sizes its code is generic over (dynamic.py)


_CALLS = ("jit", "checkpoint", "custom_jvp_call", "custom_vjp_call")


def flatten(program: Program, merge: bool = True) -> FlatProgram:
    """`program` with its calls inlined and, with `merge`, duplicate equations merged."""
    constvars, consts = list(program.constvars), list(program.consts)
    eqns = []

    def inline(prog: Program, env: dict):
        """Append prog's equations with its vars renamed through env; returns its outputs."""
        for var, value in zip(prog.constvars, prog.consts):
            fresh = Var(var.aval)
            constvars.append(fresh)
            consts.append(value)
            env[var] = fresh

        def atom(a):
            return a if isinstance(a, Literal) else env[a]

        for eqn in prog.eqns:
            ins = [atom(a) for a in eqn.invars]
            if eqn.primitive.name in _CALLS:
                inner = eqn.params["program"]
                inner_env = dict(zip(inner.invars, ins))
                outs = inline(inner, inner_env)
                for v, o in zip(eqn.outvars, outs):
                    env[v] = o
                continue
            if eqn.primitive.name == "custom_lin":
                eqn.primitive.impl(**eqn.params)  # raises: custom_vjp has no forward mode
            outs = [Var(v.aval) for v in eqn.outvars]
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
            eqns.append(Eqn(eqn.primitive, ins, eqn.params, outs, eqn.source_info))
        return [atom(v) for v in prog.outvars]

    env = {v: v for v in program.invars}
    for v in program.constvars:
        env[v] = v
    outvars = inline(Program(program.invars, [], [], program.eqns, program.outvars), env)
    flat = FlatProgram(list(program.invars), constvars, consts, eqns, outvars)
    return cse(flat) if merge else flat


def _key(eqn, rename):
    def atom(a):
        if isinstance(a, Literal):
            return ("lit", a.aval, np.asarray(a.value).tobytes(),   # a varying one with its
                    getattr(getattr(a, "tagged", None), "twin", None))   # twin (dynamic.py)
        return rename.get(a, a)
    try:
        params = tuple((name, _exact(value)) for name, value in sorted(eqn.params.items()))
        hash(params)
    except TypeError:
        return None
    return (eqn.primitive, tuple(atom(a) for a in eqn.invars), params)


def _exact(value):
    """A param as a key that tells -0.0 from 0.0 (and 1 from 1.0 and True): floats compare
    by their bits, other scalars with their type."""
    if isinstance(value, float):
        return ("float", np.float64(value).tobytes())
    if isinstance(value, (bool, int)):   # a size that varies (dynamic.Dyn) with its twin
        return (type(value).__name__, value, getattr(value, "twin", None))
    if type(value) is tuple:
        return tuple(_exact(v) for v in value)
    return value


def cse(flat: FlatProgram) -> FlatProgram:
    """Equations with the same primitive, params and inputs compute the same values."""
    rename, seen, eqns = {}, {}, []
    for eqn in flat.eqns:
        eqn = Eqn(eqn.primitive, [rename.get(a, a) if isinstance(a, Var) else a
                                  for a in eqn.invars], eqn.params, eqn.outvars,
                  eqn.source_info)
        key = _key(eqn, rename)
        if key is not None and key in seen:
            for old, new in zip(eqn.outvars, seen[key].outvars):
                rename[old] = new
            continue
        if key is not None:
            seen[key] = eqn
        eqns.append(eqn)
    outvars = [rename.get(v, v) if isinstance(v, Var) else v for v in flat.outvars]
    return FlatProgram(flat.invars, flat.constvars, flat.consts, eqns, outvars, flat.varying)
