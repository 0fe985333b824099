"""fjit.nn layers: forward passes against NumPy written from the definitions, the state and
key conventions, gradients by finite differences, and loading PyTorch-layout state_dicts."""
import math

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import nn, random
from fjit.test_util import check_grads

rng = np.random.default_rng(1)


def _data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _close(got, want, tol=1e-5):
    np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)


def test_linear_is_x_at_weight_plus_bias():
    layer = nn.Linear(4, 3)
    p = {"weight": _data(4, 3), "bias": _data(3)}
    x = _data(5, 4)
    _close(layer.apply(p, x), x @ p["weight"] + p["bias"])
    _close(nn.Linear(4, 3, bias=False).apply({"weight": p["weight"]}, x), x @ p["weight"])
    with pytest.raises(TypeError, match=r"Linear\(4, 3\): input of shape \(5, 3\)"):
        layer.apply(p, _data(5, 3))


def test_conv_layers_add_the_bias_per_channel():
    x = _data(2, 3, 6, 6)
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    p = {"weight": _data(4, 3, 3, 3), "bias": _data(4)}
    _close(layer.apply(p, x), np.asarray(nn.conv(x, p["weight"], 2, 1))
           + p["bias"][None, :, None, None])
    t = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    pt = {"weight": _data(3, 2, 3, 3), "bias": _data(2)}
    y = t.apply(pt, x)
    assert y.shape == (2, 2, 12, 12)
    _close(y, np.asarray(nn.conv_transpose(x, pt["weight"], 2, 1, 1))
           + pt["bias"][None, :, None, None])
    c1 = nn.Conv1d(3, 2, 3, groups=1, bias=False)
    assert c1.apply({"weight": _data(2, 3, 3)}, _data(2, 3, 7)).shape == (2, 2, 5)
    with pytest.raises(TypeError, match=r"Conv2d\(3, 4, \(3, 3\).*expected input \(N, 3"):
        layer.apply(p, _data(2, 2, 6, 6))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_pooling_flatten_and_global_pools():
    x = _data(2, 3, 4, 6)
    _close(nn.MaxPool2d(2).apply({}, x), x.reshape(2, 3, 2, 2, 3, 2).max((3, 5)))
    _close(nn.AvgPool2d(2).apply({}, x), x.reshape(2, 3, 2, 2, 3, 2).mean((3, 5)))
    _close(nn.GlobalAvgPool().apply({}, x), x.mean((2, 3)))
    _close(nn.GlobalMaxPool(keepdims=True).apply({}, x), x.max((2, 3), keepdims=True))
    assert nn.Flatten().apply({}, x).shape == (2, 72)
    assert nn.Flatten(0, 1).apply({}, x).shape == (6, 4, 6)


def _batchnorm_reference(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) \
        + b.reshape(shape)


def test_batchnorm_trains_on_batch_statistics_and_evaluates_on_running_ones():
    bn = nn.BatchNorm2d(3, momentum=0.2)
    params = {"weight": _data(3), "bias": _data(3)}
    state = bn.init_state()
    x = _data(4, 3, 5, 5) * 2 + 1
    y, new = bn.apply(params, x, state=state, train=True)
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    _close(y, _batchnorm_reference(x, mean, var, params["weight"], params["bias"], 1e-5), 1e-4)
    n = 4 * 25
    _close(new["running_mean"], 0.8 * 0 + 0.2 * mean)
    _close(new["running_var"], 0.8 * 1 + 0.2 * var * n / (n - 1))
    y_eval, same = bn.apply(params, x, state=new, train=False)
    _close(y_eval, _batchnorm_reference(x, np.asarray(new["running_mean"]),
                                        np.asarray(new["running_var"]), params["weight"],
                                        params["bias"], 1e-5), 1e-4)
    assert same is new
    with pytest.raises(TypeError, match="keeps running statistics"):
        bn.apply(params, x)
    x1 = _data(8, 3)
    y1, _ = nn.BatchNorm1d(3, affine=False).apply({}, x1, state=bn.init_state(), train=True)
    _close(y1, (x1 - x1.mean(0)) / np.sqrt(x1.var(0) + 1e-5), 1e-4)


