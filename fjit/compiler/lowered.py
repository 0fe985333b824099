"""Introspection: `fjit.jit(f).lower(*args)` shows what the compiler made of a function."""
from __future__ import annotations

from ..pretty import Names, format_eqn, format_program
from ..config import config
from ..runtime.backend import lowering_for
from .schedule import ReduceStmt, SubNest, walk_statements


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
        self.reasons = {b.id: plan.reasons.get(b.id) for b in self.outputs}
        self.scheduled, self.members = scheduled, len(kernels)

    @property
    def bytes_read(self) -> int:
        return sum(b.size * b.dtype.itemsize for b in self.inputs)

    @property
    def bytes_written(self) -> int:
        return sum(b.size * b.dtype.itemsize for b in self.outputs)

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
    def __init__(self, program, backend: str | None = None):
        self.program = program
        self.compiled = lowering_for(backend or config.backend)(program)

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
            covered = sorted({position[id(e)] for e in info.eqns if id(e) in position})
            parts.append(f"{info!r}  equations {_ranges(covered)}")
            parts.extend("    " + format_eqn(e, names, 4) for e in info.eqns)
        launches = getattr(self.compiled, "launch_text", None)   # a GPU target's launches
        if launches is not None:
            parts += ["", "# Launches (kernel<<<blocks, threads per block>>>)", launches()]
        parts += ["", "# Generated source", self.compiled.source]
        return "\n".join(parts)

    def explain(self) -> str:
        """Why the Program became these kernels: per kernel, the equations it covers, its
        iteration space, the bytes it reads and writes, its parallel and vector loops, and
        for each buffer it writes, why that value is not computed inside its readers (each
        boundary between kernels is such a buffer)."""
        flat, names = self.compiled.flat, Names()
        format_program(flat, names=names)   # the names lower().as_text() prints
        position = {id(e): k for k, e in enumerate(flat.eqns)}
        vector_bytes = getattr(self.compiled, "vector_bytes", None)
        kernels = self.kernels()
        var_of = {b: v for v, b in self.compiled.plan.var_buffers.items()}
        lines = [f"{len(kernels)} kernels for {len(flat.eqns)} equations "
                 "(numbered as in lower().as_text())"]
        for info in kernels:
            covered = sorted({position[id(e)] for e in info.eqns if id(e) in position})
            space = f" over {list(info.shape)}" if info.shape is not None else ""
            lines.append(f"{info.name}: {info.kind}{space}, equations {_ranges(covered)} "
                         f"({', '.join(dict.fromkeys(info.primitives))})")
            count = len(info.inputs)
            lines.append(f"  reads {_bytes(info.bytes_read)} from {count} "
                         f"buffer{'s' if count != 1 else ''}, "
                         f"writes {_bytes(info.bytes_written)}")
            lines.append("  " + _loops_text(info, vector_bytes))
            if info.members > 1:
                lines.append(f"  {info.members} kernels run in one pass over their shared "
                             "outer loops (row fusion)")
            if len(info.scheduled.nests) > 1 and info.kind == "map":
                lines.append("  nest 1 runs the element-wise ops after its reduction in "
                             "place once nest 0 has accumulated it (an epilogue)")
            for b in info.outputs:
                why = info.reasons.get(b.id) or "computed by this kernel"
                var = var_of.get(b.id)
                label = f"{names(var)}:{var.aval.str_short()}" if var is not None else repr(b)
                lines.append(f"  writes {label}: {why}")
        return "\n".join(lines)


def _bytes(n) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _loops_text(info, vector_bytes) -> str:
    """The kernel's parallel and vectorised loops, with the vector's lanes."""
    if info.kind == "gemm":
        return "loops: the GEMM's own (blocked, packed, threaded by the GEMM)"
    itemsize = max((b.dtype.itemsize for b in info.outputs), default=4)
    parts, nests = [], info.scheduled.nests
    for k, nest in enumerate(nests):
        inner = [(stmt, loop) for stmt in walk_statements(nest.levels)
                 if isinstance(stmt, (SubNest, ReduceStmt)) for loop in stmt.loops]
        for stmt, loop in [(None, loop) for loop in nest.loops] + inner:
            name = f"i{loop.axis} (extent {loop.extent})"
            if isinstance(stmt, ReduceStmt):
                name = f"reduction {name}"
                if loop.unroll:
                    parts.append(f"{name} unrolled")
            if len(nests) > 1:
                name = f"nest {k}: {name}"
            if loop.parallel:
                parts.append(f"{name} parallel" + ("" if loop.threads else
                                                    ", on threads when a call's work is large"))
            if loop.simd:
                lanes = f", {vector_bytes // itemsize} lanes" if vector_bytes else ""
                parts.append(f"{name} simd{lanes}")
    return "loops: " + ("; ".join(parts) if parts else "serial, scalar")


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
