"""The C backend's structure: fusion (kernel counts), GEMM routing, loop passes, the disk
cache across processes, introspection, and the fallback without a compiler.  Values are
checked against NumPy; the rest of the suite checks every primitive on this backend."""
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp

pytestmark = pytest.mark.c_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kinds(fn, *args):
    return [k.kind for k in fjit.jit(fn).lower(*args).kernels()]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def gelu(x):
    return 0.5 * x * (1 + jnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def softmax(x):
    e = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
    return e / jnp.sum(e, axis=1, keepdims=True)


def test_gelu_is_one_kernel():
    x = rand(64, 128)
    assert kinds(gelu, x) == ["map"]
    v = x.astype(np.float64)
    expected = 0.5 * v * (1 + np.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))
    np.testing.assert_allclose(np.asarray(fjit.jit(gelu)(x)), expected, rtol=2e-6, atol=2e-6)


def test_softmax_is_at_most_three_kernels():
    x = rand(32, 50)
    assert len(kinds(softmax, x)) <= 3
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(fjit.jit(softmax)(x)), e / e.sum(1, keepdims=True),
                               rtol=1e-5)


def test_dense_relu_is_one_gemm_and_one_kernel():
    x, w, b = rand(16, 64), rand(64, 32, seed=1), rand(32, seed=2)
    fn = lambda x, w, b: jnp.maximum(x @ w + b, 0.0)  # noqa: E731
    assert kinds(fn, x, w, b) == ["gemm", "map"]
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(x, w, b)), np.maximum(x @ w + b, 0),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn,shapes", [   # each at least GEMM_MIN_WORK multiply-adds
    (lambda a, b: a @ b, [(32, 9), (9, 24)]),
    (lambda a, b: a @ b.T, [(32, 9), (24, 9)]),
    (lambda a, b: a.T @ b, [(9, 32), (9, 24)]),
    (lambda a, b: a @ b, [(3, 32, 9), (3, 9, 24)]),         # batched
    (lambda a, b: a @ b, [(3, 32, 9), (9, 24)]),            # one operand shared
    (lambda a, b: jnp.einsum("ij,kj->ik", a, b), [(32, 9), (24, 9)]),
    (lambda a, b: jnp.einsum("bij,bjk->bik", a, b), [(2, 16, 9), (2, 9, 24)]),
    (lambda a, b: jnp.tensordot(a, b, 2), [(16, 3, 9), (3, 9, 12)]),
])
def test_contractions_go_to_gemm(fn, shapes):
    args = [rand(*s, seed=k) for k, s in enumerate(shapes)]
    assert "gemm" in kinds(fn, *args)
    expected = fn(*[jnp.asarray(a) for a in args])  # eager: the NumPy reference
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(*args)), np.asarray(expected),
                               rtol=1e-5, atol=1e-5)


def test_integer_matmul_is_not_gemm_but_exact():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.arange(8, dtype=np.int32).reshape(4, 2)
    assert "gemm" not in kinds(lambda a, b: a @ b, a, b)
    np.testing.assert_array_equal(np.asarray(fjit.jit(lambda a, b: a @ b)(a, b)), a @ b)


@pytest.mark.parametrize("fn, expected", [
    (lambda a, b: a @ b.T, ["gemm"]),                          # GEMM reads b transposed
    (lambda a, b: jnp.einsum("ij,kj->ik", a, b), ["gemm"]),
    (lambda a, b: b[:40].T @ a[:, :40].T, ["gemm", "map"]),    # a slice is not a transpose
])
def test_transposed_operands_are_read_by_gemm_in_place(fn, expected):
    a, b = rand(40, 70), rand(50, 70, seed=1)
    assert sorted(kinds(fn, a, b)) == expected
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(a, b)), fn(a, b), rtol=1e-4, atol=1e-4)


def test_short_contractions_and_outer_products_stay_maps():
    """K < GEMM_MIN_K: a GEMM call would cost more than the one pass of a map kernel
    (vmap(grad) of a linear model made a K=1 batched GEMM: 850 us, now 34 us)."""
    a, b = rand(64, 3), rand(3, 40, seed=1)
    assert kinds(lambda a, b: a @ b, a, b) == ["map"]
    small = lambda a, b: jnp.tanh(a @ b)  # noqa: E731  (10 x 50 x 1: inside one map)
    assert kinds(small, rand(10, 50), rand(50, 1, seed=1)) == ["map"]
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda a, b: a @ b)(a, b)), a @ b,
                               rtol=1e-5, atol=1e-5)
    outer = lambda r, x: jnp.einsum("n,nf->nf", r, x)  # noqa: E731
    assert "gemm" not in kinds(outer, rand(16), rand(16, 64, seed=1))


