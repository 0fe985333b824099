"""Bounded memory: a jitted function keeps at most `jit_cache_size` specialisations and the
process at most `library_cache_size` libraries nobody uses; what is dropped is unloaded
(counted in /proc/self/maps), without waiting for a garbage collection."""
import gc

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.compiler import cache
from fjit.compiler.targets.c import executable as backend

pytestmark = pytest.mark.c_backend


@pytest.fixture
def small_bounds(tmp_path, monkeypatch, set_option):
    path = tmp_path / "cache"
    set_option("cache_dir", str(path))
    monkeypatch.setattr(cache, "_resolved", {}, raising=False)
    saved = fjit.config.jit_cache_size, fjit.config.library_cache_size
    fjit.config.update("jit_cache_size", 8)
    fjit.config.update("library_cache_size", 4)
    yield str(path)
    fjit.config.update("jit_cache_size", saved[0])
    fjit.config.update("library_cache_size", saved[1])


def _mapped_libraries(directory):
    with open("/proc/self/maps") as f:
        return {line.split()[5] for line in f
                if len(line.split()) >= 6 and line.split()[5].startswith(directory)}


def test_many_specialisations_keep_a_bounded_number_of_libraries_mapped(small_bounds):
    # a new exponent is new code (a new size would not be: sizes share a library)
    f = fjit.jit(lambda x, k: jnp.tanh(x) * 2.5 + x ** k, static_argnums=1)
    counts = []
    gc.disable()  # released when dropped, not when a collection happens to run
    try:
        for n in range(1, 25):
            out = np.asarray(f(np.full(3, 0.5, np.float32), n))
            np.testing.assert_allclose(out, np.tanh(np.float32(0.5)) * 2.5 + 0.5 ** n,
                                       rtol=1e-6)
            counts.append(len(_mapped_libraries(small_bounds)))
    finally:
        gc.enable()
    assert f._cache_size() == 8
    assert len(backend._loaded_libraries) <= 4
    assert max(counts) <= 8 and counts[-1] == 8, counts


def test_least_recently_used_specialisation_is_dropped_and_comes_back(small_bounds):
    traces = []

    def fn(x):
        traces.append(x.shape)
        return x * 3.0 - 0.5

    f = fjit.jit(fn)
    for n in range(1, 9):
        f(np.ones(n, np.float32))
    f(np.ones(1, np.float32))  # a hit: (1,) is now the most recently used
    f(np.ones(9, np.float32))  # one too many: (2,) goes, not (1,)
    assert len(traces) == 9
    f(np.ones(1, np.float32))
    assert len(traces) == 9
    again = np.asarray(f(np.full(2, 2.0, np.float32)))  # traced again, its library reloaded
    assert len(traces) == 10 and again.tolist() == [5.5, 5.5]


def test_library_shared_by_two_executables_stays_loaded_while_either_lives(small_bounds):
    program = fjit.make_program(lambda x: x * 7.0 + 0.125)(np.ones(3, np.float32))
    first = backend.CExecutable(program)
    second = backend.CExecutable(program)
    assert second.library is first.library
    fjit.config.update("library_cache_size", 1)
    for k in range(2):  # push it out of the table
        backend.CExecutable(fjit.make_program(lambda x: x - (k + 0.75))(np.ones(2, np.float32)))
    assert first.key not in backend._loaded_libraries
    path = cache.entry_path(small_bounds, first.key)
    del first
    assert path in _mapped_libraries(small_bounds)
    assert second([np.ones(3, np.float32)])[0].tolist() == [7.125] * 3
    del second
    assert path not in _mapped_libraries(small_bounds)


def test_unloading_libraries_that_ran_openmp_threads_is_safe(tmp_path):
    """Kernel libraries whose parallel loops ran on OpenMP workers are unloaded while those
    workers live on (libgomp itself stays loaded); the process computes on and exits
    cleanly."""
    import os
    import subprocess
    import sys
    import textwrap
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = textwrap.dedent("""
        import numpy as np, fjit, fjit.numpy as jnp
        f = fjit.jit(lambda x: jnp.tanh(x) * 2 + jnp.sum(x, axis=1, keepdims=True))
        assert all(k.parallel for k in f.lower(np.ones((512, 1024), np.float32)).kernels())
        for n in range(512, 520):
            y = np.asarray(f(np.ones((n, 1024), np.float32)))
            assert np.allclose(y, np.tanh(1.0) * 2 + 1024)
        maps = {l.split()[5] for l in open("/proc/self/maps") if l.split()[5:] and
                l.split()[5].startswith(%r)}
        print(len(maps))
    """ % str(tmp_path))
    env = dict(os.environ, FJIT_CACHE_DIR=str(tmp_path), FJIT_JIT_CACHE_SIZE="2",
               FJIT_LIBRARY_CACHE_SIZE="1", OMP_NUM_THREADS="2", PYTHONPATH=root)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) <= 2
