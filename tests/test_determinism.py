"""Determinism: results never depend on what ran before, on other Python threads, on the
number of OpenMP threads or on Python's hash seed.

Threads: users call fjit from several Python threads (the native call releases the GIL), so
each test below runs the same work serially and from threads started together, with a tiny
switch interval to interleave them often, and compares every result.  Repeatability: the
same Program run twice is bitwise equal; across OpenMP thread counts (subprocesses) results
agree with NumPy within tolerance and every output element is written.
"""
import json
import os
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit import nn
from fjit.runtime import eager
from fjit.runtime import sharing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def interleaved():
    """Switch Python threads every microsecond while the test runs."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def in_threads(work, items, threads=4):
    """work(item) for every item, spread over `threads` threads started together; the
    results in item order.  An exception in any thread is raised here."""
    results, errors = [None] * len(items), []
    barrier = threading.Barrier(threads)

    def run(t):
        try:
            barrier.wait()
            for k in range(t, len(items), threads):
                results[k] = work(items[k])
        except BaseException as e:  # noqa: B036 -- re-raised in the main thread
            errors.append(e)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return results


def assert_same(serial, threaded):
    for want, got in zip(serial, threaded):
        for w, g in zip(want, got):
            w, g = np.asarray(w), np.asarray(g)
            assert w.dtype == g.dtype and w.shape == g.shape
            np.testing.assert_array_equal(g, w)


def int_rows(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-5, 6, size=(1 + seed % 4, 1 + seed % 7)).astype(np.int32)


# --- threads ----------------------------------------------------------------------------------

def test_threads_call_one_jitted_function_on_different_shapes(interleaved):
    """The conformance check that once failed under load: vmap of (sum(r), r > 0) over int32
    rows, one jitted function called from 4 threads with 24 shapes."""
    f = fjit.jit(fjit.vmap(lambda r: (jnp.sum(r), r > 0)))
    items = [int_rows(k) for k in range(24)]
    serial = [f(x) for x in items]
    for x, (s, p) in zip(items, serial):
        np.testing.assert_array_equal(np.asarray(s), x.sum(axis=1, dtype=np.int32))
        np.testing.assert_array_equal(np.asarray(p), x > 0)
    assert_same(serial, in_threads(f, items))


def test_threads_trace_and_compile_different_functions(interleaved):
    """Each item is a new function (a new trace and Program); its result equals NumPy's."""
    def work(k):
        c = np.float32(0.25 * k)
        x = np.linspace(-1, 1, 5 + k, dtype=np.float32)
        out = fjit.jit(lambda x: jnp.tanh(x * c) + jnp.sum(x) * c)(x)
        np.testing.assert_allclose(np.asarray(out), np.tanh(x * c) + x.sum() * c,
                                   rtol=1e-5, atol=1e-5)
        return (out,)
    in_threads(work, list(range(12)))


def test_threads_run_eager_ops_and_eager_scans(interleaved):
    """Eager scans share executables between equal bodies (runtime/sharing.py); threads
    run eager scans, while_loops and element-wise ops at once."""
    def work(k):
        xs = np.arange(4 + k % 3, dtype=np.float32) + k
        carry, ys = lax.scan(lambda c, x: (c * 0.5 + x, c + 1), np.float32(k), xs)
        n = lax.while_loop(lambda v: v < 3 * k + 1, lambda v: v + 1, np.int32(0))
        e = jnp.exp(jnp.asarray(xs) / 10) * 2 - 1
        return carry, ys, n, e
    items = list(range(16))
    serial = [work(k) for k in items]
    for k, (carry, ys, n, e) in zip(items, serial):
        c, ref = np.float32(k), []
        for x in np.arange(4 + k % 3, dtype=np.float32) + k:
            ref.append(c + 1)
            c = c * np.float32(0.5) + x
        np.testing.assert_allclose(np.asarray(carry), c, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(ys), ref, rtol=1e-6)
        assert int(n) == 3 * k + 1
    assert_same(serial, in_threads(work, items))


