"""The NumPy reference backend: runs a Program equation by equation with each primitive's
NumPy implementation.  No compiler needed; it is the oracle the compiled backends are tested
against.

It plans the Program once (slots instead of dict lookups, params bound in advance) and
recognises one pattern: reduce_sum(mul(broadcast a, broadcast b)), which is how matmul and
einsum are written in meta-ops, runs as one `numpy.einsum` instead of materialising the
broadcast product.  The Program itself is unchanged.
"""
from __future__ import annotations

import functools
import string

import numpy as np

from .. import dtypes
from ..core import Literal, Program, impl_version
from ..lax.elementwise import PRIMITIVES as ELEMENTWISE
from ..lax.reduce import REDUCE_PRIMITIVES
from ..lax.structural import broadcast_in_dim_p
from .backend import register_backend
from .eager import run_control

_mul_p = ELEMENTWISE["mul"]
_reduce_sum_p = REDUCE_PRIMITIVES["sum"]


class ReferenceExecutable:
    """A Program planned for repeated execution on NumPy arrays.  Calls and control flow in
    it run their sub-Programs on `control_backend` (a compiled backend hosting loops it does
    not generate natively passes its own name)."""

    def __init__(self, program: Program, control_backend: str = "reference"):
        slot = {}
        initial = []
        for var, value in zip(program.constvars, program.consts):
            slot[var] = len(initial)
            initial.append(np.asarray(value))

        def slot_of(atom):
            if isinstance(atom, Literal):
                initial.append(np.asarray(atom.value))
                return len(initial) - 1
            if atom not in slot:
                slot[atom] = len(initial)
                initial.append(None)
            return slot[atom]

        self.in_slots = [slot_of(v) for v in program.invars]
        self.steps = []
        impls = []   # (step, primitive, params): steps running a primitive's impl
        fused = _find_contractions(program)
        for eqn in program.eqns:
            if id(eqn) in fused.skipped:
                continue
            contraction = fused.by_reduce.get(id(eqn))
            if contraction is not None:
                fn, operands = contraction
                ins = [slot_of(a) for a in operands]
            else:   # calls and control flow through the eager runtime's runners
                fn = run_control(eqn.primitive, control_backend)
                if fn is not None:
                    fn = functools.partial(fn, **eqn.params)
                else:
                    impls.append((len(self.steps), eqn.primitive, eqn.params))
                ins = [slot_of(a) for a in eqn.invars]
            outs = [slot_of(v) for v in eqn.outvars]
            self.steps.append((fn, ins, outs, eqn.primitive.multiple_results))
        self.out_slots = [slot_of(v) for v in program.outvars]
        self.initial = initial
        self.num_contractions = len(fused.by_reduce)
        self._impls = impls
        self._bind_impls()

    def _bind_impls(self):
        """Bind each primitive's current impl into its step (again when a harness overrides
        one: core.impl_version)."""
        self._impl_version = impl_version()
        for k, primitive, params in self._impls:
            _, ins, outs, multiple = self.steps[k]
            self.steps[k] = (functools.partial(primitive.impl, **params), ins, outs, multiple)

    def checked(self, program):
        """Checked mode has nothing to check here: this is the oracle (the compiled bodies
        of its loops, run through executable_for, are checked themselves)."""
        return self

    def __call__(self, args):
        if self._impl_version != impl_version():
            self._bind_impls()
        env = list(self.initial)
        for s, value in zip(self.in_slots, args):
            env[s] = value
        with np.errstate(all="ignore"):  # like XLA: inf/nan results, no warnings
            for fn, ins, outs, multiple in self.steps:
                result = fn(*[env[i] for i in ins])
                if multiple:
                    for s, value in zip(outs, result):
                        env[s] = value
                else:
                    env[outs[0]] = result
        return [np.asarray(env[s]) for s in self.out_slots]


class _Contractions:
    def __init__(self):
        self.by_reduce = {}   # id(reduce eqn) -> (fn, operand atoms)
        self.skipped = set()  # ids of eqns folded into a contraction


