"""A real GPU (the operations gpu.py lists) through cuda-python's driver API: the device's
primary context, one non-blocking stream, cuMemAlloc'd memory, cubins built by NVRTC for the
device's own compute capability (cached on disk; within one CUDA major version a newer
NVRTC's PTX may not load on an older driver where its cubin does: ../shared/TOOLCHAIN.md,
driver 13.0 with NVRTC 13.x), launches with cuLaunchKernel and graphs by
stream capture.

The driver reports a kernel fault at the next synchronization, and a fault leaves the context
unusable (CUDA's sticky errors): the error names the launches enqueued since the last
synchronization, one of which failed.
"""
from __future__ import annotations

import collections
import threading

import numpy as np

from . import nvrtc
from .emulator import Pointer, dim3
from .gpu import CudaError, CudaKernelError, CudaOutOfMemory

MAX_REMEMBERED_LAUNCHES = 64   # the last ones, named in a fault's message


class DriverGpu:
    """GPU `index` through `driver` (cuda.bindings.driver, or a test's stand-in)."""

    def __init__(self, index: int, driver=None):
        if driver is None:
            from cuda.bindings import driver
        self._cu = cu = driver
        self._check(cu.cuInit(0), "cuInit")
        self._device = self._check(cu.cuDeviceGet(index), "cuDeviceGet")
        self._context = self._check(cu.cuDevicePrimaryCtxRetain(self._device),
                                    "cuDevicePrimaryCtxRetain")
        self._current = threading.local()
        self._make_current()
        self._stream = self._check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING),
                                   "cuStreamCreate")
        attribute = cu.CUdevice_attribute
        major, minor = (self._check(cu.cuDeviceGetAttribute(a, self._device),
                                    "cuDeviceGetAttribute")
                        for a in (attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                  attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
        self.compute_capability = (major, minor)
        self.arch = f"sm_{major}{minor}"
        name = self._check(cu.cuDeviceGetName(256, self._device), "cuDeviceGetName")
        self.name = name.split(b"\0", 1)[0].decode()
        self.memory_bytes = int(self._check(cu.cuDeviceTotalMem(self._device),
                                            "cuDeviceTotalMem"))
        # labels of the launches since the last synchronize (the last ones: a fault is
        # more likely in what ran last)
        self._recent = collections.deque(maxlen=MAX_REMEMBERED_LAUNCHES)
        self._modules: dict = {}

    def _check(self, result, what):
        error, *rest = result
        if error != self._cu.CUresult.CUDA_SUCCESS:
            if error == self._cu.CUresult.CUDA_ERROR_OUT_OF_MEMORY:
                raise CudaOutOfMemory(f"{what}: {error.name}")
            raise CudaError(f"{what} failed: {error.name}")
        return rest[0] if len(rest) == 1 else (rest or None)

    def _make_current(self):
        """The context is current per host thread: make it so in this one."""
        if getattr(self._current, "set", False):
            return
        self._check(self._cu.cuCtxSetCurrent(self._context), "cuCtxSetCurrent")
        self._current.set = True

    # memory
    def alloc(self, nbytes: int) -> int:
        self._make_current()
        return int(self._check(self._cu.cuMemAlloc(nbytes), f"cuMemAlloc({nbytes})"))

    def free(self, address: int):
        self._make_current()
        self._check(self._cu.cuMemFree(address), "cuMemFree")

    def copy_to_device(self, address: int, host: np.ndarray):
        """Pageable host memory is staged before cuMemcpyHtoDAsync returns, so `host` may
        change or go at once."""
        self._make_current()
        host = np.ascontiguousarray(host)
        self._check(self._cu.cuMemcpyHtoDAsync(address, host.ctypes.data, host.nbytes,
                                               self._stream), "cuMemcpyHtoDAsync")

    def copy_to_host(self, host: np.ndarray, address: int):
        self._make_current()
        self._check(self._cu.cuMemcpyDtoHAsync(host.ctypes.data, address, host.nbytes,
                                               self._stream), "cuMemcpyDtoHAsync")
        self.synchronize()

    def synchronize(self):
        self._make_current()
        (error,) = self._cu.cuStreamSynchronize(self._stream)
        recent = list(self._recent)
        self._recent.clear()
        if error != self._cu.CUresult.CUDA_SUCCESS:
            raise CudaKernelError(
                f"the GPU reported {error.name} for work enqueued since the last "
                f"synchronization, among: {'; '.join(recent) or 'copies only'} (a fault "
                "leaves the CUDA context unusable: restart the process)")

    # modules and launches
    def load(self, source: str, kernels, name: str):
        image = nvrtc.cached_image(source, self.arch)
        module = self._modules.get(image)
        if module is None:
            self._make_current()
            handle = self._check(self._cu.cuModuleLoadData(image), f"cuModuleLoadData({name})")
            functions = {k: self._check(self._cu.cuModuleGetFunction(handle, k.encode()),
                                        f"cuModuleGetFunction({k})") for k in kernels}
            module = self._modules[image] = _Module(handle, functions)
        return module

    def launch(self, module, kernel: str, grid, block, args, label: str):
        self._make_current()
        holders = [np.array([a.address], np.uint64) if isinstance(a, Pointer)
                   else np.asarray(a).reshape(1).copy() for a in args]
        params = np.array([h.ctypes.data for h in holders] or [0], np.uint64)
        grid, block = dim3(grid), dim3(block)
        self._check(self._cu.cuLaunchKernel(module.functions[kernel], *grid, *block, 0,
                                            self._stream, params.ctypes.data, 0), label)
        self._recent.append(label)

    def capture(self, enqueue):
        cu = self._cu
        self._make_current()
        self._check(cu.cuStreamBeginCapture(
            self._stream, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            "cuStreamBeginCapture")
        try:
            enqueue()
        finally:
            graph = self._check(cu.cuStreamEndCapture(self._stream), "cuStreamEndCapture")
        return _Graph(graph, self._check(cu.cuGraphInstantiate(graph, 0), "cuGraphInstantiate"))

    def launch_graph(self, graph, label: str = "a CUDA graph"):
        self._make_current()
        self._check(self._cu.cuGraphLaunch(graph.executable, self._stream), label)
        self._recent.append(label)

    def release_graph(self, graph):
        """Destroy a graph nothing will launch again (its executable is gone).  Its last
        launch may still be running: the driver defers the release until it is done."""
        try:
            self._make_current()
            self._cu.cuGraphExecDestroy(graph.executable)
            self._cu.cuGraphDestroy(graph.graph)
        except Exception:   # noqa: BLE001 -- at interpreter exit the driver may be gone
            pass

    def function_attributes(self, module, kernel: str) -> dict:
        """Registers per thread and static shared memory NVRTC gave a kernel."""
        cu = self._cu
        attribute = cu.CUfunction_attribute
        function = module.functions[kernel]
        return {"registers": self._check(cu.cuFuncGetAttribute(
                    attribute.CU_FUNC_ATTRIBUTE_NUM_REGS, function), "cuFuncGetAttribute"),
                "shared_bytes": self._check(cu.cuFuncGetAttribute(
                    attribute.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, function),
                    "cuFuncGetAttribute")}


class _Graph:
    def __init__(self, graph, executable):
        self.graph, self.executable = graph, executable


class _Module:
    def __init__(self, handle, functions):
        self.handle, self.functions = handle, functions

