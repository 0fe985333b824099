"""Automatic differentiation: forward mode (jvp), linearize, and reverse mode as the transpose
of the linearized Program (JAX's design).

* `jvp_rules[primitive](primals, tangents, **params) -> (primal_out, tangent_out)`: each
  primitive family registers one.  Tangents may be `Zero` (symbolic: nothing materialised).
* `linearize`: the JVP runs on a PartialEvalTrace with the primals known and the tangents
  unknown, so primal work happens now and the tangent work is recorded as a linear Program.
* `transpose_rules[primitive](ct, *args, **params) -> cotangents per arg`: for the linear
  primitives.  `backward_pass` walks a linear Program backwards with them; equations of the
  Program that read no linear value (recomputation under checkpoint) are evaluated forward
  first.  Arguments that are linear inputs of an equation arrive as `UndefinedPrimal`.

Integer and bool values carry no tangent (JAX's float0): their tangents are always Zero.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..array import aval_of, concrete_operand
from ..core import (Literal, Program, ShapedArray, Trace, Tracer, Var, current_trace, eval_program,
                    set_current_trace)
from ..errors import (ConcretizationTypeError, TracerBoolConversionError,
                      TracerIntegerConversionError, source_info_override)
from ..tree_util import tree_map
from . import array_ops
from .partial_eval import DebugInfo, PartialEvalTrace, param_program, trace_to_program

jvp_rules: dict = {}
transpose_rules: dict = {}


# --- tangent values ---------------------------------------------------------------------------

class Zero:
    """A symbolic zero tangent (or cotangent) of abstract value `aval`."""

    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"


def is_differentiable(aval) -> bool:
    return dtypes.is_float(aval.dtype)


def tangent_aval(aval) -> ShapedArray:
    """Tangents have the primal's shape, dtype and weak type (as in JAX: the gradient of a
    function of a Python float is weakly typed too)."""
    return aval


def zeros_like_aval(aval):
    return array_ops.zeros(aval)


def instantiate(t):
    """A real array for a possibly-symbolic zero."""
    return zeros_like_aval(t.aval) if isinstance(t, Zero) else t


def add_tangents(a, b):
    if isinstance(a, Zero):
        return b
    if isinstance(b, Zero):
        return a
    return array_ops.add(a, b)


float0 = np.dtype([("float0", np.void, 0)])


def float0_zeros(shape):
    """JAX's tangent/cotangent for integer and bool values: an array of the empty dtype."""
    return np.zeros(shape, dtype=float0)


# --- forward mode -----------------------------------------------------------------------------

class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self):
        return aval_of(self.primal)

    def _concrete_primal(self, what, error_type):
        primal = self.primal
        if isinstance(primal, Tracer):
            if isinstance(primal, JVPTracer):
                return primal._concrete_primal(what, error_type)
            self._concretization_error(what, error_type)
        return primal

    # Python control flow on a value being differentiated looks at its primal, as in JAX.
    def __bool__(self):
        return bool(self._concrete_primal("bool()", TracerBoolConversionError))

    def __int__(self):
        return int(self._concrete_primal("int()", TracerIntegerConversionError))

    def __index__(self):
        return self._concrete_primal("operator.index()", TracerIntegerConversionError).__index__()

    def __float__(self):  # like JAX: float() would silently drop the derivative
        self._concretization_error("float()", ConcretizationTypeError)

    def item(self, *args):
        return self._concrete_primal(".item()", ConcretizationTypeError).item(*args)


class JVPTrace(Trace):
    """Carries (primal, tangent) pairs through primitives with the jvp rules."""

    def describe(self):
        return "inside jvp/grad"

    def lift(self, x):
        if isinstance(x, JVPTracer) and x._trace is self:
            return x.primal, x.tangent
        if isinstance(x, Tracer):
            self.check_foreign_tracer(x)
        else:
            x = concrete_operand(x)  # rules see arrays, never Python scalars
        return x, Zero(tangent_aval(aval_of(x)))

    def wrap(self, primal, tangent):
        if isinstance(tangent, Zero) or not is_differentiable(aval_of(primal)):
            return primal  # no tangent: the plain value (of the parent trace) is enough
        return JVPTracer(self, primal, tangent)

    def process_primitive(self, primitive, args, params):
        primals, tangents = zip(*(self.lift(x) for x in args)) if args else ((), ())
        with set_current_trace(self.parent):
            if all(isinstance(t, Zero) for t in tangents):
                return primitive.bind(*primals, **params)
            rule = jvp_rules.get(primitive)
            if rule is None:
                raise NotImplementedError(
                    f"differentiation rule for '{primitive.name}' is not implemented")
            primal_out, tangent_out = rule(list(primals), list(tangents), **params)
        if primitive.multiple_results:
            return [self.wrap(p, t) for p, t in zip(primal_out, tangent_out)]
        return self.wrap(primal_out, tangent_out)


