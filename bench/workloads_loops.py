"""Training-loop workloads (issue 6): the same steps run as one compiled scan or as a Python
loop of jitted steps.  Conventions as in workloads.py; fjit and JAX share each function
body.

- W6:   the seed's example, a 1-10-1 sigmoid network fit to y = x^2 (batch 50, L2 loss,
        plain gradient descent), 1000 steps as one `lax.scan` inside `jit`;
- W6L:  the same 1000 steps as a Python loop over a jitted step (PyTorch: an eager loop);
- W6b:  100 SGD steps of W4's MLP (784-512-512-10, batch 128) as one scan;
- W6bL: the same as a Python loop of jitted steps;
- W6bF: W6b with cross-iteration fusion (fjit only: `fjit.train_loop(...,
        cross_iteration=True)`; for the other frameworks the plain scan);
- RNN:  a tanh RNN (hidden 256, input 64, batch 32, 100 steps), loss on the last state,
        forward + backward (gradient of every weight) as one scan;
- E2:   an eager (un-jitted) 100-step scan of a tiny body.
"""
from __future__ import annotations

import numpy as np


def _lib(framework):
    if framework == "fjit":
        import fjit as lib
        import fjit.numpy as jnp
        from fjit import lax
    elif framework == "jax":
        import jax as lib
        import jax.numpy as jnp
        from jax import lax
    else:
        raise NotImplementedError(framework)
    return lib, jnp, lax


# --- W6 -------------------------------------------------------------------------------------

def _w6_data():
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, (50, 1)).astype(np.float32)
    params = [rng.standard_normal((1, 10)).astype(np.float32), np.zeros(10, np.float32),
              (rng.standard_normal((10, 1)) * 0.3).astype(np.float32),
              np.zeros(1, np.float32)]
    return params, x, x ** 2


def _w6_step(lib, jnp, x, y):
    def loss(p):
        w1, b1, w2, b2 = p
        h = 1 / (1 + jnp.exp(-(x @ w1 + b1)))
        return jnp.mean((h @ w2 + b2 - y) ** 2)

    def step(p, _):
        value, g = lib.value_and_grad(loss)(p)
        return [a - 0.1 * b for a, b in zip(p, g)], value
    return step


def w6_scan(framework, steps=1000):
    """W6: 1000 steps of the 1-10-1 network as one scan."""
    lib, jnp, lax = _lib(framework)
    params, x, y = _w6_data()
    step = _w6_step(lib, jnp, lib.device_put(x), lib.device_put(y))
    train = lib.jit(lambda p: lax.scan(step, p, None, length=steps))
    p0 = lib.device_put(params)
    train(p0)[1].block_until_ready()

    def run():
        p, losses = train(p0)
        losses.block_until_ready()
        return losses
    return run


def w6_loop(framework, steps=1000):
    """W6L: the same steps, one jitted call each from Python (PyTorch: eager)."""
    params, x, y = _w6_data()
    if framework == "torch":
        import torch
        p = [torch.tensor(a, requires_grad=True) for a in params]
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)

        def run():
            for a, v in zip(p, params):
                a.data.copy_(torch.from_numpy(v))
            for _ in range(steps):
                h = torch.sigmoid(xs @ p[0] + p[1])
                loss = torch.mean((h @ p[2] + p[3] - ys) ** 2)
                grads = torch.autograd.grad(loss, p)
                with torch.no_grad():
                    for a, g in zip(p, grads):
                        a -= 0.1 * g
        return run
    lib, jnp, lax = _lib(framework)
    step = lib.jit(lambda p: _w6_step(lib, jnp, lib.device_put(x), lib.device_put(y))(p, None))
    p0 = lib.device_put(params)
    step(p0)[1].block_until_ready()

    def run():
        p = p0
        for _ in range(steps):
            p, value = step(p)
        value.block_until_ready()
    return run


# --- W6b ------------------------------------------------------------------------------------

def _mlp_step(lib, jnp, lr=0.01):
    from workloads import mlp_loss
    loss = mlp_loss(jnp)

    def step(p, batch):
        x, y = batch
        value, g = lib.value_and_grad(loss)(p, x, y)
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(p, g)], value
    return step


