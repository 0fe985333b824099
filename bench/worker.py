"""Times one workload in one framework, in this process only; prints one JSON line.

Besides the time, "check" is the root-sum-of-squares of the step's result (computed once,
outside the timing; null for steps that return nothing), which run.py compares across
frameworks.
"""
import json
import sys
import time

import numpy as np

from workloads import WORKLOADS


def measure(step, min_time=0.2, repeats=5):
    """Median over `repeats` batches of the mean time per call, batch size chosen so one batch
    takes about `min_time` seconds."""
    step()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            step()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 4 or n >= 1 << 24:
            break
        n *= 4
    per_batch = max(1, int(n * min_time / max(elapsed, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_batch):
            step()
        samples.append((time.perf_counter() - start) / per_batch)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    framework, workload = sys.argv[1], sys.argv[2]
    try:
        step = WORKLOADS[workload](framework)
    except NotImplementedError:  # the workload has no version for this framework
        print(json.dumps({"framework": framework, "workload": workload, "seconds": None,
                          "check": None}))
        return
    out = step()
    if framework == "fjit":   # time the optimised code, not the quick tier (tiered builds)
        import fjit
        fjit.block_until_compiled()
    check = None if out is None else float(np.sqrt(np.sum(np.square(
        np.asarray(out, dtype=np.float64)))))
    del out
    print(json.dumps({"framework": framework, "workload": workload, "seconds": measure(step),
                      "check": check}))


if __name__ == "__main__":
    main()
