"""STREAM triad bandwidth of this machine: a[i] = b[i] + s*c[i] over three float32 arrays of
16M elements (64 MB each).

Builds stream_triad.c with `gcc -O3 -march=native -fopenmp` in a temporary directory and runs
it with 1 and 2 OpenMP threads; GB/s counts 3 x 64 MB per pass (STREAM's convention, no
write-allocate traffic), best of 20 passes.  Without gcc it falls back to NumPy
(`np.multiply(c, s, out=a); a += b`, counted as the 5 x 64 MB those two passes move).

    python bench/stream.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N = 1 << 24


def triad_c(threads=(1, 2)):
    """{"C, 1 thread": GB/s, ...}, or None when gcc is missing or the build fails."""
    cc = shutil.which("gcc")
    if cc is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "stream_triad")
        build = subprocess.run([cc, "-O3", "-march=native", "-fopenmp",
                                os.path.join(HERE, "stream_triad.c"), "-o", exe],
                               capture_output=True, text=True, check=False)
        if build.returncode != 0:
            print(f"# stream_triad.c did not build:\n{build.stderr}", file=sys.stderr)
            return None
        results = {}
        for t in threads:
            out = subprocess.run([exe, str(N)], capture_output=True, text=True, check=True,
                                 env={**os.environ, "OMP_NUM_THREADS": str(t)})
            results[f"C, {t} thread{'s' if t > 1 else ''}"] = float(out.stdout)
        return results


def triad_numpy(reps=10):
    import numpy as np
    b, c = np.ones(N, np.float32), np.full(N, 2.0, np.float32)
    a, s = np.zeros(N, np.float32), np.float32(3.0)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        np.multiply(c, s, out=a)
        a += b
        best = min(best, time.perf_counter() - start)
    return {"NumPy, 1 thread": 5 * 4 * N / best / 1e9}


def triad():
    """{label: GB/s}; the C program's numbers where gcc works, else NumPy's."""
    return triad_c() or triad_numpy()


if __name__ == "__main__":
    for label, gbs in triad().items():
        print(f"triad ({label}): {gbs:.1f} GB/s")