def test_threads_take_grad_and_vmap(interleaved):
    def work(k):
        x = np.linspace(-1, 1, 3 + k % 5, dtype=np.float32) + k
        g = fjit.grad(lambda x: jnp.sum(jnp.sin(x) * k))(x)
        rows = np.outer(x, np.arange(1, 4, dtype=np.float32))
        gv = fjit.jit(fjit.vmap(fjit.grad(lambda r: jnp.sum(r ** 2) * k)))(rows)
        return g, gv
    items = list(range(12))
    serial = [work(k) for k in items]
    for k, (g, gv) in zip(items, serial):
        x = np.linspace(-1, 1, 3 + k % 5, dtype=np.float32) + k
        np.testing.assert_allclose(np.asarray(g), np.cos(x) * k, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(gv), 2 * k * np.outer(x, [1, 2, 3]), rtol=1e-5)
    assert_same(serial, in_threads(work, items))


class _EvictingTable(sharing.OrderedDict):
    """The sharing table, with another thread's lookup of a different Program (which evicts
    every entry when only one is kept) run in the middle of each successful lookup."""

    other = None

    def get(self, key, default=None):
        found = super().get(key, default)
        if found is not None and self.other is not None:
            other, self.other = self.other, None
            t = threading.Thread(target=sharing.shared, args=(other,))
            t.start()
            t.join(timeout=0.2)  # with the table locked it waits; it finishes below
            self.join = t
        return found


def test_shared_program_lookup_survives_a_concurrent_eviction(monkeypatch):
    """A lookup that found its Program while another thread evicted it raised KeyError
    (move_to_end of a missing key)."""
    table = _EvictingTable()
    monkeypatch.setattr(sharing, "_shared", table)
    monkeypatch.setattr(sharing, "MAX_SHARED", 1)
    one = fjit.make_program(lambda x: x * 2.0)(np.float32(1))
    two = fjit.make_program(lambda x: x * 3.0)(np.float32(1))
    assert sharing.shared(one) is one
    table.other = two
    again = fjit.make_program(lambda x: x * 2.0)(np.float32(1))
    assert sharing.shared(again) is one
    table.join.join()
    assert sharing.shared(two) is two and len(table) == 1


def test_threads_building_one_transformation_share_the_first_result():
    """Program.cached computed in two threads at once (another thread's compute finishes
    while this one's runs): both get the same object, so both run one sub-Program and
    its executables instead of two equal ones."""
    program = fjit.make_program(lambda x: x * 2.0)(np.float32(1))
    other, calls = [], []

    def compute():
        calls.append(1)
        if len(calls) == 1:  # the first compute lets another thread finish the same key
            t = threading.Thread(target=lambda: other.append(program.cached("k", compute)))
            t.start()
            t.join()
        return object()

    assert program.cached("k", compute) is other[0] is program.cached("k", compute)


# --- order independence -----------------------------------------------------------------------

def test_eager_results_do_not_depend_on_which_ops_ran_before():
    """The eager abstract-eval memo is keyed by params that compare equal across types
    (1 == 1.0 == True, -0.0 == 0.0): each op gives the same dtype, weak type and bits after
    any other op as it does first."""
    xi, xf = jnp.arange(3, dtype=np.int32), jnp.ones(2, np.float32)
    cases = [lambda: jnp.pad(xi, 1, constant_values=1),
             lambda: jnp.pad(xi, 1, constant_values=1.0),
             lambda: jnp.pad(xi, 1, constant_values=True),
             lambda: jnp.pad(xf, 1, constant_values=-0.0),
             lambda: jnp.pad(xf, 1, constant_values=0.0), lambda: xi.at[0].set(1.0),
             lambda: xi.at[0].set(True), lambda: jnp.full(2, 1.0), lambda: jnp.full(2, 1),
             lambda: jnp.full(2, True), lambda: xf * -0.0, lambda: xf * 0.0,
             lambda: jnp.clip(xi, 0.0, 1), lambda: jnp.clip(xi, 0, 1), lambda: xi * 1.0,
             lambda: xi * 1, lambda: xi * True]

    def signature(r):
        return r.dtype, r.weak_type, np.asarray(r).tobytes()

    eager._avals_cache.clear()
    fresh = []
    for case in cases:
        eager._avals_cache.clear()
        fresh.append(signature(case()))
    for order in (cases, cases[::-1]):
        eager._avals_cache.clear()
        after = {id(c): signature(c()) for c in order}
        assert [after[id(c)] for c in cases] == fresh


