"""Programs running on a GPU (or the emulated one): the "cuda" backends.

`CudaExecutable` takes and returns `DeviceBuffer`s.  A call allocates its outputs and
temporaries from the caching allocator, writes the buffers' addresses into the Program's
pointer table on the device and enqueues its launches, then returns: the kernels run after
it, in stream order.  Its second call captures the launches as a CUDA graph; later calls
replay the graph, so a jitted call costs one table copy and one graph launch.  A Program with
while loops is enqueued by the host, which reads each loop's flag between batches of its
iterations (render.WhileStep); its runs of launches (an iteration, the code between loops)
are graphs from their second use.  The graph's
kernels read their buffers through the table (kernel arguments A, N and F, as in the C
target), so the graph stays valid whatever buffers a call passes.

platform.py registers two kinds of backend from these:
- "cuda:0", ...: what the cuda platform's devices run; arrays stay there.
- "cuda": what `FJIT_BACKEND=cuda` selects for arrays on the host: each call copies its
  inputs to the device and its outputs back (counted transfers, as on a GPU) and waits.
A Program the cuda target cannot compile yet runs on the reference interpreter, logged and
counted in `fallbacks`; on the device that means copying its operands to the host and back.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from ....config import config
from ....runtime.reference import ReferenceExecutable
from ...pipeline import NotNative, compile_log
from .emulator import Pointer
from .memory import DeviceBuffer
from .program import CompiledCuda
from .render import WHILE_BATCH, CudaUnsupported

fallbacks: dict = {}   # why a Program ran on the reference interpreter -> how many times


class CudaExecutable:
    """`program` on the GPU of `context` (platform.GpuContext)."""

    def __init__(self, program, context, compiled: CompiledCuda | None = None):
        self.context = context
        self.compiled = compiled or CompiledCuda(program, check_with_nvrtc=False)
        self.name = self.compiled.name
        rendered, plan = self.compiled.rendered, self.compiled.plan
        gpu = context.gpu
        if context.emulated:   # NVRTC checks the source while g++ builds it for the emulator
            self.module = _overlapped(self.compiled.check, lambda: gpu.load(
                rendered.source, rendered.kernels, self.name))
        else:                  # the GPU's own build is NVRTC's
            self.module = gpu.load(rendered.source, rendered.kernels, self.name)
        self._resident = []   # what the executable keeps on the device for its whole life
        sizes = self._upload(np.array(rendered.sizes or [0], np.int64))
        constants = self._upload(np.array(rendered.constants or [0.0], np.float64))
        self._fixed = {b: self._upload(np.asarray(value, plan.buffers[b].dtype))
                       for b, value in plan.consts}
        self._literals = {k: self._upload(np.asarray(value))
                          for k, (kind, value) in enumerate(plan.outputs) if kind == "literal"}
        self._inputs = list(plan.inputs)
        self._input_types = [(tuple(int(n) for n in plan.buffers[b].shape),
                              np.dtype(plan.buffers[b].dtype)) for b in self._inputs]
        given = set(self._inputs) | set(self._fixed)
        self._allocated = [(b.id, tuple(int(n) for n in b.shape), np.dtype(b.dtype))
                           for b in plan.buffers
                           if b.id not in given and getattr(b, "role", None) != "view"]
        # the flags conds and whiles set and their launches test (render.py)
        self._flags = self._new((max(rendered.flags, 1),), np.int32)
        # the pointer table: per launch, its arguments as (buffer id, byte offset)
        slots, self._launches = [], []
        for launch in rendered.launches:
            offset = len(slots)
            slots += launch.slots
            n = sizes.address + 8 * (launch.n or 0)
            f = constants.address + 8 * (launch.f or 0)
            label = f"CUDA kernel {launch.function} of Program {self.name} ({launch.comment})"
            if launch.source:
                label += f", from {launch.source}"
            g = self._flags.address if launch.control else 0 if launch.guard is None \
                else self._flags.address + 4 * launch.guard
            self._launches.append((launch.function, launch.configuration(rendered.sizes or [0]),
                                   offset, n, f, g, label))
        self._slot_buffers = np.array([b for b, _ in slots], np.int64)
        self._slot_offsets = np.array([at for _, at in slots], np.uint64)
        self._table = self._new(((max(len(slots), 1),)), np.uint64)
        self._buffer_count = len(plan.buffers)
        self.graph = None
        self._graph_label = f"the CUDA graph of Program {self.name}"   # named in faults
        self.calls = 0
        self.graph_launches = 0
        self.while_iterations = 0   # enqueued, the ones past a loop's end included
        self.flag_reads = 0         # times the host waited to read a while's flag
        self._run_lists, self._run_graphs = {}, {}   # a Program with whiles: its runs' graphs

    def _new(self, shape, dtype) -> DeviceBuffer:
        buffer = DeviceBuffer(self.context.allocator, shape, dtype, self.context.device)
        self._resident.append(buffer)
        return buffer

    def _upload(self, value: np.ndarray) -> DeviceBuffer:
        value = np.asarray(value, order="C")   # not ascontiguousarray: that makes rank 0 rank 1
        buffer = self._new(value.shape, value.dtype)
        if value.nbytes:
            with self.context.enqueue_lock:
                self.context.gpu.copy_to_device(buffer.address, value)
        return buffer

    def _enqueue_launches(self, steps=None):
        """Enqueue `steps` (default: the Program's): launches, and while loops, whose
        iterations go in batches with a read of the loop's flag between them (WhileStep)."""
        gpu, table = self.context.gpu, self._table.address
        for step in self.compiled.rendered.steps if steps is None else steps:
            if isinstance(step, int):
                function, (blocks, threads), offset, n, f, g, label = self._launches[step]
                gpu.launch(self.module, function, blocks, threads,
                           [Pointer(table + 8 * offset), Pointer(n), Pointer(f), Pointer(g)],
                           label)
            elif isinstance(step, tuple):   # a run of launches, replayed as a graph
                self._enqueue_run(step)
            else:
                count, batch = 0, 1
                while True:
                    for _ in range(batch):
                        self._enqueue_launches(self._runs(step.versions[count % 2]))
                        count += 1
                    if not self._flag(step.active):
                        break
                    batch = min(2 * batch, WHILE_BATCH)
                self.while_iterations += count
                self._enqueue_launches(step.final)

    def _runs(self, steps) -> list:
        """`steps` with each run of two or more launches as one tuple (made once per list)."""
        runs = self._run_lists.get(id(steps))
        if runs is None:
            runs, current = [], []
            for step in steps + [None]:
                if isinstance(step, int):
                    current.append(step)
                    continue
                runs += [tuple(current)] if len(current) > 1 else current
                current = []
                if step is not None:
                    runs.append(step)
            self._run_lists[id(steps)] = runs
        return runs

    def _enqueue_run(self, run: tuple):
        """A run of launches inside a Program with while loops (the loops' iterations, the
        launches between them): launched as they are the first time, then captured as a CUDA
        graph and replayed (cuda_graphs option), as a whole Program without loops is."""
        graph = self._run_graphs.get(run)
        if graph is None and run in self._run_graphs and config.cuda_graphs:
            graph = self._run_graphs[run] = self.context.gpu.capture(
                lambda: self._enqueue_launches(run))
            weakref.finalize(self, self.context.gpu.release_graph, graph)
        if graph is None:
            self._run_graphs[run] = None   # seen once
            self._enqueue_launches(run)
        else:
            self.context.gpu.launch_graph(graph, self._graph_label)
            self.graph_launches += 1

    def _flag(self, index: int) -> int:
        """A control flag's value: waits for the kernels enqueued so far."""
        value = np.empty((), np.int32)
        self.context.gpu.copy_to_host(value, self._flags.address + 4 * index)
        self.flag_reads += 1
        return int(value)

    def __call__(self, buffers):
        if len(buffers) != len(self._inputs):
            raise TypeError(f"{self.name}: expected {len(self._inputs)} arguments, got "
                            f"{len(buffers)}")
        addresses = np.zeros(self._buffer_count, np.uint64)   # by buffer id (views: 0)
        for b, buf in self._fixed.items():
            addresses[b] = buf.address
        for b, buf, (shape, dtype) in zip(self._inputs, buffers, self._input_types):
            if type(buf) is not DeviceBuffer or buf.allocator is not self.context.allocator:
                raise TypeError(f"{self.name}: an argument is not a buffer on "
                                f"{self.context.device}: {buf!r}")
            if buf.shape != shape or buf.dtype.itemsize != dtype.itemsize:
                raise TypeError(f"{self.name}: argument {buf!r} is not {dtype.name}{list(shape)}")
            addresses[b] = buf.address
        fresh = {b: DeviceBuffer(self.context.allocator, shape, dtype, self.context.device)
                 for b, shape, dtype in self._allocated}
        for b, buf in fresh.items():
            addresses[b] = buf.address
        table = addresses[self._slot_buffers] + self._slot_offsets
        gpu = self.context.gpu
        with self.context.enqueue_lock:
            if table.size:
                gpu.copy_to_device(self._table.address, table)
            if self.graph is not None:
                gpu.launch_graph(self.graph, self._graph_label)
                self.graph_launches += 1
            elif self.compiled.rendered.host_driven:   # reads a while's flag between batches
                self._enqueue_launches(self._runs(self.compiled.rendered.steps))
            elif self.calls >= 1 and config.cuda_graphs:   # the first call ran as it is
                self.graph = gpu.capture(self._enqueue_launches)
                weakref.finalize(self, gpu.release_graph, self.graph)
                gpu.launch_graph(self.graph, self._graph_label)
                self.graph_launches += 1
            else:
                self._enqueue_launches()
            self.calls += 1
        given = dict(zip(self._inputs, buffers))
        outputs = []
        for k, (kind, value) in enumerate(self.compiled.plan.outputs):
            if kind == "literal":
                outputs.append(self._literals[k])
            else:
                outputs.append(fresh.get(value) or given.get(value) or self._fixed[value])
        return outputs


def _overlapped(side, main):
    """main()'s result, with side() run on another thread meanwhile; an error of main()'s
    is raised as it is, else one of side()'s."""
    errors = []

    def run():
        try:
            side()
        except BaseException as e:   # noqa: BLE001 -- raised below, in the caller's thread
            errors.append(e)
    thread = threading.Thread(target=run, name="fjit-nvrtc-check")
    thread.start()
    try:
        result = main()
    finally:
        thread.join()
    if errors:
        raise errors[0]
    return result


class HostCudaExecutable:
    """A Program on the default cuda device called with host arrays (`FJIT_BACKEND=cuda`):
    inputs copied there, outputs copied back once the kernels have run."""

    def __init__(self, program, context):
        self.device = context.device
        self.inner = device_executable(program, context)
        self.program = program

    def __call__(self, values):
        inputs = getattr(self.inner, "_input_types", None)
        buffers = []
        for k, value in enumerate(values):
            value = np.asarray(value)
            if inputs is not None and value.dtype != inputs[k][1]:
                value = value.astype(inputs[k][1])
            buffers.append(self.device.from_host(value))
        outs = self.inner(buffers)
        return [self.device.to_host(o) for o in outs]


class HostFallback:
    """A Program the cuda target cannot compile yet, on a device: its operands copied to the
    host, run by the reference interpreter, its results copied back (all counted)."""

    def __init__(self, program, device):
        self.device = device
        self.reference = ReferenceExecutable(program)

    def __call__(self, buffers):
        outs = self.reference([self.device.to_host(b) for b in buffers])
        return [self.device.from_host(np.asarray(o, order="C")) for o in outs]   # keeps rank 0


def _compile(program, context):
    """A CudaExecutable, or None (logged and counted) where the target cannot compile it."""
    try:
        return CudaExecutable(program, context)
    except (NotNative, CudaUnsupported) as why:
        reason = str(why).split(":", 1)[-1].strip() if isinstance(why, CudaUnsupported) \
            else str(why)
        fallbacks[reason] = fallbacks.get(reason, 0) + 1
        compile_log().info("compile %s for cuda: on the reference interpreter (%s)",
                           program.name or "program", why)
        return None


def device_executable(program, context):
    """The executable of `program` on the GPU of `context`: compiled, or HostFallback."""
    executable = _compile(program, context)
    return HostFallback(program, context.device) if executable is None else executable