def lower_finished(tree):
    """Values that leave a finished jvp without a derivative (auxiliary outputs): its tracers
    become their primal values (JAX returns plain arrays there)."""

    def lower(x):
        while isinstance(x, JVPTracer) and not x._trace.alive:
            x = x.primal
        return x
    return tree_map(lower, tree)


def jvp_flat(fun, primals, tangents):
    """Run `fun(*flat)` on JVP tracers; returns (flat primal outputs, flat tangent outputs),
    tangents possibly Zero.  `fun` returns a flat list of arrays."""
    trace = JVPTrace(current_trace())
    try:
        with set_current_trace(trace):
            inputs = [trace.wrap(p if isinstance(p, Tracer) else concrete_operand(p), t)
                      for p, t in zip(primals, tangents)]
            outs = fun(*inputs)
        pairs = [trace.lift(o) for o in outs]
    finally:
        trace.alive = False
    return [p for p, _ in pairs], [t for _, t in pairs]


def jvp_program(program: Program, nonzero_tangents):
    """The Program (primals..., nonzero tangents...) -> (primal outs..., nonzero tangent outs...)
    and which output tangents are non-zero.  Cached on the Program."""
    key = ("jvp", tuple(nonzero_tangents))
    return program.cached(key, lambda: _jvp_program(program, nonzero_tangents))


def _jvp_program(program: Program, nonzero_tangents):

    n = len(program.invars)
    out_nonzero = []

    def fun(*args):
        primals, tangents = list(args[:n]), list(args[n:])
        tangents_iter = iter(tangents)
        full = [next(tangents_iter) if nz else Zero(tangent_aval(v.aval))
                for v, nz in zip(program.invars, nonzero_tangents)]
        outs, out_tangents = jvp_flat(lambda *xs: eval_program(program, *xs), primals, full)
        out_nonzero.extend(not isinstance(t, Zero) for t in out_tangents)
        return outs + [t for t in out_tangents if not isinstance(t, Zero)]

    in_avals = program.in_avals + [tangent_aval(v.aval) for v, nz in
                                   zip(program.invars, nonzero_tangents) if nz]
    new_program, _ = trace_to_program(fun, in_avals, _debug("jvp", program))
    closed = param_program(new_program)
    return closed, out_nonzero


def _debug(purpose, program):
    return DebugInfo(purpose, _Named(program.name or "program"))


class _Named:
    """Stands in for a function in DebugInfo when a Program is what is being traced."""

    def __init__(self, name):
        self.__name__ = self.__qualname__ = name


# --- linearize --------------------------------------------------------------------------------

def linearize_flat(fun, primals):
    """Evaluate `fun` at `primals` and record its derivative as a linear Program.

    Returns (primal outputs, linear Program, out_nonzero, in_differentiable): the Program maps
    the tangents of the differentiable inputs to the non-zero output tangents; its constvars
    are the residuals (values of the primal computation it needs).
    """
    in_avals = [aval_of(p) for p in primals]
    in_diff = [is_differentiable(a) for a in in_avals]
    pe = PartialEvalTrace(current_trace(), DebugInfo("linearize", fun))
    try:
        tangents_in = [pe.new_arg(tangent_aval(aval)) if diff else Zero(tangent_aval(aval))
                       for aval, diff in zip(in_avals, in_diff)]
        with set_current_trace(pe):
            out_primals, out_tangents = jvp_flat(fun, primals, tangents_in)
        out_nonzero = [not isinstance(t, Zero) for t in out_tangents]
        outvars = [pe.to_atom(t) for t in out_tangents if not isinstance(t, Zero)]
    finally:
        pe.alive = False
    return out_primals, pe.to_program(outvars), out_nonzero, in_diff