def test_layernorm_and_groupnorm():
    x = _data(2, 4, 3, 5)
    ln = nn.LayerNorm((3, 5))
    p = {"weight": _data(3, 5), "bias": _data(3, 5)}
    mean = x.mean((2, 3), keepdims=True)
    var = x.var((2, 3), keepdims=True)
    _close(ln.apply(p, x), (x - mean) / np.sqrt(var + 1e-5) * p["weight"] + p["bias"], 1e-4)
    gn = nn.GroupNorm(2, 4)
    pg = {"weight": _data(4), "bias": _data(4)}
    g = x.reshape(2, 2, -1)
    want = ((g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5))
    want = want.reshape(x.shape) * pg["weight"][None, :, None, None] \
        + pg["bias"][None, :, None, None]
    _close(gn.apply(pg, x), want, 1e-4)
    with pytest.raises(TypeError, match="does not end in"):
        ln.apply(p, _data(2, 5, 3))


def test_embedding_looks_up_rows():
    table = _data(10, 4)
    ids = np.array([[1, 9], [0, 1]])
    _close(nn.Embedding(10, 4).apply({"weight": table}, ids), table[ids])
    with pytest.raises(TypeError, match="ids must be integers"):
        nn.Embedding(10, 4).apply({"weight": table}, ids.astype(np.float32))


def _attention_reference(p, q_in, kv_in, heads, mask=None):
    def proj(name, t):
        return t @ p[name]["weight"] + p[name]["bias"]
    q, k, v = proj("query", q_in), proj("key", kv_in), proj("value", kv_in)
    N, L, E = q.shape
    S, D = kv_in.shape[1], E // heads
    q = q.reshape(N, L, heads, D).transpose(0, 2, 1, 3)
    k = k.reshape(N, S, heads, D).transpose(0, 2, 1, 3)
    v = v.reshape(N, S, heads, D).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    out = (w @ v).transpose(0, 2, 1, 3).reshape(N, L, E)
    return proj("out", out)


def _attention_params(E, kdim=None):
    kdim = kdim or E
    return {"query": {"weight": _data(E, E), "bias": _data(E)},
            "key": {"weight": _data(kdim, E), "bias": _data(E)},
            "value": {"weight": _data(kdim, E), "bias": _data(E)},
            "out": {"weight": _data(E, E), "bias": _data(E)}}


def test_multi_head_attention_self_cross_and_masked():
    attn = nn.MultiHeadAttention(8, 2)
    p = _attention_params(8)
    x, y = _data(2, 5, 8) * 0.3, _data(2, 3, 8) * 0.3
    _close(attn.apply(p, x), _attention_reference(p, x, x, 2), 1e-4)
    _close(attn.apply(p, x, y), _attention_reference(p, x, y, 2), 1e-4)
    causal = np.tril(np.ones((5, 5), bool))
    _close(attn.apply(p, x, mask=causal), _attention_reference(p, x, x, 2, causal), 1e-4)
    cross = nn.MultiHeadAttention(8, 4, kdim=6, vdim=6)
    pc = _attention_params(8, 6)
    z = _data(2, 3, 6) * 0.3
    _close(cross.apply(pc, x, z), _attention_reference(pc, x, z, 4), 1e-4)


