"""A few compiled-backend test modules rerun with every kernel built under AddressSanitizer
and UndefinedBehaviorSanitizer: an out-of-bounds index, a use of freed memory or an integer
division by zero in generated C fails here instead of corrupting a result somewhere else.

The kernels are built at -O1 with `-fsanitize=address,undefined` (through FJIT_CFLAGS, so
the toolchain's cache key separates them from ordinary builds) and libasan is preloaded
into the child Python, as a library built with ASan needs the runtime loaded first.
"""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.c_backend

HERE = os.path.dirname(os.path.abspath(__file__))

# Small and quick under the sanitizers (about a minute on 2 cores with a cold cache), and
# between them they cover every code path of the generated C: fused element-wise and
# reduction kernels, GEMM calls and producers, native loops, cond and size-0 edge cases.
MODULES = ["test_compiler_loops.py", "test_compiler_producers.py",
           "test_compiler_regressions.py", "test_semantics.py"]

SANITIZE_FLAGS = "-O1 -fno-omit-frame-pointer -fsanitize=address,undefined " \
                 "-fno-sanitize-recover=all"


def _runtime(name):
    from fjit.compiler.targets.c.toolchain import find_compiler
    cc = find_compiler()
    if cc is None:
        return None
    out = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True)
    path = out.stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


def test_compiled_kernels_are_clean_under_asan_and_ubsan(tmp_path):
    libasan = _runtime("libasan.so")
    if libasan is None:
        pytest.skip("the C compiler has no AddressSanitizer runtime (libasan.so)")
    modules = [os.path.join(HERE, m) for m in MODULES if os.path.exists(os.path.join(HERE, m))]
    cache = os.environ.get("FJIT_SANITIZER_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "fjit-sanitizers")
    env = dict(os.environ,
               FJIT_CFLAGS=SANITIZE_FLAGS, FJIT_CACHE_DIR=cache, FJIT_TEST_BACKENDS="c",
               LD_PRELOAD=libasan,
               # Python itself "leaks" by design at exit; UBSan findings abort the child.
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=86",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-x", "-p", "no:cacheprovider",
         *modules],
        env=env, cwd=os.path.dirname(HERE), capture_output=True, text=True, timeout=900)
    report = (result.stdout + result.stderr)[-6000:]
    assert "runtime error" not in report and "AddressSanitizer" not in report, report
    assert result.returncode == 0, report
    passed = re.search(r"(\d+) passed", report)
    assert passed and int(passed.group(1)) > 50, report  # the modules really ran
