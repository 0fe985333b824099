"""Scan-over-iterations: train_loop and the cross_iteration rotation give results identical
bit for bit to the plain loop, move the update to the start of the body, compose with vmap
(several models at once) and jit, and leave loops without an element-wise tail alone."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax, optim

rng = np.random.default_rng(6)
X = rng.uniform(-1, 1, (50, 1)).astype(np.float32)
Y = X ** 2


def _params(seed=0):
    r = np.random.default_rng(seed)
    return [r.standard_normal((1, 10)).astype(np.float32), np.zeros(10, np.float32),
            (r.standard_normal((10, 1)) * 0.3).astype(np.float32), np.zeros(1, np.float32)]


def loss(p, x, y):
    w1, b1, w2, b2 = p
    h = 1 / (1 + jnp.exp(-(x @ w1 + b1)))
    return jnp.mean((h @ w2 + b2 - y) ** 2)


def sgd_step(p, batch):
    x, y = batch
    value, g = fjit.value_and_grad(loss)(p, x, y)
    return [a - 0.1 * b for a, b in zip(p, g)], value


def _batches(n):
    return np.broadcast_to(X, (n,) + X.shape).copy(), np.broadcast_to(Y, (n,) + Y.shape).copy()


def _same(a, b):
    for u, v in zip(fjit.tree_util.tree_leaves(a), fjit.tree_util.tree_leaves(b)):
        assert np.asarray(u).dtype == np.asarray(v).dtype
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("steps", [0, 1, 2, 25])
def test_rotated_loop_is_bit_for_bit_the_plain_loop(steps):
    batches = _batches(steps)
    plain = fjit.jit(lambda p, b: fjit.train_loop(sgd_step, p, b))(_params(), batches)
    rotated = fjit.jit(lambda p, b: fjit.train_loop(sgd_step, p, b, cross_iteration=True))(
        _params(), batches)
    _same(plain, rotated)
    if steps:  # and the loop itself is the Python loop of steps
        p = _params()
        for i in range(steps):
            p, _ = sgd_step(p, (batches[0][i], batches[1][i]))
        for a, b in zip(p, plain[0]):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_optimizer_state_with_a_step_count_rotates_exactly():
    """Adam's update reads its step count and moments (carries updated in the tail too)."""
    opt = optim.adam(0.05)

    def step(state, batch):
        p, s = state
        value, g = fjit.value_and_grad(loss)(p, *batch)
        updates, s = opt.update(g, s, p)
        return (optim.apply_updates(p, updates), s), value

    state = (_params(), opt.init(_params()))
    batches = _batches(6)
    _same(fjit.jit(lambda s, b: fjit.train_loop(step, s, b))(state, batches),
          fjit.jit(lambda s, b: fjit.train_loop(step, s, b, cross_iteration=True))(state,
                                                                                   batches))


def test_the_update_moves_to_the_start_of_the_body():
    batches = _batches(3)
    before = fjit.make_program(lambda p, b: fjit.train_loop(sgd_step, p, b))(_params(), batches)
    after = fjit.make_program(fjit.cross_iteration(
        lambda p, b: fjit.train_loop(sgd_step, p, b)))(_params(), batches)
    (scan_before,) = [e for e in before.eqns if e.primitive.name == "scan"]
    (scan_after,) = [e for e in after.eqns if e.primitive.name == "scan"]
    body_before = [e.primitive.name for e in scan_before.params["program"].eqns]
    body_after = [e.primitive.name for e in scan_after.params["program"].eqns]
    assert body_before[-2:] == ["mul", "sub"]            # the update ends the step ...
    assert body_after[:2] == ["mul", "sub"] and "select" in body_after[:12]  # ... now starts it
    # the carry grows by the gradients and the `first` flag; the final update follows the loop
    assert scan_after.params["num_carry"] == scan_before.params["num_carry"] + 4 + 1
    assert [e.primitive.name for e in after.eqns].count("select") == 4


def test_loops_without_an_elementwise_tail_are_left_alone():
    m = np.eye(3, dtype=np.float32)

    def f(c, xs):   # the new carry comes out of a contraction, not an element-wise op
        return lax.scan(lambda c, x: ((c * x) @ m, c), c, xs)
    args = (np.ones(3, np.float32), np.ones((4, 3), np.float32))
    assert str(fjit.make_program(fjit.cross_iteration(f))(*args)) == \
        str(fjit.make_program(f)(*args))


def test_vmap_trains_several_models_at_once_and_grad_composes():
    batches = _batches(5)
    seeds = [_params(s) for s in range(3)]
    stacked = [np.stack(leaves) for leaves in zip(*seeds)]
    train = lambda p: fjit.train_loop(sgd_step, p, batches, cross_iteration=True)  # noqa: E731
    many = fjit.jit(fjit.vmap(train))(stacked)
    for k in range(3):
        one = fjit.jit(train)(seeds[k])
        for a, b in zip(fjit.tree_util.tree_leaves(many), fjit.tree_util.tree_leaves(one)):
            np.testing.assert_allclose(np.asarray(a)[k], np.asarray(b), rtol=1e-5, atol=1e-6)
    # the final loss as a function of the learning-rate-free initial bias: grad through it
    final = lambda b2: fjit.train_loop(  # noqa: E731
        sgd_step, [*_params()[:3], b2], batches, cross_iteration=True)[1][-1]
    g = fjit.grad(final)(np.zeros(1, np.float32))
    eps = 1e-3
    fd = (final(np.full(1, eps, np.float32)) - final(np.full(1, -eps, np.float32))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=2e-2, atol=1e-3)

