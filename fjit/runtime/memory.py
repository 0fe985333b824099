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
import threading
import weakref

import numpy as np


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