def _find_contractions(program: Program) -> _Contractions:
    """reduce_sum(mul(x, y)) where x and y are broadcasts (or full-shape values): one einsum
    over the broadcasts' operands.  The product must have no other reader; a broadcast is
    skipped when every reader of it became an einsum."""
    producer, uses = {}, {}
    for eqn in program.eqns:
        for v in eqn.outvars:
            producer[v] = eqn
        for a in eqn.invars:
            if not isinstance(a, Literal):
                uses[a] = uses.get(a, 0) + 1
    for v in program.outvars:
        if not isinstance(v, Literal):
            uses[v] = uses.get(v, 0) + 1

    found = _Contractions()
    folded_reads = {}  # broadcast var -> reads replaced by einsums
    for eqn in program.eqns:
        if eqn.primitive is not _reduce_sum_p:
            continue
        mul = producer.get(eqn.invars[0])
        if mul is None or mul.primitive is not _mul_p or uses[eqn.invars[0]] != 1:
            continue
        full_shape = mul.outvars[0].aval.shape
        if all(full_shape[a] == 1 for a in eqn.params["axes"]):
            continue  # a product, not a contraction: reduce_sum keeps each element as it is
        if any(isinstance(a, Literal) or a.aval.shape != full_shape for a in mul.invars):
            continue
        sides = [_einsum_side(a, producer, full_shape) for a in mul.invars]
        covered = {d for side in sides for d in side[1]}
        if any(d not in covered for d in range(len(full_shape))
               if d not in eqn.params["axes"]):
            continue  # an output dim only broadcasts (both sides lack it): einsum cannot make it
        letters = string.ascii_letters[:len(full_shape)]
        out_letters = "".join(c for k, c in enumerate(letters) if k not in eqn.params["axes"])
        subscripts = ",".join("".join(letters[d] for d in side[1]) for side in sides)
        spec = f"{subscripts}->{out_letters}"
        reshapes = [side[2] for side in sides]
        dtype = eqn.outvars[0].aval.dtype
        found.by_reduce[id(eqn)] = (functools.partial(_einsum, spec, reshapes, dtype),
                                    [side[0] for side in sides])
        found.skipped.add(id(mul))
        for var, side in zip(mul.invars, sides):
            if side[3] is not None:
                folded_reads[var] = folded_reads.get(var, 0) + 1
    for var, reads in folded_reads.items():
        if reads == uses[var]:
            found.skipped.add(id(producer[var]))
    return found


def _einsum_side(var, producer, full_shape):
    """(operand, output dims it covers, shape to reshape it to, broadcast eqn folded or None)."""
    bcast = producer.get(var)
    if bcast is None or bcast.primitive is not broadcast_in_dim_p:
        return var, tuple(range(len(full_shape))), None, None
    operand = bcast.invars[0]
    if isinstance(operand, Literal):
        return var, tuple(range(len(full_shape))), None, None
    dims = bcast.params["broadcast_dimensions"]
    kept = [k for k, d in enumerate(dims) if operand.aval.shape[k] == full_shape[d]]
    new_shape = tuple(operand.aval.shape[k] for k in kept)
    reshape = new_shape if len(kept) != len(dims) else None
    return operand, tuple(dims[k] for k in kept), reshape, bcast


def _einsum(spec, reshapes, dtype, *operands):
    """float16/bfloat16 in float32 (as XLA's dots): NumPy's own float16 einsum may round
    partial sums to float16, depending on the path it picks."""
    operands = [x if shape is None else x.reshape(shape) for x, shape in zip(operands, reshapes)]
    if dtype == dtypes.float16 or (dtypes.bfloat16 is not None and dtype == dtypes.bfloat16):
        operands = [x.astype(np.float32) for x in operands]
    return np.asarray(np.einsum(spec, *operands, optimize=len(operands) > 1)).astype(dtype,
                                                                                     copy=False)


register_backend("reference", ReferenceExecutable)
