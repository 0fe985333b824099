"""A Program's CUDA source and its launch list, from the same scheduled kernels and kernel data
as the C target (`c_family.kernel_data.KernelData`: names, index arithmetic, parameters), rendered by
templates/cuda/program.cu.j2.

What it covers so far: loop kernels (element-wise maps, contractions as loops, row-fused
kernels, fills), each nest a launch, a grid-stride loop over its outer loop or, for full and
row-wise reductions, a block per row (`share_reductions`); scans, unrolled into their body's
launches (`_LaunchList`); cond and while, decided on the device through control flags; and
GEMMs (templates/cuda/gemm.cuh.j2: a tiled kernel of fjit's own); float16 buffers are `__half`
(the prelude names it as the C target's `_Float16`).  What it cannot render raises
`CudaUnsupported` naming the kernel.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ..c_family import kernel_data

# Ops whose C the C target writes in a form CUDA C++ lacks (GCC statement expressions).
_CUDA_OPS = {
    "bitcast": (
        "{% if st == 'bf16' %}fj_bf16_to_f32({% elif st == 'f16' %}(float)({% else %}({% endif %}"
        "fj_bitcast<{{ tt }}, {{ tf }}>({% if sf == 'bf16' %}fj_f32_to_bf16({{ x }})"
        "{% elif sf == 'f16' %}(FJ_F16){{ x }}{% else %}{{ x }}{% endif %}))"),
}


@functools.lru_cache(maxsize=None)
def _cuda_op_template(name):
    return kernel_data.environment().from_string(_CUDA_OPS[name])


def _render_op(name, args, types):
    """An element-wise op's expression: the C target's, but for the ops in _CUDA_OPS."""
    if name not in _CUDA_OPS:
        return kernel_data._render_op(name, args, types)
    return _cuda_op_template(name).render(**dict(zip("xyz", args)), **types)


THREADS_PER_BLOCK = 128
MAX_BLOCKS = 1024   # a grid-stride loop covers the rest
REDUCE_THREADS = 256   # a block sharing reductions (multiple of 32: whole warps)
SHORT_REDUCTION = 32   # a reduction over fewer elements (known) stays in one thread
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
    shared: bool = False        # a block per outer iteration, its reductions shared
    guard: int | None = None    # the control flag that must be set for it to run
    control: bool = False       # fj_control: it sets flags (its G is the flags array)

    def _value(self, work, sizes) -> int:
        if isinstance(work, tuple):
            return int(sizes[self.n + work[1]])
        return int(work)

    def threads(self, sizes) -> int:
        return 1 if self.work is None else self._value(self.work, sizes)

    def configuration(self, sizes) -> tuple:
        """(blocks, threads per block): a GEMM's grid of 64x64 tiles of C (batch along z),
        a block of REDUCE_THREADS per outer iteration for a nest whose reductions the block
        shares, else a grid-stride loop's."""
        if self.shared:
            return max(1, min(self.threads(sizes), MAX_BLOCKS)), REDUCE_THREADS
        if self.gemm is None:
            return grid(self.threads(sizes))
        m, n, batch = (self._value(w, sizes) for w in self.gemm)
        tiles = lambda extent: max(1, -(-extent // GEMM_TILE))
        return ((tiles(n), min(tiles(m), MAX_GRID_YZ), max(1, min(batch, MAX_GRID_YZ))),
                GEMM_THREADS)


@dataclass
class WhileStep:
    """A while loop, decided on the device: an iteration's steps (per parity of the iteration
    count: which buffer of each double-buffered carry is current) compute the predicate,
    clear the flag `active` when it fails, and run the body guarded by that flag.  The host
    enqueues iterations in batches (1, 2, 4, ... up to WHILE_BATCH) and reads the flag only
    between batches; the iterations past the end do nothing.  `final` (guarded by the flag
    saying the count was odd) copies the carries back into their first buffers."""
    versions: list    # [steps of an iteration] for parity 0 and 1
    active: int       # the flag's index in the Program's control flags
    final: list


WHILE_BATCH = 64   # most while iterations enqueued between two reads of its flag


@dataclass
class RenderedCuda:
    source: str
    kernels: list          # the __global__ functions' names
    launches: list         # every Launch, in table order
    sizes: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    steps: list | None = None   # what runs: indices into launches, and WhileSteps
    flags: int = 0              # control flags (int32) the launches' guards index

    @property
    def host_driven(self) -> bool:
        """Whether a while loop needs the host to read its flag between batches of
        iterations (then the Program is not captured as one graph)."""
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
CONTROL = "fj_control"   # the kernel setting a while's or a cond's flags (the same file)
WHILE_START, WHILE_TEST, BRANCH = 0, 1, 2   # what fj_control does (its N[0])


def render_program(name, plan, scheduled) -> RenderedCuda:
    sizes, constants = [], []
    kernels, calls, _ = kernel_data.unique_kernels(kernel_data.KernelData(plan), scheduled, sizes,
                                                constants)
    loops = [k for k in kernels if k["kind"] == "loops"]
    for k in loops:
        for nest in k["nests"]:
            nest["shared"] = share_reductions(nest)
    gemms = [k for k in kernels if k["kind"] == "gemm"]
    for k in kernels:
        if k["kind"] == "gemm" and k["producer"] is not None:
            raise CudaUnsupported(f"{k['name']} ({k['comment']}): a GEMM computing its B "
                                  "operand is not rendered for CUDA")
        if k["kind"] not in ("loops", "scan", "gemm", "while", "cond"):
            raise CudaUnsupported(f"{k['name']} ({k['comment']}): {k['kind']} kernels are "
                                  "not rendered for CUDA yet")
    functions = [COPY, CONTROL] + [f"{k['name']}_gemm" for k in gemms]
    for k in loops:
        for j, nest in enumerate(k["nests"]):
            functions += [f"{k['name']}_n{j}_fill{i}" for i in range(len(nest["fills"]))]
            functions.append(f"{k['name']}_n{j}")
    launches = _LaunchList(plan, scheduled, calls, {k["name"]: k for k in loops + gemms},
                           sizes)
    steps = launches.collect(lambda: [launches.run(sk.name) for sk in scheduled])
    used = kernel_data._types_used(plan, scheduled)
    template = kernel_data.environment().get_template("cuda/program.cu.j2")
    source = template.render(
        name=name, kernels=loops, gemms=gemms, openmp=False, op=_render_op,
        floats=[f for f in kernel_data.FLOATS if f[0] in used],
        ints=[i for i in kernel_data.INTS if i[0] in used],
        int_min=kernel_data.INT_MIN, int_max=kernel_data.INT_MAX)
    return RenderedCuda(source, functions, launches.launches, sizes, constants, steps,
                        launches.flags)


class _LaunchList:
    """The launches of a Program, and the steps that run them.  A scan's trip count is
    known, so it runs as its body's launches once per iteration with the pointers the C
    target's loop would set (control.py: carries double-buffered, views at slice i of xs and
    ys, copies into place), all of them fixed offsets into the call's buffers: no iteration
    waits for the host, and a Program of launches and scans is one CUDA graph.  A cond and a
    while are decided on the device: fj_control sets flags from the branch index or the
    predicate, and each launch of a branch or a loop body is guarded by its flag (it returns
    at once when the flag is clear); a branch's launches are laid out once each, a while's
    once per carry parity (WhileStep).  `guard` is the flag the launches added now get (a
    nested branch's flag is cleared whenever its enclosing one is); `binding` maps a view to
    the (buffer, offset) it points at now."""

    def __init__(self, plan, scheduled, calls, loop_kernels, sizes):
        self.plan, self.calls, self.loop_kernels, self.sizes = plan, calls, loop_kernels, sizes
        self.control = {sk.name: sk for sk in kernel_data.all_kernels(scheduled)
                        if sk.control is not None}
        self.sources = {sk.name: str(sk.source) for sk in kernel_data.all_kernels(scheduled)
                        if sk.source is not None}
        self.binding, self.launches, self.steps = {}, [], []
        self.guard, self.flags = None, 0

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
        launch.guard = self.guard
        if len(self.launches) >= MAX_LAUNCHES:
            raise CudaUnsupported(f"{launch.comment}: more than {MAX_LAUNCHES} launches (a "
                                  "long scan) are not rendered for CUDA yet")
        self.steps.append(len(self.launches))
        self.launches.append(launch)

    def copy(self, dst, src, nbytes):
        n = len(self.sizes)
        self.sizes.append(int(nbytes))
        self._add(Launch(COPY, [dst, src], n, None, int(nbytes), "copy"))

    def new_flags(self, count: int) -> int:
        self.flags += count
        return self.flags - count

    def set_flags(self, what, slots, *values):
        """A launch of fj_control: N holds what it does, the enclosing flag (-1: none) and
        `values`; A the predicate's or branch index's slot."""
        n = len(self.sizes)
        self.sizes += [what, -1 if self.guard is None else self.guard, *values]
        outer, self.guard = self.guard, None   # it always runs (it reads the outer flag)
        self._add(Launch(CONTROL, slots, n, None, None, "control flags", control=True))
        self.guard = outer

    def guarded(self, flag, emit) -> list:
        """The steps `emit()` adds, their launches guarded by `flag`."""
        outer, self.guard = self.guard, flag
        try:
            return self.collect(emit)
        finally:
            self.guard = outer

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
                             kernel["comment"], source=source, shared=nest["shared"]))

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
        active = self.new_flags(2)   # and active + 1: whether the body ran an odd count
        self.set_flags(WHILE_START, [], active, active + 1)
        firsts = [self.where(c[4]) for c in loop.carries]
        seconds = [self.where(c[5]) for c in loop.carries]
        outer, versions = dict(self.binding), []
        kind, pred = loop.pred
        for cur, nxt in ((firsts, seconds), (seconds, firsts)):
            def iteration(cur=cur, nxt=nxt):
                for k, (cond_view, *_) in enumerate(loop.carries):
                    self.binding[cond_view] = cur[k]
                for name in cond:
                    self.run(name)
                if kind == "buffer":
                    self.set_flags(WHILE_TEST, [self.where(pred)], active, active + 1, -1)
                else:
                    self.set_flags(WHILE_TEST, [], active, active + 1, int(bool(pred)))
                for k, (_, view_in, view_out, *_) in enumerate(loop.carries):
                    self.binding[view_in] = cur[k]
                    if view_out is not None:
                        self.binding[view_out] = nxt[k]
                for name in body:
                    self.run(name)
                for (_, k), source, n in loop.copies:   # a while's copies are carries'
                    self.copy(nxt[k], self.where(source), n)
            versions.append(self.guarded(active, iteration))
        self.binding = outer
        final = self.guarded(active + 1, lambda: [
            self.copy(f, s, self._nbytes(c[4]))
            for f, s, c in zip(firsts, seconds, loop.carries)])
        self.steps.append(WhileStep(versions, active, final))

    def cond(self, sk):
        kernel, outer, branches = sk.control, dict(self.binding), []
        first = self.new_flags(len(kernel.branches))
        self.set_flags(BRANCH, [self.where(kernel.index)], first, len(kernel.branches))
        for b, ((_, binds, copies), part) in enumerate(zip(kernel.branches, sk.parts)):
            for view, out in binds:
                self.binding[view] = self.where(out)

            def run_branch(part=part, copies=copies):
                for k in part:
                    self.run(k.name)
                for dst, src, n in copies:
                    self.copy(self.where(dst), self.where(src), n)
            self.steps += self.guarded(first + b, run_branch)
            self.binding = dict(outer)


