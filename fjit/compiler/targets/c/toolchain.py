"""The system C compiler: which one, with which flags, and what it can do on this machine.

Probed once per process (and remembered in the cache directory per compiler version):
whether OpenMP works, whether glibc's vector math library (libmvec) can be called from
`omp simd` loops, and what -march=native resolves to (part of every cache key, so a cache
shared between different CPUs never hands out code for the wrong one).
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from ....config import config
from ...cache import BuildError, cache_dir, write_atomically

# libm functions glibc (2.35+) provides SIMD variants of
VECTOR_FUNCTIONS = ["exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "asin",
                    "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "cbrt"]

# -ffp-contract=off: no a*b+c fused into one FMA behind our back.  A contraction rounds once
# where the Program rounds twice, so results would depend on which equations fusion put in
# one kernel (and differ from the reference interpreter); the GEMM kernels use FMA on purpose.
# -fno-thread-jumps -fno-tree-sink (gcc only): fjit writes every load unconditionally; these
# two passes move a load under a condition, if-conversion then makes it a masked load, and
# gcc 12.2 vectorises masked loads in a loop whose small inner loop it unrolled completely
# into wrong code (`x.at[idx].set(v)` on a [4, 3, 1] array kept 0 instead of x at unindexed
# rows; found by the fuzzer, tests/test_fuzz_regressions.py).
GCC_FLAGS = ["-fno-thread-jumps", "-fno-tree-sink"]
BASE_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-ffp-contract=off", "-fwrapv",
              "-fno-strict-aliasing", *GCC_FLAGS, "-shared", "-fPIC", "-std=gnu11", "-w"]


class Toolchain:
    can_unload = False  # may kernel libraries be dlclosed? (decided when probed)

    def __init__(self, cc, version, flags, libs, vector_math, march, niceness=0):
        self.cc, self.version, self.flags, self.libs = cc, version, flags, libs
        self.vector_math, self.march = vector_math, march
        self.niceness = niceness   # added to the compiler processes' nice value

    def _variant(self, flags, niceness):
        tc = Toolchain(self.cc, self.version, flags, self.libs, self.vector_math, self.march,
                       niceness)
        tc.can_unload = self.can_unload
        return tc

    def quick(self) -> "Toolchain":
        """The first tier of tiered compilation: every -O level (fjit's -O3, or one in the
        `cflags` option) replaced by -O1.  It builds a large Program in about half the time
        (ResNet-18's step: 4.5 s of compiler time instead of 9.9) into slower code.  The
        units of kernels whose results depend on vectorisation (libm calls, `omp simd`
        reductions) are compiled with this toolchain's own flags instead (`unit_flags`):
        elsewhere no flag fjit passes lets the compiler reassociate or contract floating
        point, so both tiers compute the same bits (tests/test_tiered.py)."""
        return self._variant(["-O1" if re.fullmatch(r"-O\w*", f) else f for f in self.flags],
                             self.niceness)

    @property
    def compile_flags(self) -> list:
        """The flags that compile one unit to an object (no -shared)."""
        return [f for f in self.flags if f != "-shared"]

    def background(self) -> "Toolchain":
        """The same flags, compiling at a lower priority: the optimised tier is built while
        the program runs on the quick one, and should not take its cores."""
        return self._variant(self.flags, 10)

    @property
    def key(self) -> str:
        """What, besides the source, decides the built code."""
        return "\n".join([self.cc, self.version, " ".join(self.flags), " ".join(self.libs),
                          self.march])

    @property
    def jobs(self) -> int:
        """Compiler processes a build may run at once: the cores this process may use."""
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)

    def compile(self, source_paths, output_path, unit_flags=None):
        """Build the shared library `output_path` from one translation unit (one compiler
        call) or several (each compiled to an object at once, in parallel, then linked);
        `unit_flags`, per unit, are flags that compile it instead of this toolchain's
        (None: this toolchain's)."""
        if isinstance(source_paths, str):
            source_paths = [source_paths]
        own = list(unit_flags or [None] * len(source_paths))
        if len(source_paths) == 1 and own[0] is None:
            self._run(self._command(*self.flags, source_paths[0], "-o", output_path,
                                    *self.libs))
            return
        objects = [path[:-len(".c")] + ".o" for path in source_paths]
        failures, waiting, running = [], list(zip(source_paths, objects, own)), []
        try:
            while waiting or running:   # at most `jobs` compilers at once
                while waiting and len(running) < self.jobs:
                    src, obj, flags = waiting.pop(0)
                    running.append((self._start(self._command(
                        *(self.compile_flags if flags is None else flags), "-c", src, "-o",
                        obj), stdout=subprocess.DEVNULL), src))
                process, src = running.pop(0)
                stderr = self._finish(process)
                if process.returncode != 0:
                    failures.append(f"{self.cc} -c {src}:\n{stderr[-4000:]}")
            if failures:
                raise CompileError("the C compiler failed:\n" + "\n".join(failures))
            self._run(self._command(*self.flags, *objects, "-o", output_path, *self.libs))
        finally:
            for process, _ in running:   # an error left some running: stop them first
                _kill(process)
                self._finish(process)
            for obj in objects:
                try:
                    os.unlink(obj)
                except OSError:
                    pass


    def _command(self, *args) -> list:
        """The compiler's command line, run through nice(1) when this toolchain compiles at
        a lower priority (not with preexec_fn, which may deadlock a threaded process)."""
        nice = shutil.which("nice") if self.niceness else None
        return ([nice, "-n", str(self.niceness)] if nice else []) + [self.cc, *args]


    def _start(self, cmd, stdout=subprocess.PIPE):
        """A compiler process; a background build's in a process group of its own (so that
        the whole group, cc1 included, can be stopped at exit), registered as it starts.
        Not a session of its own: with the kernel's autogroup scheduling a new session
        shares the CPU equally with this process whatever its nice value, and ResNet-18's
        steps on the quick tier ran 3 times slower beside the background build."""
        if not self.niceness:
            return subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
        group = {"process_group": 0} if sys.version_info >= (3, 11) else {}
        with _background_lock:
            if _stopping:
                raise CompileError("Python is exiting: no more background builds")
            process = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                       **group)
            _background_compilers.add(process)
        return process

    def _finish(self, process) -> str:
        """Wait for a compiler process; its error output."""
        try:
            return process.communicate()[1]
        finally:
            with _background_lock:
                _background_compilers.discard(process)

    def _run(self, cmd):
        process = self._start(cmd)
        stderr = self._finish(process)
        if process.returncode != 0:
            raise CompileError(f"the C compiler failed ({' '.join(cmd)}):\n{stderr[-4000:]}")


# Compiler processes of background builds, stopped when Python exits: the build's thread
# dies with the process, and nothing would take their output.
_background_compilers: set = set()
_background_lock = threading.Lock()
_stopping = False


@atexit.register
def _stop_background_compilers():
    global _stopping
    with _background_lock:
        _stopping = True
        for process in _background_compilers:
            _kill(process)


def exiting() -> bool:
    """Has Python begun to exit (and stopped the background compilers)?"""
    return _stopping


def _kill(process):
    """Stop a compiler and what it started (gcc's cc1 and as)."""
    try:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    except (OSError, AttributeError):   # not a group of its own, or gone
        try:
            process.kill()
        except OSError:
            pass


class CompileError(BuildError):
    """The generated C did not compile: a bug in fjit (the message has the compiler's)."""


def find_compiler(preferred: str | None = None) -> str | None:
    """`preferred` (default: the `cc` option) if it is on the PATH, else the first of cc, gcc,
    clang that is."""
    for name in (config.cc if preferred is None else preferred, "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def toolchain() -> Toolchain | None:
    """The probed toolchain (for the current `cflags` option), or None if there is no working
    C compiler."""
    return _toolchain(config.cflags, config.cc)


@functools.lru_cache(maxsize=None)
def _toolchain(cflags: str, preferred_cc: str) -> Toolchain | None:
    cc = find_compiler(preferred_cc)
    if cc is None:
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
    clang = "clang" in version.lower()
    flags = [f for f in BASE_FLAGS if not (clang and f in GCC_FLAGS)] + cflags.split()
    probe = _probe(cc, version, flags)
    if probe is None:
        return None
    if not probe["openmp"]:
        flags = [f for f in flags if f != "-fopenmp"]
    libs = (["-lmvec"] if probe["vector_math"] else []) + ["-lm"]
    pinned = _load_openmp_runtime() or "-fopenmp" not in flags
    if probe["vector_math"]:
        _keep_loaded("libmvec.so.1")  # not loaded and unloaded with every kernel library
    tc = Toolchain(cc, version, flags, libs, probe["vector_math"], probe["march"])
    # Kernel libraries may be unloaded when no executable uses them any more only if the
    # OpenMP runtime their threads live in stays: gcc's libgomp, pinned above.  (clang's
    # -fopenmp links libomp, which is not pinned: its libraries stay loaded.)
    tc.can_unload = pinned and ("clang" not in version.lower() or "-fopenmp" not in flags)
    return tc


_PROBE_SOURCE = """
#include <math.h>
#include <stdint.h>
%s
float probe(const float *x, int64_t n) {
  float s = 0;
  #pragma omp simd reduction(+:s)
  for (int64_t i = 0; i < n; i++) s += %s;
  return s;
}
"""


def _probe(cc, version, flags) -> dict | None:
    key = hashlib.sha256((cc + version + " ".join(flags)).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"toolchain-{key}.json")
    remembered = read_probe(path)
    if remembered is not None:
        return remembered
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")

        def builds(use_flags, decls, expr, libs):
            with open(src, "w") as f:
                f.write(_PROBE_SOURCE % (decls, expr))
            cmd = [cc, *use_flags, src, "-o", os.path.join(tmp, "probe.so"), *libs]
            return subprocess.run(cmd, capture_output=True).returncode == 0

        openmp = builds(flags, "", "x[i]", ["-lm"])
        if not openmp:
            flags = [f for f in flags if f != "-fopenmp"]
            if not builds(flags, "", "x[i]", ["-lm"]):
                return None
        decls = "\n".join(f"#pragma omp declare simd notinbranch\nextern float {f}f(float);"
                          for f in VECTOR_FUNCTIONS)
        calls = " + ".join(f"{f}f(x[i])" for f in VECTOR_FUNCTIONS)
        vector_math = openmp and builds(flags, decls, calls, ["-lmvec", "-lm"]) and _loads(
            os.path.join(tmp, "probe.so"))
        march = subprocess.run([cc, "-march=native", "-Q", "--help=target"],
                               capture_output=True, text=True).stdout
        march = next((line.split()[-1] for line in march.splitlines()
                      if line.strip().startswith("-march=")), "native")
    result = {"openmp": openmp, "vector_math": bool(vector_math), "march": march}
    write_atomically(path, json.dumps(result).encode())
    return result


def read_probe(path) -> dict | None:
    """What an earlier process found, if the file holds exactly that (anything else -- `{}`,
    `null`, garbage, a wrong type -- is ignored: the compiler is probed again)."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(4096))
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and set(data) == {"openmp", "vector_math", "march"}
            and type(data["openmp"]) is bool and type(data["vector_math"]) is bool
            and isinstance(data["march"], str)
            and _MARCH.fullmatch(data["march"]) is not None):
        return None
    if data["vector_math"] and not data["openmp"]:
        return None
    return data


_MARCH = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


def _loads(path) -> bool:
    try:
        ctypes.CDLL(path)
        return True
    except OSError:
        return False


_openmp_runtime = []


def _load_openmp_runtime():
    """Load libgomp once, globally, and keep it: a kernel library loaded later then shares it,
    and it is never unloaded under live worker threads (that crashes at exit)."""
    if _openmp_runtime:
        return True
    # Idle OpenMP workers spin briefly, then sleep: long enough to catch the next kernel of
    # the same Program (fully passive workers cost an MLP step 2.0 ms instead of 1.4 ms), not
    # so long that they starve other threads: BLAS's own (the default 300k iterations next
    # to OpenBLAS made that step 54 ms) or another process's (two MLP trainings side by side
    # on 2 cores took 17 s each spinning 30k iterations, 1.0 s at 1000; alone 0.3 s and
    # 0.4 s).  The user's settings win.
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    for name in ("libgomp.so.1", "libgomp.so"):
        if _keep_loaded(name):
            _openmp_runtime.append(name)
            return True
    return False


_kept = []


def _keep_loaded(name) -> bool:
    """Load a shared library globally and never unload it."""
    try:
        _kept.append(ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL))
        return True
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def vector_bytes(cc: str) -> int:
    """The widest SIMD register -march=native gives `cc` (bytes), from its predefined macros:
    what an `omp simd` loop's vector holds, for lower().explain()."""
    try:
        macros = subprocess.run([cc, "-march=native", "-dM", "-E", "-x", "c", os.devnull],
                                capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 16
    for macro, width in (("__AVX512F__", 64), ("__AVX__", 32), ("__SSE2__", 16),
                         ("__ARM_NEON", 16)):
        if f"#define {macro} " in macros:
            return width
    return 8
