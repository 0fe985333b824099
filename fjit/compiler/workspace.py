"""Where a compiled Program's temporaries live: one workspace, and a temporary's bytes are
reused once no later kernel reads it.

Without reuse, a ResNet-18 training step (batch 8) needed a 565 MB workspace: each of its 312
temporaries had bytes of its own, and touching them all for the first time took about a
second of the first call.  Kernels run in order, so a temporary is live from the first
kernel that uses it to the last; two temporaries whose lives do not overlap may share bytes.
A kernel that reads one temporary and writes another holds both (their lives overlap at that
kernel), so nothing is overwritten while it is read.

Control kernels (scan, while, cond) rebind the buffer table as they run; a Program with one
keeps every temporary apart, as before.
"""
from __future__ import annotations


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def layout(plan, scheduled, alignment: int) -> tuple[dict, int]:
    """({temporary buffer id: byte offset}, workspace size in bytes) for the plan's temporaries
    used by the top-level kernels `scheduled`, in the order they run."""
    temps = [b for b in plan.buffers if b.role == "temp"]
    size = {b.id: _align(max(b.size * b.dtype.itemsize, 1), alignment) for b in temps}
    if any(sk.control is not None for sk in scheduled):
        return _apart(temps, size)
    first, last = {}, {}
    for step, sk in enumerate(scheduled):
        for b in sk.buffers:
            if b in size:
                first.setdefault(b, step)
                last[b] = step
    unused = [b.id for b in temps if b.id not in first]
    offsets, total = {}, 0
    free = []        # (offset, size) of bytes no live temporary holds, by offset
    ending = {}      # step -> temporaries whose last use it is
    for b, step in last.items():
        ending.setdefault(step, []).append(b)
    starting = {}
    for b, step in first.items():
        starting.setdefault(step, []).append(b)
    for step in range(len(scheduled)):
        # largest first: big activations get the big holes
        for b in sorted(starting.get(step, ()), key=lambda b: -size[b]):
            offsets[b], total = _take(free, size[b], total)
        for b in ending.get(step, ()):
            _give_back(free, offsets[b], size[b])
    for b in unused:   # never touched by a kernel: still given bytes of their own
        offsets[b] = total
        total += size[b]
    return offsets, total


def _apart(temps, size):
    offsets, total = {}, 0
    for b in temps:
        offsets[b.id] = total
        total += size[b.id]
    return offsets, total


def _take(free, n, total):
    """Best fit among the free holes, else the end of the workspace (growing the last hole
    when it ends there)."""
    best = None
    for k, (offset, hole) in enumerate(free):
        if hole >= n and (best is None or hole < free[best][1]):
            best = k
    if best is not None:
        offset, hole = free[best]
        if hole == n:
            del free[best]
        else:
            free[best] = (offset + n, hole - n)
        return offset, total
    if free and free[-1][0] + free[-1][1] == total:   # a hole at the end: extend it
        offset = free.pop()[0]
        return offset, offset + n
    return total, total + n


def _give_back(free, offset, n):
    """Return [offset, offset + n) to the free list, merged with its neighbours."""
    k = 0
    while k < len(free) and free[k][0] < offset:
        k += 1
    free.insert(k, (offset, n))
    if k + 1 < len(free) and free[k][0] + free[k][1] == free[k + 1][0]:
        free[k] = (free[k][0], free[k][1] + free[k + 1][1])
        del free[k + 1]
    if k > 0 and free[k - 1][0] + free[k - 1][1] == free[k][0]:
        free[k - 1] = (free[k - 1][0], free[k - 1][1] + free[k][1])
        del free[k]
