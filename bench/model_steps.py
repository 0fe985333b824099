"""First call and step time of real training steps (bench/models.py), each launch in a new
process, as a user meets them (issue 15).

    python bench/model_steps.py                           # all models, cold and warm cache
    python bench/model_steps.py --models resnet18 --batches 8,16 --steps 5

- cold: a fresh, empty FJIT_CACHE_DIR: tracing, autodiff, lowering, the C compiler, loading.
- warm: a second process on the cache the cold one filled: nothing is compiled.
- then: one more step (with tiered compilation, on the quick -O1 code while the -O3 build
  runs in the background), fjit.block_until_compiled(), and `--steps` more steps: their
  median is the step time.
- with --batches, the batch sizes run one after the other in one process on one cache, through
  one jitted step (fjit): the later ones show what a new batch size costs (the second size
  builds the shape-generic library, later sizes find it).
- JAX's numbers come from bench/models_jax.py where it exists (the same models in JAX),
  first call = trace + XLA compile + one run, no persistent cache; PyTorch's from
  bench/models_torch.py (eager, 2 threads as on the CI machine unless --torch-threads).
- every launch reports its peak RSS (the process's ru_maxrss, set-up included).

Model set-up (parameter initialisation, input data) is not timed.  Printed per launch: the
first call split into trace (tracing and autodiff), lower (fusion, scheduling), render (C
source), build (C compiler and loading) and the rest (running the step, Python), the
kernel count, the distinct kernel functions compiled and the translation units.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(framework, model, batches, steps):
    sys.path.insert(0, HERE)
    results = []
    if framework == "jax":
        import jax
        import models_jax as models
        sync = jax.block_until_ready
    elif framework == "torch":
        import torch
        import models_torch as models
        torch.set_num_threads(int(os.environ.get("FJIT_BENCH_TORCH_THREADS", "2")))
        sync = None          # eager: a step has finished when it returns
    else:
        import fjit
        import models
        sync = fjit.block_until_ready
    first_step = None
    for batch in batches:
        if framework == "torch":   # a PyTorch step updates its model in place
            run = models.MODELS[model](batch)
            step, state, sync = (lambda state, run=run: run()), None, (lambda state: state)
        else:
            step, state = models.MODELS[model](batch) if hasattr(models, "MODELS") else \
                getattr(models, f"{model}_step")(batch)
        if framework == "fjit":   # one jitted step, called at each batch size in turn, as a
            step = first_step = first_step or step   # user's training loop would
        row = {"batch": batch}
        start = time.perf_counter()
        if framework == "fjit":
            step.trace(state)
            row["trace"] = time.perf_counter() - start
        state = sync(step(state))
        row["first"] = time.perf_counter() - start
        if framework == "fjit":
            # tiered compilation: the next step runs the quick (-O1) code while the -O3
            # library builds in the background; then wait for it before timing steps
            t = time.perf_counter()
            state = sync(step(state))
            row["quick_step"] = time.perf_counter() - t
            fjit.block_until_compiled()
            row["optimized"] = time.perf_counter() - start
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            state = sync(step(state))
            times.append(time.perf_counter() - t)
        row["step"] = statistics.median(times) if times else None
        row["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # bytes
        if framework == "fjit":
            executable = step._lookup((state,), {})[0].executable
            row.update({k: getattr(executable, "timings", {}).get(k)
                        for k in ("lower", "render", "load")})
            row.update(getattr(executable, "stats", {}))
            row["cache"] = executable.cache_state
        results.append(row)
    print(json.dumps(results))


def launch(framework, model, batches, steps, cache_dir):
    env = dict(os.environ, FJIT_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", framework,
                          "--models", model, "--batches", ",".join(map(str, batches)),
                          "--steps", str(steps)],
                         capture_output=True, text=True, cwd=HERE, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} {model} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(label, row):
    parts = [f"{label:>6} b{row['batch']:<3} first call {row['first']:7.2f} s"]
    if "trace" in row and row.get("lower") is None:   # an fjit that does not say
        parts.append(f"(trace {row['trace']:.2f}, cache {row['cache']})")
    elif "trace" in row:
        build = row.get("load") or 0.0
        rest = row["first"] - row["trace"] - (row.get("lower") or 0) - \
            (row.get("render") or 0) - build
        parts.append(f"(trace {row['trace']:.2f}, lower {row['lower']:.2f}, render "
                     f"{row['render']:.2f}, build {build:.2f}, rest {rest:.2f}; "
                     f"{row.get('kernels')} kernels, {row.get('functions')} functions, "
                     f"{row.get('units')} units, cache {row['cache']})")
    if row.get("step") is not None:
        parts.append(f"step {row['step'] * 1e3:.1f} ms")
    if row.get("rss") is not None:
        parts.append(f"peak RSS {row['rss'] / 1e9:.2f} GB")
    if row.get("quick_step") is not None and "quick" in str(row.get("cache")):
        parts.append(f"(on the quick tier {row['quick_step'] * 1e3:.1f} ms; -O3 code "
                     f"running {row['optimized']:.2f} s after the first call began)")
    return "  ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,lsgan,resnet50")
    parser.add_argument("--batches", default="8")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frameworks", default="fjit,jax,torch")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        child(args.child, args.models, batches, args.steps)
        return
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} CPUs")
    for model in args.models.split(","):
        print(model)
        for framework in args.frameworks.split(","):
            if framework != "fjit" and importlib.util.find_spec(framework) is None:
                print(f"  {framework}: not installed")
                continue
            with tempfile.TemporaryDirectory() as cache_dir:
                for label in (["cold", "warm"] if framework == "fjit" else [framework]):
                    for row in launch(framework, model, batches, args.steps, cache_dir):
                        print("  " + describe(label, row), flush=True)


if __name__ == "__main__":
    main()
