"""Fuzz campaigns: `python -m fjit.testing.fuzz --minutes 10 --out fuzz-out`.

Programs run in a worker process, so a hang (per-program timeout) or a crash of the process
itself (a segfault in a kernel) is recorded against the program and the campaign goes on
with a fresh worker.  The first failures of each distinct kind are shrunk (through the same
worker) and written to --out as standalone reproducer scripts; a summary with the counts and
per-op coverage is printed at the end and written as summary.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import sys
import time

from .harness import MODES


# --- the worker process -----------------------------------------------------------------------

def _worker(conn):
    import fjit
    fjit.config.update("check_programs", True)
    from .generate import generate
    from .oracle import check, coverage
    while True:
        msg = conn.recv()
        if msg is None:
            return
        what, payload, modes, targets = msg
        prog = generate(payload) if what == "seed" else payload
        failures = check(prog, modes, targets)
        conn.send(([f.__dict__ for f in failures], coverage(prog)))


class Worker:
    """One worker process; `run` returns (failures, coverage), or a hang / crash failure."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.ctx = multiprocessing.get_context("spawn")
        self.proc = None

    def _start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def stop(self):
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()  # the worker this object started, by its handle
            self.proc.join()
            self.proc = None

    def run(self, what, payload, modes, targets=None, timeout=None):
        from .oracle import Failure
        if self.proc is None or not self.proc.is_alive():
            self._start()
        try:
            self.conn.send((what, payload, modes, targets))
            if self.conn.poll(timeout or self.timeout):
                dicts, cov = self.conn.recv()
                return [Failure(**d) for d in dicts], cov
            kind, detail, message = "hang", "timeout", f"no result after {timeout or self.timeout} s"
        except (EOFError, OSError, BrokenPipeError):
            kind, detail, message = "crash", "worker died", ""
        self.stop() if kind == "hang" else None
        if kind == "crash":
            self.proc.join()
            code = self.proc.exitcode
            detail = f"worker died (exit code {code})"
            message = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            self.proc = None
        return [Failure("any", "any", kind, detail, message)], []


# --- campaign ---------------------------------------------------------------------------------

def _shrink_failure(worker, prog, failure, modes, max_checks):
    """Shrink `prog` while the worker still sees a failure with `failure`'s signature."""
    from .shrink import shrink
    sig = failure.signature()
    isolated = failure.kind in ("hang", "crash") and failure.mode == "any"
    check_modes = modes if isolated else (failure.mode,)

    def still_fails(cand):
        fails, _ = worker.run("program", cand, check_modes,
                              None if isolated else [failure.target],
                              timeout=worker.timeout)
        return any(f.signature() == sig for f in fails)

    return shrink(prog, still_fails, max_checks=max_checks)


