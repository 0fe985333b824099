"""A training loop whose steps leave room for host work: does asynchronous dispatch overlap
them?

Each step is W4's jitted SGD step (784-512-512-10 MLP, batch 128) followed by about 1 ms of
NumPy work on the host (a stand-in for data loading and logging), the next step reading the
previous one's parameters.  With asynchronous dispatch the jitted call returns at once and
the NumPy work runs while the native step does; synchronously they add up.

    python bench/async_overlap.py [--rounds 3]

runs each mode in its own process (FJIT_ASYNC_DISPATCH=1 and =0), interleaved, and prints
the time per step and the NumPy work alone.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def host_work(rng):
    """About 1 ms of NumPy on this machine: sort 50k floats and take statistics."""
    v = np.sort(rng.standard_normal(50_000))
    return float(v[len(v) // 2] + v.std())


def measure(steps=200):
    import fjit
    import fjit.numpy as jnp
    from workloads import _mlp_data, mlp_loss

    params, x, y = _mlp_data()
    loss = mlp_loss(jnp)

    @fjit.jit
    def step(p, x, y):
        g = fjit.grad(loss)(p, x, y)
        return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(p, g)]

    p = fjit.device_put(params)
    xs, ys = fjit.device_put(x), fjit.device_put(y.astype(np.int32))
    rng = np.random.default_rng(0)
    for _ in range(5):                      # compile and warm up
        p = step(p, xs, ys)
        host_work(rng)
    fjit.block_until_ready(p)
    start = time.perf_counter()
    for _ in range(steps):
        p = step(p, xs, ys)
        host_work(rng)
    fjit.block_until_ready(p)
    per_step = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for _ in range(steps):
        host_work(rng)
    host = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for _ in range(steps):
        p = fjit.block_until_ready(step(p, xs, ys))
    device = (time.perf_counter() - start) / steps
    return {"per_step": per_step, "host_work": host, "step_alone": device}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, HERE)
        print(json.dumps(measure()))
        return
    results = {"1": [], "0": []}
    for r in range(args.rounds):
        for mode in (("1", "0") if r % 2 == 0 else ("0", "1")):
            env = dict(os.environ, FJIT_ASYNC_DISPATCH=mode)
            out = subprocess.run([sys.executable, __file__, "--worker"], env=env, check=True,
                                 capture_output=True, text=True).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    for mode, name in (("0", "synchronous"), ("1", "asynchronous")):
        runs = results[mode]
        best = min(runs, key=lambda d: d["per_step"])
        print(f"{name:>12}: {best['per_step'] * 1e3:.3f} ms per step "
              f"(step alone {best['step_alone'] * 1e3:.3f} ms, host work alone "
              f"{best['host_work'] * 1e3:.3f} ms; best of {len(runs)} processes)")


if __name__ == "__main__":
    main()