@pytest.mark.parametrize("m, n, k", [(6, 25, 50176), (12, 32, 4096), (1, 3, 9000)])
def test_gemms_with_few_output_tiles_split_the_contraction(m, n, k):
    """C too small to share between threads (a convolution's weight gradient): the threads
    split K and add their partial products."""
    a, b = rand(m, k), rand(k, n, seed=1)
    assert kinds(lambda a, b: a @ b, a, b) == ["gemm"]
    want = a.astype(np.float64) @ b
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda a, b: a @ b)(a, b)), want,
                               rtol=1e-4, atol=2e-3 * np.sqrt(k))
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)   # GEMM reads them transposed
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda at, bt: at.T @ bt.T)(at, bt)), want,
                               rtol=1e-4, atol=2e-3 * np.sqrt(k))


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m, n, k", [(64, 1100, 300), (200, 1057, 19), (13, 545, 260)])
def test_gemm_packing_across_column_chunks_and_ragged_tiles(m, n, k, ta, tb):
    """B is packed 512 columns at a time (a chunk stays in L2): columns past a chunk, a last
    chunk that is not whole panels, rows that are not whole 12-row tiles, K past one 256-deep
    block, in every operand orientation the packing has a path for."""
    a = rand(k, m) if ta else rand(m, k)
    b = rand(n, k, seed=1) if tb else rand(k, n, seed=1)
    fn = lambda a, b: (a.T if ta else a) @ (b.T if tb else b)  # noqa: E731
    assert kinds(fn, a, b) == ["gemm"]
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(a, b)), want, rtol=1e-4,
                               atol=2e-4 * np.sqrt(k))


def test_gradient_matmuls_go_to_gemm():
    x, w = rand(16, 32), rand(32, 8, seed=1)
    grads = lambda w, x: fjit.grad(lambda w: jnp.sum(jnp.tanh(x @ w)))(w)  # noqa: E731
    assert kinds(grads, w, x).count("gemm") == 2


def test_convolution_forward_is_one_gemm_per_example_with_the_weight_shared():
    from fjit.nn import conv
    x, w = rand(4, 3, 10, 10), rand(5, 3, 3, 3, seed=1)
    assert kinds(lambda x, w: conv(x, w, 1, 1), x, w).count("gemm") == 1
    want = np.asarray(conv(x, w, 1, 1))  # eager (reference) value
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda x, w: conv(x, w, 1, 1))(x, w)),
                               want, rtol=1e-4, atol=1e-4)


def test_contractions_over_scattered_axes_become_gemms_over_transposed_copies():
    """dW[o, c] = sum_{n, s} dY[n, o, s] P[n, c, s]: the contracted dims are not contiguous
    in either operand, so both are copied to [free][contracted] and one GEMM does the work;
    below the arithmetic-per-copy threshold the loop nest stays."""
    def weight_grad(dy, p):
        return jnp.einsum("nos,ncs->oc", dy, p)
    dy, p = rand(16, 8, 196), rand(16, 36, 196, seed=1)
    assert kinds(weight_grad, dy, p).count("gemm") == 1
    np.testing.assert_allclose(np.asarray(fjit.jit(weight_grad)(dy, p)),
                               np.einsum("nos,ncs->oc", dy, p), rtol=1e-4, atol=1e-3)
    small_dy, small_p = rand(2, 3, 4), rand(2, 5, 4, seed=1)
    # a function of its own: weight_grad, met at a second set of sizes, would get code
    # generic over them (compiler/dynamic.py), taking the GEMM as for large sizes
    assert "gemm" not in kinds(lambda a, b: weight_grad(a, b), small_dy, small_p)
    # output order differs from [M][N]: the GEMM result is transposed back
    back = lambda dy, p: jnp.einsum("nos,ncs->co", dy, p)  # noqa: E731
    np.testing.assert_allclose(np.asarray(fjit.jit(back)(dy, p)),
                               np.einsum("nos,ncs->co", dy, p), rtol=1e-4, atol=1e-3)


