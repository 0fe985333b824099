"""Control flow in the generated C: scan and while become native loops, cond a switch.

Each sub-Program (a loop body, a predicate, a branch) is planned into kernels of its own,
over the same buffer table as the Program around it.  Its inputs and outputs are *views*:
buffers with no memory of their own whose pointers the loop sets before running the
sub-Program's kernels -- at this iteration's carry, at slice i of an xs, at slot i of a ys,
at the cond's output.  So results are written where they belong instead of being copied:
- carries are double-buffered (a body reads this iteration's carry while it writes the
  next); for a scan, whose trip count is known, the buffer the last iteration writes is the
  output itself; a while copies the final carry out only if it ends in the other buffer;
- a sub-Program output that no kernel of it writes (an input passed through, a literal, an
  output listed twice) is copied into place after its kernels.
"""
from __future__ import annotations

import numpy as np

from .contractions import canonicalize
from .flatten import flatten
from .fusion import plan_block


class _SubProgram:
    """A planned sub-Program: its kernels and, per output, ("buffer", id) / ("literal", v)."""

    def __init__(self, plan, program, in_buffers, target):
        flat = flatten(program)
        if target.gemm:
            flat = canonicalize(flat, target)
        self.kernels = []
        self.outs = plan_block(plan, flat, in_buffers, self.kernels, target, "temp")
        self.written = {b for k in self.kernels for b in k.outputs}
        self.claimed = set()

    def claim(self, plan, k, dtype):
        """Output k as (view, None) if one of the kernels writes it (it becomes a view the
        caller points at the destination), else (None, source buffer) to copy from."""
        kind, b = self.outs[k]
        if kind == "buffer" and b in self.written and b not in self.claimed:
            self.claimed.add(b)
            plan.buffers[b].role = "view"
            return b, None
        if kind == "literal":
            const = plan.new_buffer((), dtype, "const")
            plan.consts.append((const.id, np.asarray(b, dtype)))
            return None, const.id
        return None, b


def _views(plan, program):
    return [plan.new_buffer(v.aval.shape, v.aval.dtype, "view").id for v in program.invars]


def _nbytes(buf):
    return buf.size * buf.dtype.itemsize


class LoopKernel:
    """scan: `length` iterations of the body (see the module docstring)."""

    def __init__(self, eqn, length, reverse, unroll, body, carries, xs_binds, ys_binds, copies,
                 outputs):
        self.eqns = [eqn]
        self.length, self.reverse = length, reverse
        self.unroll = max(1, min(int(unroll), length))  # iterations per trip of the C loop
        self.body = body                # kernels of the body, in order (consts: read in place)
        self.carries = carries          # (view_in, view_out | None, init, first, second)
        self.xs_binds = xs_binds        # (view, stacked buffer, bytes per slice)
        self.ys_binds = ys_binds        # (view, stacked buffer, bytes per slot)
        self.copies = copies            # (("carry", k) | ("ys", buffer), source, bytes)
        self.outputs = outputs          # the scan's outer output buffers
        self.shape = (length,)
        self.parts = [body]


class WhileKernel:
    """while: the predicate's kernels, then (while it holds) the body's."""

    def __init__(self, eqn, cond, pred, body, carries, copies, outputs):
        self.eqns = [eqn]
        self.cond, self.pred = cond, pred   # predicate kernels; (kind, buffer or value)
        self.body = body
        self.carries = carries   # (cond_view, body_view_in, body_view_out | None, init,
        self.copies = copies     #  first, second);  copies: (("carry", k), source, bytes)
        self.outputs = outputs
        self.shape = None
        self.parts = [cond, body]


class CondKernel:
    """cond: the chosen branch's kernels, writing into the cond's outputs."""

    def __init__(self, eqn, index, branches, outputs):
        self.eqns = [eqn]
        self.index = index           # buffer holding the i32 branch index
        self.branches = branches     # per branch: (kernels, out_binds, copies)
        self.outputs = outputs
        self.shape = None
        self.parts = [kernels for kernels, _, _ in branches]


