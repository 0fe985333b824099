"""lax.scan, fori_loop and map against Python loops, under jit, grad (orders 1 and 2), vmap
and their compositions; the errors that name the offending carry leaf."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.test_util import check_grads

rng = np.random.default_rng(0)


def python_scan(f, init, xs, length=None, reverse=False):
    """The definition of scan, as a Python loop over the leading axis."""
    leaves = fjit.tree_util.tree_leaves(xs)
    n = length if length is not None else len(leaves[0])
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, [None] * n
    for i in order:
        x = fjit.tree_util.tree_map(lambda a: a[i], xs)
        carry, ys[i] = f(carry, x)
    if ys and ys[0] is None:
        return carry, None
    return carry, fjit.tree_util.tree_map(lambda *a: jnp.stack(a), *ys)


def rnn_cell(params, h, x):
    return jnp.tanh(h @ params["w"] + x @ params["u"] + params["b"])


def _params(gen=None):
    gen = rng if gen is None else gen
    return {"w": (gen.standard_normal((4, 4)) * 0.5).astype(np.float32),
            "u": gen.standard_normal((3, 4)).astype(np.float32),
            "b": gen.standard_normal(4).astype(np.float32)}


def _close(a, b, tol=1e-5):
    for x, y in zip(fjit.tree_util.tree_leaves(a), fjit.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_the_python_loop_with_pytree_carry_and_xs(reverse):
    params = _params()
    xs = {"x": rng.standard_normal((6, 3)).astype(np.float32),
          "scale": np.linspace(0.5, 1.5, 6).astype(np.float32)}

    def step(carry, x):
        h, count = carry
        h = rnn_cell(params, h, x["x"]) * x["scale"]
        return (h, count + 1), {"h": h, "norm": jnp.sum(h * h)}

    init = (np.zeros(4, np.float32), np.int32(0))
    want = python_scan(step, init, xs, reverse=reverse)
    _close(lax.scan(step, init, xs, reverse=reverse), want)
    _close(fjit.jit(lambda i, x: lax.scan(step, i, x, reverse=reverse))(init, xs), want)
    assert lax.scan(step, init, xs)[0][1].dtype == np.int32


def test_scan_without_xs_and_with_empty_length():
    carry, ys = lax.scan(lambda c, _: (c * 2.0, c), 1.0, None, length=4)
    assert float(carry) == 16.0
    np.testing.assert_array_equal(np.asarray(ys), [1, 2, 4, 8])
    carry, ys = lax.scan(lambda c, x: (c + x, c), 3.0, np.zeros((0,), np.float32))
    assert float(carry) == 3.0 and ys.shape == (0,)


def test_fori_loop_and_map():
    assert float(lax.fori_loop(0, 5, lambda i, v: v * 2 + i, 1.0)) == 58.0
    assert float(lax.fori_loop(3, 3, lambda i, v: v + 1, 1.0)) == 1.0
    xs = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(np.asarray(lax.map(lambda r: r.sum() * 2, xs)), [2, 10, 18])
    rows = np.arange(14, dtype=np.float32).reshape(7, 2)
    for batch_size in (1, 2, 3, 7, 50):   # chunks through vmap, the remainder after them
        got = lax.map(lambda r: {"s": r.sum(), "r": r[::-1]}, rows, batch_size=batch_size)
        np.testing.assert_allclose(np.asarray(got["s"]), rows.sum(1))
        np.testing.assert_allclose(np.asarray(got["r"]), rows[:, ::-1])


def test_gradients_match_the_unrolled_loop_and_finite_differences():
    # data of its own: drawn from the module's generator it depended on which tests ran
    # before (the cuda sample changed that); the finite differences of this 5-step RNN's
    # second derivatives (values near 600) need a smaller step than check_grads' 1e-4 to
    # come within rtol 1e-5 (they run in float64)
    gen = np.random.default_rng(7)
    params = _params(gen)
    xs = gen.standard_normal((5, 3)).astype(np.float32)

    def loss_scan(p, h0, xs):
        h, hs = lax.scan(lambda h, x: (rnn_cell(p, h, x),) * 2, h0, xs)
        return jnp.sum(h) + jnp.sum(hs ** 2)

    def loss_loop(p, h0, xs):
        h, total = h0, 0.0
        for x in xs:
            h = rnn_cell(p, h, x)
            total = total + jnp.sum(h ** 2)
        return jnp.sum(h) + total

    h0 = np.full(4, 0.1, np.float32)
    g_scan = fjit.grad(loss_scan, argnums=(0, 1, 2))(params, h0, xs)
    _close(g_scan, fjit.grad(loss_loop, argnums=(0, 1, 2))(params, h0, xs), 1e-4)
    _close(fjit.jit(fjit.grad(loss_scan, argnums=(0, 1, 2)))(params, h0, xs), g_scan, 1e-4)
    check_grads(loss_scan, (params, h0, xs), order=2, eps=1e-6)


def test_fori_loop_with_static_bounds_is_reverse_differentiable():
    f = lambda v: lax.fori_loop(0, 4, lambda i, v: jnp.sin(v) * (i + 1.0), v)  # noqa: E731
    check_grads(f, (0.7,), order=2)


def test_linearize_passes_loop_invariant_weights_once():
    """The gradient of an RNN reads W in every step; it is a residual of the whole loop,
    passed once, not stacked per iteration (which would cost length x its size)."""
    params = _params()
    xs = rng.standard_normal((7, 3)).astype(np.float32)

    def loss(p):
        h, _ = lax.scan(lambda h, x: (rnn_cell(p, h, x), None), np.zeros(4, np.float32), xs)
        return jnp.sum(h)

    program = fjit.make_program(fjit.grad(loss))(params)
    scans = [e for e in program.eqns if e.primitive.name == "scan"]
    assert len(scans) == 2                       # the forward loop and the transposed one
    stacked = [v.aval.shape for e in scans for v in e.invars[e.params["num_consts"] +
                                                             e.params["num_carry"]:]]
    assert (7, 4, 4) not in stacked, stacked    # W is not stacked
    # nor are the broadcasts of h and W into the matmul's (4, 4) space: only vectors
    assert all(len(shape) <= 2 for shape in stacked), stacked


def test_vmap_over_carry_xs_and_closed_over_weights():
    params = _params()
    xs = rng.standard_normal((5, 3)).astype(np.float32)

    def run(p, h0, xs):
        return lax.scan(lambda h, x: (rnn_cell(p, h, x),) * 2, h0, xs)

    h0s = rng.standard_normal((3, 4)).astype(np.float32)
    got = fjit.vmap(run, in_axes=(None, 0, None))(params, h0s, xs)
    for k in range(3):
        _close((got[0][k], got[1][k]), python_scan(lambda h, x: (rnn_cell(params, h, x),) * 2,
                                                   h0s[k], xs))
    xss = rng.standard_normal((2, 5, 3)).astype(np.float32)
    got = fjit.jit(fjit.vmap(run, in_axes=(None, None, 0)))(params, h0s[0], xss)
    _close(got[1][1], run(params, h0s[0], xss[1])[1])
    ws = np.stack([params["w"], params["w"] * 0.5])
    got = fjit.vmap(lambda w: run(dict(params, w=w), h0s[0], xs)[0])(ws)
    _close(got[1], run(dict(params, w=ws[1]), h0s[0], xs)[0])


def test_vmap_of_grad_gives_per_example_gradients():
    params = _params()
    xss = rng.standard_normal((3, 4, 3)).astype(np.float32)

    def loss(p, xs):
        h, _ = lax.scan(lambda h, x: (rnn_cell(p, h, x), None), np.zeros(4, np.float32), xs)
        return jnp.sum(h ** 2)

    per_example = fjit.vmap(fjit.grad(loss), in_axes=(None, 0))(params, xss)
    for k in range(3):
        _close(fjit.tree_util.tree_map(lambda g: g[k], per_example),
               fjit.grad(loss)(params, xss[k]), 1e-4)


def test_unused_outputs_are_pruned_from_the_body():
    def f(c, xs):
        c, (a, b) = lax.scan(lambda c, x: (c + x, (jnp.sin(x), jnp.cos(x))), c, xs)
        return c, a
    program = fjit.make_program(f)(0.0, np.ones(3, np.float32))
    (scan,) = [e for e in program.eqns if e.primitive.name == "scan"]
    assert len(scan.outvars) == 2
    assert "cos" not in str(scan.params["program"])


def test_errors_name_the_carry_leaf_and_the_lengths():
    with pytest.raises(TypeError, match=r"carry leaf \['h'\] enters the body as f32\[4\] and "
                                        r"leaves it as f32\[2\]"):
        lax.scan(lambda c, x: ({"h": c["h"][:2]}, x), {"h": np.zeros(4, np.float32)},
                 np.ones(3, np.float32))
    with pytest.raises(TypeError, match="changed the carry's structure"):
        lax.scan(lambda c, x: ((c, c), x), 1.0, np.ones(3, np.float32))
    with pytest.raises(TypeError, match=r"carry leaf .* i32\[\] .* f32\[\]"):
        lax.scan(lambda c, x: (c * 1.5, x), np.int32(1), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="disagree on the number of iterations"):
        lax.scan(lambda c, x: (c, x), 0.0, (np.ones(3), np.ones(4)))
    with pytest.raises(ValueError, match="pass length="):
        lax.scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(TypeError, match=r"must return a pair \(carry, y\)"):
        lax.scan(lambda c, x: c, 0.0, np.ones(3))


def test_a_carry_reset_from_known_values_still_differentiates():
    """The new carry depends only on xs (not on the differentiated initial carry): the
    carry still flows through the unknown half of the split loop (select(True, new, old))."""
    xs = np.arange(1, 5, dtype=np.float32)

    def f(c0):
        c, ys = lax.scan(lambda c, x: ((x * 2.0).astype(c.dtype), c * c), c0, xs)
        return c + jnp.sum(ys)

    # ys = [c0^2, 4, 16, 36], c = 8: d/dc0 = 2 c0
    np.testing.assert_allclose(float(fjit.grad(f)(1.5)), 3.0, rtol=1e-6)
    np.testing.assert_allclose(float(fjit.jit(fjit.grad(f))(1.5)), 3.0, rtol=1e-6)
    check_grads(f, (1.5,), order=2)


def test_fori_loop_index_is_weakly_typed_like_jax():
    """With Python bounds the index is a weak int: `v + i` keeps v's int8 (JAX does the same;
    a strong int32 index made it a type error)."""
    out = lax.fori_loop(0, 3, lambda i, v: v + i, jnp.int8(1))
    assert out.dtype == np.int8 and int(out) == 4
    out = fjit.jit(lambda v: lax.fori_loop(0, 3, lambda i, v: v + i, v))(jnp.int8(1))
    assert out.dtype == np.int8 and int(out) == 4
