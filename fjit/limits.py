"""What this machine can hold.  A base module (creation functions, eager evaluation and the
compilers all check against it), so it imports nothing above fjit.errors."""
from __future__ import annotations

import os

import numpy as np

from .errors import FjitMemoryError, calling_function


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