def test_convolution_weight_gradient_is_a_gemm():
    from fjit.nn import conv
    x, w = rand(16, 4, 16, 16), rand(8, 4, 3, 3, seed=1)
    grad_w = lambda w, x: fjit.grad(lambda w: jnp.sum(conv(x, w, 1, 1) ** 2))(w)  # noqa: E731
    assert kinds(grad_w, w, x).count("gemm") == 2  # the forward pass and the weight gradient
    np.testing.assert_allclose(np.asarray(fjit.jit(grad_w)(w, x)), np.asarray(grad_w(w, x)),
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("width, padding", [(40, 1), (12, 1), (12, 0)])
def test_convolution_input_gradient_scatter_vectorises_its_rows(width, padding):
    """The input gradient's scatter-add writes a shifted image row per window offset: its
    iterations along the row hit distinct elements, so the row loop runs as SIMD lanes.
    With padding they are masked where the window leaves the image, so only when the row is
    longer than gcc unrolls completely (toolchain.py: masked loads around a completely
    unrolled loop); without padding nothing is masked, whatever the row's length."""
    from fjit.nn import conv
    x, w = rand(2, 3, 9, width), rand(4, 3, 3, 3, seed=1)
    grad_x = lambda x, w: fjit.grad(  # noqa: E731
        lambda x: jnp.sum(conv(x, w, 1, padding) ** 2))(x)
    scatters = [k for k in fjit.jit(grad_x).lower(x, w).kernels() if k.kind == "scatter"
                and k.shape[-1] == width - 2 + 2 * padding]   # the window's, not a transpose's
    assert scatters and all(k.vectorized == (width > 16 or padding == 0) for k in scatters)
    np.testing.assert_allclose(np.asarray(fjit.jit(grad_x)(x, w)), np.asarray(grad_x(x, w)),
                               rtol=1e-4, atol=1e-4)


def test_scatters_whose_row_iterations_collide_stay_scalar():
    """x.at[i // 2].add(v): two iterations of the innermost loop add into one element."""
    v = rand(64)
    idx = np.arange(64) // 2
    add = lambda v: jnp.zeros(32, jnp.float32).at[idx].add(v)  # noqa: E731
    scatters = [k for k in fjit.jit(add).lower(v).kernels() if k.kind == "scatter"]
    assert scatters and not any(k.vectorized for k in scatters)
    np.testing.assert_allclose(np.asarray(fjit.jit(add)(v)), v.reshape(32, 2).sum(1),
                               rtol=1e-5, atol=1e-5)


def test_reduction_over_a_strided_axis_is_reordered():
    x = rand(300, 129)
    lowered = fjit.jit(lambda x: jnp.sum(x, axis=0)).lower(x)
    (kernel,) = lowered.compiled.scheduled
    assert kernel.nests[0].prologue, "expected the output to be identity-filled first"
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda x: jnp.sum(x, axis=0))(x)),
                               x.sum(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape, fn", [
    ((100, 70), lambda x: x.T * 2.0 + 1.0),                       # extents not multiples of 16
    ((3, 64, 48), lambda x: jnp.swapaxes(x, 1, 2) - x.mean()),    # batched, scalar outside
    ((40, 5, 33), lambda x: jnp.transpose(x, (2, 1, 0)) ** 2),    # a loop between the pair
])
def test_transposing_maps_are_tiled(shape, fn):
    x = rand(*shape)
    lowered = fjit.jit(fn).lower(x)
    tiled = [l for k in lowered.compiled.scheduled for n in k.nests for l in n.loops
             if l.block or l.tile]
    assert len(tiled) == 4, lowered.source()
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(x)), fn(x), rtol=1e-5, atol=1e-5)


def _tiled_loops(nests):
    return [l for n in nests for l in n.loops if l.block or l.tile]


def test_tiling_leaves_contiguous_maps_and_reductions_alone():
    from fjit.compiler.schedule import ReduceStmt, walk_statements
    x = rand(128, 128)
    contiguous = fjit.jit(lambda x: x * 2.0).lower(x).compiled.scheduled
    assert not _tiled_loops([n for k in contiguous for n in k.nests])
    for fn in (lambda x: jnp.max(x.T.reshape(128, 64, 2), axis=2),  # pairs, read transposed
               lambda x: jnp.sum(x.T * x, axis=1)):
        nests = [n for k in fjit.jit(fn).lower(x).compiled.scheduled for n in k.nests]
        reducing = [n for n in nests
                    if any(isinstance(s, ReduceStmt) for s in walk_statements(n.levels))]
        assert reducing and not _tiled_loops(reducing)
        np.testing.assert_allclose(np.asarray(fjit.jit(fn)(x)), fn(x), rtol=1e-4, atol=1e-4)


