"""fjit.optim: every optimizer against its formula written out in NumPy (float64) over
several steps, schedules against written-out values, chain order, masks, clipping, the
state as a jit argument (traced once), a small training run, and the errors."""
import math

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import optim
from fjit.tree_util import tree_leaves, tree_map

STEPS = 5


def _params():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((3, 2)).astype(np.float32),
            "b": rng.standard_normal(2).astype(np.float32)}


def _grads(step):
    rng = np.random.default_rng(100 + step)
    return {"w": rng.standard_normal((3, 2)).astype(np.float32),
            "b": rng.standard_normal(2).astype(np.float32)}


def _run(opt):
    """Params after each of STEPS eager steps of `opt`."""
    params = tree_map(jnp.asarray, _params())
    state = opt.init(params)
    history = []
    for step in range(STEPS):
        updates, state = opt.update(tree_map(jnp.asarray, _grads(step)), state, params)
        params = optim.apply_updates(params, updates)
        history.append(params)
    return history


def _reference(leaf_step):
    """The same trajectory from `leaf_step(p, g, st, t) -> p` in float64, leaf by leaf
    (`st` is a dict the formula keeps its state in, t the 1-based step)."""
    params = tree_map(lambda x: x.astype(np.float64), _params())
    states = {k: {} for k in params}
    history = []
    for step in range(STEPS):
        grads = _grads(step)
        params = {k: leaf_step(params[k], grads[k].astype(np.float64), states[k], step + 1)
                  for k in params}
        history.append(params)
    return history


# --- the formulas, written out ---------------------------------------------------------------

def np_sgd(lr, momentum=None, nesterov=False):
    def step(p, g, st, t):
        if momentum is not None:
            st["t"] = g + momentum * st.get("t", 0.0)
            g = g + momentum * st["t"] if nesterov else st["t"]
        return p - lr * g
    return step


def np_adam(lr, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=0.0, nesterov=False,
            trust_ratio=False):
    def step(p, g, st, t):
        st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
        st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
        if nesterov:
            m_hat = b1 * st["m"] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            m_hat = st["m"] / (1 - b1 ** t)
        v_hat = st["v"] / (1 - b2 ** t)
        u = m_hat / (np.sqrt(v_hat + eps_root) + eps) + weight_decay * p
        if trust_ratio:
            p_norm, u_norm = np.linalg.norm(p), np.linalg.norm(u)
            u = u * (p_norm / u_norm if p_norm > 0 and u_norm > 0 else 1.0)
        return p - lr * u
    return step


def np_rmsprop(lr, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, centered=False,
               momentum=None, bias_correction=False):
    def step(p, g, st, t):
        st["v"] = decay * st.get("v", initial_scale) + (1 - decay) * g * g
        st["m"] = decay * st.get("m", 0.0) + (1 - decay) * g
        v, m = st["v"], st["m"]
        if bias_correction:
            v, m = v / (1 - decay ** t), m / (1 - decay ** t)
        if centered:
            v = v - m * m
        u = -lr * (g / np.sqrt(v + eps) if eps_in_sqrt else g / (np.sqrt(v) + eps))
        if momentum is not None:
            st["t"] = u + momentum * st.get("t", 0.0)
            u = st["t"]
        return p + u
    return step


def np_adagrad(lr, initial=0.1, eps=1e-7):
    def step(p, g, st, t):
        st["s"] = st.get("s", initial) + g * g
        return p - lr * g / np.sqrt(st["s"] + eps)
    return step


def np_lion(lr, b1=0.9, b2=0.99, weight_decay=1e-3):
    def step(p, g, st, t):
        m = st.get("m", 0.0)
        u = np.sign((1 - b1) * g + b1 * m) + weight_decay * p
        st["m"] = b2 * m + (1 - b2) * g
        return p - lr * u
    return step