@pytest.mark.c_backend
def test_compiled_signed_zero_constants_are_not_merged_with_zero():
    """x * -0.0 is -0.0 for positive x and max(-1, -0.0) is -0.0, also when a Program with
    the constant 0.0 was compiled before (or in the same Program)."""
    x = np.ones(3, np.float32)
    fjit.jit(lambda x: jnp.maximum(x * 2.0 - 3.0, 0.0))(x)
    assert np.signbit(np.asarray(fjit.jit(lambda x: jnp.maximum(x * 2.0 - 3.0, -0.0))(x))).all()
    zero, negative = fjit.jit(lambda x: (x * 0.0, x * -0.0))(x)
    assert not np.signbit(np.asarray(zero)).any() and np.signbit(np.asarray(negative)).all()
    plus, minus = fjit.jit(lambda x: (jnp.pad(x, 1, constant_values=0.0),
                                      jnp.pad(x, 1, constant_values=-0.0)))(x)
    assert not np.signbit(np.asarray(plus)).any()
    assert np.signbit(np.asarray(minus)[[0, -1]]).all()


class _PoisonedNumpy(types.ModuleType):
    """NumPy, except that `empty` fills its memory with the byte 0xA5."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, *args, **kwargs):
        out = np.empty(shape, dtype, *args, **kwargs)
        out.reshape(-1).view(np.uint8)[:] = 0xA5
        return out


@pytest.mark.c_backend
def test_compiled_programs_write_every_output_element(monkeypatch):
    """Outputs and workspaces are uninitialised memory (np.empty, or recycled pool blocks):
    an element a kernel skipped would show whatever ran before, so results would depend on
    history and load.  With that memory poisoned, vmap of (sum(r), r > 0) over int32 rows,
    reductions and contractions of many shapes still equal the reference."""
    from fjit.compiler.targets.c import executable as compiled
    monkeypatch.setattr(compiled, "np", _PoisonedNumpy("numpy"))
    monkeypatch.setattr(compiled, "MIN_POOLED_BYTES", 1 << 62)  # every output from np.empty
    functions = [lambda r: (jnp.sum(r), r > 0),
                 lambda r: (jnp.max(r), jnp.min(r, axis=-1), jnp.argmax(r, axis=-1)),
                 lambda r: (jnp.cumsum(r, axis=-1), jnp.prod(r, axis=0) % 7, jnp.any(r > 1)),
                 lambda r: (r @ r.T, jnp.mean(r.astype(jnp.float32), axis=0))]
    rng = np.random.default_rng(3)
    for k in range(24):
        shape = (int(rng.integers(1, 6)), int(rng.integers(0 if k % 6 == 5 else 1, 9)))
        x = rng.integers(-4, 5, size=shape).astype([np.int32, np.float32, np.int8][k % 3])
        fn = functions[k % len(functions)]
        if k % 2 and not (fn is functions[1] and shape[1] == 0):
            fn = fjit.vmap(fn)
        got = leaves(fjit.jit(fn)(x))
        fjit.config.update("backend", "reference")
        want = leaves(fjit.jit(fn)(x))
        fjit.config.update("backend", "c")
        for g, w in zip(got, want):
            g, w = np.asarray(g), np.asarray(w)
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-5, err_msg=f"{k} {shape}")


# --- repeatability ----------------------------------------------------------------------------

def _workloads():
    """(name, function, args, float64 NumPy result): reductions, GEMMs on each of the GEMM's
    paths (column panels, rows, threads splitting K), a convolution."""
    rng = np.random.default_rng(7)
    big = rng.standard_normal(1 << 20).astype(np.float32)
    mat = rng.standard_normal((512, 300)).astype(np.float32)
    a, b = rng.standard_normal((192, 256)).astype(np.float32), \
        rng.standard_normal((256, 320)).astype(np.float32)
    ka, kb = rng.standard_normal((12, 4096)).astype(np.float32), \
        rng.standard_normal((4096, 32)).astype(np.float32)
    img = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    ints = rng.integers(-9, 10, size=(64, 4096)).astype(np.int32)
    d = np.float64

    def conv_ref(x, k):
        out = np.zeros((x.shape[0], k.shape[0], 30, 30))
        for i in range(3):
            for j in range(3):
                out += np.einsum("nchw,oc->nohw", x[:, :, i:i + 30, j:j + 30].astype(d),
                                 k[:, :, i, j].astype(d))
        return out

    return [
        ("sum", jnp.sum, (big,), big.astype(d).sum()),
        ("row_sums", lambda m: jnp.sum(m, axis=1), (mat,), mat.astype(d).sum(1)),
        ("col_max", lambda m: jnp.max(m, axis=0), (mat,), mat.max(0)),
        ("gemm", jnp.matmul, (a, b), a.astype(d) @ b),
        ("gemm_ksplit", jnp.matmul, (ka, kb), ka.astype(d) @ kb),
        ("gemm_rows", jnp.matmul, (mat.T.copy(), mat[:, :40].copy()),
         mat.T.astype(d) @ mat[:, :40]),
        ("conv", nn.conv, (img, w), conv_ref(img, w)),
        ("int_vmap", fjit.vmap(lambda r: (jnp.sum(r), r > 0)), (ints,),
         (ints.sum(1, dtype=np.int32), ints > 0)),
    ]


def _run_workloads():
    """Each workload's results, jitted, twice: (name, first, second)."""
    out = []
    for name, fn, args, _ in _workloads():
        f = fjit.jit(fn)
        first = [np.asarray(r) for r in leaves(f(*args))]
        second = [np.asarray(r) for r in leaves(f(*args))]
        out.append((name, first, second))
    return out