def share_reductions(nest) -> bool:
    """Whether a block of threads runs each iteration of the nest's outer loop (or, with no
    loops, the nest once), its reductions split over the block's threads and combined by a
    tree (warp shuffles, then shared memory: fj_block_reduce in the prelude), rather than one
    thread per iteration running them alone.  It does for a nest whose statements at that
    level (and at the first level of its sub-loops, as in a row-fused softmax) are element-wise
    values, stores, reductions with at least one not known to be short, and sub-loops (their
    outer loop spread over the threads, a barrier after each): the shape of a full reduction
    and of a row-wise one (softmax, norms, arg-max).  A reduction across rows (over the outer
    axis of contiguous rows) stays one per thread: there neighbouring threads read
    neighbouring elements.  Anything else a block cannot share (an accumulation, whose
    threads would race; a reduction over tiled loops) keeps the grid-stride mapping.  Marks
    each shared reduction with how its tree combines."""
    loops = nest["loops"]
    if loops and not (loops[0]["parallel"] and len(loops) == 1
                      and all(s["k"] == "let" for s in nest["levels"][0])):
        return False
    level = list(_block_level(nest["levels"][-1]))
    reductions = [s for s in level if s["k"] == "reduce"]
    if not reductions or not all(s["k"] in ("let", "store", "reduce", "sub") for s in level):
        return False
    if any(_accumulates(s) for s in level if s["k"] == "sub"):
        return False
    trees = [_tree(s) for s in reductions]
    if None in trees or all(_short(s) for s in reductions):
        return False
    if loops and _across_rows(loops[0]["var"], reductions):
        return False
    for s, tree in zip(reductions, trees):
        s["tree"] = tree
    return True


