"""A Program compiled by the cuda target and run on the CPU emulator: lowered by the neutral
pipeline for `CUDA_TARGET`, rendered to CUDA (render.py), compiled by NVRTC for sm_80 and
sm_90 where NVRTC is installed (so source that a GPU would reject fails here too), built for
the emulator and run launch by launch.  Not a registered backend yet: there is no device
runtime (device memory, streams, graphs) and `render` does not cover every kernel kind."""
from __future__ import annotations

import hashlib

import numpy as np

from ...pipeline import lower_program
from ...target import Target
from . import emulator, nvrtc
from .render import grid, render_program

# Contractions as loop kernels until the target has a GEMM (cuBLAS or its own).
CUDA_TARGET = Target(name="cuda", gemm=False)

_checked: set = set()   # sources NVRTC compiled in this process


class EmulatedCudaProgram:
    """`program` on the cuda target, run by the emulator: call it with one NumPy array per
    invar, get one per outvar."""

    def __init__(self, program, check_with_nvrtc: bool = True):
        self.flat, self.plan, scheduled = lower_program(program, CUDA_TARGET)
        self.rendered = render_program(program.name or "program", self.plan, scheduled)
        source = self.rendered.source
        digest = hashlib.sha256(source.encode()).digest()
        if check_with_nvrtc and nvrtc.available() is None and digest not in _checked:
            nvrtc.check(source, f"{program.name or 'program'}.cu")
            _checked.add(digest)
        self.nvrtc_checked = digest in _checked
        self.module = emulator.build(source, self.rendered.kernels)
        self.sizes = np.array(self.rendered.sizes or [0], np.int64)
        self.constants = np.array(self.rendered.constants or [0.0], np.float64)

    @property
    def source(self) -> str:
        return self.rendered.source

    def __call__(self, args):
        plan = self.plan
        if len(args) != len(plan.inputs):
            raise TypeError(f"expected {len(plan.inputs)} arguments, got {len(args)}")
        values = {}
        for b, a in zip(plan.inputs, args):
            values[b] = np.ascontiguousarray(a, dtype=plan.buffers[b].dtype)
        for b, value in plan.consts:
            values[b] = np.asarray(value, dtype=plan.buffers[b].dtype).copy()
        for buf in plan.buffers:
            if buf.id not in values:
                values[buf.id] = np.empty(tuple(int(n) for n in buf.shape), buf.dtype)
        for launch in self.rendered.launches:
            table = np.array([values[b].ctypes.data for b in launch.buffers] or [0],
                             np.uint64)
            sizes = self.sizes[launch.n:] if launch.n is not None else self.sizes
            constants = self.constants[launch.f:] if launch.f is not None else self.constants
            blocks, threads = grid(launch.threads(self.sizes))
            self.module.launch(launch.function, blocks, threads, [table, sizes, constants])
        return [np.asarray(value) if kind == "literal" else values[value]
                for kind, value in plan.outputs]