def test_column_sums_inside_a_map_are_reordered():
    """A bias gradient (sum over the batch) feeding an update: the sum accumulates whole
    rows instead of walking each column down memory, and the update runs in the same kernel
    after it (its epilogue), in place, with no temporary."""
    g, b = rand(256, 96), rand(96, seed=1)
    fn = lambda g, b: b - 0.1 * jnp.sum(jnp.maximum(g, 0.0), axis=0)  # noqa: E731
    lowered = fjit.jit(fn).lower(g, b)
    assert len(lowered.kernels()) == 1
    accumulate, epilogue = lowered.compiled.scheduled[0].nests
    assert accumulate.prologue, "expected an accumulating kernel"
    assert not any(b.role == "temp" for b in lowered.compiled.plan.buffers)
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(g, b)), fn(g, b), rtol=1e-4, atol=1e-4)


def test_loop_passes_can_be_switched_off(monkeypatch):
    from fjit.compiler.targets.c.executable import compile_program
    from fjit.compiler.schedule import Options
    program = fjit.jit(gelu).trace(rand(64, 1024))
    on = compile_program(program).source
    off = compile_program(program, Options.from_string("-vectorize,-parallelize")).source
    transpose = fjit.jit(lambda x: x.T + 1.0).trace(rand(64, 64))
    assert "i0b += 16" in compile_program(transpose).source
    assert "i0b" not in compile_program(transpose, Options.from_string("-tile")).source
    assert "#pragma omp simd" in on and "#pragma omp parallel for" in on
    assert "#pragma omp simd\n" not in off.split("int fj_program")[0].split("kernel_0")[1]
    assert "parallel for" not in off.split("kernel_0")[1]


def test_lower_shows_program_kernels_and_source():
    lowered = fjit.jit(softmax).lower(rand(4, 5))
    text = lowered.as_text()
    assert "# Program" in text and "# Kernels" in text
    assert "int fj_program(void **B, const int64_t *N, const double *F)" in text
    assert "reduce_max" in text and "kernel_0" in text
    kernels = lowered.kernels()
    assert all(k.eqns for k in kernels)
    assert any("exp" in k.primitives for k in kernels)


def test_compiled_program_listing_numbers_equations_that_span_lines():
    from fjit import lax

    def f(x):
        c, ys = lax.scan(lambda c, x: (c + x, c * 2), 0.0, x)
        return jnp.exp(ys) + c * 3
    text = fjit.jit(f).lower(np.ones(5, np.float32)).as_text()
    compiled = text.split("# Program as compiled\n")[1].split("\n\n# Kernels")[0]
    numbers = [line.split()[0] for line in compiled.splitlines()
               if line[:4].strip().isdigit() and line[4:6] == "  "]
    assert numbers == [str(k) for k in range(len(numbers))] and len(numbers) >= 4
    assert "= scan[" in compiled.splitlines()[1] and "= exp " in compiled


def test_kernel_listing_names_values_as_the_compiled_program_does():
    x, w = rand(8, 16), rand(16, 4, seed=1)
    text = fjit.jit(lambda x, w: jnp.tanh(x @ w).sum(0) * 2).lower(x, w).as_text()
    compiled = text.split("# Program as compiled\n")[1].split("\n\n# Kernels")[0]
    listing = text.split("# Kernels\n")[1].split("\n\n# Generated source")[0]
    numbered = {}
    for line in compiled.splitlines()[1:-1]:
        number, eqn = line.split(None, 1)
        numbered[int(number)] = eqn
    listed = [line.strip() for line in listing.splitlines() if line.startswith("    ")]
    assert sorted(listed) == sorted(numbered.values())   # each equation once, named alike
    covered = []
    for line in listing.splitlines():
        if line.startswith("<"):
            spans = line.rsplit("equations ", 1)[1]
            for span in spans.split(", "):
                lo, _, hi = span.partition("-")
                covered.extend(range(int(lo), int(hi or lo) + 1))
    assert sorted(covered) == sorted(numbered)


def _library_key(fn, *args):
    from fjit.compiler.targets.c import executable
    return executable.compile_program(fjit.make_program(fn)(*args))