def plan_control(plan, eqn, operands, roles, target):
    outs = [plan.new_buffer(v.aval.shape, v.aval.dtype, role).id
            for v, role in zip(eqn.outvars, roles)]
    plan_fn = {"scan": _plan_scan, "while": _plan_while, "cond": _plan_cond}[eqn.primitive.name]
    return plan_fn(plan, eqn, operands, outs, target)


def _carry_buffers(plan, out, odd_trips):
    """(first, second): the carry starts in `first`; a scan with an odd trip count ends in
    `second`, so the output is whichever the last iteration writes."""
    scratch = plan.new_buffer(plan.buffers[out].shape, plan.buffers[out].dtype, "temp").id
    return (scratch, out) if odd_trips else (out, scratch)


def _plan_scan(plan, eqn, operands, outs, target):
    params = eqn.params
    nc, nk, length = params["num_consts"], params["num_carry"], params["length"]
    program = params["program"]
    views = _views(plan, program)
    # consts never change: the body reads the outer buffers themselves
    body = _SubProgram(plan, program, operands[:nc] + views[nc:], target)
    carries, copies = [], []
    for k in range(nk):
        first, second = _carry_buffers(plan, outs[k], length % 2)
        view_out, source = body.claim(plan, k, plan.buffers[outs[k]].dtype)
        carries.append((views[nc + k], view_out, operands[nc + k], first, second))
        if view_out is None:
            copies.append((("carry", k), source, _nbytes(plan.buffers[outs[k]])))
    ys_binds = []
    for k in range(nk, len(outs)):
        slot = _nbytes(plan.buffers[outs[k]]) // max(length, 1)
        view_out, source = body.claim(plan, k, plan.buffers[outs[k]].dtype)
        if view_out is not None:
            ys_binds.append((view_out, outs[k], slot))
        else:
            copies.append((("ys", outs[k]), source, slot))
    xs_binds = [(views[j], operands[j], _nbytes(plan.buffers[views[j]]))
                for j in range(nc + nk, len(views))]
    return LoopKernel(eqn, length, params["reverse"], params["unroll"], body.kernels, carries,
                      xs_binds, ys_binds, copies, outs)


def _plan_while(plan, eqn, operands, outs, target):
    params = eqn.params
    ncc, nbc = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts = operands[:ncc], operands[ncc:ncc + nbc]
    nk = len(outs)
    cond_views = _views(plan, params["cond_program"])[ncc:]
    body_views = _views(plan, params["body_program"])[nbc:]
    cond = _SubProgram(plan, params["cond_program"], cond_consts + cond_views, target)
    body = _SubProgram(plan, params["body_program"], body_consts + body_views, target)
    carries, copies = [], []
    for k in range(nk):
        first, second = _carry_buffers(plan, outs[k], False)
        view_out, source = body.claim(plan, k, plan.buffers[outs[k]].dtype)
        carries.append((cond_views[k], body_views[k], view_out, operands[ncc + nbc + k],
                        first, second))
        if view_out is None:
            copies.append((("carry", k), source, _nbytes(plan.buffers[outs[k]])))
    kind, pred = cond.outs[0]
    return WhileKernel(eqn, cond.kernels, (kind, pred), body.kernels, carries, copies, outs)


def _plan_cond(plan, eqn, operands, outs, target):
    index, rest = operands[0], operands[1:]
    branches = []
    for program in eqn.params["branches"]:
        branch = _SubProgram(plan, program, list(rest), target)
        binds, copies = [], []
        for k, out in enumerate(outs):
            view_out, source = branch.claim(plan, k, plan.buffers[out].dtype)
            if view_out is not None:
                binds.append((view_out, out))
            else:
                copies.append((out, source, _nbytes(plan.buffers[out])))
        branches.append((branch.kernels, binds, copies))
    return CondKernel(eqn, index, branches, outs)
