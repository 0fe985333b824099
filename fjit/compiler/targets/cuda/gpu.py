"""What the cuda backend asks of a GPU, and the errors it raises.

Two runtimes give the same operations: `DriverGpu` (driver_gpu.py: a real device through
cuda-python's driver API) and `EmulatedGpu` (emulated_gpu.py: host memory, the emulator's
kernels and a worker thread standing for the stream).  Everything above them (the caching
allocator, executables, the platform) is one code path, so the emulator tests the host code
a GPU runs too.

Every operation is enqueued on the device's one stream and returns at once, in stream order:
a buffer freed by the host may be handed to a later operation at once (it runs after every
earlier use), which is what lets the allocator recycle blocks without waiting.  A launch the
device refuses outright (its configuration) raises where it is enqueued; a kernel that
fails while it runs is reported by the next `synchronize` as `CudaKernelError`, and, as
CUDA's faults are sticky, by every one after it: the GPU's context is lost.

    alloc(nbytes) -> address        free(address)            (device memory)
    copy_to_device(address, host)   the host array is read before the call returns
    copy_to_host(host, address)     waits for the stream, then fills `host`
    load(source, kernels, name)     a module: the CUDA source built for this device
    launch(module, kernel, grid, block, args, label)   args: Pointer and NumPy scalars
    capture(enqueue) -> graph       the launches `enqueue()` makes, recorded, not run
    launch_graph(graph, label)      replays them as one operation
    release_graph(graph)            once nothing will launch it again
    synchronize()                   waits; raises the fault, if a kernel failed
"""
from __future__ import annotations


class CudaError(RuntimeError):
    """A CUDA operation failed (the driver's error name in the message)."""


class CudaOutOfMemory(CudaError, MemoryError):
    """The device has no room for an allocation, even with the allocator's cache emptied."""


class CudaKernelError(CudaError):
    """A kernel failed on the device; raised at the next synchronization (a jitted call has
    returned by then), naming the kernel, its Program and what the kernel computes."""