def _mlp_step(w1, w2, x, lr):
    def loss(p):
        h = jnp.tanh(x @ p[0])
        return jnp.mean((h @ p[1]) ** 2)
    g = fjit.grad(loss)((w1, w2))
    return w1 - lr * g[0], w2 - lr * g[1]


def test_kernels_that_differ_only_in_their_buffers_are_one_function():
    def layers(x):
        for _ in range(4):   # a reduction between maps: kernels that repeat, layer by layer
            x = jnp.tanh(x * x.sum(axis=0) + 1.5)
        return x
    x = rand(8, 16) / 4
    lowered = fjit.jit(layers).lower(x)
    source, calls = lowered.source(), len(lowered.kernels())
    defined = source.count("static void kernel_")
    assert calls >= 5 and defined <= calls - 2, (defined, calls)
    assert source.split("int fj_program")[1].split("int fj_step")[0].count("kernel_") == calls
    expected = x
    for _ in range(4):
        expected = np.tanh(expected * expected.sum(axis=0) + 1.5)
    np.testing.assert_allclose(fjit.jit(layers)(x), expected, rtol=1e-5, atol=1e-6)


def test_a_program_split_into_translation_units_builds_in_parallel_and_computes_the_same(
        monkeypatch, tmp_path, set_option):
    from fjit.compiler.targets.c import executable, render, toolchain
    set_option("cache_dir", str(tmp_path / "cache"))
    monkeypatch.setattr(render, "UNIT_MIN_WEIGHT", 1)          # split even a small Program
    monkeypatch.setattr(render, "MAX_UNITS", 3)
    monkeypatch.setattr(toolchain.Toolchain, "jobs", property(lambda self: 2))  # 3 units
    monkeypatch.setattr(executable, "_loaded_libraries", __import__("collections").OrderedDict())
    calls = []
    real_popen = subprocess.Popen

    def popen(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_popen(cmd, *args, **kwargs)
    monkeypatch.setattr(subprocess, "Popen", popen)

    def f(x, w):
        h = jnp.tanh(x @ w)
        return (h - h.mean(axis=0)).sum(axis=1), jnp.max(h, axis=0) * 2
    x, w = rand(32, 16), rand(16, 8, seed=1)
    compiled = executable.compile_program(fjit.make_program(f)(x, w))
    assert len(compiled.units) == 3 and compiled.source.count("int fj_program") == 1
    got = fjit.jit(f)(x, w)
    assert len([c for c in calls if "-c" in c]) == 3   # three compiler processes, one link
    h = np.tanh(x @ w)
    np.testing.assert_allclose(got[0], (h - h.mean(axis=0)).sum(axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], h.max(axis=0) * 2, rtol=1e-5)


def test_temporaries_whose_lives_do_not_overlap_share_workspace_bytes():
    from fjit.runtime.backend import executable_for

    def layers(x):
        for _ in range(12):   # each layer's temporaries are dead a few kernels later
            x = jnp.tanh(x * x.sum(axis=0) / 64)
        return x
    x = rand(64, 64)
    executable = executable_for(fjit.make_program(layers)(x))
    temps = [b for b in executable.plan.buffers if b.role == "temp"]
    assert len(temps) >= 12
    separate = sum(b.size * b.dtype.itemsize for b in temps)
    assert executable.workspace.nbytes <= separate / 2
    offsets = executable.temp_offsets
    assert len(set(offsets.values())) < len(temps)      # some share
    expected = x
    for _ in range(12):
        expected = np.tanh(expected * expected.sum(axis=0) / 64)
    np.testing.assert_allclose(fjit.jit(layers)(x), expected, rtol=1e-5, atol=1e-6)


def test_workspace_layout_never_gives_live_temporaries_the_same_bytes():
    from types import SimpleNamespace
    from fjit.compiler import workspace
    rng = np.random.default_rng(0)
    for trial in range(200):
        n_temps, n_steps = int(rng.integers(1, 12)), int(rng.integers(1, 10))
        buffers = [SimpleNamespace(id=i, role="temp", size=int(rng.integers(0, 5000)),
                                   dtype=np.dtype(rng.choice(["float32", "int8", "float64"])))
                   for i in range(n_temps)]
        steps = [SimpleNamespace(control=None, buffers=sorted(set(
            rng.choice(n_temps, int(rng.integers(0, n_temps + 1))).tolist())))
            for _ in range(n_steps)]
        offsets, total = workspace.layout(SimpleNamespace(buffers=buffers), steps, 64)
        life = {}
        for k, sk in enumerate(steps):
            for b in sk.buffers:
                life[b] = (life.get(b, (k, k))[0], k)
        span = {b.id: (offsets[b.id], offsets[b.id] + max(b.size * b.dtype.itemsize, 1))
                for b in buffers}
        assert all(offsets[b] % 64 == 0 and span[b][1] <= total for b in span)
        for a in span:
            for b in span:
                live_together = a != b and (a not in life or b not in life or (
                    life[a][0] <= life[b][1] and life[b][0] <= life[a][1]))
                if live_together:
                    assert span[a][1] <= span[b][0] or span[b][1] <= span[a][0], (trial, a, b)


def test_a_training_step_at_ten_batch_sizes_builds_at_most_two_libraries(tmp_path, set_option,
                                                                          monkeypatch):
    from fjit.compiler.targets.c import executable
    set_option("cache_dir", str(tmp_path / "cache"))
    monkeypatch.setattr(executable, "_loaded_libraries",
                        __import__("collections").OrderedDict())
    built = []
    real_build = executable.cache.build_into_cache
    monkeypatch.setattr(executable.cache, "build_into_cache",
                        lambda key, *a: built.append(key) or real_build(key, *a))
    w1, w2 = rand(16, 32), rand(32, 4, seed=1)
    step = fjit.jit(_mlp_step)
    for batch in [8, 12, 16, 24, 32, 40, 48, 64, 80, 96]:
        x = rand(batch, 16, seed=batch)
        got = step(w1, w2, x, 0.05)
        h = np.tanh(x @ w1)
        d_out = 2 * (h @ w2) / (batch * 4)
        g1 = x.T @ ((d_out @ w2.T) * (1 - h ** 2))
        np.testing.assert_allclose(got[0], w1 - 0.05 * g1, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1], w2 - 0.05 * (h.T @ d_out), rtol=1e-4, atol=1e-5)
    assert step._cache_size() == 10     # traced once per size ...
    assert len(built) <= 2, built       # ... built at most twice (schedule decisions that
    # depend on size, such as which contractions go to GEMM, may change the code once)


