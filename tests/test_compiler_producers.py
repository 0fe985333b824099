"""GEMM B producers (fusion._b_producers): an element-wise B operand is computed while the
GEMM packs it, and stored as well when something else reads it.  Every GEMM path is covered
(panels split by column, by row, by K, one block, the small unpacked path, the builds
without AVX-512 or OpenMP), with values checked against NumPy."""
import numpy as np
import pytest

import fjit
from fjit import lax
from fjit.compiler.toolchain import toolchain

pytestmark = pytest.mark.skipif(toolchain() is None, reason="no C compiler")


@pytest.fixture(autouse=True)
def backend():
    previous = fjit.config.backend
    fjit.config.update("backend", "c")
    yield
    fjit.config.update("backend", previous)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def updated_then_used(x, w, g):
    """An SGD update whose result a GEMM reads and which is also returned."""
    w2 = w - 0.5 * g
    return x @ w2, w2


def expected(x, w, g):
    w2 = w - np.float32(0.5) * g
    return x @ w2, w2


def kernel_summary(fn, *args):
    return [(k.kind, len(k.outputs)) for k in fjit.jit(fn).lower(*args).kernels()]


# (m, k, n): which path of fj_gemm_f32 runs
PATHS = {
    "columns": (128, 300, 512),   # enough 32-column panels for every thread
    "rows": (256, 256, 32),       # one panel: threads split the rows, each packs all of B
    "k-split": (12, 2048, 32),    # one output tile: threads split K
    "one block": (32, 64, 64),    # too little work for threads
    "small": (4, 64, 64),         # skinny: B is not packed, so it is computed whole first
    "partial panel": (64, 100, 70),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_update_is_computed_in_the_gemm_and_still_returned(path):
    m, k, n = PATHS[path]
    x, w, g = rand(m, k), rand(k, n, seed=1), rand(k, n, seed=2)
    assert kernel_summary(updated_then_used, x, w, g) == [("gemm", 2)]
    out, w2 = fjit.jit(updated_then_used)(x, w, g)
    want_out, want_w2 = expected(x, w, g)
    np.testing.assert_array_equal(np.asarray(w2), want_w2)   # the same float ops, bit for bit
    np.testing.assert_allclose(np.asarray(out), want_out, rtol=2e-4, atol=2e-4)


def test_operand_read_by_nothing_else_is_never_written_out():
    x, w, g = rand(64, 96), rand(96, 128, seed=1), rand(96, 128, seed=2)
    fn = lambda x, w, g: x @ (w * (g > 0))   # a masked weight
    assert kernel_summary(fn, x, w, g) == [("gemm", 1)]
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(x, w, g)), x @ (w * (g > 0)),
                               rtol=2e-4, atol=2e-4)


def test_operand_also_read_later_by_another_gemm():
    """W' feeds this GEMM (computed in its packing) and a later transposed one (read from
    the stored W')."""
    x, w, g = rand(64, 96), rand(96, 128, seed=1), rand(96, 128, seed=2)

    def fn(x, w, g):
        w2 = w - 0.5 * g
        h = x @ w2
        return h @ w2.T
    assert [k for k, _ in kernel_summary(fn, x, w, g)] == ["gemm", "gemm"]
    w2 = w - np.float32(0.5) * g
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(x, w, g)), (x @ w2) @ w2.T,
                               rtol=1e-3, atol=1e-3)


def test_operand_read_before_the_gemm_gets_its_own_kernel():
    """A value something reads before the GEMM runs must exist by then: no producer."""
    x, w, g = rand(64, 96), rand(96, 128, seed=1), rand(96, 128, seed=2)

    def fn(x, w, g):
        w2 = w - 0.5 * g
        s = w2.sum()               # comes first in the Program
        return x @ w2 + s
    kinds = [k for k, _ in kernel_summary(fn, x, w, g)]
    assert kinds.count("gemm") == 1 and len(kinds) >= 2
    w2 = w - np.float32(0.5) * g
    np.testing.assert_allclose(np.asarray(fjit.jit(fn)(x, w, g)), x @ w2 + w2.sum(),
                               rtol=1e-3, atol=1e-3)


def test_reductions_and_transposed_operands_are_not_produced():
    x, w = rand(64, 96), rand(96, 128, seed=1)
    summed = lambda x, w: x @ (w + w.sum(0))                 # a reduction per element
    assert kernel_summary(summed, x, w)[0][0] == "map"
    np.testing.assert_allclose(np.asarray(fjit.jit(summed)(x, w)), x @ (w + w.sum(0)),
                               rtol=1e-3, atol=1e-3)
    wt = rand(128, 96, seed=2)
    transposed = lambda x, wt: x @ (wt * 2).T                # B read transposed
    np.testing.assert_allclose(np.asarray(fjit.jit(transposed)(x, wt)), x @ (wt * 2).T,
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shapes", [((0, 64), (64, 96)), ((32, 0), (0, 96))])
def test_empty_products_still_store_the_operand(shapes):
    (m, k), (_, n) = shapes
    x, w, g = rand(m, k), rand(k, n, seed=1), rand(k, n, seed=2)
    out, w2 = fjit.jit(updated_then_used)(x, w, g)
    want_out, want_w2 = expected(x, w, g)
    np.testing.assert_array_equal(np.asarray(w2), want_w2)
    np.testing.assert_array_equal(np.asarray(out), want_out)


@pytest.mark.parametrize("cflags", ["-mno-avx512f", "-fno-openmp"])
def test_builds_without_the_packing_gemm_compute_the_operand_first(cflags):
    previous = fjit.config.cflags
    fjit.config.update("cflags", cflags)
    try:
        if toolchain() is None:
            pytest.skip(f"the compiler rejects {cflags}")
        for m, k, n in (PATHS["columns"], PATHS["small"]):
            x, w, g = rand(m, k), rand(k, n, seed=1), rand(k, n, seed=2)
            out, w2 = fjit.jit(lambda x, w, g: updated_then_used(x, w, g))(x, w, g)
            want_out, want_w2 = expected(x, w, g)
            np.testing.assert_array_equal(np.asarray(w2), want_w2)
            np.testing.assert_allclose(np.asarray(out), want_out, rtol=2e-4, atol=2e-4)
            only = fjit.jit(lambda x, w, g: x @ (w - 0.5 * g))(x, w, g)
            np.testing.assert_allclose(np.asarray(only), want_out, rtol=2e-4, atol=2e-4)
    finally:
        fjit.config.update("cflags", previous)


def test_a_loop_carry_updated_in_the_packing():
    """The rotated training loop's case: the carry's update happens inside the next
    iteration's forward GEMM, which also stores the carry for the iteration after."""
    x, w, g = rand(16, 64), rand(64, 96, seed=1), rand(64, 96, seed=2) * 0.01

    def body(w, _):
        w2 = w - 0.5 * g
        return w2, (x @ w2).sum()

    run = lambda w: lax.scan(body, w, None, length=5)
    w_out, sums = fjit.jit(run)(w)
    want_w, want_sums = w, []
    for _ in range(5):
        want_w = want_w - np.float32(0.5) * g
        want_sums.append((x @ want_w).sum())
    np.testing.assert_array_equal(np.asarray(w_out), want_w)
    np.testing.assert_allclose(np.asarray(sums), want_sums, rtol=1e-3)
    loop = fjit.jit(run).lower(w).kernels()[0]
    assert "gemm" in repr(loop) and "map over [64, 96]" not in repr(loop)
