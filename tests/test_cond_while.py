"""lax.cond, lax.switch and lax.while_loop against Python `if` and `while`: values eager and
under jit, jvp/grad (orders 1 and 2), vmap with batched and unbatched predicates, their
compositions, and the errors that name the offending leaf."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.errors import FjitTypeError
from fjit.lax.cond import cond, switch
from fjit.lax.while_loop import while_loop
from fjit.test_util import check_grads
from fjit.tree_util import tree_leaves

rng = np.random.default_rng(0)


def _close(a, b, tol=1e-5):
    la, lb = tree_leaves(a), tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)
        assert np.asarray(x).dtype == np.asarray(y).dtype


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# --- cond and switch: values ------------------------------------------------------------------

def _true_fun(p, k):
    return {"y": jnp.sin(p["w"]) * p["s"], "n": k + 1}, p["w"].sum()


def _false_fun(p, k):
    return {"y": p["w"] - p["s"], "n": k * 2}, jnp.float32(0)


def _python_if(pred, p, k):
    return _true_fun(p, k) if pred else _false_fun(p, k)


def test_cond_matches_python_if_on_pytrees_eager_and_jit():
    p = {"w": _f32(2, 3), "s": np.float32(1.5)}
    k = np.int32(4)
    jitted = fjit.jit(lambda pred, p, k: cond(pred, _true_fun, _false_fun, p, k))
    for pred in (True, False, np.bool_(True), 0, 2, 0.0, -0.5):
        want = _python_if(bool(pred), p, k)
        _close(cond(pred, _true_fun, _false_fun, p, k), want)
        _close(jitted(jnp.asarray(bool(pred)), p, k), want)
    assert jitted._cache_size() == 1  # one Program for both predicates


def test_traced_numeric_predicates_compare_with_zero():
    f = fjit.jit(lambda p, x: cond(p, lambda x: x + 1, lambda x: x - 1, x))
    x = jnp.arange(3)
    for p, want in ((jnp.float32(0.0), x - 1), (jnp.float32(-2.0), x + 1),
                    (jnp.int32(0), x - 1), (jnp.uint8(7), x + 1)):
        _close(f(p, x), want)


def test_switch_clamps_its_index_eager_and_jit():
    branches = [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x - y]
    x, y = _f32(4), _f32(4)
    jitted = fjit.jit(lambda i, x, y: switch(i, branches, x, y))
    for i in (-3, 0, 1, 2, 7):
        want = branches[min(max(i, 0), 2)](x, y)
        _close(switch(i, branches, x, y), want)
        _close(jitted(jnp.int32(i), x, y), want)
    _close(switch(5, [lambda x: x * 3], x), x * 3)  # one branch: just a call


def test_branches_close_over_arrays_and_tracers():
    w = _f32(3)

    def f(x, scale):
        return cond(x.sum() > 0, lambda v: v * w * scale, lambda v: v + scale, x)

    x = _f32(3)
    for sign in (1, -1):
        xs = np.abs(x) * sign
        want = xs * w * 2.0 if sign > 0 else xs + 2.0
        _close(f(xs, jnp.float32(2.0)), want)
        _close(fjit.jit(f)(xs, jnp.float32(2.0)), want)
        # the closed-over tracer `scale` is an operand of cond, so it is differentiated
        _close(fjit.grad(lambda s: f(xs, s).sum())(jnp.float32(2.0)),
               np.float32((xs * w).sum() if sign > 0 else 3.0))


def test_weak_typed_branch_outputs_join_to_a_strong_type():
    f = lambda p, x: cond(p, lambda x: x, lambda x: 1.0, x)  # noqa: E731
    x = jnp.float32(3.0)
    assert not f(False, x).weak_type and not fjit.jit(f)(False, x).weak_type
    assert float(f(False, x)) == 1.0


def test_nested_cond_inside_cond_and_while():
    def f(x):
        inner = lambda v: cond(v[0] > 0, lambda u: u * 2, lambda u: -u, v)  # noqa: E731
        y = cond(x.sum() > 0, inner, lambda v: v + 100, x)
        return while_loop(lambda c: c[1].sum() < 50,
                          lambda c: (c[0] + 1, cond(c[0] % 2 == 0, lambda u: u * 2,
                                                    lambda u: u + 1, c[1])),
                          (0, jnp.abs(y) + 1))

    def python(x):
        y = (x * 2 if x[0] > 0 else -x) if x.sum() > 0 else x + 100
        n, v = 0, np.abs(y) + 1
        while v.sum() < 50:
            v = v * 2 if n % 2 == 0 else v + 1
            n += 1
        return np.int32(n), v

    for x in (np.float32([1, 2]), np.float32([-1, 3]), np.float32([-4, 1])):
        _close(f(x), tuple(np.asarray(v) for v in python(x)))
        _close(fjit.jit(f)(x), f(x))


# --- cond and switch: errors ------------------------------------------------------------------

def test_mismatched_branch_outputs_name_the_leaf_and_both_types():
    x = _f32(3)
    with pytest.raises(FjitTypeError, match=r"output\['b'\]\[1\].*f32\[3\].*f32\[2\]"):
        cond(True, lambda x: {"a": x, "b": (x, x)},
             lambda x: {"a": x, "b": (x, x[:2])}, x)
    with pytest.raises(FjitTypeError, match=r"true_fun and false_fun.*structure"):
        cond(True, lambda x: (x, x), lambda x: [x, x], x)
    with pytest.raises(FjitTypeError, match=r"branch 0 and branch 2.*output\[0\].*f32.*i32"):
        switch(0, [lambda x: (x,), lambda x: (x,), lambda x: (x.astype(jnp.int32),)], x)
    with pytest.raises(FjitTypeError, match="true_fun and false_fun"):  # under jit too
        fjit.jit(lambda p, x: cond(p, lambda x: x, lambda x: x.sum(), x))(True, x)


def test_bad_predicates_and_indices_raise_type_errors():
    x = _f32(2)
    with pytest.raises(TypeError, match="cond: the predicate must be a scalar"):
        cond(jnp.array([True, False]), lambda x: x, lambda x: x, x)
    with pytest.raises(TypeError, match="cond: the predicate is None"):
        cond(None, lambda x: x, lambda x: x, x)
    with pytest.raises(TypeError, match="switch: the branch index must be an integer"):
        switch(1.0, [lambda x: x, lambda x: x], x)
    with pytest.raises(ValueError, match="empty branch sequence"):
        switch(0, [], x)
    with pytest.raises(TypeError, match="callable"):
        cond(True, x, lambda x: x, x)
    with pytest.raises(TypeError, match=r"operands\[1\] is a str"):
        cond(True, lambda *a: a[0], lambda *a: a[0], x, "no")


# --- cond: derivatives ------------------------------------------------------------------------

def _piecewise(x, y):
    """Different residuals in each branch (the known parts save the union)."""
    return cond(jnp.sum(x) > 0,
                lambda a, b: jnp.sin(a) * jnp.exp(b) + a * b,
                lambda a, b: jnp.tanh(a * b) - b ** 3,
                x, y)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_gradients_orders_1_and_2(sign):
    x = np.abs(_f32(3)) * sign + 0.1 * sign
    y = _f32(3)
    check_grads(_piecewise, (x, y), order=2)


def test_grad_of_cond_eager_jit_and_against_the_python_branch():
    x, y = np.abs(_f32(3)), _f32(3)
    loss = lambda x, y: jnp.sum(_piecewise(x, y) ** 2)  # noqa: E731
    want = fjit.grad(lambda x, y: jnp.sum((jnp.sin(x) * jnp.exp(y) + x * y) ** 2),
                     argnums=(0, 1))(x, y)
    _close(fjit.grad(loss, argnums=(0, 1))(x, y), want)
    _close(fjit.jit(fjit.grad(loss, argnums=(0, 1)))(x, y), want)
    _close(fjit.grad(fjit.jit(loss), argnums=(0, 1))(x, y), want)  # partial eval in a Program


def test_switch_gradient_and_linearize():
    branches = [lambda x: x ** 2, lambda x: jnp.sin(x), lambda x: x * 3.0]
    x = np.float32(0.7)
    for i, want in ((0, 2 * 0.7), (1, np.cos(0.7)), (2, 3.0)):
        g = fjit.grad(lambda x: switch(i, branches, x))(x)
        np.testing.assert_allclose(g, want, rtol=1e-6)
        y, lin = fjit.linearize(lambda x: switch(jnp.int32(i), branches, x), x)
        np.testing.assert_allclose(lin(np.float32(2.0)), 2 * want, rtol=1e-6)


def test_cond_under_checkpoint_and_integer_outputs():
    def f(x):
        y, n = cond(x[0] > 0, lambda v: (jnp.sin(v) * v, jnp.int32(1)),
                    lambda v: (jnp.cos(v), jnp.int32(2)), x)
        return jnp.sum(y) * n

    x = np.abs(_f32(3))
    want = fjit.grad(f)(x)
    _close(fjit.grad(fjit.checkpoint(f))(x), want)
    _close(fjit.jit(fjit.grad(fjit.checkpoint(f)))(x), want)
    _close(want, np.cos(x) * x + np.sin(x))


# --- cond: vmap -------------------------------------------------------------------------------

def test_vmap_of_cond_with_unbatched_and_batched_predicates():
    xs = _f32(5, 3)
    w = _f32(3)
    f = lambda p, x: cond(p, lambda v: jnp.sin(v) * w, lambda v: v - w, x)  # noqa: E731
    preds = np.array([True, False, False, True, True])
    want = np.stack([f(bool(p), x) for p, x in zip(preds, xs)])
    _close(fjit.vmap(f)(preds, xs), want)                        # batched predicate
    _close(fjit.vmap(f, in_axes=(None, 0))(True, xs), np.stack([f(True, x) for x in xs]))
    _close(fjit.vmap(f, in_axes=(0, None))(preds, xs[0]),       # only the predicate
           np.stack([f(bool(p), xs[0]) for p in preds]))
    _close(fjit.jit(fjit.vmap(f))(preds, xs), want)


def test_vmap_of_switch_with_batched_index_and_operands_on_other_axes():
    branches = [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: (x - y) * 2]
    idx = np.array([2, 0, 9, -1], np.int32)
    xs, y = _f32(3, 4), _f32(3)
    got = fjit.vmap(lambda i, x: switch(i, branches, x, y), in_axes=(0, 1))(idx, xs)
    want = np.stack([branches[min(max(i, 0), 2)](xs[:, k], y) for k, i in enumerate(idx)])
    _close(got, want)


def test_vmap_of_grad_of_cond_keeps_untaken_branches_out_of_the_gradient():
    # sqrt at negative numbers is NaN: the lanes that do not take that branch must not see it
    f = lambda x: cond(x > 0, jnp.sqrt, lambda v: v * v, x)  # noqa: E731
    xs = np.float32([4.0, -3.0, 1.0, -0.5])
    want = np.float32([0.25, -6.0, 0.5, -1.0])
    _close(fjit.vmap(fjit.grad(f))(xs), want)
    _close(fjit.jit(fjit.vmap(fjit.grad(f)))(xs), want)
    _close(fjit.grad(lambda x: fjit.vmap(f)(x).sum())(xs), want)


# --- while_loop -------------------------------------------------------------------------------

def _collatz_like(c):
    n, state = c
    x = state["x"]
    return n + 1, {"x": jnp.where(x > 1.0, x * 0.5, x * 3.0 + 1.0), "m": state["m"] + x}


def _python_while(cond_fun, body_fun, val):
    while bool(cond_fun(val)):
        val = body_fun(val)
    return val


def test_while_loop_matches_python_while_on_pytrees_eager_and_jit():
    init = (np.int32(0), {"x": np.float32([7.0, 3.0, 0.2]), "m": np.zeros(3, np.float32)})
    c = lambda c: (c[0] < 6) & (c[1]["m"].sum() < 100.0)  # noqa: E731
    want = _python_while(c, _collatz_like, init)
    _close(while_loop(c, _collatz_like, init), want)
    _close(fjit.jit(lambda v: while_loop(c, _collatz_like, v))(init), want)
    # no iteration at all returns the initial value
    _close(while_loop(lambda c: c[0] < 0, _collatz_like, init), init)


def test_weakly_typed_init_values_take_the_body_type():
    out = while_loop(lambda c: c[1] < 10, lambda c: (c[0] + jnp.float32(0.5), c[1] + 1),
                     (0, 0))
    assert out[0].dtype == np.float32 and not out[0].weak_type
    assert float(out[0]) == 5.0 and int(out[1]) == 10


def test_while_loop_errors_name_the_carry_leaf():
    init = {"a": np.zeros(3, np.float32), "b": (np.int32(0), np.zeros(2, np.float32))}
    with pytest.raises(FjitTypeError, match=r"init_val\['b'\]\[1\] .*f32\[2\].*f32\[3\]"):
        while_loop(lambda c: c["b"][0] < 3,
                   lambda c: {"a": c["a"], "b": (c["b"][0] + 1, jnp.ones(3))}, init)
    with pytest.raises(FjitTypeError, match=r"init_val\['b'\]\[0\] .*i32\[\].*f32\[\]"):
        while_loop(lambda c: c["b"][0] < 3,
                   lambda c: {"a": c["a"], "b": (c["b"][0] + 1.5, c["b"][1])}, init)
    with pytest.raises(FjitTypeError, match="pytree structure"):
        while_loop(lambda c: c["b"][0] < 3, lambda c: (c["a"], c["b"]), init)
    with pytest.raises(FjitTypeError, match="cond_fun must return a boolean scalar"):
        while_loop(lambda c: c["a"] < 3, lambda c: c, init)
    with pytest.raises(FjitTypeError, match="cond_fun must return a boolean scalar"):
        while_loop(lambda c: c["b"][0], lambda c: c, init)


def _newton_sqrt(a):
    """sqrt(a) by Newton's method, stopping when the step is small (a data-dependent count)."""
    def body(c):
        x, _ = c
        new = 0.5 * (x + a / x)
        return new, jnp.abs(new - x)
    return while_loop(lambda c: jnp.max(c[1]) > 1e-6, body, (a, jnp.ones_like(a)))[0]