def leaves(tree):
    return fjit.tree_util.tree_leaves(tree)


def _check_against_numpy(name, got, want):
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        assert np.isfinite(g.astype(np.float64)).all(), name  # every element written
        if g.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w, err_msg=name)
        else:
            scale = np.abs(w).max() if np.size(w) else 1
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


@pytest.mark.c_backend
def test_same_program_twice_is_bitwise_equal():
    for (name, first, second), (_, _, _, want) in zip(_run_workloads(), _workloads()):
        for a, b in zip(first, second):
            assert a.tobytes() == b.tobytes(), name
        _check_against_numpy(name, first, want)


_CHILD = """
import json, sys, numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import fjit
fjit.config.update("backend", "c")
import test_determinism as t
out = {{}}
for name, first, second in t._run_workloads():
    out[name] = [[a.dtype.str, list(a.shape), a.tobytes().hex(), a.tobytes() == b.tobytes()]
                 for a, b in zip(first, second)]
f = fjit.jit(fjit.vmap(lambda r: (fjit.numpy.sum(r), r > 0)))
out["source"] = f.lower(np.ones((3, 5), np.int32)).source()
print(json.dumps(out))
"""


@pytest.mark.c_backend
def test_results_agree_across_openmp_thread_counts_and_hash_seeds():
    """1, 2 and 3 OpenMP threads (3 on 2 cores: threads wait on each other; dynamic teams
    may get fewer): every output is complete and within tolerance of NumPy, repeat runs in
    a process are bitwise equal, and the generated C does not depend on the hash seed."""
    code = _CHILD.format(root=ROOT, tests=os.path.join(ROOT, "tests"))
    runs = []
    for threads, seed, dynamic in (("1", "1", "false"), ("2", "2", "false"),
                                   ("3", "3", "true")):
        env = dict(os.environ, OMP_NUM_THREADS=threads, PYTHONHASHSEED=seed,
                   OMP_DYNAMIC=dynamic, PYTHONPATH=ROOT)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0]["source"] == runs[1]["source"] == runs[2]["source"]
    for name, _, _, want in _workloads():
        for run in runs:
            got = [np.frombuffer(bytes.fromhex(h), np.dtype(dt)).reshape(shape)
                   for dt, shape, h, _ in run[name]]
            assert all(repeat for *_, repeat in run[name]), name
            _check_against_numpy(name, got, want)