def _block_level(statements):
    """The statements a shared block runs together: these, and those at the first level of
    their sub-loops (before any loop)."""
    for s in statements:
        yield s
        if s["k"] == "sub":
            yield from _block_level(s["levels"][0])


def _tree(reduce):
    """How a block's threads combine their parts of `reduce`: its monoid (and compute type)
    or, for an arg-reduction, which best it keeps; None when its loops are not plain
    0..extent loops or its body holds more than values and the combining step."""
    if any(l["start"] != "0" or l["step"] != 1 for l in reduce["loops"]):
        return None
    body = reduce["body"]
    if not all(s["k"] in ("let", "combine", "argbest") for s in body):
        return None
    last = body[-1]
    if last["k"] == "argbest":
        return {"argmax": last["kind"] == "argmax"}
    return {"monoid": last["monoid"], "s": last["s"]}


def _short(reduce) -> bool:
    total = 1
    for l in reduce["loops"]:
        if not l["extent"].endswith("LL"):
            return False
        total *= _work(l["extent"])
    return total < SHORT_REDUCTION


def _accumulates(sub) -> bool:
    return any(s["k"] == "accumulate" or (s["k"] == "sub" and _accumulates(s))
               or (s["k"] == "reduce" and any(b["k"] == "accumulate" for b in s["body"]))
               for level in sub["levels"] for s in level)