def test_forward_mode_through_while_works_and_reverse_mode_raises():
    a = np.float32([2.0, 9.0, 0.5])
    _close(_newton_sqrt(a), np.sqrt(a))
    _, tangent = fjit.jvp(_newton_sqrt, (a,), (np.ones(3, np.float32),))
    _close(tangent, 0.5 / np.sqrt(a), tol=1e-4)
    _close(fjit.jacfwd(_newton_sqrt)(a), np.diag(0.5 / np.sqrt(a)), tol=1e-4)
    _close(fjit.jit(fjit.jacfwd(_newton_sqrt))(a), np.diag(0.5 / np.sqrt(a)), tol=1e-4)
    check_grads(_newton_sqrt, (a,), order=2, modes=("fwd",), atol=1e-3, rtol=1e-3)
    for f in (_newton_sqrt, fjit.jit(_newton_sqrt)):  # partial evaluation stages the loop
        y, lin = fjit.linearize(f, a)
        _close(lin(np.ones(3, np.float32)), 0.5 / np.sqrt(a), tol=1e-4)
    message = "Reverse-mode differentiation does not work for fjit.lax.while_loop"
    with pytest.raises(ValueError, match=message):
        fjit.grad(lambda a: _newton_sqrt(a).sum())(a)
    with pytest.raises(ValueError, match=message):
        fjit.jit(fjit.grad(lambda a: _newton_sqrt(a).sum()))(a)


