"""Run the benchmarks: every framework in its own process, in interleaved rounds.

    python bench/run.py                      # all workloads (W9 included), fjit numpy jax torch
    python bench/run.py --workloads W1,W1b --rounds 5
    python bench/run.py --workloads W9       # first-call times only (same as first_call.py)

Prints
- the STREAM triad bandwidth (stream.py: stream_triad.c built with gcc, 1 and 2 threads),
  measured once per round, median over rounds;
- the median time per call and fjit's ratio to each framework (ratio > 1: fjit slower);
  a result that differs from NumPy's (worker.py's "check") is flagged below the table;
- W1b, W2 and T1 as GB/s moved (bytes per call in workloads.BYTES_MOVED: the input read once and
  the output written once) and as a fraction of the faster triad median;
- when W9 is among the workloads: first_call.py's cold/warm first-call table of W4's step,
  `--rounds` new processes per framework and cache state.
Frameworks that are not installed are skipped.  All workloads take about 3.5 minutes on the
2-vCPU CPU machine.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ["fjit", "numpy", "jax", "torch"]


def available(framework):
    return importlib.util.find_spec(framework) is not None


def run_one(framework, workload):
    """{"seconds": ..., "check": ...} from worker.py; NaN seconds when it failed."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "worker.py"), framework, workload],
                         capture_output=True, text=True, cwd=HERE, check=False)
    if out.returncode != 0:
        print(f"# {framework} {workload} failed:\n{out.stderr}", file=sys.stderr)
        return {"seconds": math.nan, "check": None}
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_time(seconds):
    if seconds is None:
        return "n/a"
    if math.isnan(seconds):
        return "failed"
    if seconds < 1e-3:
        return f"{seconds * 1e6:9.2f} us"
    return f"{seconds * 1e3:9.2f} ms"


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def main():
    sys.path.insert(0, HERE)
    import first_call
    import stream
    from workloads import BYTES_MOVED, WORKLOADS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join([*WORKLOADS, "W9"]))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    requested = args.workloads.split(",")
    unknown = [w for w in requested if w not in WORKLOADS and w != "W9"]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {[*WORKLOADS, 'W9']}")
    workloads = [w for w in requested if w != "W9"]
    frameworks = [f for f in args.frameworks.split(",") if available(f)]

    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}  "
          f"{os.cpu_count()} cpus  load {os.getloadavg()[0]:.2f}  python {platform.python_version()}")
    triads, results = {}, {(w, f): [] for w in workloads for f in frameworks}
    for _ in range(args.rounds):
        for label, gbs in stream.triad().items():
            triads.setdefault(label, []).append(gbs)
        for w in workloads:
            for f in frameworks:
                results[(w, f)].append(run_one(f, w))
    triad = {label: statistics.median(v) for label, v in triads.items()}
    print("# STREAM triad a = b + s*c, float32, 3 x 64 MB, median of rounds: " +
          ", ".join(f"{gbs:.1f} GB/s ({label})" for label, gbs in triad.items()))

    medians = {k: None if any(r["seconds"] is None for r in v) else
               statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    if workloads:
        print(f"{'workload':10}" + "".join(f"{f:>14}" for f in frameworks) +
              "".join(f"{'fjit/' + f:>12}" for f in frameworks if f != "fjit"))
    for w in workloads:
        row = f"{w:10}" + "".join(f"{format_time(medians[(w, f)]):>14}" for f in frameworks)
        if "fjit" in frameworks:
            row += "".join(f"{ratio(medians[(w, 'fjit')], medians[(w, f)]):>12}"
                           for f in frameworks if f != "fjit")
        print(row)
    for (w, f), runs in results.items():       # every result against NumPy's
        ref = results.get((w, "numpy"), [{}])[0].get("check")
        for r in runs:
            if ref is not None and r["check"] is not None and \
                    not math.isclose(r["check"], ref, rel_tol=1e-3):
                print(f"# WRONG RESULT? {f} {w}: root-sum-of-squares {r['check']:.6g}, "
                      f"NumPy {ref:.6g}")
                break

    memory_bound = [w for w in workloads if w in BYTES_MOVED]
    if memory_bound:
        best = max(triad.values())
        print(f"\nGB/s moved per call (fraction of the triad, {best:.1f} GB/s); bytes per call: " +
              ", ".join(f"{w} {BYTES_MOVED[w] / 2**20:.0f} MiB" for w in memory_bound) +
              " (input read once + output written once)")
        for w in memory_bound:
            cells = []
            for f in frameworks:
                gbs = BYTES_MOVED[w] / medians[(w, f)] / 1e9
                cells.append(f"{gbs:6.1f} ({gbs / best:.2f})")
            print(f"{w:10}" + "".join(f"{c:>14}" for c in cells))

    if "W9" in requested:
        w9 = [f for f in frameworks if f in first_call.FRAMEWORKS]
        print()
        print(first_call.report(first_call.measure(w9, args.rounds), w9, args.rounds))
    print(f"# done {time.strftime('%H:%M')}  load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