def test_sequential_names_children_by_position_and_threads_state():
    model = nn.Sequential(nn.Linear(3, 4), nn.relu, nn.BatchNorm1d(4), nn.Linear(4, 2))
    params = {"0": {"weight": _data(3, 4), "bias": _data(4)},
              "2": {"weight": np.ones(4, np.float32), "bias": np.zeros(4, np.float32)},
              "3": {"weight": _data(4, 2), "bias": _data(2)}}
    state = model.init_state()
    assert list(state) == ["2"] and model.has_state
    x = _data(6, 3)
    y, new_state = model.apply(params, x, state=state, train=True)
    h = np.maximum(x @ params["0"]["weight"] + params["0"]["bias"], 0)
    h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)
    _close(y, h @ params["3"]["weight"] + params["3"]["bias"], 1e-4)
    _close(new_state["2"]["running_mean"], 0.1 * (x @ params["0"]["weight"]
                                                  + params["0"]["bias"]).clip(0).mean(0), 1e-5)
    assert len(model) == 4 and isinstance(model[1], nn.Lambda)
    with pytest.raises(TypeError, match="expected a layer"):
        nn.Sequential(nn.Linear(2, 2), 3)


def test_layers_differentiate_by_finite_differences():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.GroupNorm(1, 3), nn.tanh,
                          nn.AvgPool2d(2), nn.Flatten(), nn.LayerNorm(12), nn.Linear(12, 2))
    params = {"0": {"weight": _data(3, 2, 3, 3) * 0.5, "bias": _data(3)},
              "1": {"weight": _data(3), "bias": _data(3)},
              "5": {"weight": _data(12), "bias": _data(12)},
              "6": {"weight": _data(12, 2), "bias": _data(2)}}
    x = _data(2, 2, 4, 4)
    check_grads(lambda p, x: model.apply(p, x), (params, x), order=1)
    bn = nn.BatchNorm2d(3)
    check_grads(lambda p, x: bn.apply(p, x, state=bn.init_state(), train=True)[0],
                ({"weight": _data(3), "bias": _data(3)}, _data(4, 3, 2, 2)), order=1)
    attn = nn.MultiHeadAttention(4, 2)
    check_grads(lambda p, x: attn.apply(p, x), (_attention_params(4), _data(1, 3, 4) * 0.3),
                order=1)


def test_a_jitted_training_step_updates_params_and_state():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.relu, nn.Linear(4, 1))
    params = {"0": {"weight": _data(3, 4), "bias": _data(4)},
              "1": {"weight": np.ones(4, np.float32), "bias": np.zeros(4, np.float32)},
              "3": {"weight": _data(4, 1), "bias": _data(1)}}

    def loss(params, state, x, y):
        out, state = model.apply(params, x, state=state, train=True)
        return ((out[:, 0] - y) ** 2).mean(), state

    @fjit.jit
    def step(params, state, x, y):
        (value, state), grads = fjit.value_and_grad(loss, has_aux=True)(params, state, x, y)
        return fjit.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads), state, value

    x, y = _data(16, 3), _data(16)
    state = model.init_state()
    eager = loss(params, state, x, y)[0]
    new_params, new_state, value = step(params, state, x, y)
    _close(value, np.asarray(eager), 1e-5)
    assert float(loss(new_params, new_state, x, y)[0]) < float(value)
    assert not np.allclose(np.asarray(new_state["1"]["running_mean"]), 0)


def test_dropout_is_identity_in_evaluation_and_needs_a_key_in_training():
    layer = nn.Dropout(0.25)
    x = np.ones((200, 50), np.float32)
    _close(layer.apply({}, x), x)
    with pytest.raises(TypeError, match="needs a PRNG key"):
        layer.apply({}, x, train=True)
    with pytest.raises(ValueError, match="rate must be in"):
        nn.Dropout(1.0)
    y = np.asarray(layer.apply({}, x, train=True, key=random.PRNGKey(0)))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02


