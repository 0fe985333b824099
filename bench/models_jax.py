"""Pure-JAX twins of bench/models.py's training steps (no flax, no optax), for comparing
fjit against JAX on the same models: a CIFAR ResNet-18, torchvision's ResNet-50 (v1.5) and a
DCGAN-64 generator and discriminator trained as an LSGAN.

The semantics follow fjit.nn / fjit.optim as used by models.py:

- layouts NCHW / OIHW; a transposed convolution's weight is (in, out, kh, kw) (PyTorch's),
  computed as the input-dilated convolution with the swapped, spatially flipped kernel;
- Linear weights are (in, out), y = x @ W + b;
- BatchNorm2d in training mode normalizes with the batch mean and biased variance
  (eps 1e-5) and updates the running statistics with momentum 0.1, the running variance
  unbiased;
- relu is where(x <= 0, 0, x) (derivative 0 at 0), leaky_relu where(x >= 0, x, 0.2 x);
- SGD with momentum is optax's trace (t = g + 0.9 t) followed by a scale by -lr; Adam is
  optax's scale_by_adam followed by a scale by -lr.

Parameter and state pytrees have exactly fjit's names (Sequential children by position,
"body"/"shortcut" in the residual blocks, "weight"/"bias"/"running_mean"/"running_var"),
so fjit's pytrees can be loaded leaf for leaf: `state_from_fjit(name, fjit_state)` turns the
state that models.py's `*_step` returns into the state the steps here take, and each
`*_step(batch, init=...)` can start from it.  Without `init`, parameters are drawn with
PyTorch's default uniform initialization from a jax.random key (not fjit's numbers); the
inputs are always the same seeded NumPy draws as models.py's.

Each `*_step(batch)` returns (step, state), `step = jax.jit(...)` mapping state -> state.
"""
from __future__ import annotations

import math

import numpy as np

import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NCHW", "OIHW", "NCHW")


# --- layers: (init(key) -> params, init_state() -> state, apply(p, s, x) -> (y, s)) --------

class _Layer:
    def init(self, key):
        return {}

    def init_state(self):
        return {}

    def apply(self, params, state, x):
        raise NotImplementedError


def _uniform(key, shape, fan_in):
    bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Conv2d(_Layer):
    """Cross-correlation, weight (out, in, k, k), no bias (all convolutions here)."""

    def __init__(self, cin, cout, k, stride=1, padding=0):
        self.cin, self.cout, self.k, self.stride, self.padding = cin, cout, k, stride, padding

    def init(self, key):
        shape = (self.cout, self.cin, self.k, self.k)
        return {"weight": _uniform(key, shape, self.cin * self.k * self.k)}

    def apply(self, params, state, x):
        p = self.padding
        y = lax.conv_general_dilated(x, params["weight"], (self.stride, self.stride),
                                     ((p, p), (p, p)), dimension_numbers=_DN)
        return y, state


class ConvTranspose2d(_Layer):
    """PyTorch's ConvTranspose2d, weight (in, out, k, k), no bias: the gradient of a
    convolution with respect to its input, i.e. a convolution of the input dilated by the
    stride with the (out, in)-swapped, spatially flipped kernel, padded by k - 1 - padding."""

    def __init__(self, cin, cout, k, stride=1, padding=0):
        self.cin, self.cout, self.k, self.stride, self.padding = cin, cout, k, stride, padding

    def init(self, key):
        shape = (self.cin, self.cout, self.k, self.k)
        # PyTorch's fan_in is weight.shape[1] * k * k for transposed convolutions too
        return {"weight": _uniform(key, shape, self.cout * self.k * self.k)}

    def apply(self, params, state, x):
        w = jnp.flip(jnp.swapaxes(params["weight"], 0, 1), axis=(2, 3))
        q = self.k - 1 - self.padding
        y = lax.conv_general_dilated(x, w, (1, 1), ((q, q), (q, q)),
                                     lhs_dilation=(self.stride, self.stride),
                                     dimension_numbers=_DN)
        return y, state