def campaign(seed=0, programs=None, minutes=None, modes=MODES, out=None, timeout=120.0,
             shrink_per_class=1, shrink_checks=150, log=print):
    from .generate import generate
    from .reproducer import reproducer_source
    worker = Worker(timeout)
    start = time.time()
    deadline = start + 60 * minutes if minutes else None
    n_run = 0
    cov = collections.Counter()
    classes = {}   # signature -> {"count", "first", "example", "reproducer"}
    kinds = collections.Counter()
    failing_programs = 0
    if out:
        os.makedirs(out, exist_ok=True)
    try:
        index = 0
        while (programs is None or index < programs) and (deadline is None or time.time() < deadline):
            pseed = (seed, index)
            index += 1
            failures, c = worker.run("seed", pseed, tuple(modes))
            n_run += 1
            cov.update(c)
            if failures:
                failing_programs += 1
            for f in failures:
                kinds[f.kind] += 1
                sig = f.signature()
                entry = classes.get(sig)
                if entry is None:
                    entry = classes[sig] = {"count": 0, "first": pseed, "failure": f.describe(),
                                            "trace": f.trace, "reproducer": None, "shrunk": 0}
                    log(f"[{n_run}] new failure class {len(classes)}: {f.describe()}")
                entry["count"] += 1
                if entry["shrunk"] < shrink_per_class:
                    entry["shrunk"] += 1
                    prog = generate(pseed)
                    small = _shrink_failure(worker, prog, f, modes, shrink_checks)
                    mode = f.mode if f.mode != "any" else modes[0]
                    target = f.target if f.target != "any" else "c"
                    src = reproducer_source(small, mode, target, f.describe())
                    entry["reproducer"] = src
                    if out:
                        path = os.path.join(out, f"repro_{len(classes):03d}_{entry['shrunk']}.py")
                        with open(path, "w") as fh:
                            fh.write(src)
                        log(f"    reproducer ({len(small.stmts)} statements) -> {path}")
            if n_run % 50 == 0:
                el = time.time() - start
                log(f"{n_run} programs in {el:.0f} s ({60 * n_run / el:.1f}/min), "
                    f"{failing_programs} failing, {len(classes)} failure classes")
    finally:
        worker.stop()
    elapsed = time.time() - start
    summary = {"date": time.strftime("%Y-%m-%d %H:%M"), "seed": seed, "modes": list(modes),
               "programs": n_run, "failing_programs": failing_programs,
               "seconds": round(elapsed, 1),
               "programs_per_minute": round(60 * n_run / max(elapsed, 1e-9), 1),
               "mismatches": kinds["mismatch"], "crashes": kinds["crash"],
               "error_divergences": kinds["error-divergence"], "hangs": kinds["hang"],
               "classes": [dict(signature=list(map(str, s)), **{k: v for k, v in e.items()
                                                                 if k != "shrunk"})
                           for s, e in classes.items()],
               "coverage": dict(sorted(cov.items()))}
    if out:
        with open(os.path.join(out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1, default=str)
    return summary


def format_summary(s):
    lines = [f"fuzz campaign {s['date']}: seed {s['seed']}, modes {','.join(s['modes'])}",
             f"  programs run: {s['programs']} in {s['seconds']} s "
             f"({s['programs_per_minute']} per minute); failing programs: "
             f"{s['failing_programs']}",
             f"  mismatches: {s['mismatches']}  crashes: {s['crashes']}  "
             f"error divergences: {s['error_divergences']}  hangs: {s['hangs']}",
             f"  distinct failure classes: {len(s['classes'])}"]
    for k, c in enumerate(s["classes"], 1):
        lines.append(f"    {k}. x{c['count']} (first: seed {c['first']}) {c['failure'][:200]}")
    lines.append("  coverage (occurrences in the programs run):")
    items = sorted(s["coverage"].items(), key=lambda kv: (-kv[1], kv[0]))
    for i in range(0, len(items), 4):
        lines.append("    " + "  ".join(f"{k}: {v}" for k, v in items[i:i + 4]))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fjit.testing.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, help="stop after this long")
    p.add_argument("--programs", type=int, help="stop after this many programs")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (program k is (seed, k))")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ",".join(MODES))
    p.add_argument("--out", help="directory for reproducers and summary.json")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per program")
    p.add_argument("--shrink-per-class", type=int, default=1,
                   help="failures of each distinct class to shrink (0: none)")
    a = p.parse_args(argv)
    modes = tuple(m for m in a.modes.split(",") if m)
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown modes {bad}; choose from {list(MODES)}")
    if a.minutes is None and a.programs is None:
        a.programs = 100
    s = campaign(seed=a.seed, programs=a.programs, minutes=a.minutes, modes=modes, out=a.out,
                 timeout=a.timeout, shrink_per_class=a.shrink_per_class,
                 log=lambda m: print(m, flush=True))
    print(format_summary(s), flush=True)
    return 1 if s["failing_programs"] else 0


if __name__ == "__main__":
    sys.exit(main())
