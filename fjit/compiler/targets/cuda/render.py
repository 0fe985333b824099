"""A Program's CUDA source and its launch list, from the same scheduled kernels and kernel data
as the C target (`c.render._Renderer`: names, index arithmetic, parameters), rendered by
templates/cuda/program.cu.j2.

What it covers so far: loop kernels (element-wise maps, reductions, contractions as loops,
row-fused kernels, fills), each nest a launch, and scans, unrolled into their body's
launches (`_LaunchList`), while and cond (decided by the host between launches), and GEMMs (templates/cuda/gemm.cuh.j2: a tiled kernel of fjit's
own); float16 buffers are `__half` (the prelude names it as the C target's `_Float16`).
What it cannot render raises `CudaUnsupported` naming the kernel.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ..c import render as c_render

# Ops whose C the C target writes in a form CUDA C++ lacks (GCC statement expressions).
_CUDA_OPS = {
    "bitcast": (
        "{% if st == 'bf16' %}fj_bf16_to_f32({% elif st == 'f16' %}(float)({% else %}({% endif %}"
        "fj_bitcast<{{ tt }}, {{ tf }}>({% if sf == 'bf16' %}fj_f32_to_bf16({{ x }})"
        "{% elif sf == 'f16' %}(FJ_F16){{ x }}{% else %}{{ x }}{% endif %}))"),
}


@functools.lru_cache(maxsize=None)
def _cuda_op_template(name):
    return c_render.environment().from_string(_CUDA_OPS[name])


def _render_op(name, args, types):
    """An element-wise op's expression: the C target's, but for the ops in _CUDA_OPS."""
    if name not in _CUDA_OPS:
        return c_render._render_op(name, args, types)
    return _cuda_op_template(name).render(**dict(zip("xyz", args)), **types)


THREADS_PER_BLOCK = 128
MAX_BLOCKS = 1024   # a grid-stride loop covers the rest
GEMM_TILE, GEMM_THREADS = 64, 256   # templates/cuda/gemm.cuh.j2
MAX_GRID_YZ = 65535  # a GEMM's row tiles and batch beyond this are looped over


class CudaUnsupported(NotImplementedError):
    """A kernel the cuda target does not render yet (the message names it and why)."""


@dataclass
class Launch:
    """One kernel launch of a Program: the function, the memory it gets (in its argument
    order) as (buffer id, byte offset) pairs -- inside a scan, slice i of a buffer is the
    buffer at i times the slice's size --, where its parameters start in the Program's
    sizes and constants, and how many threads its grid-stride loop covers (None: one
    thread)."""
    function: str
    slots: list
    n: int | None
    f: int | None
    work: object = None   # an int, or ("param", k): the k-th of the call's sizes
    comment: str = ""     # what the kernel computes (its ops), for error messages
    gemm: tuple | None = None   # a GEMM's (m, n, batch), each as `work` is
    source: str = ""            # the user's line its first equation came from

    def _value(self, work, sizes) -> int:
        if isinstance(work, tuple):
            return int(sizes[self.n + work[1]])
        return int(work)

    def threads(self, sizes) -> int:
        return 1 if self.work is None else self._value(self.work, sizes)

    def configuration(self, sizes) -> tuple:
        """(blocks, threads per block): a GEMM's grid of 64x64 tiles of C (batch along z),
        else a grid-stride loop's."""
        if self.gemm is None:
            return grid(self.threads(sizes))
        m, n, batch = (self._value(w, sizes) for w in self.gemm)
        tiles = lambda extent: max(1, -(-extent // GEMM_TILE))
        return ((tiles(n), min(tiles(m), MAX_GRID_YZ), max(1, min(batch, MAX_GRID_YZ))),
                GEMM_THREADS)


@dataclass
class WhileStep:
    """A while loop the host drives: per parity of the iteration count (which buffer of each
    double-buffered carry is current), the predicate's steps, where the predicate is (a
    (buffer, offset) slot, or a constant bool), and the body's steps; `final` copies the
    carries back into their first buffers when the loop ends on an odd count."""
    versions: list    # [(cond steps, predicate, body steps)] for parity 0 and 1
    final: list


@dataclass
class CondStep:
    """A cond the host drives: it reads the i32 branch index at `index` (clamped, as
    lax.switch does) and runs that branch's steps."""
    index: tuple
    branches: list


@dataclass
class RenderedCuda:
    source: str
    kernels: list          # the __global__ functions' names
    launches: list         # every Launch, in table order
    sizes: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    steps: list | None = None   # what runs: indices into launches, WhileStep, CondStep

    @property
    def host_driven(self) -> bool:
        """Whether a while or cond needs the host to read a value between launches (then
        the Program is not captured as a graph)."""
        return any(not isinstance(s, int) for s in self.steps)


def _work(text: str):
    """A loop bound as the template data writes it ("12LL", "n3", or an expression) as a
    launch's thread count: a literal, or a parameter of the call."""
    if text.endswith("LL") and text[:-2].lstrip("-").isdigit():
        return int(text[:-2])
    if text.startswith("n") and text[1:].isdigit():
        return ("param", int(text[1:]))
    raise CudaUnsupported(f"a parallel loop bounded by {text!r}")


# A scan becomes its body's launches once per iteration (see _LaunchList); beyond this many
# launches in one Program it runs on the reference interpreter instead.
MAX_LAUNCHES = 100_000
COPY = "fj_copy"   # the kernel copying a carry or a slice (templates/cuda/program.cu.j2)


def render_program(name, plan, scheduled) -> RenderedCuda:
    sizes, constants = [], []
    kernels, calls, _ = c_render.unique_kernels(c_render._Renderer(plan), scheduled, sizes,
                                                constants)
    loops = [k for k in kernels if k["kind"] == "loops"]
    gemms = [k for k in kernels if k["kind"] == "gemm"]
    for k in kernels:
        if k["kind"] == "gemm" and k["producer"] is not None:
            raise CudaUnsupported(f"{k['name']} ({k['comment']}): a GEMM computing its B "
                                  "operand is not rendered for CUDA")
        if k["kind"] not in ("loops", "scan", "gemm", "while", "cond"):
            raise CudaUnsupported(f"{k['name']} ({k['comment']}): {k['kind']} kernels are "
                                  "not rendered for CUDA yet")
    functions = [COPY] + [f"{k['name']}_gemm" for k in gemms]
    for k in loops:
        for j, nest in enumerate(k["nests"]):
            functions += [f"{k['name']}_n{j}_fill{i}" for i in range(len(nest["fills"]))]
            functions.append(f"{k['name']}_n{j}")
    launches = _LaunchList(plan, scheduled, calls, {k["name"]: k for k in loops + gemms},
                           sizes)
    steps = launches.collect(lambda: [launches.run(sk.name) for sk in scheduled])
    used = c_render._types_used(plan, scheduled)
    template = c_render.environment().get_template("cuda/program.cu.j2")
    source = template.render(
        name=name, kernels=loops, gemms=gemms, openmp=False, op=_render_op,
        floats=[f for f in c_render.FLOATS if f[0] in used],
        ints=[i for i in c_render.INTS if i[0] in used],
        int_min=c_render.INT_MIN, int_max=c_render.INT_MAX)
    return RenderedCuda(source, functions, launches.launches, sizes, constants, steps)


class _LaunchList:
    """The launches of a Program, and the steps that run them.  A scan's trip count is
    known, so it runs as its body's launches once per iteration with the pointers the C
    target's loop would set (control.py: carries double-buffered, views at slice i of xs and
    ys, copies into place), all of them fixed offsets into the call's buffers: no iteration
    waits for the host, and a Program of launches and scans is one CUDA graph.  A while or
    cond is decided by the host, which reads the predicate or index from the device
    (WhileStep, CondStep); their launches are laid out once per carry parity and per branch.
    `binding` maps a view to the (buffer, offset) it points at now."""

    def __init__(self, plan, scheduled, calls, loop_kernels, sizes):
        self.plan, self.calls, self.loop_kernels, self.sizes = plan, calls, loop_kernels, sizes
        self.control = {sk.name: sk for sk in c_render.all_kernels(scheduled)
                        if sk.control is not None}
        self.sources = {sk.name: str(sk.source) for sk in c_render.all_kernels(scheduled)
                        if sk.source is not None}
        self.binding, self.launches, self.steps = {}, [], []

    def collect(self, emit) -> list:
        """The steps `emit()` adds, as a list of their own."""
        outer, self.steps = self.steps, []
        try:
            emit()
            return self.steps
        finally:
            self.steps = outer

    def where(self, b, offset=0):
        base, at = self.binding.get(b, (b, 0))
        return base, at + offset

    def _add(self, launch):
        if len(self.launches) >= MAX_LAUNCHES:
            raise CudaUnsupported(f"{launch.comment}: more than {MAX_LAUNCHES} launches (a "
                                  "long scan) are not rendered for CUDA yet")
        self.steps.append(len(self.launches))
        self.launches.append(launch)

    def copy(self, dst, src, nbytes):
        n = len(self.sizes)
        self.sizes.append(int(nbytes))
        self._add(Launch(COPY, [dst, src], n, None, int(nbytes), "copy"))

    def run(self, name):
        call = self.calls[name]
        if call["args"] is None:
            sk = self.control[name]
            return {"scan": self.scan, "while": self.while_loop, "cond": self.cond}[sk.kind](sk)
        kernel = self.loop_kernels[call["fn"]]
        slots = [self.where(b) for b in call["args"]]
        source = self.sources.get(name, "")
        if kernel["kind"] == "gemm":
            return self._add(Launch(f"{kernel['name']}_gemm", slots, call["n"], call["f"],
                                    None, kernel["comment"], gemm=tuple(
                                        _work(kernel[d]) for d in ("m", "n", "batch")),
                                    source=source))
        for j, nest in enumerate(kernel["nests"]):
            for i, fill in enumerate(nest["fills"]):
                self._add(Launch(f"{kernel['name']}_n{j}_fill{i}", slots, call["n"],
                                 call["f"], _work(fill["size"]), kernel["comment"],
                                 source=source))
            loops = nest["loops"]
            work = _work(loops[0]["extent"]) if loops and loops[0]["parallel"] else None
            self._add(Launch(f"{kernel['name']}_n{j}", slots, call["n"], call["f"], work,
                             kernel["comment"], source=source))

    def scan(self, sk):
        loop, body = sk.control, [k.name for k in sk.parts[0]]
        nbytes = [self.plan.buffers[first].size * self.plan.buffers[first].dtype.itemsize
                  for _, _, _, first, _ in loop.carries]
        for (_, _, init, first, _), n in zip(loop.carries, nbytes):
            self.copy(self.where(first), self.where(init), n)
        cur = [self.where(first) for _, _, _, first, _ in loop.carries]
        nxt = [self.where(second) for *_, second in loop.carries]
        for it in range(loop.length):
            i = loop.length - 1 - it if loop.reverse else it
            for k, (view_in, view_out, *_) in enumerate(loop.carries):
                self.binding[view_in] = cur[k]
                if view_out is not None:
                    self.binding[view_out] = nxt[k]
            for view, b, n in list(loop.xs_binds) + list(loop.ys_binds):
                self.binding[view] = self.where(b, i * n)
            for name in body:
                self.run(name)
            for (kind, where), source, n in loop.copies:
                dst = nxt[where] if kind == "carry" else self.where(where, i * n)
                self.copy(dst, self.where(source), n)
            cur, nxt = nxt, cur

    def _nbytes(self, b) -> int:
        return self.plan.buffers[b].size * self.plan.buffers[b].dtype.itemsize

    def while_loop(self, sk):
        loop = sk.control
        cond, body = ([k.name for k in part] for part in sk.parts)
        for _, _, _, init, first, _ in loop.carries:
            self.copy(self.where(first), self.where(init), self._nbytes(first))
        firsts = [self.where(c[4]) for c in loop.carries]
        seconds = [self.where(c[5]) for c in loop.carries]
        outer, versions = dict(self.binding), []
        for cur, nxt in ((firsts, seconds), (seconds, firsts)):
            for k, (cond_view, *_) in enumerate(loop.carries):
                self.binding[cond_view] = cur[k]
            cond_steps = self.collect(lambda: [self.run(name) for name in cond])
            kind, pred = loop.pred
            predicate = self.where(pred) if kind == "buffer" else bool(pred)
            for k, (_, view_in, view_out, *_) in enumerate(loop.carries):
                self.binding[view_in] = cur[k]
                if view_out is not None:
                    self.binding[view_out] = nxt[k]

            def run_body(nxt=nxt):
                for name in body:
                    self.run(name)
                for (_, k), source, n in loop.copies:   # a while's copies are carries'
                    self.copy(nxt[k], self.where(source), n)
            versions.append((cond_steps, predicate, self.collect(run_body)))
        self.binding = outer
        final = self.collect(lambda: [self.copy(f, s, self._nbytes(c[4]))
                                      for f, s, c in zip(firsts, seconds, loop.carries)])
        self.steps.append(WhileStep(versions, final))

    def cond(self, sk):
        kernel, outer, branches = sk.control, dict(self.binding), []
        for (_, binds, copies), part in zip(kernel.branches, sk.parts):
            for view, out in binds:
                self.binding[view] = self.where(out)

            def run_branch(part=part, copies=copies):
                for k in part:
                    self.run(k.name)
                for dst, src, n in copies:
                    self.copy(self.where(dst), self.where(src), n)
            branches.append(self.collect(run_branch))
            self.binding = dict(outer)
        self.steps.append(CondStep(self.where(kernel.index), branches))


def grid(threads: int) -> tuple:
    """(blocks, threads per block) covering `threads` iterations of a grid-stride loop."""
    if threads <= 1:
        return 1, 1
    block = min(THREADS_PER_BLOCK, threads)
    return min(MAX_BLOCKS, -(-threads // block)), block
