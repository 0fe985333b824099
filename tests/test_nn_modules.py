"""Modules with named children (fjit/nn/module.py): init, init_state and the state threading
derived from attributes, PyTorch's dotted names, own Parameters and buffers, containers, and
a residual block against PyTorch when torch is installed."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import nn


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Block(nn.Module):
    """A residual block written as in PyTorch."""

    def __init__(self, c, stride=1):
        self.conv1 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = nn.relu(self.bn1(self.conv1(x)))
        return nn.relu(x + self.bn2(self.conv2(out)))


class Net(nn.Module):
    def __init__(self):
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(Block(4), Block(4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        return self.head(x.mean((2, 3)))


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        name = f"{prefix}.{k}" if prefix else k
        out.update(_flat(v, name) if isinstance(v, dict) else {name: v})
    return out


def test_init_and_state_are_derived_with_pytorch_dotted_names():
    net = Net()
    params, state = net.init(fjit.random.PRNGKey(0)), net.init_state()
    assert sorted(_flat(params)) == sorted(
        ["stem.weight", "stem.bias", "head.weight", "head.bias"]
        + [f"layer1.{b}.{c}.weight" for b in "01" for c in ("conv1", "conv2", "bn1", "bn2")]
        + [f"layer1.{b}.{n}.bias" for b in "01" for n in ("bn1", "bn2")])
    assert sorted(_flat(state)) == sorted(
        f"layer1.{b}.{n}.{s}" for b in "01" for n in ("bn1", "bn2")
        for s in ("running_mean", "running_var", "num_batches_tracked"))
    names = [name for name, _ in net.named_modules()]
    assert names[:4] == ["", "stem", "layer1", "layer1.0"] and "layer1.1.bn2" in names


def test_a_forward_of_children_threads_every_childs_state():
    net = Net()
    params, state = net.init(fjit.random.PRNGKey(1)), net.init_state()
    x = _data(2, 3, 6, 6)
    y, new = net.apply(params, x, state=state, train=True)
    assert y.shape == (2, 2)
    for name, value in _flat(new).items():   # every BatchNorm's statistics moved
        assert not np.allclose(np.asarray(value), np.asarray(_flat(state)[name])), name
    # the same numbers as the layers applied by hand, threading each state explicitly
    h = nn.Conv2d(3, 4, 3, padding=1).apply(params["stem"], x)
    for b in "01":
        p, s = params["layer1"][b], state["layer1"][b]
        o, _ = nn.BatchNorm2d(4).apply(p["bn1"], nn.Conv2d(4, 4, 3, 1, 1, bias=False).apply(
            p["conv1"], h), state=s["bn1"], train=True)
        o, s2 = nn.BatchNorm2d(4).apply(p["bn2"], nn.Conv2d(4, 4, 3, 1, 1, bias=False).apply(
            p["conv2"], nn.relu(o)), state=s["bn2"], train=True)
        h = nn.relu(h + o)
        np.testing.assert_allclose(np.asarray(new["layer1"][b]["bn2"]["running_mean"]),
                                   np.asarray(s2["running_mean"]), rtol=1e-5, atol=1e-6)
    want = h.mean((2, 3)) @ params["head"]["weight"] + params["head"]["bias"]
    np.testing.assert_allclose(np.asarray(y), np.asarray(want), rtol=1e-4, atol=1e-5)
    # evaluation reads the running statistics and returns them unchanged
    _, same = net.apply(params, x, state=new, train=False)
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(fjit.tree_util.tree_leaves(same), fjit.tree_util.tree_leaves(new)))


def test_modules_compose_with_jit_and_grad():
    net = Net()
    params, state = net.init(fjit.random.PRNGKey(2)), net.init_state()
    x = _data(2, 3, 5, 5)

    def loss(p, s):
        y, s = net.apply(p, x, state=s, train=True)
        return (y ** 2).mean(), s
    (v1, s1), g1 = fjit.jit(fjit.value_and_grad(loss, has_aux=True))(params, state)
    (v2, s2), g2 = fjit.value_and_grad(loss, has_aux=True)(params, state)
    np.testing.assert_allclose(float(v1), float(v2), rtol=1e-5)
    for a, b in zip(fjit.tree_util.tree_leaves((g1, s1)), fjit.tree_util.tree_leaves((g2, s2))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert fjit.tree_util.tree_structure(g1) == fjit.tree_util.tree_structure(params)


class Scaled(nn.Module):
    """Own parameters (a given value, an initializer) and a buffer it updates."""

    def __init__(self):
        self.lin = nn.Linear(3, 3)
        self.scale = nn.Parameter(jnp.full((3,), 2.0))
        self.offset = nn.Parameter(shape=(3,), init=nn.initializers.zeros)
        self.register_buffer("calls", jnp.zeros((), jnp.int32))

    def forward(self, x):
        self.calls = self.calls + 1
        return self.lin(x) * self.scale + self.offset


def test_own_parameters_and_buffers_read_and_update_through_apply():
    m = Scaled()
    params, state = m.init(fjit.random.PRNGKey(3)), m.init_state()
    assert sorted(params) == ["lin", "offset", "scale"] and sorted(state) == ["calls"]
    np.testing.assert_array_equal(np.asarray(params["scale"]), [2.0, 2.0, 2.0])
    x = _data(4, 3)
    y, state = m.apply(params, x, state=state)
    y, state = fjit.jit(lambda p, x, s: m.apply(p, x, state=s))(params, x, state)
    assert int(state["calls"]) == 2
    want = (x @ np.asarray(params["lin"]["weight"]) + np.asarray(params["lin"]["bias"])) * 2.0
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(AttributeError, match="buffer: it takes a new value only inside"):
        m.calls = 5
    with pytest.raises(TypeError, match="keeps running statistics"):
        m.apply(params, x)   # a module with state needs it passed in


class Shared(nn.Module):
    """One child called twice: its parameters shared, its statistics updated twice (as a
    PyTorch module called twice updates its buffers twice)."""

    def __init__(self):
        self.bn = nn.BatchNorm1d(3, momentum=0.5)

    def forward(self, x):
        return self.bn(self.bn(x))


def test_a_child_called_twice_updates_its_state_twice():
    m = Shared()
    params, state = m.init(None), m.init_state()
    x = _data(8, 3) + 4.0
    _, new = m.apply(params, x, state=state, train=True)
    bn = nn.BatchNorm1d(3, momentum=0.5)
    h, s = bn.apply(params["bn"], x, state=state["bn"], train=True)
    _, s = bn.apply(params["bn"], h, state=s, train=True)
    np.testing.assert_allclose(np.asarray(new["bn"]["running_mean"]),
                               np.asarray(s["running_mean"]), rtol=1e-6)


class Forgetful(nn.Layer):
    """A leaf layer whose forward drops part of its state."""

    def init_state(self):
        return {"mean": jnp.zeros(2), "count": jnp.zeros(())}

    def forward(self, params, state, x, *, train, key):
        return x, {"mean": x.mean(0)}


def test_a_layer_dropping_state_is_an_error_naming_what_it_dropped():
    with pytest.raises(TypeError, match=r"Forgetful\(\): forward returned a state without "
                                        r"count: return the whole new state"):
        Forgetful().apply({}, _data(3, 2), state=Forgetful().init_state())


class Noisy(nn.Module):
    def __init__(self):
        self.drop1 = nn.Dropout(0.5)
        self.drop2 = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop1(x), self.drop2(x)


def test_children_get_keys_of_their_own_and_training_needs_one():
    m = Noisy()
    x = jnp.ones((200,))
    a, b = m.apply({}, x, train=True, key=fjit.random.PRNGKey(0))
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    a2, _ = m.apply({}, x, train=True, key=fjit.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
    assert set(np.unique(np.asarray(a))) <= {0.0, 2.0}
    e, _ = m.apply({}, x)   # evaluation: the identity, no key needed
    np.testing.assert_array_equal(np.asarray(e), np.ones(200))
    with pytest.raises(TypeError, match="needs a PRNG key"):
        m.apply({}, x, train=True)


class Tower(nn.Module):
    def __init__(self):
        self.blocks = [nn.Linear(2, 2), nn.Linear(2, 2)]   # a list: a ModuleList
        self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Identity()})

    def forward(self, x):
        for block in self.blocks:
            x = nn.tanh(block(x))
        return self.heads["a"](x), self.heads["b"](x)


def test_lists_and_dicts_of_children_are_named_by_position_and_key():
    m = Tower()
    params = m.init(fjit.random.PRNGKey(4))
    assert sorted(_flat(params)) == ["blocks.0.bias", "blocks.0.weight", "blocks.1.bias",
                                     "blocks.1.weight", "heads.a.bias", "heads.a.weight"]
    x = _data(5, 2)
    a, b = m.apply(params, x)
    h = np.asarray(x)
    for k in "01":
        h = np.tanh(h @ np.asarray(params["blocks"][k]["weight"])
                    + np.asarray(params["blocks"][k]["bias"]))
    np.testing.assert_allclose(np.asarray(b), h, rtol=1e-5, atol=1e-6)
    assert a.shape == (5, 1)
    assert "(blocks): ModuleList(\n    (0): Linear(2, 2)" in repr(m)


def test_a_nested_module_loads_a_pytorch_state_dict_by_dotted_name():
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    tnn = torch.nn

    class TBlock(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = tnn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(c)
            self.conv2 = tnn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(c)

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(x + self.bn2(self.conv2(out)))

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = tnn.Conv2d(3, 4, 3, padding=1)
            self.layer1 = tnn.Sequential(TBlock(4), TBlock(4))
            self.head = tnn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.layer1(self.stem(x)).mean((2, 3)))

    torch.manual_seed(0)
    tnet = TNet()
    with torch.no_grad():   # statistics that are not the initial ones
        for m in tnet.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    sd = {k: v.numpy() for k, v in tnet.state_dict().items()}
    net = Net()
    params, state = nn.load_torch_state_dict(net, sd)
    x = _data(2, 3, 6, 6)
    tnet.eval()
    y = net.apply(params, x, state=state)[0]
    np.testing.assert_allclose(np.asarray(y), tnet(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    tnet.train()   # training: batch statistics, and the running ones updated as PyTorch does
    xt = torch.from_numpy(x).requires_grad_(False)
    want = tnet(xt)
    got, new = net.apply(params, x, state=state, train=True)
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new["layer1"]["1"]["bn2"]["running_var"]),
                               tnet.layer1[1].bn2.running_var.numpy(), rtol=1e-5, atol=1e-6)
    # first-step gradients
    want.pow(2).mean().backward()
    g = fjit.grad(lambda p: (net.apply(p, x, state=state, train=True)[0] ** 2).mean())(params)
    np.testing.assert_allclose(np.asarray(g["layer1"]["0"]["conv1"]["weight"]),
                               tnet.layer1[0].conv1.weight.grad.numpy(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(np.asarray(g["head"]["weight"]),
                               tnet.head.weight.grad.numpy().T, rtol=1e-4, atol=1e-6)


ACTIVATIONS = [("ReLU", (), {}), ("ReLU6", (), {}), ("LeakyReLU", (0.2,), {}),
               ("ELU", (), {"alpha": 0.7}), ("CELU", (), {"alpha": 1.3}), ("SELU", (), {}),
               ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}), ("Sigmoid", (), {}),
               ("Tanh", (), {}), ("SiLU", (), {}), ("Mish", (), {}), ("Hardsigmoid", (), {}),
               ("Hardswish", (), {}), ("Hardtanh", (-0.5, 2.0), {}),
               ("Softplus", (), {"beta": 2.0, "threshold": 3.0}), ("Softmax", (), {"dim": 1}),
               ("LogSoftmax", (), {"dim": 0}), ("Softmax", (), {})]


def test_activation_layers_have_pytorchs_defaults_without_torch():
    x = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(np.asarray(nn.LeakyReLU()({}, x)), np.where(x > 0, x, 0.01 * x),
                               rtol=1e-6)
    import math
    exact = np.array([[0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in x])
    np.testing.assert_allclose(np.asarray(nn.GELU()({}, x)), exact, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(nn.Softmax()({}, x)).sum(1), 1.0, rtol=1e-6)   # dim 1


@pytest.mark.parametrize("name, args, kwargs", ACTIVATIONS)
def test_activation_layers_match_pytorch(name, args, kwargs):
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    x = _data(3, 5) * 3
    want = getattr(torch.nn, name)(*args, **kwargs)(torch.from_numpy(x)).numpy()
    got = getattr(nn, name)(*args, **kwargs)({}, x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_activation_layers_are_not_each_others_subclasses():
    """As in PyTorch: a SiLU is no ReLU (a converter dispatching on type must not confuse them)."""
    assert not isinstance(nn.SiLU(), nn.ReLU) and not isinstance(nn.CELU(), nn.ELU)
    assert not isinstance(nn.ReLU6(), nn.ReLU) and nn.ReLU6(inplace=True).inplace
    assert not isinstance(nn.LogSoftmax(1), nn.Softmax)
