"""Native loops: a scan compiles to a C loop over its body's kernels (no Python per
iteration), with carries double-buffered and ys written in place; the edge cases of which
buffer each body output lands in, checked against the reference interpreter."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.runtime.backend import executable_for


def _both(fn, *args):
    """fn's results from the compiled C Program and from the reference interpreter."""
    program = fjit.make_program(fn)(*args)
    flat_args = [np.asarray(a) for a in fjit.tree_util.tree_leaves(args)]
    return executable_for(program, "c")(flat_args), \
        executable_for(program, "reference")(flat_args)


def _check(fn, *args, tol=1e-5):
    got, want = _both(fn, *args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def _loops(fn, *args):
    return [k for k in fjit.jit(fn).lower(*args).kernels() if k.kind == "loop"]


rng = np.random.default_rng(0)
xs = rng.standard_normal((7, 3)).astype(np.float32)


def _c_source_only(backend):
    if backend == "cuda":   # lower() shows the CUDA source there
        pytest.skip("about the C target's generated loops")


def test_a_scan_is_one_native_loop(backend):
    def rnn(w, h, xs):
        return lax.scan(lambda h, x: (jnp.tanh(h @ w + x),) * 2, h, xs)
    w = rng.standard_normal((3, 3)).astype(np.float32)
    (loop,) = _loops(rnn, w, np.zeros(3, np.float32), xs)
    assert loop.body and all(b.kind in ("map", "gemm") for b in loop.body)
    _check(rnn, w, np.zeros(3, np.float32), xs)
    source = fjit.jit(rnn).lower(w, np.zeros(3, np.float32), xs).source()
    if backend == "cuda":   # the scan's iterations are launches in the one graph, not a loop
        assert "for (; it < 7LL; it++)" not in source and "fj_copy" in source
    else:
        assert "for (; it < 7LL; it++)" in source


@pytest.mark.parametrize("length", [0, 1, 2, 5])
def test_lengths_even_odd_and_zero_leave_the_carry_in_the_output(length):
    f = lambda c, xs: lax.scan(lambda c, x: (c * 0.5 + x, c), c, xs)  # noqa: E731
    _check(f, np.ones(3, np.float32), xs[:length])


def test_outputs_that_no_body_kernel_writes_are_copied():
    def f(c, xs):
        def body(carry, x):
            a, b, n = carry
            # b passes through, y repeats the new carry, a literal y, an x passed straight on
            return (a + x, b, n + 1), (a + x, a + x, 3.0, x)
        return lax.scan(body, c, xs, reverse=True)
    _check(f, (np.zeros(3, np.float32), np.full(3, 2.0, np.float32), np.int32(0)), xs)


def test_nested_scans_and_closed_over_consts():
    w = rng.standard_normal((3,)).astype(np.float32)

    def f(w, c, xss):
        def outer(c, xs):
            c, ys = lax.scan(lambda c2, x: (c2 * w + x, c2.sum()), c, xs)
            return c, ys
        return lax.scan(outer, c, xss)
    xss = rng.standard_normal((4, 5, 3)).astype(np.float32)
    loops = _loops(f, w, np.zeros(3, np.float32), xss)
    assert len(loops) == 1 and any(b.kind == "loop" for b in loops[0].body)
    _check(f, w, np.zeros(3, np.float32), xss)


def test_gradients_and_vmap_of_scans_run_natively():
    w = (rng.standard_normal((3, 3)) * 0.5).astype(np.float32)

    def loss(w, xs):
        h, _ = lax.scan(lambda h, x: (jnp.tanh(h @ w + x), None), jnp.zeros(3), xs)
        return jnp.sum(h ** 2)
    grad = fjit.grad(loss)
    assert len(_loops(grad, w, xs)) == 2  # forward and transposed
    _check(grad, w, xs, tol=1e-4)
    batched = fjit.vmap(loss, in_axes=(None, 0))
    _check(batched, w, np.stack([xs, xs * 2]), tol=1e-4)


def test_while_and_cond_are_native_too(backend):
    _c_source_only(backend)
    def f(x, n):
        def body(c):
            i, v = c
            # one branch passes its operand through (a copy), the other computes
            v = lax.cond(v.sum() > 10, lambda v: v, lambda v: v * 1.5 + 1, v)
            return i + 1, v
        return lax.while_loop(lambda c: c[0] < n, body, (0, x))
    x = np.ones(3, np.float32)
    kinds = [k.kind for k in fjit.jit(f).lower(x, np.int32(7)).kernels()]
    assert kinds == ["while"]
    (loop,) = fjit.jit(f).lower(x, np.int32(7)).kernels()
    assert "cond" in [b.kind for b in loop.body]
    for n in (0, 1, 2, 7):            # no iteration, odd and even trip counts
        _check(f, x, np.int32(n))


def test_switch_clamps_its_index_and_fori_with_traced_bounds_loops_natively(backend):
    _c_source_only(backend)
    branches = [lambda v: v - 1.0, lambda v: v * 2.0, lambda v: jnp.sin(v)]
    g = lambda i, v: lax.switch(i, branches, v)  # noqa: E731
    for i in (-3, 0, 1, 2, 9):
        _check(g, np.int32(i), xs[0])
    h = lambda lo, hi, v: lax.fori_loop(lo, hi, lambda i, v: v * 0.5 + i, v)  # noqa: E731
    assert [k.kind for k in fjit.jit(h).lower(np.int32(0), np.int32(3), xs[0]).kernels()] \
        == ["while"]
    _check(h, np.int32(2), np.int32(9), xs[0])


def test_compositions_of_control_flow_agree_with_the_reference():
    w = (rng.standard_normal((3, 3)) * 0.5).astype(np.float32)

    def loss(w, xs):
        def body(h, x):
            h = jnp.tanh(h @ w + x)
            h = lax.cond(jnp.sum(h) > 0, lambda h: h * 0.5, lambda h: -h, h)
            return h, jnp.sum(h)
        h, ys = lax.scan(body, jnp.ones(3), xs, reverse=True)
        return jnp.sum(h) + jnp.sum(ys ** 2)
    _check(fjit.grad(loss), w, xs, tol=1e-4)
    _check(fjit.vmap(fjit.grad(loss), in_axes=(None, 0)), w, np.stack([xs, -xs]), tol=1e-4)
    # a while loop whose trip count differs per lane, under vmap
    count = lambda x: lax.while_loop(lambda c: c[1] < x, lambda c: (c[0] + 1, c[1] * 2.0),  # noqa: E731
                                     (0, 1.0))[0]
    _check(fjit.vmap(count), np.array([0.5, 3.0, 100.0], np.float32))
    # forward mode through a while loop
    f = lambda v: lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, jnp.sin(c[1])),  # noqa: E731
                                 (0, v))[1]
    _check(lambda v, t: fjit.jvp(f, (v,), (t,)), xs[0], np.ones(3, np.float32))


