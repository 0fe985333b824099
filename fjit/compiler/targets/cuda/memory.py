"""Device memory for the cuda backend: a caching allocator and the buffers arrays hold.

cuMemAlloc and cuMemFree cost tens of microseconds and cuMemFree waits for the device, more
than many kernels take.  So blocks are kept when their buffer dies and handed out again for
the same rounded size, as PyTorch's caching allocator does.  That is safe without waiting for
the device because the device has one stream: whatever reads a recycled block next is
enqueued after everything that used it before (gpu.py).  When an allocation does not fit,
the cache is given back to the device (after a synchronize) and the allocation tried again;
only then is it an out-of-memory error, with the numbers.
"""
from __future__ import annotations

import collections
import threading
import weakref

import numpy as np

from .gpu import CudaOutOfMemory

SMALL = 1 << 20           # below: rounded up to 512 bytes; above: to 2 MiB
SMALL_ROUND = 512
LARGE_ROUND = 2 << 20


def rounded(nbytes: int) -> int:
    step = SMALL_ROUND if nbytes < SMALL else LARGE_ROUND
    return max(step, -(-nbytes // step) * step)


class CachingAllocator:
    def __init__(self, gpu):
        self.gpu = gpu
        self.context = None   # the platform's GpuContext this allocator belongs to
        self._free: dict[int, list] = {}   # rounded size -> addresses ready for reuse
        # blocks given back by finalizers, which may run inside a locked region of this
        # very thread (a garbage collection): they only append here, without the lock
        self._returned = collections.deque()
        self._lock = threading.Lock()
        self.in_use = 0            # bytes of live blocks
        self.cached = 0            # bytes of blocks kept for reuse
        self.peak = 0
        self.device_allocations = 0   # cuMemAlloc calls (what the cache saves)

    def allocate(self, nbytes: int) -> tuple[int, int]:
        """(address, size) of a block of at least `nbytes` bytes."""
        size = rounded(nbytes)
        with self._lock:
            self._take_returned()
            blocks = self._free.get(size)
            if blocks:
                address = blocks.pop()
                self.cached -= size
            else:
                address = None
        if address is None:
            address = self._device_alloc(size, nbytes)
        with self._lock:
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
        return address, size

    def _device_alloc(self, size, nbytes):
        try:
            address = self.gpu.alloc(size)
        except CudaOutOfMemory:
            self.empty_cache()
            try:
                address = self.gpu.alloc(size)
            except CudaOutOfMemory as e:
                raise CudaOutOfMemory(
                    f"fjit: no room on the GPU for {nbytes} bytes: {self.in_use} bytes are "
                    f"held by live arrays and the cache is empty ({e})") from None
        with self._lock:
            self.device_allocations += 1
        return address

    def release(self, address: int, size: int):
        """Take a block back (its buffer is gone); a later allocation may reuse it at once.
        Called by finalizers: takes no lock (see _returned)."""
        self._returned.append((address, size))

    def _take_returned(self):   # with the lock held
        while self._returned:
            address, size = self._returned.popleft()
            self.in_use -= size
            self.cached += size
            self._free.setdefault(size, []).append(address)

    def empty_cache(self):
        """Give every cached block back to the device, once the stream is done with them:
        the blocks are taken first, so none released later (whose last use may still be
        queued) is freed."""
        with self._lock:
            self._take_returned()
            blocks = [(a, s) for s, addresses in self._free.items() for a in addresses]
            self._free.clear()
            self.cached = 0
        self.gpu.synchronize()
        for address, _ in blocks:
            self.gpu.free(address)

    def stats(self) -> dict:
        with self._lock:
            self._take_returned()
            return {"bytes_in_use": self.in_use, "bytes_cached": self.cached,
                    "peak_bytes_in_use": self.peak,
                    "device_allocations": self.device_allocations}


class DeviceBuffer:
    """An array's memory on a GPU: a block from `allocator`, given back when the last Array
    holding it is gone.  Kernels enqueued before may still read it then; that is safe
    because whatever reuses the block is enqueued after them (one stream per device)."""

    __slots__ = ("address", "nbytes", "shape", "dtype", "device", "allocator",
                 "__weakref__")

    def __init__(self, allocator: CachingAllocator, shape, dtype, device):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.device = device
        self.allocator = allocator
        self.address, size = allocator.allocate(self.nbytes)
        weakref.finalize(self, allocator.release, self.address, size)

    def __repr__(self):
        return (f"DeviceBuffer({self.dtype.name}{list(self.shape)} at 0x{self.address:x} "
                f"on {self.device})")
