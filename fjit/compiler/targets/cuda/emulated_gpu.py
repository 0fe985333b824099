"""A GPU on the CPU (the operations gpu.py lists): device memory is host memory, a module is
the emulator's build of the CUDA source, and the stream is a worker thread running the
enqueued operations in order, so jitted calls return before their kernels have run, as on
a GPU.  A graph is the recorded list of launches, replayed as one operation."""
from __future__ import annotations

import bisect
import queue
import threading

import numpy as np

from . import emulator
from .gpu import CudaError, CudaKernelError, CudaOutOfMemory

ALIGN = 256   # cudaMalloc's alignment


class EmulatedGraph:
    def __init__(self, launches):
        self.launches = launches


class EmulatedGpu:
    """One emulated device with `memory_bytes` of memory (a limit the allocator meets as a
    GPU's: `CudaOutOfMemory`)."""

    name = "fjit CUDA emulator"
    arch = "sm_90"   # what its sources are checked for (NVRTC), as the lent H100s are

    def __init__(self, memory_bytes: int = 16 << 30):
        self.memory_bytes = memory_bytes
        self.compute_capability = (9, 0)
        self._blocks: dict = {}   # address -> (the host array holding it, its size)
        self._starts: list = []   # the blocks' addresses, sorted
        self._used = 0
        self._queue = queue.SimpleQueue()
        self._error = None        # the first failure: sticky, as a GPU's fault is
        self._capture = threading.local()   # .launches: what capture() records, per thread
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fjit-emulated-gpu",
                                        daemon=True)
        self._thread.start()

    # memory
    def alloc(self, nbytes: int) -> int:
        with self._lock:
            if self._used + nbytes > self.memory_bytes:
                raise CudaOutOfMemory(
                    f"cuMemAlloc of {nbytes} bytes: CUDA_ERROR_OUT_OF_MEMORY (the emulated "
                    f"device has {self.memory_bytes} bytes, {self._used} in use)")
            block = np.empty(max(nbytes, 1) + ALIGN, np.uint8)
            address = block.ctypes.data + (-block.ctypes.data) % ALIGN
            self._blocks[address] = (block, nbytes)
            bisect.insort(self._starts, address)
            self._used += nbytes
        return address

    def free(self, address: int):
        with self._lock:
            _, nbytes = self._blocks.pop(address)
            del self._starts[bisect.bisect_left(self._starts, address)]
            self._used -= nbytes

    def view(self, address: int, nbytes: int) -> np.ndarray:
        """The `nbytes` at `address` (inside an allocation) as a host array: the emulated
        memory is host memory.  An address outside every allocation is an error, as a GPU's
        illegal address would be."""
        with self._lock:
            k = bisect.bisect_right(self._starts, address) - 1
            base = self._starts[k] if k >= 0 else None
            block, size = self._blocks[base] if base is not None else (None, 0)
        if block is None or address + nbytes > base + size:
            raise CudaError(f"CUDA_ERROR_ILLEGAL_ADDRESS: {nbytes} bytes at 0x{address:x} are "
                            "outside every allocation of the emulated device")
        start = address - block.ctypes.data
        return block[start:start + nbytes]

    # the stream
    def _run(self):
        while True:
            op, label, done = self._queue.get()
            if op is not None and self._error is None:
                try:
                    op()
                except BaseException as e:   # noqa: BLE001 -- raised by the next synchronize
                    self._error = (label, e)
            if done is not None:
                done.set()

    def _enqueue(self, op, label):
        self._queue.put((op, label, None))

    def copy_to_device(self, address: int, host: np.ndarray):
        data = np.array(host, copy=True, order="C").reshape(-1).view(np.uint8)
        target = self.view(address, data.nbytes)
        self._enqueue(lambda: target.__setitem__(slice(None), data), "a host-to-device copy")

    def copy_to_host(self, host: np.ndarray, address: int):
        source = self.view(address, host.nbytes)
        self._enqueue(lambda: host.reshape(-1).view(np.uint8).__setitem__(slice(None), source),
                      "a device-to-host copy")
        self.synchronize()

    def synchronize(self):
        """Wait for the stream.  After a fault every operation is skipped and every
        synchronize raises it again, as a CUDA context is lost after one (`reset` is what
        restarting the process does on a GPU)."""
        done = threading.Event()
        self._queue.put((None, None, done))
        done.wait()
        if self._error is not None:
            label, error = self._error
            if isinstance(error, CudaError):
                raise CudaKernelError(f"{label}: {error}") from error
            raise CudaKernelError(f"{label}: {type(error).__name__}: {error} (the emulated "
                                  "GPU can no longer be used, as a CUDA context after a "
                                  "fault)") from error

    def reset(self):
        """Forget a fault (tests: a new process on a GPU)."""
        done = threading.Event()
        self._queue.put((None, None, done))
        done.wait()
        self._error = None

    # modules and launches
    def load(self, source: str, kernels, name: str):
        return emulator.build(source, kernels)

    def launch(self, module, kernel: str, grid, block, args, label: str):
        args = list(args)
        try:   # what cuLaunchKernel refuses at once (CUDA_ERROR_INVALID_VALUE)
            emulator.check_configuration(kernel, emulator.dim3(grid), emulator.dim3(block), 0)
        except ValueError as e:
            raise CudaError(f"{label}: {e}") from None
        recording = getattr(self._capture, "launches", None)
        if recording is not None:
            recording.append((module, kernel, grid, block, args, label))
            return
        self._enqueue(lambda: module.launch(kernel, grid, block, args), label)

    def capture(self, enqueue) -> EmulatedGraph:
        self._capture.launches = []
        try:
            enqueue()
            return EmulatedGraph(self._capture.launches)
        finally:
            self._capture.launches = None

    def release_graph(self, graph: EmulatedGraph):
        """Nothing to give back: a recorded graph is a Python list."""

    def launch_graph(self, graph: EmulatedGraph, label: str = "a CUDA graph"):
        def replay():
            for module, kernel, grid, block, args, label in graph.launches:
                try:
                    module.launch(kernel, grid, block, args)
                except BaseException as e:
                    raise CudaKernelError(f"{label}: {type(e).__name__}: {e}") from e
        self._enqueue(replay, label)