def _across_rows(outer: str, reductions) -> bool:
    """Whether the reductions read memory contiguous along the outer loop (`outer`) and not
    along their own innermost loop: a column sum, where a thread per column reads as a warp
    reads best (neighbours at neighbouring addresses)."""
    strides = [(_stride(v["at"], outer), _stride(v["at"], r["loops"][-1]["var"]))
               for r in reductions for s in r["body"] if s["k"] == "let"
               for v in [s["value"]] if v["k"] == "load"]
    return (not any(inner == 1 for _, inner in strides)
            and any(across == 1 for across, _ in strides))


def _stride(at, var):
    """How far the index `at` (template index data) moves when `var` grows by one: 0, 1,
    "other" (another or an unknown step) or None (not affine in it; a remainder keeps its
    dividend's unit step, as a flattened index's does)."""
    k = at["k"]
    if k == "var":
        return int(at["name"] == var)
    if k == "const":
        return 0
    if k == "bin" and at["op"] in ("+", "-"):
        a, b = _stride(at["a"], var), _stride(at["b"], var)
        if a is None or b is None:
            return None
        if b == 0:
            return a
        return b if a == 0 and at["op"] == "+" else "other"
    if k == "bin" and at["op"] == "*":
        a, b = _stride(at["a"], var), _stride(at["b"], var)
        if a is None or b is None or (a and b):
            return None
        step, factor = (a, at["b"]) if a else (b, at["a"])
        return 0 if step == 0 else step if factor == {"k": "const", "v": "1LL"} else "other"
    if k == "bin" and at["op"] == "%":
        return _stride(at["a"], var)
    mentions = any(_stride(at[x], var) != 0 for x in ("a", "b", "c", "at") if x in at)
    return None if mentions else 0


def grid(threads: int) -> tuple:
    """(blocks, threads per block) covering `threads` iterations of a grid-stride loop."""
    if threads <= 1:
        return 1, 1
    block = min(THREADS_PER_BLOCK, threads)
    return min(MAX_BLOCKS, -(-threads // block)), block