class BatchNorm2d(_Layer):
    """Training-mode BatchNorm (see the module docstring)."""

    def __init__(self, c, eps=1e-5, momentum=0.1):
        self.c, self.eps, self.momentum = c, eps, momentum

    def init(self, key):
        return {"weight": jnp.ones((self.c,), jnp.float32),
                "bias": jnp.zeros((self.c,), jnp.float32)}

    def init_state(self):
        return {"running_mean": jnp.zeros((self.c,), jnp.float32),
                "running_var": jnp.ones((self.c,), jnp.float32)}

    def apply(self, params, state, x):
        axes, shape = (0, 2, 3), (1, -1, 1, 1)
        mean = x.mean(axis=axes)
        var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        unbiased = var * (count / max(count - 1, 1))
        m = self.momentum
        state = {"running_mean": lax.stop_gradient((1 - m) * state["running_mean"] + m * mean),
                 "running_var": lax.stop_gradient((1 - m) * state["running_var"]
                                                  + m * unbiased)}
        y = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + self.eps)
        y = y * params["weight"].reshape(shape) + params["bias"].reshape(shape)
        return y, state


class Linear(_Layer):
    """y = x @ weight + bias, weight (in, out)."""

    def __init__(self, cin, cout):
        self.cin, self.cout = cin, cout

    def init(self, key):
        kw, kb = jax.random.split(key)
        return {"weight": _uniform(kw, (self.cin, self.cout), self.cin),
                "bias": _uniform(kb, (self.cout,), self.cin)}

    def apply(self, params, state, x):
        return x @ params["weight"] + params["bias"], state


class MaxPool2d(_Layer):
    """Max over k x k windows, padding never wins (padded with -inf)."""

    def __init__(self, k, stride, padding):
        self.k, self.stride, self.padding = k, stride, padding

    def apply(self, params, state, x):
        p = self.padding
        y = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, self.k, self.k),
                              (1, 1, self.stride, self.stride), ((0, 0), (0, 0), (p, p), (p, p)))
        return y, state


class GlobalAvgPool(_Layer):
    def apply(self, params, state, x):
        return x.mean(axis=(2, 3)), state


class Fn(_Layer):
    def __init__(self, fn):
        self.fn = fn

    def apply(self, params, state, x):
        return self.fn(x), state


def relu(x):
    return jnp.where(x <= 0, jnp.zeros_like(x), x)


def leaky_relu(x, negative_slope=0.2):
    return jnp.where(x >= 0, x, negative_slope * x)


class Sequential(_Layer):
    """Children named "0", "1", ... by position; parameter-free layers leave no entry."""

    def __init__(self, *layers):
        self.layers = [layer if isinstance(layer, _Layer) else Fn(layer) for layer in layers]

    def init(self, key):
        params = {}
        for i, (layer, k) in enumerate(zip(self.layers, jax.random.split(key, len(self.layers)))):
            p = layer.init(k)
            if p:
                params[str(i)] = p
        return params

    def init_state(self):
        return {str(i): s for i, s in ((i, l.init_state()) for i, l in enumerate(self.layers))
                if s}

    def apply(self, params, state, x):
        new_state = dict(state)
        for i, layer in enumerate(self.layers):
            x, s = layer.apply(params.get(str(i), {}), state.get(str(i), {}), x)
            if s:
                new_state[str(i)] = s
        return x, new_state


class BasicBlock(_Layer):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        self.body = Sequential(Conv2d(cin, planes, 3, stride, 1), BatchNorm2d(planes), relu,
                               Conv2d(planes, planes, 3, 1, 1), BatchNorm2d(planes))
        self.shortcut = self._shortcut(cin, planes, stride)

    def _shortcut(self, cin, planes, stride):
        out = planes * self.expansion
        if stride != 1 or cin != out:
            return Sequential(Conv2d(cin, out, 1, stride), BatchNorm2d(out))
        return None

    def _children(self):
        return [("body", self.body)] + ([("shortcut", self.shortcut)] if self.shortcut else [])

    def init(self, key):
        keys = jax.random.split(key, 2)
        return {name: m.init(k) for (name, m), k in zip(self._children(), keys)}

    def init_state(self):
        return {name: m.init_state() for name, m in self._children()}

    def apply(self, params, state, x):
        y, body_state = self.body.apply(params["body"], state["body"], x)
        new_state = {"body": body_state}
        if self.shortcut is not None:
            x, new_state["shortcut"] = self.shortcut.apply(params["shortcut"],
                                                           state["shortcut"], x)
        return relu(y + x), new_state


class Bottleneck(BasicBlock):
    """torchvision v1.5: 1x1 reduce, 3x3 with the stride, 1x1 expand."""
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        out = planes * self.expansion
        self.body = Sequential(Conv2d(cin, planes, 1), BatchNorm2d(planes), relu,
                               Conv2d(planes, planes, 3, stride, 1), BatchNorm2d(planes), relu,
                               Conv2d(planes, out, 1), BatchNorm2d(out))
        self.shortcut = self._shortcut(cin, planes, stride)