CASES = {
    "sgd": (optim.sgd(0.1), np_sgd(0.1)),
    "sgd_momentum": (optim.sgd(0.1, momentum=0.9), np_sgd(0.1, 0.9)),
    "sgd_nesterov": (optim.sgd(0.1, momentum=0.9, nesterov=True), np_sgd(0.1, 0.9, True)),
    "adam": (optim.adam(0.01), np_adam(0.01)),
    "adam_nesterov_eps_root": (optim.adam(0.01, b1=0.8, eps_root=1e-4, nesterov=True),
                               np_adam(0.01, b1=0.8, eps_root=1e-4, nesterov=True)),
    "adamw": (optim.adamw(0.01, weight_decay=0.1), np_adam(0.01, weight_decay=0.1)),
    "rmsprop": (optim.rmsprop(0.01), np_rmsprop(0.01)),
    "rmsprop_centered_momentum": (
        optim.rmsprop(0.01, decay=0.8, initial_scale=1.0, centered=True, momentum=0.5),
        np_rmsprop(0.01, decay=0.8, initial_scale=1.0, centered=True, momentum=0.5)),
    "rmsprop_eps_outside_debiased": (
        optim.rmsprop(0.01, eps=1e-3, eps_in_sqrt=False, bias_correction=True),
        np_rmsprop(0.01, eps=1e-3, eps_in_sqrt=False, bias_correction=True)),
    "adagrad": (optim.adagrad(0.1), np_adagrad(0.1)),
    "lamb": (optim.lamb(0.01, weight_decay=0.1),
             np_adam(0.01, eps=1e-6, weight_decay=0.1, trust_ratio=True)),
    "lion": (optim.lion(0.01), np_lion(0.01)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_optimizer_matches_formula(name):
    opt, formula = CASES[name]
    for got, want in zip(_run(opt), _reference(formula)):
        for k in want:
            assert got[k].dtype == np.float32
            np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=2e-5, atol=1e-6,
                                       err_msg=name)


def test_state_is_a_pytree_with_an_int32_count():
    opt = optim.adam(optim.linear_schedule(0.1, 0.0, 10))
    state = opt.init(_params())
    adam_state, sched_state = state
    assert isinstance(adam_state, optim.ScaleByAdamState)
    assert adam_state.count.dtype == np.int32 and adam_state.count.shape == ()
    _, state = opt.update(_grads(0), state, _params())
    _, state = opt.update(_grads(1), state, _params())
    assert int(state[0].count) == 2 and int(state[1].count) == 2
    assert state[1].count.dtype == np.int32
    assert len(tree_leaves(state)) == 1 + 2 + 2 + 1  # count, mu, nu, schedule count


def test_learning_rate_schedule_is_read_per_step():
    sched = optim.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
    params = {"x": jnp.zeros(2)}
    opt = optim.sgd(sched)
    state = opt.init(params)
    steps = []
    for _ in range(5):
        updates, state = opt.update({"x": jnp.ones(2)}, state)
        steps.append(float(updates["x"][0]))
    np.testing.assert_allclose(steps, [-1, -1, -0.5, -0.5, -0.05], rtol=1e-6)


# --- schedules -------------------------------------------------------------------------------

def _values(schedule, counts):
    """The schedule at Python-int counts and at int32-array counts (as in an optimizer)."""
    a = [float(schedule(c)) for c in counts]
    b = [float(schedule(jnp.asarray(c, dtype=jnp.int32))) for c in counts]
    np.testing.assert_allclose(a, b, rtol=1e-6)
    return a


def test_constant_and_linear_schedules():
    assert optim.constant_schedule(0.3)(7) == 0.3
    sched = optim.linear_schedule(1.0, 0.1, transition_steps=9, transition_begin=2)
    np.testing.assert_allclose(_values(sched, [0, 2, 5, 11, 20]),
                               [1.0, 1.0, 1.0 - 0.9 * 3 / 9, 0.1, 0.1], rtol=1e-6)
    poly = optim.polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
    np.testing.assert_allclose(_values(poly, [0, 5, 10]), [1.0, 0.25, 0.0], atol=1e-7)
    assert optim.linear_schedule(2.0, 1.0, transition_steps=0)(5) == 2.0


def test_exponential_decay():
    sched = optim.exponential_decay(2.0, transition_steps=4, decay_rate=0.5)
    np.testing.assert_allclose(_values(sched, [0, 1, 4, 6]),
                               [2.0, 2 * 0.5 ** 0.25, 1.0, 2 * 0.5 ** 1.5], rtol=1e-6)
    stair = optim.exponential_decay(2.0, 4, 0.5, transition_begin=3, staircase=True,
                                    end_value=0.4)
    np.testing.assert_allclose(_values(stair, [0, 3, 6, 7, 11, 40]),
                               [2.0, 2.0, 2.0, 1.0, 0.5, 0.4], rtol=1e-6)
    grow = optim.exponential_decay(1.0, 1, 2.0, end_value=5.0)  # end_value bounds it above
    np.testing.assert_allclose(_values(grow, [0, 2, 10]), [1.0, 4.0, 5.0], rtol=1e-6)
    assert optim.exponential_decay(1.5, 0, 0.5)(10) == 1.5


def test_cosine_schedules():
    sched = optim.cosine_decay_schedule(2.0, decay_steps=10, alpha=0.1)
    want = [2.0 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 10) / 10)) + 0.1)
            for t in [0, 3, 10, 15]]
    np.testing.assert_allclose(_values(sched, [0, 3, 10, 15]), want, rtol=1e-5)
    squared = optim.cosine_decay_schedule(1.0, 10, exponent=2.0)
    np.testing.assert_allclose(_values(squared, [5]), [0.25], rtol=1e-5)
    warm = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=4, decay_steps=14,
                                              end_value=0.1)
    want = [0.0, 0.5, 1.0, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 10)), 0.1, 0.1]
    np.testing.assert_allclose(_values(warm, [0, 2, 4, 9, 14, 30]), want, rtol=1e-5,
                               atol=1e-7)


