"""A Program's CUDA source and its launch list, from the same scheduled kernels and kernel data
as the C target (`c.render._Renderer`: names, index arithmetic, parameters), rendered by
templates/cuda/program.cu.j2.

What it covers so far: loop kernels (element-wise maps, reductions, contractions as loops,
row-fused kernels, fills), each nest a launch.  GEMM kernels, scatters into shared outputs
under threads, control flow (scan, while, cond) and float16 buffers are not rendered yet:
`CudaUnsupported` names the kernel.
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


class CudaUnsupported(NotImplementedError):
    """A kernel the cuda target does not render yet (the message names it and why)."""


@dataclass
class Launch:
    """One kernel launch of a Program: the function, the buffers it gets (in its argument
    order), where its parameters start in the Program's sizes and constants, and how many
    threads its grid-stride loop covers (None: one thread)."""
    function: str
    buffers: list
    n: int | None
    f: int | None
    work: object = None   # an int, or ("param", k): the k-th of the call's sizes
    comment: str = ""     # what the kernel computes (its ops), for error messages

    def threads(self, sizes) -> int:
        if self.work is None:
            return 1
        if isinstance(self.work, tuple):
            return int(sizes[self.n + self.work[1]])
        return int(self.work)


@dataclass
class RenderedCuda:
    source: str
    kernels: list          # the __global__ functions' names
    launches: list         # Launch, in order
    sizes: list = field(default_factory=list)
    constants: list = field(default_factory=list)


def _work(text: str):
    """A loop bound as the template data writes it ("12LL", "n3", or an expression) as a
    launch's thread count: a literal, or a parameter of the call."""
    if text.endswith("LL") and text[:-2].lstrip("-").isdigit():
        return int(text[:-2])
    if text.startswith("n") and text[1:].isdigit():
        return ("param", int(text[1:]))
    raise CudaUnsupported(f"a parallel loop bounded by {text!r}")


def render_program(name, plan, scheduled) -> RenderedCuda:
    sizes, constants = [], []
    kernels, calls, _ = c_render.unique_kernels(c_render._Renderer(plan), scheduled, sizes,
                                                constants)
    for k in kernels:
        if k["kind"] != "loops":
            raise CudaUnsupported(f"{k['name']} ({k['comment']}): {k['kind']} kernels are "
                                  "not rendered for CUDA yet")
        if any(b["ctype"] == "_Float16" for b in k["buffers"]):
            raise CudaUnsupported(f"{k['name']} ({k['comment']}): float16 buffers are not "
                                  "rendered for CUDA yet")
    by_name = {k["name"]: k for k in kernels}
    launches, functions = [], []
    for k in kernels:
        for j, nest in enumerate(k["nests"]):
            functions += [f"{k['name']}_n{j}_fill{i}" for i in range(len(nest["fills"]))]
            functions.append(f"{k['name']}_n{j}")
    for sk in scheduled:
        call = calls[sk.name]
        kernel = by_name[call["fn"]]
        for j, nest in enumerate(kernel["nests"]):
            for i, fill in enumerate(nest["fills"]):
                launches.append(Launch(f"{kernel['name']}_n{j}_fill{i}", call["args"],
                                       call["n"], call["f"], _work(fill["size"]),
                                       kernel["comment"]))
            loops = nest["loops"]
            parallel = bool(loops) and loops[0]["parallel"]
            work = None
            if parallel:
                work = _work(loops[0]["extent"])
            launches.append(Launch(f"{kernel['name']}_n{j}", call["args"], call["n"],
                                   call["f"], work, kernel["comment"]))
    used = c_render._types_used(plan, scheduled)
    template = c_render.environment().get_template("cuda/program.cu.j2")
    source = template.render(
        name=name, kernels=kernels, openmp=False, op=_render_op,
        floats=[f for f in c_render.FLOATS if f[0] in used],
        ints=[i for i in c_render.INTS if i[0] in used],
        int_min=c_render.INT_MIN, int_max=c_render.INT_MAX)
    return RenderedCuda(source, functions, launches, sizes, constants)


def grid(threads: int) -> tuple:
    """(blocks, threads per block) covering `threads` iterations of a grid-stride loop."""
    if threads <= 1:
        return 1, 1
    block = min(THREADS_PER_BLOCK, threads)
    return min(MAX_BLOCKS, -(-threads // block)), block