def _stages(block, blocks_per_stage, cin):
    layers = []
    for stage, count in enumerate(blocks_per_stage):
        planes = 64 * 2 ** stage
        for i in range(count):
            layers.append(block(cin, planes, 2 if (i == 0 and stage > 0) else 1))
            cin = planes * block.expansion
    return layers, cin


def resnet18_cifar(classes=10):
    layers, cin = _stages(BasicBlock, [2, 2, 2, 2], 64)
    return Sequential(Conv2d(3, 64, 3, 1, 1), BatchNorm2d(64), relu, *layers, GlobalAvgPool(),
                      Linear(cin, classes))


def resnet50(classes=1000):
    layers, cin = _stages(Bottleneck, [3, 4, 6, 3], 64)
    return Sequential(Conv2d(3, 64, 7, 2, 3), BatchNorm2d(64), relu, MaxPool2d(3, 2, 1),
                      *layers, GlobalAvgPool(), Linear(cin, classes))


def dcgan_generator(nz=100, ngf=64):
    return Sequential(
        ConvTranspose2d(nz, ngf * 8, 4, 1, 0), BatchNorm2d(ngf * 8), relu,
        ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1), BatchNorm2d(ngf * 4), relu,
        ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1), BatchNorm2d(ngf * 2), relu,
        ConvTranspose2d(ngf * 2, ngf, 4, 2, 1), BatchNorm2d(ngf), relu,
        ConvTranspose2d(ngf, 3, 4, 2, 1), jnp.tanh)


def dcgan_discriminator(ndf=64):
    return Sequential(
        Conv2d(3, ndf, 4, 2, 1), leaky_relu,
        Conv2d(ndf, ndf * 2, 4, 2, 1), BatchNorm2d(ndf * 2), leaky_relu,
        Conv2d(ndf * 2, ndf * 4, 4, 2, 1), BatchNorm2d(ndf * 4), leaky_relu,
        Conv2d(ndf * 4, ndf * 8, 4, 2, 1), BatchNorm2d(ndf * 8), leaky_relu,
        Conv2d(ndf * 8, 1, 4, 1, 0))


# --- losses and optimizers ---------------------------------------------------------------

def softmax_cross_entropy_with_integer_labels(logits, labels):
    """logsumexp(logits) - logits[label], per example."""
    shifted = logits - lax.stop_gradient(logits.max(axis=-1, keepdims=True))
    hit = labels[:, None] == lax.broadcasted_iota(labels.dtype, logits.shape, 1)
    label_logits = jnp.sum(jnp.where(hit, shifted, 0.0), axis=-1)
    return jnp.log(jnp.sum(jnp.exp(shifted), axis=-1)) - label_logits


def sgd_momentum_init(params):
    """The momentum buffer (optax's TraceState.trace)."""
    return jax.tree_util.tree_map(jnp.zeros_like, params)


def sgd_momentum_update(grads, trace, params, learning_rate=0.1, momentum=0.9):
    trace = jax.tree_util.tree_map(lambda g, t: g + momentum * t, grads, trace)
    params = jax.tree_util.tree_map(lambda p, t: p + (-learning_rate) * t, params, trace)
    return params, trace