def test_programs_that_differ_only_in_constants_or_outer_sizes_share_a_library():
    w1, w2 = rand(16, 32), rand(32, 4, seed=1)
    base = _library_key(_mlp_step, w1, w2, rand(64, 16), 0.1)
    assert _library_key(_mlp_step, w1, w2, rand(64, 16), 0.01).key == base.key
    assert _library_key(_mlp_step, w1, w2, rand(96, 16), 0.1).key == base.key
    other = _library_key(_mlp_step, w1, w2, rand(64, 16), 0.1)
    assert other.sizes == base.sizes and other.constants == base.constants
    # and the shared library computes each Program's own values
    step = fjit.jit(_mlp_step)
    for batch, lr in [(64, 0.1), (96, 0.01)]:
        x = rand(batch, 16, seed=batch)
        got = step(w1, w2, x, lr)

        def loss(p):
            return np.mean((np.tanh(x @ p[0]) @ p[1]) ** 2)
        h = np.tanh(x @ w1)
        d_out = 2 * (h @ w2) / (batch * 4)
        g2 = h.T @ d_out
        g1 = x.T @ ((d_out @ w2.T) * (1 - h ** 2))
        np.testing.assert_allclose(got[0], w1 - lr * g1, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1], w2 - lr * g2, rtol=1e-4, atol=1e-5)


def test_a_batch_size_equal_to_another_extent_changes_no_code():
    """Loop extents are parameters of their own: with B = 24 the batch loop's extent equals
    the next loop's, and the code is still the one B = 32 gets."""
    def rows(x):
        return jnp.tanh(x).sum(2) * 2.0
    keys = {b: _library_key(rows, rand(b, 24, 40)).key for b in (24, 32, 48)}
    assert len(set(keys.values())) == 1, keys


_PROGRAM = """
    import numpy as np, fjit, fjit.numpy as jnp
    f = fjit.jit(lambda x: jnp.sum(jnp.tanh(x) * 3.0 + 1.0))
    print(float(f(np.arange(10, dtype=np.float32) / 10)))
"""
_EXPECTED = float(np.sum(np.tanh(np.arange(10, dtype=np.float32) / 10) * 3 + 1))


