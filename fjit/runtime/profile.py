"""Where a compiled Program's time goes, kernel by kernel (FJIT_PROFILE=1, or
`fjit.config.update("profile", True)`).

A profiled executable runs its Program one top-level kernel at a time (the C target's
`fj_step`, which checked mode uses too) and times each; the records here add the times up
per Program and kernel.  `report()` prints, for each Program profiled, its time per call and
its costliest kernels with their share, what they are (a GEMM's m x n x k, a loop nest's
comment) and the user's line they come from; at exit, with FJIT_PROFILE set, it goes to
stderr.  Kernel-at-a-time running costs a Python call per kernel (about a microsecond) and
loses nothing a whole-Program call would overlap on the CPU, so shares are faithful where
kernels take more than a few microseconds.
"""
from __future__ import annotations

import sys
import threading

__all__ = ["ProgramProfile", "profile_for", "report", "reset"]


class ProgramProfile:
    """The accumulated times of one compiled Program's kernels."""

    def __init__(self, name, key, kernels):
        self.name, self.key = name, key
        self.kernels = kernels            # [(name, kind, what, source)] per top-level kernel
        self.seconds = [0.0] * len(kernels)
        self.calls = 0

    def add(self, times):
        for k, t in enumerate(times):
            self.seconds[k] += t
        self.calls += 1

    def total(self):
        return sum(self.seconds)

    def table(self, top=15):
        """The report's lines for this Program."""
        calls = max(self.calls, 1)
        total = self.total()
        lines = [f"jit({self.name}) [library {self.key}]: {self.calls} calls, "
                 f"{1e3 * total / calls:.3f} ms per call in {len(self.kernels)} kernels"]
        by_kind = {}
        for (_, kind, _, _), t in zip(self.kernels, self.seconds):
            by_kind[kind] = by_kind.get(kind, 0.0) + t
        if total > 0:
            lines.append("  by kind: " + ", ".join(
                f"{kind} {100 * t / total:.0f}%" for kind, t in
                sorted(by_kind.items(), key=lambda kv: -kv[1])))
        order = sorted(range(len(self.kernels)), key=lambda k: -self.seconds[k])
        lines.append(f"  {'share':>6} {'ms/call':>9}  kernel")
        for k in order[:top]:
            name, kind, what, source = self.kernels[k]
            share = 100 * self.seconds[k] / total if total > 0 else 0.0
            where = f"  <- {source}" if source else ""
            lines.append(f"  {share:5.1f}% {1e3 * self.seconds[k] / calls:9.3f}  "
                         f"{name} [{kind}] {what}{where}")
        if len(order) > top:
            rest = sum(self.seconds[k] for k in order[top:])
            lines.append(f"  {100 * rest / total if total else 0:5.1f}% "
                         f"{1e3 * rest / calls:9.3f}  ({len(order) - top} more kernels)")
        return lines


_profiles: dict = {}
_lock = threading.Lock()


def profile_for(name, key, kernels) -> ProgramProfile:
    """The record of the Program compiled to library `key` (one per library and name)."""
    with _lock:
        found = _profiles.get((name, key))
        if found is None:
            found = _profiles[(name, key)] = ProgramProfile(name, key, kernels)
        return found


def report(top=15) -> str:
    """Every profiled Program, costliest first, with its top kernels."""
    with _lock:
        profiles = sorted((p for p in _profiles.values() if p.calls),
                          key=lambda p: -p.total())
    if not profiles:
        return "fjit profile: nothing profiled (set FJIT_PROFILE=1 before the calls)"
    lines = ["fjit profile (kernel by kernel; FJIT_PROFILE)"]
    for p in profiles:
        lines += p.table(top)
    return "\n".join(lines)


def reset():
    """Zero every record.  Executables hold their record, so it is cleared in place:
    dropping it would lose every later call of an executable already built."""
    with _lock:
        for p in _profiles.values():
            p.seconds = [0.0] * len(p.kernels)
            p.calls = 0


def print_at_exit():
    """Registered once when profiling is on: the report on stderr as the process ends."""
    if any(p.calls for p in _profiles.values()):
        print(report(), file=sys.stderr)
