"""W9: the first call (trace + compile + one run) of W4's training step, each in a new process.

    python bench/first_call.py --launches 3          # or: python bench/run.py --workloads W9

- cold: nothing on disk.  fjit gets a fresh, empty FJIT_CACHE_DIR per launch; JAX runs
  without a persistent compilation cache.
- warm: the disk cache was filled by an earlier process.  fjit reuses one FJIT_CACHE_DIR that
  a priming launch filled; JAX enables its persistent compilation cache in a temporary
  directory (jax_compilation_cache_dir, with jax_persistent_cache_min_compile_time_secs and
  jax_persistent_cache_min_entry_size_bytes at 0) that a priming launch filled.
- PyTorch eager has no compile step: its "cold" number is the first eager step (autograd
  and allocator warm-up included) and it has no warm number.

Imports and input set-up are not timed.  Launches are interleaved across frameworks; the
medians are printed, with the second call (same process, cold launches) for comparison.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ["fjit", "jax", "torch"]
JAX_CACHE_ENV = "BENCH_JAX_CACHE_DIR"   # set by the parent: enable JAX's persistent cache here


def child(framework):
    """In a fresh process: time the first and the second call of W4's step."""
    if framework == "jax" and os.environ.get(JAX_CACHE_ENV):
        import jax
        jax.config.update("jax_compilation_cache_dir", os.environ[JAX_CACHE_ENV])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    else:
        __import__(framework)
    sys.path.insert(0, HERE)
    from workloads import w4_mlp_sgd_step
    step = w4_mlp_sgd_step(framework)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    start = time.perf_counter()
    step()
    second = time.perf_counter() - start
    print(json.dumps({"first": first, "second": second}))


def launch(framework, env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("FJIT_CACHE_DIR", JAX_CACHE_ENV, "JAX_COMPILATION_CACHE_DIR")}
    env.update(env_changes)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", framework],
                         capture_output=True, text=True, cwd=HERE, env=env, check=False)
    if out.returncode != 0:
        print(f"# W9 {framework} failed:\n{out.stderr}", file=sys.stderr)
        return {"first": math.nan, "second": math.nan}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(frameworks, launches=3):
    """{(framework, "cold" | "warm" | "second"): [seconds per launch]}."""
    times = {}
    with tempfile.TemporaryDirectory(prefix="fjit-w9-") as tmp:
        warm_env = {"fjit": {"FJIT_CACHE_DIR": os.path.join(tmp, "fjit-warm")},
                    "jax": {JAX_CACHE_ENV: os.path.join(tmp, "jax-warm")}}
        for f in frameworks:                      # priming launches fill the warm caches
            if f in warm_env:
                launch(f, warm_env[f])
        for r in range(launches):
            for f in frameworks:
                cold_env = {"FJIT_CACHE_DIR": os.path.join(tmp, f"fjit-cold-{r}")} \
                    if f == "fjit" else {}
                t = launch(f, cold_env)
                times.setdefault((f, "cold"), []).append(t["first"])
                times.setdefault((f, "second"), []).append(t["second"])
                if f in warm_env:
                    times.setdefault((f, "warm"), []).append(launch(f, warm_env[f])["first"])
    return times


def report(times, frameworks, launches):
    med = {k: statistics.median(v) for k, v in times.items()}

    def cell(key, scale=1.0, unit=" s", spec="10.3f"):
        if key not in med:
            return f"{'n/a':>12}"
        return f"{'failed':>12}" if math.isnan(med[key]) else f"{med[key] * scale:{spec}}{unit}"

    lines = [f"W9 first call of W4's step: median of {launches} new processes "
             "(imports not timed)",
             f"{'framework':10}{'cold':>12}{'warm':>12}{'2nd call':>12}"]
    for f in frameworks:
        note = "   (eager: no compile step; cold = first eager step)" if f == "torch" else ""
        lines.append(f"{f:10}{cell((f, 'cold'))}{cell((f, 'warm'))}"
                     f"{cell((f, 'second'), 1e3, ' ms', '9.2f')}{note}")
    if "fjit" in frameworks and "jax" in frameworks:
        lines.append(f"{'fjit/jax':10}" + "".join(
            f"{med[('fjit', k)] / med[('jax', k)]:12.2f}" for k in ("cold", "warm")))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    frameworks = [f for f in args.frameworks.split(",") if f in FRAMEWORKS]
    print(report(measure(frameworks, args.launches), frameworks, args.launches))


if __name__ == "__main__":
    main()