def test_linearize_runs_the_known_carries_in_a_loop_of_their_own():
    def f(x):
        return while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, c[1] * c[2], c[2]),
                          (0, x, jnp.float32(1.5)))

    (n, y, _), lin = fjit.linearize(f, np.float32(2.0))
    assert int(n) == 4 and float(y) == 2.0 * 1.5 ** 4
    np.testing.assert_allclose(lin(np.float32(1.0))[1], 1.5 ** 4)
    program = fjit.make_program(lambda x: fjit.linearize(f, x)[1](x)[1])(np.float32(2.0))
    loops = [e for e in program.eqns if e.primitive.name == "while"]
    assert len(loops) == 1 and len(loops[0].outvars) == 3  # the primal y is pruned


def test_vmap_of_while_with_batched_and_unbatched_predicates():
    def count_up(limit, x, w):
        return while_loop(lambda c: c[0] < limit,
                          lambda c: (c[0] + 1, c[1] * w + 1.0), (jnp.int32(0), x))

    limits = np.array([0, 3, 1, 5], np.int32)
    xs, w = _f32(4, 2), _f32(2)

    def python(limit, x, w):
        n = 0
        while n < limit:
            n, x = n + 1, x * w + 1.0
        return np.int32(n), x

    want = [python(lim, x, w) for lim, x in zip(limits, xs)]
    want = (np.stack([v[0] for v in want]), np.stack([v[1] for v in want]))
    _close(fjit.vmap(count_up, in_axes=(0, 0, None))(limits, xs, w), want)   # batched pred
    _close(fjit.jit(fjit.vmap(count_up, in_axes=(0, 1, None)))(limits, xs.T, w), want)
    ws = _f32(4, 2)                                                          # unbatched pred
    want = tuple(np.stack(v) for v in zip(*[python(3, xs[0], wk) for wk in ws]))
    got = fjit.vmap(count_up, in_axes=(None, None, 0))(3, xs[0], ws)
    _close(got, (np.full(4, 3, np.int32), want[1]))
    # forward-mode derivatives per lane
    got = fjit.vmap(fjit.jacfwd(_newton_sqrt))(np.float32([[2.0], [16.0]]))
    _close(got, np.float32([[[0.5 / np.sqrt(2.0)]], [[0.125]]]), tol=1e-4)


