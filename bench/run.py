"""Run the benchmarks: every framework in its own process, in interleaved rounds.

    python bench/run.py                      # all workloads, fjit numpy jax torch
    python bench/run.py --workloads W7 --rounds 5

Prints the median time per call and fjit's ratio to each framework (ratio > 1: fjit slower).
Frameworks that are not installed are skipped.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
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
    out = subprocess.run([sys.executable, os.path.join(HERE, "worker.py"), framework, workload],
                         capture_output=True, text=True, cwd=HERE, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} {workload} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def format_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:9.2f} us"
    return f"{seconds * 1e3:9.2f} ms"


def main():
    sys.path.insert(0, HERE)
    from workloads import WORKLOADS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    frameworks = [f for f in args.frameworks.split(",") if available(f)]

    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}  "
          f"{os.cpu_count()} cpus  load {os.getloadavg()[0]:.2f}  python {platform.python_version()}")
    times = {(w, f): [] for w in workloads for f in frameworks}
    for _ in range(args.rounds):
        for w in workloads:
            for f in frameworks:
                times[(w, f)].append(run_one(f, w))
    header = f"{'workload':10}" + "".join(f"{f:>14}" for f in frameworks) + \
        "".join(f"{'fjit/' + f:>12}" for f in frameworks if f != "fjit")
    print(header)
    for w in workloads:
        medians = {f: statistics.median(times[(w, f)]) for f in frameworks}
        row = f"{w:10}" + "".join(f"{format_time(medians[f]):>14}" for f in frameworks)
        if "fjit" in medians:
            row += "".join(f"{medians['fjit'] / medians[f]:12.2f}" for f in frameworks
                           if f != "fjit")
        print(row)


if __name__ == "__main__":
    main()
