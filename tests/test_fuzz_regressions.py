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