# --- compositions and Programs ----------------------------------------------------------------

def test_jit_vmap_grad_of_cond_and_hessian():
    def loss(w, x):
        z = x @ w
        return cond(z.sum() > 0, lambda z: jnp.sum(jnp.tanh(z) ** 2),
                    lambda z: jnp.sum(z ** 2) * 0.5, z)

    w, xs = _f32(3, 2), _f32(6, 4, 3)
    per_example = fjit.jit(fjit.vmap(fjit.grad(loss), in_axes=(None, 0)))(w, xs)
    want = np.stack([fjit.grad(loss)(w, x) for x in xs])
    _close(per_example, want, tol=1e-4)
    h = fjit.hessian(lambda v: cond(v[0] > 0, lambda u: jnp.sum(u ** 3),
                                    lambda u: jnp.sum(u ** 2), v))
    _close(h(np.float32([1.0, 2.0])), np.diag(np.float32([6.0, 12.0])))
    _close(h(np.float32([-1.0, 2.0])), np.diag(np.float32([2.0, 2.0])))


def test_unused_outputs_are_pruned_from_branches_and_loops():
    def f(x):
        a, b = cond(x[0] > 0, lambda v: (jnp.sin(v), jnp.exp(v)),
                    lambda v: (v * 2, jnp.cos(v)), x)
        _, y, _ = while_loop(lambda c: c[0] < 3,
                             lambda c: (c[0] + 1, c[1] * 2, jnp.tanh(c[2])), (0, a, x))
        return y

    program = fjit.make_program(f)(_f32(3))
    eqns = {e.primitive.name: e for e in program.eqns}
    branches = eqns["cond"].params["branches"]
    assert all(len(b.outvars) == 1 for b in branches)
    assert "exp" not in str(program) and "cos" not in str(program)
    assert "tanh" not in str(program) and len(eqns["while"].outvars) == 2
