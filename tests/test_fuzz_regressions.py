"""Bugs the differential fuzzer (fjit.testing.fuzz) found in campaigns, each as the smallest
program that showed it, checked against NumPy on every backend."""
import numpy as np

import fjit
import fjit.numpy as jnp


def test_contraction_whose_kept_axis_only_broadcasts():
    """sum(broadcast(a) * broadcast(b), axis=1) where neither factor has axis 0: the reference
    backend folded it into an einsum with an output letter no operand has (ValueError); the
    fuzzer met it as grad of einsum('i,j->ij') summed over axis -2, at size 0."""
    def f(a, b):
        return jnp.sum(jnp.broadcast_to(a, (4, 3)) * jnp.broadcast_to(b, (4, 3)), axis=1)
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(fjit.jit(f)(x, x), np.full(4, (x * x).sum(), np.float32))

    def g(x2, x3):
        return jnp.sum(jnp.einsum("i,j->ij", x2, x3), axis=-2)
    for n in (0, 3):
        a, b = np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32) + 1
        da, db = fjit.jit(fjit.grad(lambda a, b: jnp.sum(g(a, b) * 2.0), argnums=(0, 1)))(a, b)
        np.testing.assert_allclose(da, np.full(n, 2.0 * b.sum()))
        np.testing.assert_allclose(db, np.full(n, 2.0 * a.sum()))


def test_a_reduction_over_one_element_is_that_element():
    """A sum over extent-1 axes keeps a -0.0 (the compiled code skips the loop, as XLA does);
    eager NumPy folded it into +0.0 and the reference's einsum did too, so grad of
    log(conv(x, 1x1 kernel)) at x = -0.0 was -inf compiled and +inf on the reference."""
    from fjit import nn
    x = np.array([1.0, -1.5, -0.5, -0.0], np.float32).reshape(1, 1, 2, 2)
    w = np.ones((1, 1, 1, 1), np.float32)
    y = fjit.jit(nn.conv)(x, w)
    np.testing.assert_array_equal(np.signbit(np.asarray(y)), np.signbit(x))
    g = fjit.jit(fjit.grad(lambda x: jnp.sum(jnp.log(nn.conv(x, w)))))(x)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(np.asarray(g), 1 / x)
    for eager in (False, True):
        s = jnp.sum(jnp.asarray(x), axis=1) if eager else fjit.jit(lambda v: jnp.sum(v, 1))(x)
        assert np.signbit(np.asarray(s)[0, 1, 1])


def _f16_contraction_case():
    """A float16 batched matmul whose float16-rounded products cancel: 1.076 - 0.9365 ...
    sums to 0.07367 from rounded products but 0.0731 (the float64 value, 0.07315, rounded)
    from exact ones."""
    a = np.array([[[-0.0, 0.75, -0.5, 0.75, -0.75]]], np.float16)
    b = np.array([0.59, 1.435, 0.05667, -1.249, 0.05023], np.float16).reshape(1, 5, 1)
    exact = np.einsum("bij,bjk->bik", a.astype(np.float64), b.astype(np.float64))
    return a, b, exact.astype(np.float16)


def test_float16_contraction_accumulates_exact_products_in_float32():
    """Campaign program (12, 4756): the C backend rounded each float16 product of an einsum
    to float16 (and accumulated strided sums in the float16 output), so v0 = 0.07367 where
    the reference (and XLA: float32 products and accumulation, one rounding) gave 0.0731;
    grad of x / v0**2 then overflowed float16 on one backend and not on the other."""
    a, b, want = _f16_contraction_case()
    f = fjit.jit(lambda x, y: jnp.einsum("bij,bjk->bik", x, y))
    np.testing.assert_array_equal(np.asarray(f(a, b)), want)
    np.testing.assert_array_equal(np.asarray(jnp.einsum("bij,bjk->bik", a, b)), want)
    # the output's strided axis first: a sum accumulated along the output rows
    at = np.ascontiguousarray(np.broadcast_to(a.reshape(5, 1), (5, 4)))
    g = fjit.jit(lambda x, y: jnp.sum(x * y, axis=0))
    np.testing.assert_array_equal(np.asarray(g(at, np.broadcast_to(b.reshape(5, 1), (5, 4)))),
                                  np.full(4, want.item(), np.float16))


def test_float16_sum_read_in_the_same_kernel_is_rounded():
    """The shrunk reproducer of (12, 4756): a float16 einsum converted to float32 and used
    in the same kernel was its float32 accumulator, never rounded to float16 (2.2795 where
    the float16 result is 2.28)."""
    x = np.array([[1.0, 1.0]], np.float16)
    y = np.array([1.25, 1.0302734375], np.float16).reshape(1, 2, 1)  # sums to 2.2802734375
    want = np.float32(np.float16(2.2802734375))
    f = fjit.jit(lambda x, y: jnp.einsum("bj,bjk->bk", x, y).astype(jnp.float32) * 1.0)
    np.testing.assert_array_equal(np.asarray(f(x, y)), np.full((1, 1), want))