def _mlp_data(steps):
    from workloads import _mlp_data as w4_data
    params, x, y = w4_data()
    xs = np.broadcast_to(x, (steps,) + x.shape).copy()
    ys = np.broadcast_to(y.astype(np.int32), (steps,) + y.shape).copy()
    return params, xs, ys


def w6b_scan(framework, steps=100, cross_iteration=False):
    """W6b: 100 SGD steps of the 784-512-512-10 MLP as one scan."""
    lib, jnp, lax = _lib(framework)
    params, xs, ys = _mlp_data(steps)
    step = _mlp_step(lib, jnp)
    if framework == "fjit" and cross_iteration:
        train = lib.jit(lambda p, b: lib.train_loop(step, p, b, cross_iteration=True))
    else:
        train = lib.jit(lambda p, b: lax.scan(step, p, b))
    p0, batches = lib.device_put(params), (lib.device_put(xs), lib.device_put(ys))
    train(p0, batches)[1].block_until_ready()

    def run():
        p, losses = train(p0, batches)
        losses.block_until_ready()
        return losses
    return run


def w6b_loop(framework, steps=100):
    """W6bL: the same steps as a Python loop of jitted steps."""
    lib, jnp, lax = _lib(framework)
    params, xs, ys = _mlp_data(steps)
    step = lib.jit(_mlp_step(lib, jnp))
    p0 = lib.device_put(params)
    batches = [(lib.device_put(xs[i]), lib.device_put(ys[i])) for i in range(steps)]
    step(p0, batches[0])[1].block_until_ready()

    def run():
        p = p0
        for batch in batches:
            p, value = step(p, batch)
        value.block_until_ready()
    return run


# --- RNN ------------------------------------------------------------------------------------

def rnn_grad(framework, steps=100):
    """RNN: gradient of sum(h_T^2) for a tanh RNN over 100 steps (hidden 256, input 64,
    batch 32) with respect to W_hh, W_xh and b, as one scan, forward and backward."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    u = (rng.standard_normal((64, 256)) / 8).astype(np.float32)
    b = np.zeros(256, np.float32)
    xs = rng.standard_normal((steps, 32, 64)).astype(np.float32)
    if framework == "torch":
        import torch
        W, U, B = (torch.tensor(a, requires_grad=True) for a in (w, u, b))
        X = torch.from_numpy(xs)

        def run():
            h = torch.zeros(32, 256)
            for t in range(steps):
                h = torch.tanh(h @ W + X[t] @ U + B)
            return torch.autograd.grad((h ** 2).sum(), (W, U, B))[0]
        return run
    lib, jnp, lax = _lib(framework)

    def loss(params, xs):
        w, u, b = params
        h, _ = lax.scan(lambda h, x: (jnp.tanh(h @ w + x @ u + b), None),
                        jnp.zeros((32, 256), jnp.float32), xs)
        return jnp.sum(h ** 2)
    grad = lib.jit(lib.grad(loss))
    args = (lib.device_put((w, u, b)), lib.device_put(xs))
    grad(*args)[0].block_until_ready()

    def run():
        g = grad(*args)
        g[0].block_until_ready()
        return g[0]
    return run


# --- E2 -------------------------------------------------------------------------------------

def e2_eager_scan(framework, steps=100):
    """E2: an eager (un-jitted) 100-step scan of a tiny body, `c * 0.5 + x` over 4 floats:
    the body is traced on every call; what matters is that nothing is compiled again."""
    lib, jnp, lax = _lib(framework)
    xs = lib.device_put(np.ones((steps, 4), np.float32))
    c0 = lib.device_put(np.zeros(4, np.float32))

    def body(c, x):
        return c * 0.5 + x, c

    def run():
        c, ys = lax.scan(body, c0, xs)
        c.block_until_ready()
    run()
    return run


LOOP_WORKLOADS = {"W6": w6_scan, "W6L": w6_loop, "W6b": w6b_scan, "W6bL": w6b_loop,
                  "W6bF": lambda fw: w6b_scan(fw, cross_iteration=True), "RNN": rnn_grad,
                  "E2": e2_eager_scan}