def test_piecewise_constant_and_join_schedules():
    sched = optim.piecewise_constant_schedule(1.0, {5: 0.5, 2: 0.1})
    np.testing.assert_allclose(_values(sched, [0, 1, 2, 4, 5, 9]),
                               [1.0, 1.0, 0.1, 0.1, 0.05, 0.05], rtol=1e-6)
    assert optim.piecewise_constant_schedule(0.7)(3) == 0.7
    joined = optim.join_schedules([optim.constant_schedule(1.0),
                                   optim.linear_schedule(2.0, 0.0, 4),
                                   optim.constant_schedule(-1.0)], [3, 5])
    np.testing.assert_allclose(_values(joined, [0, 2, 3, 4, 5, 8]),
                               [1.0, 1.0, 2.0, 1.5, -1.0, -1.0], rtol=1e-6)


# --- transformations -------------------------------------------------------------------------

def test_chain_applies_in_order():
    g = {"x": jnp.array([0.3, -2.0, 0.8])}
    scale_then_clip = optim.chain(optim.scale(2.0), optim.clip(1.0))
    clip_then_scale = optim.chain(optim.clip(1.0), optim.scale(2.0))
    a, state = scale_then_clip.update(g, scale_then_clip.init(g))
    b, _ = clip_then_scale.update(g, clip_then_scale.init(g))
    np.testing.assert_allclose(a["x"], [0.6, -1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(b["x"], [0.6, -2.0, 1.6], rtol=1e-6)
    assert state == (optim.EmptyState(), optim.EmptyState())
    same, _ = optim.identity().update(g, optim.EmptyState())
    assert same is g


def test_clip_by_global_norm_and_global_norm():
    g = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    assert float(optim.global_norm(g)) == pytest.approx(5.0)
    clipped, _ = optim.clip_by_global_norm(2.5).update(g, optim.EmptyState())
    np.testing.assert_allclose(clipped["a"], [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[2.0]], rtol=1e-6)
    assert float(optim.global_norm(clipped)) == pytest.approx(2.5)
    kept, _ = optim.clip_by_global_norm(10.0).update(g, optim.EmptyState())
    np.testing.assert_allclose(kept["a"], [3.0, 0.0])
    zero, _ = optim.clip_by_global_norm(1.0).update({"a": jnp.zeros(2)}, optim.EmptyState())
    np.testing.assert_array_equal(zero["a"], [0.0, 0.0])


def test_weight_decay_mask():
    params = {"w": jnp.full((2, 2), 2.0), "b": jnp.full(2, 2.0), "n": {"s": jnp.ones(1)}}
    zeros = tree_map(jnp.zeros_like, params)
    for mask in [{"w": True, "b": False, "n": False},
                 lambda p: {"w": True, "b": False, "n": {"s": False}}]:
        tx = optim.add_decayed_weights(0.5, mask)
        state = tx.init(params)
        out, _ = tx.update(zeros, state, params)
        np.testing.assert_allclose(out["w"], np.ones((2, 2)))
        np.testing.assert_array_equal(out["b"], [0.0, 0.0])
        np.testing.assert_array_equal(out["n"]["s"], [0.0])
    # a masked stateful transformation keeps state only for the leaves it sees
    tx = optim.masked(optim.trace(0.9), {"w": False, "b": True, "n": False})
    state = tx.init(params)
    assert len(tree_leaves(state)) == 1
    g = tree_map(jnp.ones_like, params)
    out, state = tx.update(g, state)
    out, state = tx.update(g, state)
    np.testing.assert_allclose(out["b"], [1.9, 1.9], rtol=1e-6)
    np.testing.assert_array_equal(out["w"], np.ones((2, 2)))


def test_adamw_mask_skips_decay():
    params = {"w": jnp.ones(3), "b": jnp.ones(3)}
    opt = optim.adamw(0.1, weight_decay=0.5, mask={"w": True, "b": False})
    state = opt.init(params)
    updates, _ = opt.update({"w": jnp.zeros(3), "b": jnp.zeros(3)}, state, params)
    np.testing.assert_allclose(updates["w"], np.full(3, -0.05), rtol=1e-6)
    np.testing.assert_array_equal(updates["b"], np.zeros(3))


def test_trust_ratio_is_one_for_zero_norms():
    tx = optim.scale_by_trust_ratio()
    u, _ = tx.update({"a": jnp.array([3.0, 4.0]), "z": jnp.array([1.0])}, optim.EmptyState(),
                     {"a": jnp.array([0.6, 0.8]), "z": jnp.array([0.0])})
    np.testing.assert_allclose(u["a"], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(u["z"], [1.0])


# --- jit -------------------------------------------------------------------------------------

def test_jitted_step_equals_eager_and_traces_once():
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      optim.adamw(optim.warmup_cosine_decay_schedule(0.0, 0.1, 2, 6),
                                  weight_decay=0.01, mask={"w": True, "b": False}))
    traces = []

    def step(params, state, grads):
        traces.append(1)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    jitted = fjit.jit(step)
    p_eager = p_jit = tree_map(jnp.asarray, _params())
    s_eager = s_jit = opt.init(p_eager)
    for i in range(4):
        p_eager, s_eager = step(p_eager, s_eager, _grads(i))
        p_jit, s_jit = jitted(p_jit, s_jit, _grads(i))
    assert len(traces) == 4 + 1  # four eager calls, one trace for all jitted steps
    for a, b in zip(tree_leaves((p_eager, s_eager)), tree_leaves((p_jit, s_jit))):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_adam_fits_least_squares():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    true_w = np.array([1.5, -2.0, 0.5], np.float32)
    y = x @ true_w + 0.3
    opt = optim.adam(0.1)

    def loss(params):
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    @fjit.jit
    def step(params, state):
        updates, state = opt.update(fjit.grad(loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    state = opt.init(params)
    first = float(loss(params))
    for _ in range(300):
        params, state = step(params, state)
    assert float(loss(params)) < 1e-4 * first
    np.testing.assert_allclose(params["w"], true_w, atol=1e-2)
    assert float(params["b"]) == pytest.approx(0.3, abs=1e-2)


# --- errors ----------------------------------------------------------------------------------

def test_mismatched_trees_name_the_optimizer():
    params = {"w": jnp.ones(2), "b": jnp.ones(1)}
    wrong = {"w": jnp.ones(2)}
    for name, opt in [("adam", optim.adam(0.1)), ("lion", optim.lion(0.1)),
                      ("sgd", optim.sgd(0.1, momentum=0.9)), ("adagrad", optim.adagrad(0.1))]:
        state = opt.init(params)
        with pytest.raises(ValueError, match=f"^{name}: .*structure"):
            opt.update(wrong, state)  # against the state
        with pytest.raises(ValueError, match=f"^{name}: .*params"):
            opt.update(wrong, state, params)  # against the params
    with pytest.raises(ValueError, match="scale_by_adam: .*structure"):
        tx = optim.scale_by_adam()
        tx.update(wrong, tx.init(params))
    with pytest.raises(ValueError, match="apply_updates"):
        optim.apply_updates(params, wrong)
    with pytest.raises(TypeError, match="scale_by_adam: expected a ScaleByAdamState"):
        optim.adam(0.1).update(params, optim.sgd(0.1, 0.9).init(params))
    with pytest.raises(TypeError, match="chain: expected a tuple of 2 states"):
        optim.adam(0.1).update(params, optim.EmptyState())


def test_bad_arguments():
    with pytest.raises(TypeError, match="adam: learning_rate"):
        optim.adam("0.1")
    with pytest.raises(TypeError, match="chain: argument 1"):
        optim.chain(optim.scale(1.0), lambda g: g)
    with pytest.raises(ValueError, match="add_decayed_weights: .*params"):
        optim.add_decayed_weights(0.1).update({"w": jnp.ones(2)}, optim.EmptyState())
    with pytest.raises(ValueError, match="lamb: .*params"):
        opt = optim.lamb(0.1)
        opt.update({"w": jnp.ones(2)}, opt.init({"w": jnp.ones(2)}))
    with pytest.raises(TypeError, match="masked: mask leaves must be Python bools"):
        optim.masked(optim.scale(1.0), {"w": 1}).init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="masked: the mask's structure"):
        optim.masked(optim.scale(1.0), {"v": True}).init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="cosine_decay_schedule: decay_steps"):
        optim.cosine_decay_schedule(1.0, 0)
    with pytest.raises(ValueError, match="warmup_cosine_decay_schedule"):
        optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10)
    with pytest.raises(ValueError, match="piecewise_constant_schedule: scale"):
        optim.piecewise_constant_schedule(1.0, {3: -0.5})
    with pytest.raises(ValueError, match="join_schedules: 2 schedules need 1"):
        optim.join_schedules([optim.constant_schedule(1.0)] * 2, [1, 2])
