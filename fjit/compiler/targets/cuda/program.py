"""A Program compiled for the cuda target: lowered by the neutral pipeline for `CUDA_TARGET`,
rendered to one CUDA source (render.py) with its launch list, and, where NVRTC is
installed, compiled by it for sm_80 and sm_90, so source a GPU would reject fails on every
machine.  What runs it is executable.py; this is what `jit(f).lower()` shows."""
from __future__ import annotations

import dataclasses
import hashlib

from ....config import config
from ...pipeline import lower_program
from ...schedule import Options
from ...target import Target
from . import nvrtc
from .render import render_program

# Contractions large enough are GEMM kernels (render.py); a GEMM never computes its B
# operand while it loads it (the C target's packing fusion: producer_max_cost below 0).
# Every nest whose outer loop may run in parallel does, across the grid, however small:
# a GPU thread is cheap, and a nest the schedule leaves serial runs on one thread.
CUDA_TARGET = Target(name="cuda", producer_max_cost=-1, parallel_min_work=8)

_checked: set = set()   # sources NVRTC compiled in this process
RESOURCES_ARCH = nvrtc.CHECK_ARCHS[-1]   # what lower().as_text() reports resources for


def cuda_options() -> Options:
    """The configured passes, but for `reorder`: it turns a reduction over a strided outer
    axis inside out so that a CPU reads memory in order, which leaves a GPU one thread
    accumulating everything; kept as it is, each output is a thread (`x.sum(0)` over
    [50, 40]: 40 threads, whose reads of a row are adjacent)."""
    return dataclasses.replace(Options.from_string(config.passes), reorder=False)


class CompiledCuda:
    """`program` lowered and rendered for the cuda target (its source, kernels and launch
    list); `check_with_nvrtc`: compile it for the checked architectures where NVRTC is
    installed (`nvrtc_checked` says whether it was)."""

    def __init__(self, program, check_with_nvrtc: bool = True):
        self.program = program
        self.name = program.name or "program"
        self.flat, self.plan, self.scheduled = lower_program(program, CUDA_TARGET,
                                                             cuda_options())
        self.rendered = render_program(self.name, self.plan, self.scheduled)
        if check_with_nvrtc:
            self.check()

    @property
    def nvrtc_checked(self) -> bool:
        return hashlib.sha256(self.source.encode()).digest() in _checked

    def check(self):
        """Compile the source with NVRTC for the checked architectures (raising
        CudaBuildError with its log), through the disk cache; nothing where NVRTC is not
        installed."""
        digest = hashlib.sha256(self.source.encode()).digest()
        if nvrtc.available() is None and digest not in _checked:
            for arch in nvrtc.CHECK_ARCHS:
                nvrtc.cached_image(self.source, arch)
            _checked.add(digest)

    @property
    def source(self) -> str:
        return self.rendered.source

    @property
    def launches(self):
        return self.rendered.launches

    def configurations(self) -> list:
        """(kernel function, (blocks, threads per block)) per launch, in order."""
        return [(l.function, l.configuration(self.rendered.sizes or [0]))
                for l in self.rendered.launches]

    def resources(self) -> dict | None:
        """Per kernel function, the registers, shared memory, stack and spills ptxas
        reports for it on sm_90 (nvrtc.resources); None where NVRTC is not installed."""
        if nvrtc.available() is not None:
            return None
        return nvrtc.resources(self.source, RESOURCES_ARCH)

    def launch_text(self) -> str:
        """The launch list as `jit(f).lower().as_text()` prints it, each kernel with the
        resources NVRTC reports (where it is installed)."""
        usage = self.resources() or {}
        lines = []
        for k, (function, (blocks, threads)) in enumerate(self.configurations()):
            line = f"{k:3d}  {function}<<<{blocks}, {threads}>>>"
            if function in usage:
                u = usage[function]
                line += f"  {u['registers']} registers, {u['shared']} B shared"
                if u["stack"] or u["spills"]:
                    line += f", {u['stack']} B stack, {u['spills']} B spilled"
            lines.append(line)
        if usage:
            lines.append(f"(registers per thread and static shared memory per block: ptxas "
                         f"for {RESOURCES_ARCH})")
        return "\n".join(lines)
