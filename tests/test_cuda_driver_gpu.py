"""DriverGpu, the runtime a real GPU uses, driven through a stand-in for cuda-python's driver
module: device memory is host memory, cubins come from NVRTC and are loaded as the
emulator's build of the same source, and cuLaunchKernel reads its kernelParams block the
way the driver does.  So the host side of the GPU path (argument packing, copies, stream
capture, graph replay, errors) runs on every machine; the device side waits for a GPU run
(bench/gpu_check.sh)."""
import ctypes
import enum

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.compiler.targets.cuda import emulator, nvrtc
from fjit.compiler.targets.cuda.driver_gpu import DriverGpu
from fjit.compiler.targets.cuda.emulator import Pointer
from fjit.compiler.targets.cuda.executable import CudaExecutable
from fjit.compiler.targets.cuda.gpu import CudaKernelError, CudaOutOfMemory
from fjit.compiler.targets.cuda.platform import GpuContext

pytestmark = [pytest.mark.c_backend,
              pytest.mark.skipif(nvrtc.available() is not None, reason="needs NVRTC "
                                 "(pip install -e '.[cuda]')")]


class CUresult(enum.Enum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_OUT_OF_MEMORY = 2
    CUDA_ERROR_ILLEGAL_ADDRESS = 700


class FakeDriver:
    """cuda.bindings.driver's calls DriverGpu makes, each returning (CUresult, value)."""
    CUresult = CUresult

    class CUstream_flags:
        CU_STREAM_NON_BLOCKING = 1

    class CUstreamCaptureMode:
        CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1

    class CUdevice_attribute:
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = "major"
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = "minor"

    class CUfunction_attribute:
        CU_FUNC_ATTRIBUTE_NUM_REGS = "regs"
        CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = "shared"

    ok = CUresult.CUDA_SUCCESS

    def __init__(self, sources, memory_bytes=1 << 30):
        self.sources = sources   # cubin -> the CUDA source it was compiled from
        self.blocks, self.memory_bytes, self.used = {}, memory_bytes, 0
        self.capturing, self.launches, self.fail_next_sync = None, [], False
        self.current_context = None
        self.destroyed = []

    def cuInit(self, flags): return (self.ok,)
    def cuDeviceGet(self, index): return (self.ok, index)
    def cuDevicePrimaryCtxRetain(self, device): return (self.ok, "ctx")
    def cuStreamCreate(self, flags): return (self.ok, "stream")
    def cuDeviceGetName(self, n, device): return (self.ok, b"Fake H100\0\0")
    def cuDeviceTotalMem(self, device): return (self.ok, self.memory_bytes)

    def cuCtxSetCurrent(self, context):
        self.current_context = context
        return (self.ok,)

    def cuDeviceGetAttribute(self, which, device):
        return (self.ok, {"major": 9, "minor": 0}[which])

    def cuMemAlloc(self, nbytes):
        if self.used + nbytes > self.memory_bytes:
            return (CUresult.CUDA_ERROR_OUT_OF_MEMORY, None)
        block = np.empty(nbytes, np.uint8)
        self.blocks[block.ctypes.data] = block
        self.used += nbytes
        return (self.ok, block.ctypes.data)

    def cuMemFree(self, address):
        self.used -= self.blocks.pop(address).nbytes
        return (self.ok,)

    def cuMemcpyHtoDAsync(self, device, host, nbytes, stream):
        ctypes.memmove(device, host, nbytes)
        return (self.ok,)

    def cuMemcpyDtoHAsync(self, host, device, nbytes, stream):
        ctypes.memmove(host, device, nbytes)
        return (self.ok,)

    def cuStreamSynchronize(self, stream):
        failed, self.fail_next_sync = self.fail_next_sync, False
        return (CUresult.CUDA_ERROR_ILLEGAL_ADDRESS if failed else self.ok,)

    def cuModuleLoadData(self, image):
        assert bytes(image[:4]) == b"\x7fELF"   # a cubin, not PTX
        return (self.ok, image)

    def cuModuleGetFunction(self, image, name):
        return (self.ok, (image, name.decode()))

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        image, name = function
        # kernelParams: an array of pointers, each to one argument's bytes (here 4: A, N, F and G)
        slots = ctypes.cast(params, ctypes.POINTER(ctypes.c_uint64))
        args = [Pointer(ctypes.c_uint64.from_address(slots[k]).value) for k in range(4)]
        launch = (image, name, (gx, gy, gz), (bx, by, bz), args)
        if self.capturing is not None:
            self.capturing.append(launch)
        else:
            self._run(launch)
        return (self.ok,)

    def _run(self, launch):
        image, name, grid, block, args = launch
        source, kernels = self.sources[bytes(image)]
        emulator.build(source, kernels).launch(name, grid, block, args)
        self.launches.append(name)

    def cuStreamBeginCapture(self, stream, mode):
        self.capturing = []
        return (self.ok,)

    def cuStreamEndCapture(self, stream):
        graph, self.capturing = self.capturing, None
        return (self.ok, graph)

    def cuGraphInstantiate(self, graph, flags): return (self.ok, list(graph))

    def cuGraphExecDestroy(self, executable):
        self.destroyed.append("exec")
        return (self.ok,)

    def cuGraphDestroy(self, graph):
        self.destroyed.append("graph")
        return (self.ok,)

    def cuGraphLaunch(self, graph, stream):
        for launch in graph:
            self._run(launch)
        return (self.ok,)

    def cuFuncGetAttribute(self, which, function):
        return (self.ok, {"regs": 32, "shared": 0}[which])


@pytest.fixture
def fake_gpu(monkeypatch):
    """A DriverGpu on the fake driver, its cubins mapped back to their sources."""
    sources = {}
    real = nvrtc.cached_image

    def cached_image(source, arch):
        image = real(source, arch)
        kernels = [line.split("void ", 1)[1].split("(", 1)[0] for line in source.splitlines()
                   if line.startswith('extern "C" __global__ void ')]
        sources[bytes(image)] = (source, kernels)
        return image
    monkeypatch.setattr(nvrtc, "cached_image", cached_image)
    driver = FakeDriver(sources)
    return DriverGpu(0, driver=driver), driver


def _run(gpu, fn, *args):
    program = fjit.jit(fn)._lookup(args, {})[0].program
    device = fjit.devices("cpu")[0]   # only names the buffers' device here
    exe = CudaExecutable(program, GpuContext(device, gpu, emulated=False))
    context = exe.context
    buffers = []
    for a in args:
        from fjit.compiler.targets.cuda.memory import DeviceBuffer
        buf = DeviceBuffer(context.allocator, a.shape, a.dtype, device)
        gpu.copy_to_device(buf.address, a)
        buffers.append(buf)
    return exe, buffers


def _read(gpu, buffer):
    host = np.empty(buffer.shape, buffer.dtype)
    gpu.copy_to_host(host, buffer.address)
    return host


def test_a_program_runs_through_the_driver_path_and_replays_as_a_graph(fake_gpu):
    gpu, driver = fake_gpu
    assert gpu.name == "Fake H100" and gpu.arch == "sm_90"
    x = np.random.default_rng(0).standard_normal((16, 40)).astype(np.float32)
    fn = lambda x: (jnp.exp(x - x.max(1, keepdims=True)).sum(1), (x * 2).T + 1)
    exe, buffers = _run(gpu, fn, x)
    for call in range(3):
        outs = exe(buffers)
        got = [_read(gpu, o) for o in outs]
    np.testing.assert_allclose(got[0], np.exp(x - x.max(1, keepdims=True)).sum(1), rtol=1e-5)
    np.testing.assert_allclose(got[1], (x * 2).T + 1, rtol=1e-6)
    assert exe.graph_launches == 2 and isinstance(exe.graph.executable, list)
    kernels = {name for name in driver.launches}
    assert driver.launches == [l[0] for l in exe._launches] * 3 and kernels
    attributes = gpu.function_attributes(exe.module, exe._launches[0][0])
    assert attributes == {"registers": 32, "shared_bytes": 0}
    del exe, outs
    import gc
    gc.collect()
    assert driver.destroyed == ["exec", "graph"]   # the graph goes with its executable


def test_a_fault_reported_at_sync_names_the_launches_since_the_last_one(fake_gpu):
    gpu, driver = fake_gpu
    x = np.ones(8, np.float32)
    exe, buffers = _run(gpu, lambda x: x * 3.0, x)
    gpu.synchronize()
    exe(buffers)
    driver.fail_next_sync = True
    with pytest.raises(CudaKernelError, match=r"CUDA_ERROR_ILLEGAL_ADDRESS .* among: CUDA "
                                              r"kernel kernel_0_n0 of Program <lambda>"):
        gpu.synchronize()
    exe(buffers)   # the second call captures its graph, the third replays it
    gpu.synchronize()
    exe(buffers)
    driver.fail_next_sync = True
    with pytest.raises(CudaKernelError, match=r"among: the CUDA graph of Program <lambda>"):
        gpu.synchronize()
    del exe
    import gc
    gc.collect()   # its graph is released: nothing to name at the next fault
    driver.fail_next_sync = True
    with pytest.raises(CudaKernelError, match=r"among: copies only"):
        gpu.synchronize()


def test_out_of_memory_from_the_driver_is_typed(fake_gpu):
    gpu, driver = fake_gpu
    driver.memory_bytes = 1024
    with pytest.raises(CudaOutOfMemory, match="cuMemAlloc.*CUDA_ERROR_OUT_OF_MEMORY"):
        gpu.alloc(4096)
