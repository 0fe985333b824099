"""The cuda platform (fjit/devices.py): its devices, the memory arrays on them hold, and the
backend that runs Programs there.

Its devices are the GPUs the driver reports (driver.probe), or, with the `cuda_emulation`
option, one emulated GPU (emulated_gpu.py) whatever the machine has.  Each device gets a
`GpuContext` on first use: its runtime, a caching allocator and the backend name its
Programs are cached under ("cuda:0", ...).  Arrays there hold `DeviceBuffer`s: reading one
on the host (np.asarray, float, printing) waits for the stream and copies it back, counted.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from ....config import config
from ....devices import Device, Platform, register_platform
from ....runtime.backend import register_backend
from ....runtime.reference import ReferenceExecutable
from . import driver, nvrtc
from .driver_gpu import DriverGpu
from .emulated_gpu import EmulatedGpu
from .executable import HostCudaExecutable, HostFallback, device_executable
from .memory import CachingAllocator, DeviceBuffer
from .program import CompiledCuda


class GpuContext:
    """One GPU as the backend uses it: `gpu` (the runtime: DriverGpu or EmulatedGpu), its
    allocator, and the Device arrays on it name."""

    def __init__(self, device: Device, gpu, emulated: bool):
        self.device, self.gpu, self.emulated = device, gpu, emulated
        self.allocator = CachingAllocator(gpu)
        self.allocator.context = self
        # one thread's work on the stream at a time (a call's table copy and launches, a
        # copy, a wait): a graph capture on the shared stream would take in, or be broken
        # by, another thread's operations
        self.enqueue_lock = threading.RLock()


class CudaPlatform(Platform):
    name = "cuda"

    def __init__(self):
        self._devices: dict = {}    # emulated? -> its Devices
        self._contexts: dict = {}   # (emulated, index) -> GpuContext
        self._lock = threading.Lock()

    def _mode(self) -> bool:
        return bool(config.cuda_emulation)

    def devices(self):
        """The GPUs (probed once), or the emulated one; asked at every call on a device
        under FJIT_PLATFORM=cuda, so the lists are kept."""
        mode = self._mode()
        found = self._devices.get(mode)
        if found is None:
            if mode:
                indices = [0]
            else:
                gpus, _ = driver.probe()
                indices = [g.index for g in gpus] if driver_runtime_available() is None \
                    else []
            with self._lock:
                found = self._devices.setdefault(mode, [Device(self, i) for i in indices])
        return list(found)

    def why_none(self) -> str:
        gpus, why = driver.probe()
        if why is not None:
            return f"{why} (FJIT_CUDA_EMULATION=1 gives one emulated GPU)"
        return driver_runtime_available() or "no usable GPU"

    def context(self, device: Device) -> GpuContext:
        key = (self._mode(), device.id)
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                gpu = EmulatedGpu() if key[0] else DriverGpu(device.id)
                context = self._contexts[key] = GpuContext(device, gpu, key[0])
                register_backend(_backend_name(key), _factory(context),
                                 usable=lambda key=key: self._mode() == key[0])
            return context

    def backend(self, device=None):
        device = device if device is not None else self.devices()[0]
        self.context(device)   # registers its backend
        return _backend_name((self._mode(), device.id))

    def device_kind(self, id):
        if self._mode():
            return "fjit CUDA emulator"
        gpus, _ = driver.probe()
        return next((g.name for g in gpus if g.index == id), "NVIDIA GPU")

    def describe(self, id):
        if self._mode():
            return {"compute_capability": "9.0", "emulated": True}
        gpus, _ = driver.probe()
        for g in gpus:
            if g.index == id:
                return {"name": g.name, "compute_capability": "%d.%d" % g.compute_capability,
                        "memory_gib": round(g.memory_bytes / 2**30, 1)}
        return {}

    def memory_stats(self, id):
        key = (self._mode(), id)
        context = self._contexts.get(key)
        return None if context is None else context.allocator.stats()

    def to_host(self, buffer: DeviceBuffer) -> np.ndarray:
        host = np.empty(buffer.shape, buffer.dtype)
        context = buffer.allocator.context   # the buffer's own GPU, whatever the mode is now
        if host.nbytes:
            with context.enqueue_lock:
                context.gpu.copy_to_host(host, buffer.address)
        return host

    def from_host(self, value: np.ndarray, device: Device) -> DeviceBuffer:
        context = self.context(device)
        buffer = DeviceBuffer(context.allocator, value.shape, value.dtype, device)
        if value.nbytes:
            with context.enqueue_lock:
                context.gpu.copy_to_device(buffer.address, value)
        return buffer

    def wait(self, buffer):
        context = buffer.allocator.context
        with context.enqueue_lock:
            context.gpu.synchronize()


def _backend_name(key) -> str:
    emulated, index = key
    return f"cuda:{index}" + (" (emulated)" if emulated else "")


def _factory(context):
    def compile_program(program):
        return device_executable(program, context)
    return compile_program


PLATFORM = CudaPlatform()


@functools.lru_cache(maxsize=None)
def driver_runtime_available() -> str | None:
    """None when fjit can run on this machine's GPUs, else why not."""
    try:
        from cuda.bindings import driver as _  # noqa: F401
    except ImportError as e:
        return f"cuda-python is not installed ({e})"
    return nvrtc.available()


def cuda_usable() -> bool:
    """Whether the cuda platform has a device here now (a GPU, or the emulated one)."""
    return bool(PLATFORM.devices())


def context_of(device: Device) -> GpuContext:
    return PLATFORM.context(device)


def default_cuda_device() -> Device:
    found = PLATFORM.devices()
    if not found:
        raise RuntimeError(f"fjit's cuda backend has no device: {PLATFORM.why_none()}")
    return found[0]


def _host_backend(program):
    """The "cuda" backend: host arrays in and out, run on the default cuda device."""
    executable = HostCudaExecutable(program, context_of(default_cuda_device()))
    if isinstance(executable.inner, HostFallback):   # no need to go through the device
        return ReferenceExecutable(program)
    return executable


def register():
    """The "cuda" backend (host arrays; `jit(f).lower()` shows its CUDA) and the cuda
    platform, whose devices register their own backends as they are first used."""
    register_backend("cuda", _host_backend, lower=CompiledCuda, usable=cuda_usable)
    register_platform(PLATFORM)
