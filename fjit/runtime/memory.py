"""A pool of large host buffers for compiled Programs' outputs.

A fresh 64 MB NumPy array is a fresh mmap: every page faults on its first write, which costs
as much as the kernel that fills it (measured here: x*a+b over 16M floats, 2.5 ms with a
warm buffer, 4.9 ms with a new one).  Outputs of 1 MB and more are therefore carved from
recycled blocks.  A block comes back to the pool only when nothing can see it any more: the
NumPy array is a view of a ctypes object that owns nothing, and NumPy keeps that object as
the base of every view derived from the array, so its finalizer runs after the last view
is gone.
"""
from __future__ import annotations

import ctypes
import os
import threading
import weakref

import numpy as np

from ..errors import FjitMemoryError, calling_function

MIN_POOLED_BYTES = 1 << 20
MAX_CACHED_BYTES = 1 << 30
ALIGN = 64


class BufferPool:
    def __init__(self):
        self._free: dict[int, list] = {}
        self._cached = 0
        self._lock = threading.Lock()

    def empty(self, shape, dtype, nbytes=None) -> np.ndarray:
        """An uninitialised array: pooled memory for large sizes, np.empty for small (pass
        `nbytes` when it is known, to keep small allocations cheap)."""
        dtype = np.dtype(dtype)
        if nbytes is None:
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < MIN_POOLED_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            blocks = self._free.get(nbytes)
            block = blocks.pop() if blocks else None
            if block is not None:
                self._cached -= nbytes
        if block is None:
            block = np.empty(nbytes + ALIGN, np.uint8)
        address = block.ctypes.data
        address += (-address) % ALIGN
        window = (ctypes.c_char * nbytes).from_address(address)
        weakref.finalize(window, self._release, nbytes, block)
        return np.frombuffer(window, dtype).reshape(shape)

    def _release(self, nbytes, block):
        with self._lock:
            if self._cached + nbytes > MAX_CACHED_BYTES:
                return  # let this one go back to the system
            self._free.setdefault(nbytes, []).append(block)
            self._cached += nbytes

    def clear(self):
        with self._lock:
            self._free.clear()
            self._cached = 0


pool = BufferPool()


# --- the memory limit -------------------------------------------------------------------------

def _physical_memory() -> int:
    """This machine's memory in bytes (less where a cgroup limits the process)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 1 << 62
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


MEMORY_LIMIT = _physical_memory()  # bytes; larger arrays raise FjitMemoryError


def check_fits_in_memory(shape, dtype, opname: str | None = None):
    """Raise FjitMemoryError, before anything is computed, if an array of `shape` and `dtype`
    is larger than this machine's memory (JAX fails such allocations at once; computing into a
    broadcast view of one would run for minutes)."""
    nbytes = int(np.dtype(dtype).itemsize)
    for d in shape:
        nbytes *= int(d)
    if nbytes > MEMORY_LIMIT:
        raise FjitMemoryError(
            f"{opname or calling_function()}: an array of shape {tuple(shape)} and dtype "
            f"{np.dtype(dtype).name} needs {nbytes} bytes ({nbytes / 2**30:.1f} GiB), more than "
            f"this machine's memory ({MEMORY_LIMIT} bytes)")
