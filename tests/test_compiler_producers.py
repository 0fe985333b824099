"""GEMM B producers (fusion._b_producers): an element-wise B operand that nothing else
reads is computed while the GEMM packs it, never written out.  Every GEMM path is covered
(panels split by column, by row, by K, one block, the small unpacked path, builds without
AVX-512 or OpenMP), with values checked against NumPy."""
import numpy as np
import pytest

import fjit
from fjit.compiler.targets.c.toolchain import toolchain

pytestmark = pytest.mark.c_backend


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def updated(x, w, g):
    """A GEMM reading an SGD update of its weight, which nothing else reads."""
    return x @ (w - 0.5 * g)


def expected(x, w, g):
    return x @ (w - np.float32(0.5) * g)


def kernels(fn, *args):
    return fjit.jit(fn).lower(*args).kernels()


# (m, k, n): which path of fj_gemm_f32 runs
PATHS = {
    "columns": (128, 300, 512),   # enough 32-column panels for every thread
    "rows": (256, 256, 32),       # one panel: threads split the rows, each packs all of B
    "k-split": (12, 4096, 32),    # one output tile: threads split K
    "one block": (32, 64, 64),    # too little work for threads
    "small": (4, 64, 64),         # skinny: B is not packed, so it is computed whole first
    "partial panel": (64, 100, 70),
    "column chunks": (40, 300, 1100),   # B packed 512 columns at a time, then a ragged tail
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_operand_is_computed_in_the_gemms_packing(path):
    m, k, n = PATHS[path]
    x, w, g = rand(m, k), rand(k, n, seed=1), rand(k, n, seed=2)
    (gemm,) = kernels(updated, x, w, g)
    assert gemm.kind == "gemm" and gemm.produces_b and "while packed" in repr(gemm)
    # it reads x, w and g -- no buffer holds w - 0.5 g
    assert sorted(b.shape for b in gemm.inputs) == sorted([(m, k), (k, n), (k, n)])
    np.testing.assert_allclose(np.asarray(fjit.jit(updated)(x, w, g)), expected(x, w, g),
                               rtol=2e-4, atol=2e-4)


def test_masked_and_converted_weights():
    x, w, g = rand(64, 96), rand(96, 128, seed=1), rand(96, 128, seed=2)
    masked = lambda x, w, g: x @ (w * (g > 0))
    assert [k.kind for k in kernels(masked, x, w, g)] == ["gemm"]
    np.testing.assert_allclose(np.asarray(fjit.jit(masked)(x, w, g)), x @ (w * (g > 0)),
                               rtol=2e-4, atol=2e-4)
    w16 = w.astype(np.float16)
    converted = lambda x, w16: x @ w16.astype(np.float32)
    assert [k.kind for k in kernels(converted, x, w16)] == ["gemm"]
    np.testing.assert_allclose(np.asarray(fjit.jit(converted)(x, w16)),
                               x @ w16.astype(np.float32), rtol=2e-4, atol=2e-4)


def test_operand_read_elsewhere_keeps_its_own_kernel():
    """A value also returned, or read by another GEMM, is stored by a kernel of its own
    (storing it from the packing as well was measured slower)."""
    x, w, g = rand(64, 96), rand(96, 128, seed=1), rand(96, 128, seed=2)
    w2 = w - np.float32(0.5) * g

    def returned(x, w, g):
        w2 = w - 0.5 * g
        return x @ w2, w2
    assert sorted(k.kind for k in kernels(returned, x, w, g)) == ["gemm", "map"]
    out, got_w2 = fjit.jit(returned)(x, w, g)
    np.testing.assert_array_equal(np.asarray(got_w2), w2)
    np.testing.assert_allclose(np.asarray(out), x @ w2, rtol=2e-4, atol=2e-4)

    def twice(x, w, g):
        w2 = w - 0.5 * g
        return (x @ w2) @ w2.T
    found = kernels(twice, x, w, g)
    assert sorted(k.kind for k in found) == ["gemm", "gemm", "map"]
    assert not any(k.produces_b for k in found)
    np.testing.assert_allclose(np.asarray(fjit.jit(twice)(x, w, g)), (x @ w2) @ w2.T,
                               rtol=1e-3, atol=1e-3)


def test_reductions_and_transposed_operands_are_not_produced():
    x, w = rand(64, 96), rand(96, 128, seed=1)
    # a reduction per element of B: a loop inside the packing, so B gets its own kernel
    t = rand(96, 128, 5, seed=3)
    summed = lambda x, t: x @ t.sum(2)
    assert [k.produces_b for k in kernels(summed, x, t)] == [False, False]
    np.testing.assert_allclose(np.asarray(fjit.jit(summed)(x, t)), x @ t.sum(2),
                               rtol=1e-3, atol=1e-3)
    # a column sum gets its own kernel (a strided reduction); the producer reads it
    columns = lambda x, w: x @ (w + w.sum(0))
    assert [k.produces_b for k in kernels(columns, x, w)] == [False, True]
    np.testing.assert_allclose(np.asarray(fjit.jit(columns)(x, w)), x @ (w + w.sum(0)),
                               rtol=1e-3, atol=1e-3)
    wt = rand(128, 96, seed=2)
    transposed = lambda x, wt: x @ (wt * 2).T                # B read transposed
    assert not any(k.produces_b for k in kernels(transposed, x, wt))
    np.testing.assert_allclose(np.asarray(fjit.jit(transposed)(x, wt)), x @ (wt * 2).T,
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shapes", [((0, 64), (64, 96)), ((32, 0), (0, 96))])
def test_empty_products(shapes):
    (m, k), (_, n) = shapes
    x, w, g = rand(m, k), rand(k, n, seed=1), rand(k, n, seed=2)
    np.testing.assert_array_equal(np.asarray(fjit.jit(updated)(x, w, g)), expected(x, w, g))


@pytest.mark.parametrize("cflags", ["-mno-avx512f", "-fno-openmp"])
def test_builds_without_the_packing_gemm_compute_the_operand_first(cflags):
    previous = fjit.config.cflags
    fjit.config.update("cflags", cflags)
    try:
        if toolchain() is None:
            pytest.skip(f"the compiler rejects {cflags}")
        for m, k, n in (PATHS["columns"], PATHS["small"]):
            x, w, g = rand(m, k), rand(k, n, seed=1), rand(k, n, seed=2)
            got = fjit.jit(lambda x, w, g: updated(x, w, g))(x, w, g)
            np.testing.assert_allclose(np.asarray(got), expected(x, w, g), rtol=2e-4,
                                       atol=2e-4)
    finally:
        fjit.config.update("cflags", previous)