# --- transposition ----------------------------------------------------------------------------

class UndefinedPrimal:
    """A linear input of an equation being transposed: only its type is known."""

    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval

    def __repr__(self):
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_linear(x) -> bool:
    return isinstance(x, UndefinedPrimal)


def backward_pass(program: Program, linear_inputs, args, cts_out):
    """Cotangents of `program`'s linear inputs, given output cotangents (some may be Zero).

    `linear_inputs[i]` says whether invar i is linear; `args[i]` is the value of each
    non-linear invar (ignored for linear ones).  Equations that read no linear value are
    evaluated forward first (residual computations, recomputation under checkpoint).
    """
    env = {v: c for v, c in zip(program.constvars, program.consts)}
    linear = set()
    for v, is_lin, x in zip(program.invars, linear_inputs, args):
        if is_lin:
            linear.add(v)
        else:
            env[v] = x

    def read(atom):
        return atom.as_array() if isinstance(atom, Literal) else env[atom]

    linear_eqns = []
    for eqn in program.eqns:
        if any(isinstance(a, Var) and a in linear for a in eqn.invars):
            linear.update(eqn.outvars)
            linear_eqns.append(eqn)
            continue
        with source_info_override(eqn.source_info):
            outs = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
        for v, value in zip(eqn.outvars, outs if eqn.primitive.multiple_results else [outs]):
            env[v] = value

    ct_env = {}

    def accumulate(var, ct):
        if isinstance(ct, Zero) or ct is None:
            return
        ct_env[var] = add_tangents(ct_env[var], ct) if var in ct_env else ct

    for v, ct in zip(program.outvars, cts_out):
        if isinstance(v, Var) and v in linear:
            accumulate(v, ct)
    for eqn in reversed(linear_eqns):
        cts = [ct_env.pop(v, None) for v in eqn.outvars]
        if all(c is None for c in cts):
            continue
        cts = [Zero(tangent_aval(v.aval)) if c is None else c
               for c, v in zip(cts, eqn.outvars)]
        rule = transpose_rules.get(eqn.primitive)
        if rule is None:
            raise NotImplementedError(f"transpose rule for '{eqn.primitive.name}' is not "
                                      "implemented (it is not a linear primitive)")
        in_args = [UndefinedPrimal(a.aval) if isinstance(a, Var) and a in linear else read(a)
                   for a in eqn.invars]
        with source_info_override(eqn.source_info):
            cts_in = rule(cts if eqn.primitive.multiple_results else cts[0], *in_args,
                          **eqn.params)
        for a, ct in zip(eqn.invars, cts_in):
            if isinstance(a, Var) and a in linear:
                accumulate(a, ct)
    return [ct_env.get(v, Zero(tangent_aval(v.aval))) if is_lin else None
            for v, is_lin in zip(program.invars, linear_inputs)]


def transpose_program(program: Program, linear_inputs):
    """The Program (non-linear inputs..., output cotangents...) -> cotangents of the linear
    inputs (zeros materialised).  Cached on the Program."""
    key = ("transpose", tuple(linear_inputs))
    return program.cached(key, lambda: _transpose_program(program, linear_inputs))


def _transpose_program(program: Program, linear_inputs):

    nonlinear_avals = [v.aval for v, lin in zip(program.invars, linear_inputs) if not lin]
    ct_avals = [tangent_aval(v.aval) for v in program.outvars]

    def fun(*args):
        values = iter(args[:len(nonlinear_avals)])
        full = [None if lin else next(values) for lin in linear_inputs]
        cts = backward_pass(program, linear_inputs, full, list(args[len(nonlinear_avals):]))
        return [instantiate(c) for c, lin in zip(cts, linear_inputs) if lin]

    new_program, _ = trace_to_program(fun, nonlinear_avals + ct_avals,
                                      _debug("transpose", program))
    closed = param_program(new_program)
    return closed


def unbroadcast(aval, ct):
    """Sum a cotangent down to `aval`'s shape (element-wise ops broadcast rank-0 operands)."""
    if isinstance(ct, Zero) or ct.shape == aval.shape:
        return ct
    return array_ops.sum_all(ct)
