"""Introspection: `fjit.jit(f).lower(*args)` shows what the compiler made of a function."""
from __future__ import annotations

from ..pretty import Names, format_eqn, format_program
from ..config import config
from ..runtime.backend import lowering_for


class KernelInfo:
    """One generated function: what it computes (kind, iteration space) and which equations
    fused into it (row fusion can put several of the plan's kernels into one function)."""

    def __init__(self, scheduled, plan, kernels=None):
        kernels = [(plan.kernels if kernels is None else kernels)[k] for k in scheduled.members]
        self.name = scheduled.name
        kinds = {"MapKernel": "map", "ScatterKernel": "scatter", "GemmKernel": "gemm",
                 "LoopKernel": "loop", "WhileKernel": "while", "CondKernel": "cond"}
        self.kind = kinds[type(kernels[0]).__name__]
        self.shape = getattr(kernels[-1], "shape", None)
        # the kernels of a loop's body (a while's predicate, a cond's branches), alike
        subs = [k for part in getattr(kernels[0], "parts", []) for k in part]
        self.body = [KernelInfo(sk, plan, subs) for sk in scheduled.body]
        self.outputs = [plan.buffers[b] for k in kernels for b in k.outputs]
        written = {b.id for b in self.outputs}
        self.inputs = [plan.buffers[b] for b in scheduled.buffers if b not in written]
        self.produces_b = any(getattr(k, "b_producer", None) is not None for k in kernels)
        self.eqns = [e for k in kernels for e in k.eqns]
        self.parallel = any(l.parallel and l.threads for nest in scheduled.nests
                            for l in nest.loops)
        self.vectorized = any(l.simd for nest in scheduled.nests for l in nest.loops)

    @property
    def bytes_moved(self) -> int:
        """A traffic model, not a measurement: every buffer the kernel reads or writes moves
        once (a loop: its body's kernels, per iteration)."""
        if self.body:
            return sum(k.bytes_moved for k in self.body)
        return sum(b.size * b.dtype.itemsize for b in self.inputs + self.outputs)

    @property
    def primitives(self):
        return [e.primitive.name for e in self.eqns]

    def __repr__(self):
        space = f" over {list(self.shape)}" if self.shape is not None else ""
        flags = "".join([" parallel" if self.parallel else "",
                         " simd" if self.vectorized and self.kind != "gemm" else "",
                         " (B computed while packed)" if self.produces_b else ""])
        body = f" body [{', '.join(map(repr, self.body))}]" if self.body else ""
        return (f"<{self.name}: {self.kind}{space}{flags} -> "
                f"{', '.join(map(repr, self.outputs))}; {', '.join(self.primitives)}{body}>")


class Lowered:
    def __init__(self, program):
        self.program = program
        self.compiled = lowering_for(config.backend)(program)

    def kernels(self) -> list:
        plan = self.compiled.plan
        return [KernelInfo(sk, plan) for sk in self.compiled.scheduled]

    def source(self) -> str:
        return self.compiled.source

    def as_text(self) -> str:
        """The Program as traced, as compiled (calls inlined, common subexpressions merged;
        equations numbered), each kernel with the equations it computes, named as in the
        compiled Program, and the generated source."""
        flat, names = self.compiled.flat, Names()
        numbered = format_program(flat, names=names, numbered=True).split("\n")
        position = {id(e): k for k, e in enumerate(flat.eqns)}
        parts = ["# Program", str(self.program), "", "# Program as compiled", *numbered, "",
                 "# Kernels"]
        for info in self.kernels():
            covered = sorted(position[id(e)] for e in info.eqns if id(e) in position)
            parts.append(f"{info!r}  equations {_ranges(covered)}")
            parts.extend("    " + format_eqn(e, names, 4) for e in info.eqns)
        parts += ["", "# Generated source", self.compiled.source]
        return "\n".join(parts)


def _ranges(numbers) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    out, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out) or "none"
