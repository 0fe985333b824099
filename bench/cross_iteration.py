"""Cross-iteration fusion on W6b (the 784-512-512-10 MLP's SGD step as one scan): per-step
time of the plain and the rotated loop, and what the compiler made of each loop body.

Per-step time is the slope between two loop lengths (so the once-per-call work -- the
rotated loop's zero-initialised gradient carries and its final update -- is reported
apart).  Each (loop, length) runs in a process of its own, the processes interleaved over
rounds: in one process holding all four loops this shared machine ran every round after
the first about 25% slower.  Kernels and bytes come from `lower().kernels()`; bytes
are the compiler's traffic model (every buffer a kernel touches moves once), not a
measurement: this machine exposes no memory counters.

    python bench/cross_iteration.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def loop_body(steps, cross_iteration):
    import fjit
    import fjit.numpy as jnp
    from workloads_loops import _mlp_data, _mlp_step
    params, xs, ys = _mlp_data(steps)
    run = fjit.jit(lambda p, b: fjit.train_loop(_mlp_step(fjit, jnp), p, b,
                                                cross_iteration=cross_iteration))
    (loop,) = [k for k in run.lower(params, (xs, ys)).kernels() if k.kind == "loop"]
    return loop


def worker(cross_iteration, steps, calls):
    """In a fresh process: the best of `calls` timed calls of one loop, in seconds."""
    from workloads_loops import w6b_scan
    run = w6b_scan("fjit", steps=steps, cross_iteration=cross_iteration)
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    print(best)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--short", type=int, default=50)
    parser.add_argument("--long", type=int, default=150)
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(bool(args.worker[0]), args.worker[1], args.calls)
    lengths = (args.short, args.long)
    keys = [(ci, n) for ci in (False, True) for n in lengths]
    times = {key: [] for key in keys}
    for _ in range(args.rounds):
        for ci, n in keys:
            out = subprocess.run([sys.executable, __file__, "--calls", str(args.calls),
                                  "--worker", str(int(ci)), str(n)],
                                 capture_output=True, text=True, check=True)
            times[(ci, n)].append(float(out.stdout.split()[-1]))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  load {os.getloadavg()[0]:.2f}  "
          f"rounds {args.rounds}, best of {args.calls} calls per process")
    print("per step: the slope between the two lengths, from the fastest process of each "
          "(the least disturbed) and from the medians")
    print(f"{'loop':10} {'per step':>10} {'(median)':>10} {'per call':>10} {'kernels':>8} "
          f"{'MB/step':>8}")
    for ci in (False, True):
        slopes = []
        for pick in (np.min, np.median):
            short, long = (pick(times[(ci, n)]) for n in lengths)
            slopes.append(((long - short) / (lengths[1] - lengths[0]), short))
        (per_step, short), (median_step, _) = slopes
        fixed = short - lengths[0] * per_step
        body = loop_body(4, ci)
        print(f"{'rotated' if ci else 'plain':10} {per_step * 1e3:8.3f}ms "
              f"{median_step * 1e3:8.3f}ms {fixed * 1e3:8.2f}ms {len(body.body):8d} "
              f"{body.bytes_moved / 1e6:8.2f}")


if __name__ == "__main__":
    main()
