"""Upsample / interpolate and the adaptive pools against PyTorch (and, without torch, against
NumPy on sizes where the answer is known), BatchNorm's num_batches_tracked and momentum=None,
and PyTorch state_dicts both ways."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import nn


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- without torch: known answers -----------------------------------------------------------

def test_nearest_doubling_repeats_and_bilinear_align_corners_interpolates():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    up = nn.Upsample(scale_factor=2)
    _close(up.apply({}, x), x.repeat(2, axis=2).repeat(2, axis=3))
    y = nn.interpolate(x, size=(3, 5), mode="bilinear", align_corners=True)
    # align_corners: the corners stay, the midpoints average their neighbours
    _close(y[0, 0], np.array([[0, .5, 1, 1.5, 2], [1.5, 2, 2.5, 3, 3.5], [3, 3.5, 4, 4.5, 5]]))


def test_adaptive_pools_without_torch():
    x = _data(2, 3, 8, 6)
    _close(nn.AdaptiveAvgPool2d(1).apply({}, x), x.mean((2, 3), keepdims=True))
    _close(nn.AdaptiveAvgPool2d((4, 3)).apply({}, x),
           x.reshape(2, 3, 4, 2, 3, 2).mean((3, 5)))
    _close(nn.AdaptiveMaxPool2d((2, 2)).apply({}, x),
           x.reshape(2, 3, 2, 4, 2, 3).max((3, 5)))
    _close(nn.AdaptiveAvgPool2d((None, 2)).apply({}, x), x.reshape(2, 3, 8, 2, 3).mean(4))
    # uneven bins overlap as in PyTorch: 5 -> 3 reads [0, 2), [1, 4), [3, 5)
    v = np.arange(5, dtype=np.float32).reshape(1, 1, 5)
    _close(nn.adaptive_avg_pool(v, 3)[0, 0], [0.5, 2.0, 3.5])
    _close(nn.adaptive_max_pool(v, 3)[0, 0], [1, 3, 4])
    _close(nn.AdaptiveAvgPool1d(3).apply({}, v[0])[0], [0.5, 2.0, 3.5])   # unbatched


def test_resize_errors_name_the_operation():
    x = _data(1, 2, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.interpolate(x)
    with pytest.raises(ValueError, match="'bilinear' needs 2 spatial dims"):
        nn.interpolate(x[0], scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="mode 'cubic' is not supported"):
        nn.Upsample(scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="align_corners only goes with the linear modes"):
        nn.interpolate(x, scale_factor=2, align_corners=True)


def test_resize_is_differentiable_and_jits():
    x = _data(1, 2, 3, 4)
    f = lambda x: (nn.interpolate(x, scale_factor=(2, 1.5), mode="bilinear") ** 2).sum()
    g = fjit.grad(f)(x)
    eps, i = 1e-3, (0, 1, 2, 3)
    xp, xm = x.copy(), x.copy()
    xp[i] += eps
    xm[i] -= eps
    _close(g[i], (float(f(xp)) - float(f(xm))) / (2 * eps), tol=2e-2)
    _close(fjit.jit(lambda x: nn.adaptive_avg_pool(x, (2, 3)))(x),
           nn.adaptive_avg_pool(x, (2, 3)))


def test_batchnorm_counts_batches_and_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(3, momentum=None)
    state = bn.init_state()
    assert int(state["num_batches_tracked"]) == 0
    xs = [_data(8, 3, seed=s) for s in range(3)]
    for x in xs:
        _, state = bn.apply({"weight": jnp.ones(3), "bias": jnp.zeros(3)}, x, state=state,
                            train=True)
    assert int(state["num_batches_tracked"]) == 3
    _close(state["running_mean"], np.mean([x.mean(0) for x in xs], axis=0))
    _close(state["running_var"], np.mean([x.var(0, ddof=1) for x in xs], axis=0))
    free = nn.BatchNorm2d(3, track_running_stats=False, affine=False)
    assert free.init_state() == {}
    x = _data(4, 3, 2, 2)
    _close(free.apply({}, x), (x - x.mean((0, 2, 3), keepdims=True))
           / np.sqrt(x.var((0, 2, 3), keepdims=True) + 1e-5), tol=1e-4)


class _Tiny(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(2, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.attn = nn.MultiHeadAttention(4, 2)
        self.fc = nn.Linear(4, 5)
        self.scale = nn.Parameter(jnp.ones(()))

    def forward(self, x):
        return self.fc(self.attn(x)) * self.scale


def test_to_torch_state_dict_round_trips_with_pytorchs_names_and_layouts():
    model = _Tiny()
    params, state = model.init(fjit.random.PRNGKey(1)), model.init_state()
    sd = nn.to_torch_state_dict(model, params, state)
    assert list(sd) == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                        "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                        "attn.out_proj.bias", "fc.weight", "fc.bias"]
    assert sd["fc.weight"].shape == (5, 4) and sd["bn.num_batches_tracked"].dtype == np.int64
    _close(sd["fc.weight"], np.asarray(params["fc"]["weight"]).T)
    p2, s2 = nn.load_torch_state_dict(model, sd)
    for a, b in zip(fjit.tree_util.tree_leaves((params, state)),
                    fjit.tree_util.tree_leaves((p2, s2))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    del sd["bn.num_batches_tracked"]   # a state_dict from before PyTorch 0.4.1
    _, s3 = nn.load_torch_state_dict(model, sd)
    assert int(s3["bn"]["num_batches_tracked"]) == 0


# --- against PyTorch ------------------------------------------------------------------------

@pytest.mark.parametrize("mode,size,scale,align", [
    ("nearest", None, 2, None), ("nearest", (5, 7), None, None), ("nearest", None, 1.5, None),
    ("nearest-exact", (5, 7), None, None), ("bilinear", None, 2, False),
    ("bilinear", (5, 9), None, False), ("bilinear", (5, 9), None, True),
    ("bilinear", (2, 3), None, False), ("bilinear", None, 0.5, True)])
def test_interpolate_matches_pytorch(mode, size, scale, align):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    import torch.nn.functional as F
    x = _data(2, 3, 4, 6)
    want = F.interpolate(torch.from_numpy(x), size=size, scale_factor=scale, mode=mode,
                         align_corners=align).numpy()
    got = nn.Upsample(size, scale, mode, align).apply({}, x)
    assert got.shape == want.shape
    _close(got, want)


@pytest.mark.parametrize("out", [1, 3, (2, 5), (7, 4), (None, 3)])
def test_adaptive_pools_match_pytorch(out):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    x = _data(2, 3, 7, 10)
    t = torch.from_numpy(x)
    _close(nn.AdaptiveAvgPool2d(out).apply({}, x), torch.nn.AdaptiveAvgPool2d(out)(t).numpy())
    _close(nn.AdaptiveMaxPool2d(out).apply({}, x), torch.nn.AdaptiveMaxPool2d(out)(t).numpy())


def test_pytorch_loads_what_to_torch_state_dict_writes():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    tnn = torch.nn

    class TTiny(tnn.Module):
        def __init__(self):
            super().__init__()
            self.scale = tnn.Parameter(torch.ones(()))
            self.conv = tnn.Conv2d(2, 3, 3)
            self.bn = tnn.BatchNorm2d(3)
            self.attn = tnn.MultiheadAttention(4, 2, batch_first=True)
            self.fc = tnn.Linear(4, 5)

        def forward(self, x):
            return self.fc(self.attn(x, x, x, need_weights=False)[0]) * self.scale

    model = _Tiny()
    params, state = model.init(fjit.random.PRNGKey(2)), model.init_state()
    x = _data(2, 6, 4)
    _, state = model.apply(params, x, state=state, train=True)  # (no BN call: state unchanged)
    tmodel = TTiny()
    sd = nn.to_torch_state_dict(model, params, state)
    tmodel.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()})
    want = tmodel(torch.from_numpy(x)).detach().numpy()
    _close(model.apply(params, x, state=state)[0], want, tol=1e-4)


def test_interpolate_rounds_as_pytorch_does_where_float64_would_differ():
    """PyTorch computes source indices in float32 and copies a linear axis whose size does
    not change; values taken from PyTorch 2.13."""
    def run(n, **kw):
        x = np.arange(n, dtype=np.float32).reshape(1, 1, n)
        return np.asarray(nn.interpolate(x, **kw)).ravel().tolist()
    assert run(7, scale_factor=0.6) == [0, 1, 3, 5]
    assert run(10, size=12) == [0, 0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9]
    assert run(16, scale_factor=1.3, mode="nearest-exact")[-1] == 15
    assert run(3, scale_factor=1.25, mode="linear") == [0, 1, 2]
    assert run(5, scale_factor=1.7, recompute_scale_factor=True) == [0, 0, 1, 1, 2, 3, 3, 4]


def test_loading_casts_to_the_models_dtypes_and_writing_keeps_pytorchs_order():
    model = _Tiny()
    params, state = model.init(fjit.random.PRNGKey(1)), model.init_state()
    sd = nn.to_torch_state_dict(model, params, state)
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in sd.items()}
    p2, s2 = nn.load_torch_state_dict(model, half)
    assert p2["fc"]["weight"].dtype == jnp.float32
    assert s2["bn"]["num_batches_tracked"].dtype == jnp.int32
    grads = fjit.grad(lambda p: (model.apply(p, _data(2, 6, 4), state=state)[0] ** 2).sum())(
        params)   # a pytree transform orders dict keys its own way
    assert list(nn.to_torch_state_dict(model, grads)) == [k for k in sd if "running" not in k
                                                          and "num_batches" not in k]