def test_second_process_compiles_nothing(tmp_path, run_fjit):
    first = run_fjit(_PROGRAM, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "cache miss" in first.stderr
    second = run_fjit(_PROGRAM, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "cache hit" in second.stderr and "cache miss" not in second.stderr
    assert abs(float(second.stdout) - _EXPECTED) < 1e-4


def test_corrupted_or_untrusted_entries_are_rebuilt(tmp_path, run_fjit):
    assert run_fjit(_PROGRAM, tmp_path).returncode == 0
    (entry,) = [p for p in tmp_path.iterdir() if p.suffix == ".so"]
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    again = run_fjit(_PROGRAM, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "cache miss" in again.stderr and abs(float(again.stdout) - _EXPECTED) < 1e-4
    os.chmod(entry, os.stat(entry).st_mode | stat.S_IWOTH)  # writable by others
    third = run_fjit(_PROGRAM, tmp_path)
    assert "cache miss" in third.stderr and abs(float(third.stdout) - _EXPECTED) < 1e-4


def test_cache_directory_is_private(tmp_path, run_fjit):
    target = tmp_path / "fresh"
    assert run_fjit(_PROGRAM, target).returncode == 0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700


def test_processes_racing_on_one_program_both_succeed(tmp_path):
    env = dict(os.environ, FJIT_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_PROGRAM)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert abs(float(out) - _EXPECTED) < 1e-4
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".so"]) == 1


def test_without_a_compiler_jit_falls_back_with_one_warning(tmp_path, run_fjit):
    code = """
        import warnings, numpy as np, fjit, fjit.numpy as jnp
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a = fjit.jit(lambda x: x * 2)(np.ones(3, np.float32))
            b = fjit.jit(lambda x: x + 1)(np.ones(3, np.float32))
        print(len([w for w in caught if "no working C compiler" in str(w.message)]),
              a.tolist(), b.tolist())
    """
    result = run_fjit(code, tmp_path, FJIT_CC="/bin/false", CC="/bin/false",
                  PATH="/nonexistent")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "1"
    assert "[2.0, 2.0, 2.0]" in result.stdout and "[2.0, 2.0, 2.0]" in result.stdout


def test_float16_and_bfloat16_round_per_operation():
    x = (np.arange(16, dtype=np.float32) / 7).astype(np.float16)
    fn = lambda x: (x * x + x) * 3  # noqa: E731
    got = np.asarray(fjit.jit(fn)(x))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, ((x * x + x) * np.float16(3)))


def test_pooled_output_memory_outlives_every_view():
    import gc
    from fjit.runtime.memory import MIN_POOLED_BYTES
    n = MIN_POOLED_BYTES  # large enough to come from the pool
    f = fjit.jit(lambda x: x * 2)
    first = f(np.ones(n, np.float32))
    view = np.asarray(first)[::2]
    del first
    gc.collect()
    for k in range(3):  # later outputs of the same size must not land in `view`'s memory
        f(np.full(n, 10.0 + k, np.float32))
    assert (view == 2).all()
    del view
    gc.collect()
    again = f(np.full(n, 3.0, np.float32))  # now the block may be reused
    assert (np.asarray(again) == 6).all()


def test_rank_zero_inputs_passed_straight_through_keep_their_rank():
    """An output that is an input (a scan body's pass-through) comes back with rank 0, not
    as the 1-element array numpy.ascontiguousarray would make of it."""
    from fjit.runtime.backend import executable_for
    program = fjit.make_program(lambda x, y: (x, y * 2))(np.float32(1), np.float32(2))
    outs = executable_for(program, "c")([np.float32(1), np.float32(2)])
    assert [o.shape for o in outs] == [(), ()]


def test_idle_openmp_workers_spin_briefly_unless_the_user_says_otherwise():
    """Spinning 30k iterations made two fjit processes sharing 2 cores 50x slower each."""
    import subprocess
    import sys
    code = ("import os, numpy as np, fjit; fjit.jit(lambda x: x + 1)(np.ones(3)); "
            "print(os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1000", out.stderr
    env["GOMP_SPINCOUNT"] = "7"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "7", out.stderr


def test_threads_split_the_first_loop_with_more_than_one_iteration():
    """A kernel whose outer loops run once (a leading size-1 axis) still uses threads, on
    the first loop that has iterations to share; and a few outputs that each reduce many
    elements count as much work (the reduction's length is part of its cost)."""
    x = rand(1, 64, 1024)
    lowered = fjit.jit(lambda x: jnp.exp(x) * 2).lower(x)
    (kernel,) = lowered.kernels()
    assert kernel.parallel and "#pragma omp parallel for" in lowered.source()
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda x: jnp.exp(x) * 2)(x)),
                               np.exp(x) * 2, rtol=1e-6)
    rows = rand(6, 50000)
    (kernel,) = fjit.jit(lambda r: r.sum(1)).lower(rows).kernels()
    assert kernel.parallel
    square = rand(512, 512)     # a tiled transpose: threads take whole blocks of tiles
    (kernel,) = fjit.jit(lambda s: s.T + 1).lower(square).kernels()
    assert kernel.parallel
    np.testing.assert_array_equal(np.asarray(fjit.jit(lambda s: s.T + 1)(square)), square.T + 1)
    np.testing.assert_allclose(np.asarray(fjit.jit(lambda r: r.sum(1))(rows)), rows.sum(1),
                               rtol=1e-4)


