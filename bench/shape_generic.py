"""Kernels reused across sizes (issue 15, part 2): the step time of fjit's shape-generic code
(the build a function gets once it has met a second batch size: sizes are kernel arguments
and kept out of every code decision, so one library serves every batch size) against a
build specialised to each size (every size a literal in the C).

    python bench/shape_generic.py                        # W4's MLP step and ResNet-18
    python bench/shape_generic.py --models mlp --batches 8,32,128 --rounds 3

Each (model, batch, build) runs in a process of its own, the two builds interleaved round by
round; each build kind keeps its own disk cache, so only the first round compiles.  The
specialised build is made by rendering sizes as literals (a measuring device, patched into
the renderer here; fjit has no such mode).  Printed: the median step time over rounds (each
round's time is the median of `--steps` steps) and specialised / generic.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def specialise_sizes():
    """Render every size, stride and thread decision as a literal."""
    from fjit.compiler.targets.c_family import kernel_data as render
    render.KernelData.size = lambda self, value, scope=None: f"{int(value)}LL"
    render.KernelData.gemm_size = lambda self, value: f"{int(value)}LL"
    render.KernelData.flag = lambda self, value: f"{int(value)}LL"


def model_step(model, batch, seen_at=None):
    """A closure running one step at `batch`; with `seen_at`, the jitted step is first traced
    at that other batch size, so the measured batch gets the shape-generic build (fjit
    specialises a function's first size and generalises when a second one comes)."""
    sys.path.insert(0, HERE)
    import fjit
    if model == "mlp":
        import numpy as np
        import workloads
        import fjit.numpy as jnp
        params, x, y = workloads._mlp_data()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, x.shape[1])).astype(np.float32)
        y = rng.integers(0, 10, batch).astype(np.int32)
        loss = workloads.mlp_loss(jnp)

        @fjit.jit
        def step(p, x, y):
            g = fjit.grad(loss)(p, x, y)
            return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(p, g)]
        state = [fjit.device_put(params)]
        if seen_at:
            step.lower(state[0], np.zeros((seen_at, x.shape[1]), np.float32),
                       np.zeros(seen_at, np.int32))
        return lambda: state.__setitem__(0, step(state[0], x, y)) or state[0]
    import models
    step, state = getattr(models, f"{model}_step")(batch)
    if seen_at:
        step.lower(getattr(models, f"{model}_step")(seen_at)[1])
    box = [state]
    return lambda: box.__setitem__(0, step(box[0])) or box[0]


def child(kind, model, batch, steps):
    if kind == "specialised":
        specialise_sizes()
    import fjit
    run = model_step(model, batch, seen_at=2 * batch if kind == "generic" else None)
    fjit.block_until_ready(run())
    fjit.block_until_compiled()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fjit.block_until_ready(run())
        times.append(time.perf_counter() - start)
    print(json.dumps({"step": statistics.median(times)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,resnet18")
    parser.add_argument("--batches", default="8,16,32,64,128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        kind, model, batch = args.child
        child(kind, model, int(batch), args.steps)
        return
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} CPUs; median step time over {args.rounds} rounds")
    caches = {k: tempfile.mkdtemp(prefix=f"fjit-{k}-") for k in ("generic", "specialised")}
    for model in args.models.split(","):
        for batch in map(int, args.batches.split(",")):
            samples = {k: [] for k in caches}
            for _ in range(args.rounds):
                for kind, cache_dir in caches.items():
                    out = subprocess.run(
                        [sys.executable, os.path.abspath(__file__), "--child", kind, model,
                         str(batch), "--steps", str(args.steps)],
                        capture_output=True, text=True, cwd=HERE,
                        env=dict(os.environ, FJIT_CACHE_DIR=cache_dir))
                    if out.returncode != 0:
                        raise RuntimeError(out.stderr[-3000:])
                    samples[kind].append(json.loads(out.stdout.splitlines()[-1])["step"])
            g, s = (statistics.median(samples[k]) for k in ("generic", "specialised"))
            print(f"{model:>9} batch {batch:>4}: generic {g * 1e3:8.2f} ms, specialised "
                  f"{s * 1e3:8.2f} ms, specialised/generic {s / g:.3f}", flush=True)


if __name__ == "__main__":
    main()
