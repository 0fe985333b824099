"""Checked mode (`config.update("check_mode", True)`): run a compiled Program kernel by kernel
beside the reference interpreter and stop at the first kernel that computes something else.

Each kernel is fed the reference's values: after a kernel passes, the reference values are
written over its outputs, so the kernels after it read exactly what the interpreter computed
and a report names the kernel that is wrong, not one downstream of it.  This module is
target-neutral: a target gives the buffers as NumPy arrays (views of its memory) and a
function that runs the k-th top-level kernel (the C target's `fj_step`).
"""
from __future__ import annotations

import numpy as np

from ..core import Program
from ..pretty import Names, format_eqn, format_program
from ..runtime.reference import ReferenceExecutable

# How far a kernel's float output may be from the reference's, relative to the value plus the
# buffer's largest magnitude (summation order, vector math and fused multiply-adds differ
# from NumPy's by a few units in the last place times the length of a reduction).
RELATIVE_TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 4e-2}


class KernelMismatchError(AssertionError):
    """A compiled kernel's output differs from the reference interpreter's beyond the dtype's
    tolerance.  Attributes: kernel (its name), equation (the Program equation, as
    `lower().as_text()` prints it), source_info (the user's line), index, got, expected."""

    def __init__(self, message, kernel, equation, source_info, index, got, expected):
        super().__init__(message)
        self.kernel, self.equation, self.source_info = kernel, equation, source_info
        self.index, self.got, self.expected = index, got, expected


def tolerance(dtype) -> float:
    """0 for exact dtypes (ints, bools), else RELATIVE_TOLERANCE's entry."""
    return RELATIVE_TOLERANCE.get(np.dtype(dtype).name, 0.0)


def first_mismatch(got, expected, dtype):
    """(index of the worst element, got, expected, count of elements out of tolerance), or
    None when `got` matches `expected`.  NaN matches NaN; infinities must match exactly."""
    got, expected = np.asarray(got), np.asarray(expected)
    rtol = tolerance(dtype)
    if rtol == 0.0:
        bad = got != expected
        if not bad.any():
            return None
        score = bad.astype(np.float64)
    else:
        g, e = got.astype(np.float64), expected.astype(np.float64)
        finite = np.isfinite(e)
        scale = float(np.abs(e[finite]).max()) if finite.any() else 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            allowed = rtol * (np.abs(e) + max(scale, 1e-30))
            err = np.abs(g - e)
            same = (g == e) | (np.isnan(g) & np.isnan(e))
            bad = ~same & (~(err <= allowed) | ~finite)
            if not bad.any():
                return None
            score = np.where(bad, np.nan_to_num(err / allowed, nan=np.inf), 0.0)
    flat = int(np.argmax(score))
    index = np.unravel_index(flat, got.shape) if got.ndim else ()
    return tuple(int(i) for i in index), got[index], expected[index], int(bad.sum())


class KernelChecker:
    """What checking one compiled Program needs: the reference interpreter over every var
    that has a buffer, and which buffers each top-level kernel finally writes."""

    def __init__(self, name, flat, plan, scheduled):
        self.name, self.flat, self.plan, self.scheduled = name, flat, plan, scheduled
        given = set(flat.invars) | set(flat.constvars)
        self.var_of = {}
        for var, b in plan.var_buffers.items():
            if var not in given and b not in self.var_of and plan.buffers[b].size:
                self.var_of[b] = var
        self.compared = list(self.var_of)
        self.reference = ReferenceExecutable(Program(
            flat.invars, flat.constvars, flat.consts, flat.eqns,
            [self.var_of[b] for b in self.compared]))
        last_writer = {}
        for k, sk in enumerate(scheduled):
            for m in sk.members:
                for b in plan.kernels[m].outputs:
                    last_writer[b] = k
        self.checks = [[] for _ in scheduled]   # per kernel: the buffers to compare after it
        for b in self.compared:
            if b in last_writer:
                self.checks[last_writer[b]].append(b)

    def run(self, args, buffers, step):
        """Run the kernels one by one (`step(k)`), comparing each one's outputs in `buffers`
        (buffer id -> array view) with the reference's, then overwriting them with it.
        Returns {buffer id: the compiled value} for the Program's output buffers."""
        expected = dict(zip(self.compared, self.reference(list(args))))
        outputs = {b for kind, b in self.plan.outputs if kind == "buffer"}
        compiled = {}
        for k in range(len(self.scheduled)):
            step(k)
            for b in self.checks[k]:
                dtype = self.plan.buffers[b].dtype
                mismatch = first_mismatch(buffers[b], expected[b], dtype)
                if mismatch is not None:
                    raise self._report(k, b, mismatch)
                if b in outputs:
                    compiled[b] = buffers[b].copy()
                buffers[b][...] = expected[b]
        return compiled

    def _report(self, k, b, mismatch):
        index, got, expected, count = mismatch
        sk, buf, var = self.scheduled[k], self.plan.buffers[b], self.var_of[b]
        names = Names()
        format_program(self.flat, names=names)   # names as lower().as_text() prints them
        number = {id(e): n for n, e in enumerate(self.flat.eqns)}
        eqn = next(e for e in self.flat.eqns if var in e.outvars)
        equation = f"{number[id(eqn)]}: {format_eqn(eqn, names)}"
        covered = sorted({id(e) for m in sk.members for e in self.plan.kernels[m].eqns
                          if id(e) in number}, key=number.get)
        by_id = {id(e): e for e in self.flat.eqns}
        listing = "\n".join(f"    {number[i]}: {format_eqn(by_id[i], names)}" for i in covered)
        rtol = tolerance(buf.dtype)
        allowed = (f"relative tolerance {rtol:g} of the value plus the buffer's largest "
                   "magnitude" if rtol else "exact")
        got, expected = _scalar(got), _scalar(expected)
        where = f"\n  from {eqn.source_info}" if eqn.source_info is not None else ""
        message = (f"fjit check_mode: {sk.name} of jit({self.name}) computes "
                   f"{names(var)}:{var.aval.str_short()} unlike the reference interpreter\n"
                   f"  at index {index}: the kernel gave {got!r}, the reference {expected!r} "
                   f"({count} of {buf.size} elements differ; {allowed})\n"
                   f"  {sk.name} computes these equations of the Program as compiled "
                   f"(jit(f).lower(...).as_text() prints it):\n{listing}{where}")
        return KernelMismatchError(message, sk.name, equation, eqn.source_info, index, got,
                                   expected)


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value
