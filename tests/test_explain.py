"""Fusion decisions explained (`jit(f).lower(...).explain()`) and the epilogues that fuse
element-wise ops into the kernel of the strided reduction before them."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp

pytestmark = pytest.mark.c_backend


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def kernels(fn, *args):
    return fjit.jit(fn).lower(*args).kernels()


def check(fn, *args, rtol=1e-4):
    got = fjit.jit(fn)(*args)
    want = fn(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in args])
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=rtol)


def test_the_issue_case_is_a_gemm_and_one_reduction_with_its_epilogue():
    """`tanh(x @ w).sum(0) * 2` was three kernels; the `* 2` now runs in the sum's kernel."""
    x, w = rand(64, 256), rand(256, 128, seed=1)
    fn = lambda x, w: jnp.tanh(x @ w).sum(0) * 2   # noqa: E731
    found = kernels(fn, x, w)
    assert [k.kind for k in found] == ["gemm", "map"]
    assert found[1].primitives == ["tanh", "reduce_sum", "mul"]
    check(fn, x, w)
    text = fjit.jit(fn).lower(x, w).explain()
    assert "contraction goes to GEMM" in text and "epilogue" in text
    assert "output is returned" in text
    assert f"reads {256 * 128 * 4 // 1024 + 64 * 256 * 4 // 1024}.0 kB" in text


@pytest.mark.parametrize("name, fn, count", [
    # a bias gradient and its momentum update: one kernel, in place
    ("update", lambda g, b: b - 0.1 * (0.9 * b + g.sum(0)), 1),
    # a chain of element-wise ops, a scalar operand among them
    ("chain", lambda g, b: jnp.sqrt(jnp.abs(g.max(0) * b[0] + 1.0)), 1),
    # the other operand holds a reduction of its own: not in the epilogue
    ("two sums", lambda g, b: g.sum(0) + (g * g).sum(0), 2),
    # a dtype change ends the epilogue (the accumulator is the stored buffer)
    ("compare", lambda g, b: g.sum(0) > b, 2),
    # read twice: a buffer of its own
    ("reused", lambda g, b: g.sum(0) * g.sum(0)[::-1], 2),
])
def test_element_wise_ops_after_a_strided_reduction_run_in_its_kernel(name, fn, count):
    g, b = rand(256, 96), rand(96, seed=1)
    assert len(kernels(fn, g, b)) == count, name
    check(fn, g, b)


def test_a_float16_sum_keeps_a_float_accumulator():
    """The reordered reduction accumulates in the output buffer, which for float16 would
    round at every step: such sums (with their epilogue) stay a loop over the batch."""
    g = rand(64, 32, dtype=np.float16)
    fn = lambda g: g.sum(0) * 2   # noqa: E731
    got = np.asarray(fjit.jit(fn)(g), np.float64)
    np.testing.assert_allclose(got, g.astype(np.float64).sum(0) * 2, rtol=2e-3, atol=2e-2)


def test_explain_says_why_values_get_buffers():
    x = rand(64, 512)

    def softmax_gather(x, i):
        e = jnp.exp(x - x.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        return p[:, i], (x.sum(0) + (x * x).sum(0))

    text = fjit.jit(softmax_gather).lower(x, np.array([3, 1, 4], np.int32)).explain()
    assert "read 512 times per element" in text and "> recompute budget" in text
    assert "it reads another reduction" in text
    assert "kernels run in one pass over their shared outer loops (row fusion)" in text
    assert "parallel" in text and "lanes" in text


def test_explain_names_index_arrays_and_loop_operands():
    from fjit import lax
    x, idx = rand(32, 8), np.array([5, 2, 7], np.int32)

    def f(x, idx):
        rows = x[idx * 2]
        return lax.scan(lambda c, r: (c + r, c.sum()), jnp.zeros(8, jnp.float32), rows)

    text = fjit.jit(f).lower(x, idx).explain()
    assert "index array of" in text
    assert "operand of scan" in text