def test_init_shapes_and_pytorch_default_bounds():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.relu, nn.Flatten(), nn.Linear(16, 5),
                          nn.BatchNorm1d(5), nn.Embedding(7, 3))
    params = model.init(random.PRNGKey(0))
    shapes = fjit.tree_util.tree_map(lambda a: a.shape, params)
    assert shapes == {"0": {"weight": (4, 2, 3, 3), "bias": (4,)},
                      "3": {"weight": (16, 5), "bias": (5,)},
                      "4": {"weight": (5,), "bias": (5,)}, "5": {"weight": (7, 3)}}
    w = np.asarray(params["0"]["weight"])
    assert np.abs(w).max() <= 1 / math.sqrt(18) and w.std() > 0.5 / math.sqrt(18) / math.sqrt(3)
    assert np.abs(np.asarray(params["3"]["bias"])).max() <= 1 / 4
    again = model.init(random.PRNGKey(0))
    _close(again["3"]["weight"], np.asarray(params["3"]["weight"]), 0)
    glorot = nn.initializers.glorot_uniform()(random.PRNGKey(1), (300, 200))
    np.testing.assert_allclose(np.asarray(glorot).var(), 2 / 500, rtol=0.05)
    he = nn.initializers.he_normal(in_axis=1, out_axis=0)(random.PRNGKey(2), (64, 32, 3, 3))
    np.testing.assert_allclose(np.asarray(he).var(), 2 / (32 * 9), rtol=0.05)


def test_loading_a_pytorch_state_dict_transposes_linear_and_splits_attention():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.relu, nn.Flatten(),
                          nn.Linear(8, 3))
    sd = {"0.weight": _data(2, 1, 3, 3), "0.bias": _data(2),
          "1.weight": _data(2), "1.bias": _data(2), "1.running_mean": _data(2),
          "1.running_var": np.abs(_data(2)) + 0.5, "1.num_batches_tracked": np.array(3),
          "4.weight": _data(3, 8), "4.bias": _data(3)}
    params, state = nn.load_torch_state_dict(model, sd)
    x = _data(2, 1, 4, 4)
    h = np.asarray(nn.conv(x, sd["0.weight"])) + sd["0.bias"][None, :, None, None]
    h = _batchnorm_reference(h, sd["1.running_mean"], sd["1.running_var"], sd["1.weight"],
                             sd["1.bias"], 1e-5)
    want = np.maximum(h, 0).reshape(2, -1) @ sd["4.weight"].T + sd["4.bias"]
    _close(model.apply(params, x, state=state)[0], want, 1e-4)

    E = 4
    attn = nn.MultiHeadAttention(E, 2)
    tsd = {"in_proj_weight": _data(3 * E, E), "in_proj_bias": _data(3 * E),
           "out_proj.weight": _data(E, E), "out_proj.bias": _data(E)}
    p, _ = nn.load_torch_state_dict(attn, tsd)
    _close(p["key"]["weight"], tsd["in_proj_weight"][E:2 * E].T)
    _close(p["value"]["bias"], tsd["in_proj_bias"][2 * E:])
    _close(p["out"]["weight"], tsd["out_proj.weight"].T)

    with pytest.raises(nn.StateDictError, match="'4.weight' has shape"):
        nn.load_torch_state_dict(model, dict(sd, **{"4.weight": _data(8, 3)}))
    with pytest.raises(nn.StateDictError, match=r"missing '0.bias' \(shape \(2,\)\)"):
        nn.load_torch_state_dict(model, {k: v for k, v in sd.items() if k != "0.bias"})
    with pytest.raises(nn.StateDictError, match="unexpected 'extra'"):
        nn.load_torch_state_dict(model, dict(sd, extra=np.zeros(1)))
    # every problem at once: a missing entry, a mis-shaped one and an unexpected one
    bad = {k: v for k, v in sd.items() if k != "0.bias"}
    bad.update({"4.weight": _data(8, 3), "extra": np.zeros(1)})
    with pytest.raises(nn.StateDictError, match=r"\(3 problems\)") as raised:
        nn.load_torch_state_dict(model, bad)
    assert all(p in str(raised.value) for p in ("missing '0.bias'", "'4.weight' has shape",
                                                "unexpected 'extra'"))
    params, _ = nn.load_torch_state_dict(model, dict(sd, extra=np.zeros(1)), strict=False)
    assert jnp.asarray(params["4"]["weight"]).shape == (8, 3)