def test_concatenate_of_int32_then_arithmetic_reads_the_right_elements():
    """Campaign program (22, 2521): gcc 12.2 at -O3 -march=native with -fwrapv vectorised the
    clamped indices of a concatenate (`a < b ? a : b`) into gathers that read the wrong
    element; -1 - concatenate((b, a, a), axis=3) had -3 where -115 belongs."""
    a = np.arange(8, dtype=np.int32).reshape(2, 2, 1, 2)
    b = 100 + np.arange(20, dtype=np.int32).reshape(2, 2, 1, 5)
    want = -1 - np.concatenate((b, a, a), axis=3)
    got = fjit.jit(lambda a, b: -1 - jnp.concatenate((b, a, a), axis=3))(a, b)
    np.testing.assert_array_equal(np.asarray(got), want)
    got = fjit.jit(fjit.vmap(lambda a, b: -1 - jnp.concatenate((b, a, a), axis=2)))(a, b)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_pad_read_through_a_slice_keeps_the_pad_offset():
    """Campaign program (32, 4818): pad by one then slice from one composes the reindexes
    `i0 - 1` and `i0 + 1` into `i0`; substitution then replaced that folded `i0` a second
    time (`i0 + 1`), so jit read one element too far: [2, 3, 0, 0, 0]."""
    x = np.arange(1, 4, dtype=np.float32)
    want = np.pad(x, (1, 2))[-5:]
    np.testing.assert_array_equal(fjit.jit(lambda v: jnp.pad(v, ((1, 2),))[-5:])(x), want)
    np.testing.assert_array_equal(fjit.jit(lambda v: jnp.pad(v, 2)[1:-1][1:])(x),
                                  np.pad(x, 2)[1:-1][1:])


def test_row_fusion_of_many_kernels_nests_one_level_deep(x64):
    """Campaign program (31, 3448): x ** (x ** k) on int64 unrolls two 64-step powers whose
    kernels row fusion merged one by one, each merge wrapping the last in a deeper block, so
    rendering the C overflowed Python's recursion limit (RecursionError)."""
    x = np.array([-3, -4, -4, 1, 1], np.int64)
    k = np.array([[0], [2]], np.int64)   # exponents x ** k >= 0, where NumPy is defined
    got = fjit.jit(lambda x, k: x ** (x ** k))(x, k)
    np.testing.assert_array_equal(got, x ** (x ** k))


def test_a_value_compared_with_its_own_maximum_is_not_recomputed_differently():
    """Campaign program (42, 1993): grad(min(arctan2(x, 2))).  The min kernel computed
    atan2 in a scalar loop (glibc), the indicator `y == min(y)` recomputed it in a simd loop
    (libmvec), the two differed in the last bit, no element was the minimum and the gradient
    came out 0 (or halved).  A libm value that is both reduced and compared is now stored
    once."""
    x = np.array([[-2.0441439, -0.72122657, -1.1224629, -0.54395384]], np.float32)
    g = fjit.jit(fjit.grad(lambda x: jnp.min(jnp.arctan2(x, 2))))(x)
    want = np.zeros_like(x)
    want[0, 0] = 2 / (x[0, 0] ** 2 + 4)        # d/dx atan2(x, 2) at the minimum
    np.testing.assert_allclose(g, want, rtol=1e-6)
    rng = np.random.default_rng(0)
    for fn in (jnp.tanh, jnp.exp, jnp.sin):
        v = rng.standard_normal(1003).astype(np.float32)
        count = fjit.jit(lambda v: jnp.sum(fn(v) == jnp.max(fn(v))))(v)
        assert int(count) == 1, fn
        grad = fjit.jit(fjit.grad(lambda v: jnp.max(fn(v))))(v)
        assert np.count_nonzero(np.asarray(grad)) == 1, fn
    # compared after a gather or a broadcast (found in review: 0 for 11 of 20 seeds of exp)
    for seed in range(20):
        v = np.random.default_rng(seed).standard_normal(37).astype(np.float32)
        at_argmax = fjit.jit(lambda v: jnp.sum(jnp.exp(v) == jnp.exp(v)[jnp.argmax(jnp.exp(v))]))
        assert int(at_argmax(v)) == 1, seed
        outer = fjit.jit(lambda v: jnp.sum(jnp.tanh(v)[:, None] == jnp.tanh(v)[None, :]))
        assert int(outer(v)) == 37, seed


def test_scatter_set_with_a_small_inner_dimension():
    """Campaign program (41, 2763): `x.at[idx].set(v)` on a [4, 3, 1] array returned 0 at
    rows idx does not name.  gcc 12.2 moved a load under a condition (jump threading), made it
    a masked load and vectorised that wrongly in a loop whose 3-long inner loop it had
    unrolled; the C target now builds with -fno-thread-jumps -fno-tree-sink."""
    for shape in [(4, 3, 1), (6, 5, 1), (4, 3), (3, 16, 1)]:
        x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        for idx in ([0, 2], [1], [0, 1, 2]):
            got = fjit.jit(lambda x, v: x.at[np.array(idx, np.int32)].set(v))(x, np.float32(-1))
            want = x.copy()
            want[idx] = -1
            np.testing.assert_array_equal(got, want, err_msg=f"{shape} {idx}")