def test_an_eager_scan_is_one_native_loop(backend, monkeypatch):
    """Outside jit, scan and while run their whole loop as one compiled Program (on the
    reference backend: a Python loop over the body)."""
    from fjit.lax.loops import scan_p
    from fjit.runtime import eager
    seen = []
    original = eager._runners[scan_p]

    def spy(values, params, backend_name):
        seen.append(params["program"])
        return original(values, params, backend_name)
    monkeypatch.setitem(eager._runners, scan_p, spy)
    carry, ys = lax.scan(lambda c, x: (c * 0.5 + x, c.sum()), np.zeros(3, np.float32), xs)
    monkeypatch.undo()
    python_loop = np.zeros(3, np.float32)
    for x in xs:
        python_loop = python_loop * 0.5 + x
    np.testing.assert_allclose(np.asarray(carry), python_loop, rtol=1e-6)
    compiled = [k for k in seen[0].cache if isinstance(k, tuple) and k[0] == "as_program"]
    assert bool(compiled) == (backend != "reference")


def test_control_flow_impls_are_the_numpy_reference():
    """A control-flow primitive's `impl` evaluates its sub-Programs with the NumPy references
    (no backend): the same values as eager evaluation."""
    from fjit.lax.loops import scan_p
    from fjit.lax.while_loop import while_p
    from fjit.lax.cond import cond_p
    body = fjit.make_program(lambda c, x: (c * 0.5 + x, c.sum()))(np.zeros(3, np.float32), xs[0])
    carry, ys = scan_p.impl(np.zeros(3, np.float32), xs, program=body, num_consts=0,
                            num_carry=1, length=len(xs), reverse=False, unroll=1, name="f")
    want_carry, want_ys = lax.scan(lambda c, x: (c * 0.5 + x, c.sum()), np.zeros(3, np.float32),
                                   xs)
    np.testing.assert_array_equal(carry, want_carry)
    np.testing.assert_array_equal(ys, want_ys)
    test = fjit.make_program(lambda c: c < 10)(np.int32(0))
    step = fjit.make_program(lambda c: c * 3 + 1)(np.int32(0))
    assert while_p.impl(np.int32(1), cond_program=test, body_program=step, cond_nconsts=0,
                        body_nconsts=0) == [13]
    branches = (fjit.make_program(lambda v: v - 1.0)(xs[0]),
                fjit.make_program(lambda v: v * 2.0)(xs[0]))
    np.testing.assert_array_equal(cond_p.impl(np.int32(5), xs[0], branches=branches)[0],
                                  xs[0] * 2.0)


def test_swapped_and_repeated_carries_empty_arrays_and_literal_branches():
    swap = lambda a, b, xs: lax.scan(lambda c, x: ((c[1] + x, c[0], c[1] + x), None),  # noqa: E731
                                     (a, b, b), xs)[0]
    _check(swap, np.ones(3, np.float32), np.full(3, 2.0, np.float32), xs[:5])
    _check(swap, np.ones(3, np.float32), np.full(3, 2.0, np.float32), xs[:4])
    loop_swap = lambda a, b: lax.while_loop(  # noqa: E731
        lambda c: c[2] < 3, lambda c: (c[1], c[0] * 2.0, c[2] + 1), (a, b, 0))
    _check(loop_swap, np.ones(2, np.float32), np.full(2, 3.0, np.float32))
    empty = lambda c, xs: lax.scan(lambda c, x: (c + x.sum(), x * 2), c, xs)  # noqa: E731
    _check(empty, np.float32(1), np.zeros((4, 0), np.float32))
    branches = lambda i, v: lax.switch(i, [lambda v: (v, 1.0), lambda v: (v * 2, v.sum())], v)  # noqa: E731
    for i in (0, 1):
        _check(branches, np.int32(i), xs[0])


@pytest.mark.parametrize("unroll", [3, True])
def test_unrolled_scans_run_several_iterations_per_trip(unroll, backend):
    _c_source_only(backend)
    f = lambda c, xs: lax.scan(lambda c, x: (c * 0.5 + x, c.sum()), c,  # noqa: E731
                               xs, reverse=True, unroll=unroll)
    source = fjit.jit(f).lower(np.zeros(3, np.float32), xs).source()
    step = 3 if unroll == 3 else 7
    assert f"it += {step}" in source
    _check(f, np.zeros(3, np.float32), xs)
    with pytest.raises(ValueError, match="unroll must be a positive"):
        lax.scan(lambda c, x: (c, x), 0.0, xs, unroll=0)
