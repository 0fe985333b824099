"""Shrinking: a failing program is made smaller (fewer outputs, statements, keyword
arguments; smaller shapes; plainer dtypes and values) one step at a time, keeping each step
only while `still_fails` says the failure is still there."""
from __future__ import annotations

import numpy as np

from .expr import Call, FuzzProgram, Index, Lambda, Method, Ref, refs, substitute, walk


def dce(prog: FuzzProgram) -> FuzzProgram:
    """Only the statements the outputs need, and only the inputs those read."""
    live = set(prog.outputs)
    kept = []
    for name, e in reversed(prog.stmts):
        if name in live:
            kept.append((name, e))
            live |= refs(e)
    kept.reverse()
    inputs = [(n, v) for n, v in prog.inputs if n in live]
    return prog.copy(stmts=kept, inputs=inputs)


def _bypass(prog, k):
    """Programs without statement k, its uses reading one of its operands instead."""
    name, e = prog.stmts[k]
    for r in sorted(refs(e)):
        mapping = {name: Ref(r)}
        stmts = [(n, substitute(s, mapping)) for n, s in prog.stmts[:k] + prog.stmts[k + 1:]]
        outputs = []
        for o in prog.outputs:
            o = r if o == name else o
            if o not in outputs:
                outputs.append(o)
        if all(o in {n for n, _ in prog.inputs} for o in outputs):
            continue  # a program must compute something
        yield dce(prog.copy(stmts=stmts, outputs=outputs))


def _lambda_variants(e):
    """`e` with one statement of one of its control-flow bodies bypassed."""
    t = type(e)
    if t is Lambda:
        for j, (name, s) in enumerate(e.stmts):
            rest = e.stmts[:j] + e.stmts[j + 1:]
            options = sorted(refs(s) - {name}) or [None]
            for r in options:
                if r is None:
                    if any(name in refs(x) for _, x in rest) or name in refs(e.result):
                        continue
                    yield Lambda(e.params, rest, e.result)
                    continue
                m = {name: Ref(r)}
                yield Lambda(e.params, tuple((n, substitute(x, m)) for n, x in rest),
                             substitute(e.result, m))
    elif t is Call:
        for i, a in enumerate(e.args):
            for v in _lambda_variants(a):
                yield Call(e.func, e.args[:i] + (v,) + e.args[i + 1:], e.kwargs)
    elif t is Index:
        for v in _lambda_variants(e.obj):
            yield Index(v, e.key)


def _smaller_bodies(prog, k):
    name, e = prog.stmts[k]
    for v in _lambda_variants(e):
        stmts = list(prog.stmts)
        stmts[k] = (name, v)
        yield dce(prog.copy(stmts=stmts))


def _fewer_kwargs(prog, k):
    name, e = prog.stmts[k]
    if type(e) in (Call, Method) and e.kwargs:
        for j in range(len(e.kwargs)):
            kwargs = e.kwargs[:j] + e.kwargs[j + 1:]
            new = Call(e.func, e.args, kwargs) if type(e) is Call else \
                Method(e.obj, e.name, e.args, kwargs)
            stmts = list(prog.stmts)
            stmts[k] = (name, new)
            yield prog.copy(stmts=stmts)


def _simpler_input(prog, k):
    name, v = prog.inputs[k]

    def with_value(new):
        inputs = list(prog.inputs)
        inputs[k] = (name, new)
        return prog.copy(inputs=inputs)

    for axis, d in enumerate(v.shape):
        for smaller in sorted({1, d // 2}):
            if smaller < d:
                yield with_value(np.take(v, np.arange(smaller), axis=axis))
    if v.dtype.name != "float32" and (v.dtype.kind == "f" or v.dtype.name == "bfloat16"):
        yield with_value(v.astype(np.float32))
    if v.dtype.kind in "iu" and v.dtype.name != "int32":
        yield with_value(v.astype(np.int32))
    if v.size and np.any(v != 1):
        yield with_value(np.ones_like(v))


def candidates(prog: FuzzProgram):
    """Smaller variants of `prog`, the most promising first."""
    yield dce(prog)
    if len(prog.outputs) > 1:
        for o in prog.outputs:
            yield dce(prog.copy(outputs=[o]))
    for k in reversed(range(len(prog.stmts))):
        yield from _bypass(prog, k)
    for k in range(len(prog.stmts)):
        yield from _smaller_bodies(prog, k)
    for k in range(len(prog.stmts)):
        yield from _fewer_kwargs(prog, k)
    for k in range(len(prog.inputs)):
        yield from _simpler_input(prog, k)


def size(prog: FuzzProgram):
    """How big a program is, to decide that a candidate is smaller."""
    body_stmts = sum(len(x.stmts) for _, e in prog.stmts for x in walk(e) if type(x) is Lambda)
    return (len(prog.stmts) + body_stmts, len(prog.outputs),
            sum(len(e.kwargs) for _, e in prog.stmts if type(e) in (Call, Method)),
            sum(v.size for _, v in prog.inputs),
            sum(v.dtype.name not in _PLAIN for _, v in prog.inputs) +
            sum(int(np.any(v != 1)) for _, v in prog.inputs if v.size))


_PLAIN = ("float32", "int32", "bool")


def shrink(prog: FuzzProgram, still_fails, max_checks=200) -> FuzzProgram:
    """The smallest program reached from `prog` by greedy steps that keep `still_fails`."""
    checks = 0
    progress = True
    while progress and checks < max_checks:
        progress = False
        for cand in candidates(prog):
            if size(cand) >= size(prog):
                continue
            checks += 1
            if still_fails(cand):
                prog, progress = cand, True
                break
            if checks >= max_checks:
                break
    return prog