def test_compiler_settings_are_config_options(tmp_path, run_fjit, set_option, monkeypatch):
    """Every compiler setting is a `fjit.config` option, read from its environment variable
    when fjit is imported (tests/test_layering.py keeps other modules off os.environ)."""
    from fjit.compiler import cache
    code = """
        import numpy as np, fjit, fjit.numpy as jnp
        c = fjit.config
        print(c.keep_source, c.passes, sorted(c.log), c.blas, c.cc)
        fjit.jit(lambda x: x * 2.0 + 1.0)(np.ones(3, np.float32))
    """
    out = run_fjit(code, tmp_path, FJIT_KEEP_SOURCE="1", FJIT_PASSES="-unroll",
                   FJIT_BLAS="none", FJIT_CC="cc")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "True -unroll ['compile'] none cc"
    assert any(p.suffix == ".c" for p in tmp_path.iterdir())   # keep_source kept the C
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setattr(cache, "_resolved", {}, raising=False)
    set_option("cache_dir", str(elsewhere))
    assert cache.configured_dir() == str(elsewhere)
    fjit.jit(lambda x: x * 3.25 - 1.0)(np.ones(5, np.float32))
    assert any(p.suffix == ".so" for p in elsewhere.iterdir())
    with pytest.raises(ValueError, match="'-unrol'.*unroll"):   # at once, not at a compile
        set_option("passes", "-unrol")
    from fjit.compiler.schedule import Options
    from fjit.config import PASSES
    assert tuple(Options.__dataclass_fields__) == PASSES


def test_the_c_target_has_code_for_every_elementwise_op():
    """lax's element-wise table is target-neutral; each target owns its code for every row."""
    from fjit.compiler.targets.c_family.ops import C_OPS
    from fjit.lax.elementwise import OPS
    assert set(C_OPS) == set(OPS)
    assert not any(hasattr(op, "c") for op in OPS.values())


def test_a_second_target_needs_no_change_to_the_compiler():
    """A target is data plus a registration: here C whose loops never use threads (a
    parallel_min_work no kernel reaches) and whose GEMMs are loops, registered as a backend
    of its own in this test only."""
    from fjit.compiler.target import Target
    from fjit.compiler.targets.c.executable import compile_program, executable_factory
    from fjit.runtime.backend import _factories, register_backend
    serial = Target("c_serial", gemm=False, parallel_min_work=1 << 62)
    register_backend("c_serial", executable_factory(serial))
    try:
        def f(a, b):
            return jnp.tanh(a @ b).sum(axis=0) + jnp.max(a, axis=1)[:8]
        a = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)
        b = np.random.default_rng(1).standard_normal((256, 8)).astype(np.float32)
        program = fjit.make_program(f)(a, b)
        from fjit.compiler.lowered import KernelInfo

        def on_threads(compiled):   # decided per call: the code is the same either way
            return [KernelInfo(sk, compiled.plan).parallel for sk in compiled.scheduled]
        big_map = fjit.make_program(lambda a: jnp.tanh(a) * 2)(a)
        assert any(on_threads(compile_program(big_map)))
        assert not any(on_threads(compile_program(big_map, target=serial)))
        assert "fj_sgemm" in compile_program(program).source
        assert "fj_sgemm" not in compile_program(program, target=serial).source
        fjit.config.update("backend", "c_serial")
        got = fjit.jit(f)(a, b)
        fjit.config.update("backend", "c")
        want = np.tanh(a.astype(np.float64) @ b).sum(axis=0) + a.max(axis=1)[:8]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    finally:
        fjit.config.update("backend", "c")
        _factories.pop("c_serial", None)