def adam_init(params):
    """(count, mu, nu) as in optax's ScaleByAdamState."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return (jnp.zeros((), jnp.int32), zeros, zeros)


def adam_update(grads, opt_state, params, learning_rate=2e-4, b1=0.5, b2=0.999, eps=1e-8):
    count, mu, nu = opt_state
    tm = jax.tree_util.tree_map
    mu = tm(lambda g, m: (1 - b1) * g + b1 * m, grads, mu)
    nu = tm(lambda g, v: (1 - b2) * (g ** 2) + b2 * v, grads, nu)
    count = jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count).astype(jnp.int32)
    c1, c2 = 1 - b1 ** count, 1 - b2 ** count
    updates = tm(lambda m, v: (m / c1.astype(m.dtype)) / (jnp.sqrt(v / c2.astype(v.dtype)) + eps),
                 mu, nu)
    params = tm(lambda p, u: p + (-learning_rate) * u, params, updates)
    return params, (count, mu, nu)


# --- loading fjit's pytrees --------------------------------------------------------------

def to_jax(tree):
    """Nested dicts / lists / tuples of array-likes (fjit arrays, NumPy) -> jax arrays, with
    plain tuples for tuples and NamedTuples."""
    if isinstance(tree, dict):
        return {k: to_jax(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return tuple(to_jax(v) for v in tree)
    return jnp.asarray(np.asarray(tree))


def state_from_fjit(name, fjit_state):
    """The state that bench/models.py's `MODELS[name](...)` returned (or that its step
    produced) as the state this module's step of the same name takes.  Duck-typed on the
    optimizer states (optax-like NamedTuples chained with an empty scale state), so that
    this module need not import fjit."""
    if name in ("resnet18", "resnet50"):
        params, opt_state, bn_state, x, y = fjit_state
        return (to_jax(params), to_jax(opt_state[0].trace), to_jax(bn_state), to_jax(x),
                to_jax(y))
    if name == "lsgan":
        g_params, d_params, g_opt, d_opt, g_bn, d_bn, real, z = fjit_state

        def adam(s):
            s = s[0]
            return (to_jax(s.count), to_jax(s.mu), to_jax(s.nu))
        return (to_jax(g_params), to_jax(d_params), adam(g_opt), adam(d_opt), to_jax(g_bn),
                to_jax(d_bn), to_jax(real), to_jax(z))
    raise ValueError(f"state_from_fjit: unknown model {name!r}")


# --- the training steps ------------------------------------------------------------------

def _classifier_step(model, batch, size, classes, learning_rate=0.1, init=None, seed=0):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, classes, batch).astype(np.int32))
    if init is None:
        params = model.init(jax.random.PRNGKey(seed))
        init = (params, sgd_momentum_init(params), model.init_state(), x, y)

    def loss(params, bn_state, x, y):
        logits, bn_state = model.apply(params, bn_state, x)
        return softmax_cross_entropy_with_integer_labels(logits, y).mean(), bn_state

    @jax.jit
    def step(state):
        params, trace, bn_state, x, y = state
        (_, bn_state), grads = jax.value_and_grad(loss, has_aux=True)(params, bn_state, x, y)
        params, trace = sgd_momentum_update(grads, trace, params, learning_rate)
        return params, trace, bn_state, x, y

    return step, init


def resnet18_step(batch=8, init=None):
    """`init`: a full state to start from, e.g. state_from_fjit("resnet18", fjit_state)."""
    return _classifier_step(resnet18_cifar(), batch, 32, 10, init=init)


def resnet50_step(batch=8, init=None):
    return _classifier_step(resnet50(), batch, 64, 1000, init=init)


def lsgan_step(batch=8, nz=100, init=None):
    """A discriminator step on real and fake concatenated (real toward 1, fake toward 0),
    then a generator step (fake toward 1) through the updated discriminator and its updated
    BatchNorm state; Adam(2e-4, b1=0.5) for both."""
    gen, disc = dcgan_generator(nz), dcgan_discriminator()
    rng = np.random.default_rng(0)
    real = jnp.asarray(rng.uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32))
    z = jnp.asarray(rng.standard_normal((batch, nz, 1, 1)).astype(np.float32))
    if init is None:
        g_params, d_params = gen.init(jax.random.PRNGKey(1)), disc.init(jax.random.PRNGKey(2))
        init = (g_params, d_params, adam_init(g_params), adam_init(d_params),
                gen.init_state(), disc.init_state(), real, z)

    def d_loss(d_params, d_bn, fake, real):
        both = jnp.concatenate([real, fake])
        scores, d_bn = disc.apply(d_params, d_bn, both)
        real_scores, fake_scores = scores[:batch], scores[batch:]
        return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean()), d_bn

    def g_loss(g_params, g_bn, d_params, d_bn, z):
        fake, g_bn = gen.apply(g_params, g_bn, z)
        scores, d_bn = disc.apply(d_params, d_bn, fake)
        return 0.5 * ((scores - 1) ** 2).mean(), (g_bn, d_bn)

    @jax.jit
    def step(state):
        g_params, d_params, g_opt, d_opt, g_bn, d_bn, real, z = state
        fake, _ = gen.apply(g_params, g_bn, z)
        (_, d_bn), d_grads = jax.value_and_grad(d_loss, has_aux=True)(
            d_params, d_bn, lax.stop_gradient(fake), real)
        d_params, d_opt = adam_update(d_grads, d_opt, d_params)
        (_, (g_bn, d_bn)), g_grads = jax.value_and_grad(g_loss, has_aux=True)(
            g_params, g_bn, d_params, d_bn, z)
        g_params, g_opt = adam_update(g_grads, g_opt, g_params)
        return g_params, d_params, g_opt, d_opt, g_bn, d_bn, real, z

    return step, init


MODELS = {"resnet18": resnet18_step, "resnet50": resnet50_step, "lsgan": lsgan_step}
