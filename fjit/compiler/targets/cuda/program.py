"""A Program compiled by the cuda target and run on the CPU emulator: lowered by the neutral
pipeline for `CUDA_TARGET`, rendered to CUDA (render.py), compiled by NVRTC for sm_80 and
sm_90 where NVRTC is installed (so source that a GPU would reject fails here too), built for
the emulator and run launch by launch.

The "cuda" backend (`register`) runs Programs this way when the `cuda_emulation` option is
on, with buffers in host memory.  A Program holding kernels `render` does not cover yet
runs on the reference interpreter instead, logged and counted (`fallbacks`), so a suite run
on this backend says how much of it the CUDA code really ran.  There is no device runtime
yet (device memory, streams, graphs): without emulation the backend refuses, saying why."""
from __future__ import annotations

import hashlib

import numpy as np

from ....config import config
from ....runtime.backend import register_backend
from ....runtime.reference import ReferenceExecutable
from ...pipeline import NotNative, compile_log, lower_program
from ...target import Target
from . import driver, emulator, nvrtc
from .render import CudaUnsupported, grid, render_program

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
            values[b] = np.asarray(a, dtype=plan.buffers[b].dtype, order="C")   # keeps rank 0
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


fallbacks: dict = {}   # why a Program ran on the reference interpreter -> how many times


def _make_executable(program):
    if not config.cuda_emulation:
        why = driver.unavailable_reason().rstrip(".")
        raise RuntimeError(f"fjit's cuda backend has no GPU runtime yet (issue 16); {why}. "
                           "Set FJIT_CUDA_EMULATION=1 to run its kernels on the CPU emulator")
    try:
        return EmulatedCudaProgram(program)
    except (NotNative, CudaUnsupported) as why:
        reason = str(why).split(":", 1)[-1].strip() if isinstance(why, CudaUnsupported) \
            else str(why)
        fallbacks[reason] = fallbacks.get(reason, 0) + 1
        compile_log().info("compile %s for cuda: on the reference interpreter (%s)",
                           program.name or "program", why)
        return ReferenceExecutable(program)   # its loops too: a scan is what failed


def register():
    register_backend("cuda", _make_executable, usable=lambda: config.cuda_emulation)
