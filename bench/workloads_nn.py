"""Model-library workloads (issue 5): W5, a LeNet-5 training step, and W8, per-example
gradients with vmap(grad).  Same conventions as workloads.py: `setup(framework) -> step`;
weights are seeded NumPy arrays shared by every framework (PyTorch's layouts for
convolutions; dense weights (in, out) except in PyTorch).  A framework a workload has no
version for raises NotImplementedError (run.py prints n/a)."""
from __future__ import annotations

import numpy as np

LR = 0.01


def _lenet_data():
    rng = np.random.default_rng(5)

    def uniform(shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    convs = [(uniform((6, 1, 5, 5), 25), uniform((6,), 25)),
             (uniform((16, 6, 5, 5), 150), uniform((16,), 150))]
    dense = [(uniform((400, 120), 400), uniform((120,), 400)),
             (uniform((120, 84), 120), uniform((84,), 120)),
             (uniform((84, 10), 84), uniform((10,), 84))]
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64).astype(np.int32)
    return convs, dense, x, y


def w5_lenet_step(framework):
    """W5: one SGD step (lr 0.01) of LeNet-5 (conv 6@5x5 pad 2, max-pool 2, conv 16@5x5,
    max-pool 2, dense 400-120-84-10, ReLU), softmax cross-entropy, batch 64 of 28x28x1."""
    convs, dense, x, y = _lenet_data()
    if framework == "fjit":
        import fjit
        from fjit import nn
        model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.relu, nn.MaxPool2d(2),
                              nn.Conv2d(6, 16, 5), nn.relu, nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(400, 120), nn.relu, nn.Linear(120, 84), nn.relu,
                              nn.Linear(84, 10))
        names = ["0", "3", "7", "9", "11"]
        params = {n: {"weight": w, "bias": b} for n, (w, b) in zip(names, convs + dense)}

        def loss(p, x, y):
            logits = model.apply(p, x)
            return nn.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        @fjit.jit
        def step(p, x, y):
            g = fjit.grad(loss)(p, x, y)
            return fjit.tree_util.tree_map(lambda a, b: a - LR * b, p, g)
        return _stateful(fjit, step, params, x, y, lambda p: p["0"]["weight"])
    if framework == "jax":
        import jax
        import jax.numpy as jnp
        params = convs + dense

        def conv(h, w, b, pad):
            h = jax.lax.conv_general_dilated(h, w, (1, 1), [(pad, pad), (pad, pad)])
            return h + b[None, :, None, None]

        def pool(h):
            return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                                         "VALID")

        def loss(p, x, y):
            h = pool(jax.nn.relu(conv(x, *p[0], 2)))
            h = pool(jax.nn.relu(conv(h, *p[1], 0))).reshape(x.shape[0], -1)
            for w, b in p[2:4]:
                h = jax.nn.relu(h @ w + b)
            logits = h @ p[4][0] + p[4][1]
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

        @jax.jit
        def step(p, x, y):
            g = jax.grad(loss)(p, x, y)
            return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g)
        return _stateful(jax, step, params, x, y, lambda p: p[0][0])
    if framework == "torch":
        import torch
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
            torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
        with torch.no_grad():
            layers = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
            for m, (w, b) in zip(layers, convs + dense):
                m.weight.copy_(torch.from_numpy(w if w.ndim == 4 else w.T.copy()))
                m.bias.copy_(torch.from_numpy(b))
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

        def run():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xs), ys).backward()
            opt.step()
        return run
    raise NotImplementedError(framework)


def _stateful(lib, step, params, x, y, probe):
    """A step that carries the parameters from call to call (fjit and JAX)."""
    state = {"p": lib.device_put(params)}
    xs, ys = lib.device_put(x), lib.device_put(y)

    def run():
        state["p"] = step(state["p"], xs, ys)
        probe(state["p"]).block_until_ready()
    return run


def w8_per_example_gradients(framework):
    """W8: per-example gradients of a linear model's squared error, vmap(grad) over a batch of
    256 examples with 1024 features: the (256, 1024) weight gradients and (256,) bias ones."""
    rng = np.random.default_rng(8)
    w = (rng.standard_normal(1024) / 32).astype(np.float32)
    b = np.float32(0.1)
    x = rng.standard_normal((256, 1024)).astype(np.float32)
    y = rng.standard_normal(256).astype(np.float32)
    if framework in ("fjit", "jax"):
        if framework == "fjit":
            import fjit as lib
        else:
            import jax as lib

        def loss(params, xi, yi):
            w, b = params
            return 0.5 * (xi @ w + b - yi) ** 2

        f = lib.jit(lib.vmap(lib.grad(loss), in_axes=(None, 0, 0)))
        args = [lib.device_put((w, b)), lib.device_put(x), lib.device_put(y)]
        f(*args)[0].block_until_ready()

        def run():
            gw, gb = f(*args)
            gw.block_until_ready()
            return gw
        return run
    if framework == "torch":
        import torch
        from torch.func import grad, vmap
        params = (torch.from_numpy(w), torch.tensor(b))
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)

        def loss(params, xi, yi):
            return 0.5 * (xi @ params[0] + params[1] - yi) ** 2

        f = vmap(grad(loss), in_dims=(None, 0, 0))
        return lambda: f(params, xs, ys)[0]
    if framework == "numpy":
        def run():
            residual = x @ w + b - y            # d loss / d prediction, per example
            return residual[:, None] * x       # the bias gradients are `residual` itself
        return run
    raise NotImplementedError(framework)


NN_WORKLOADS = {"W5": w5_lenet_step, "W8": w8_per_example_gradients}
