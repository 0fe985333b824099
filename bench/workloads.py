"""Benchmark workloads, each written once per framework.

A workload is `setup(framework) -> step`, where calling `step()` runs the work once and
blocks until it is done; a step may return its result (run.py checks it against NumPy's).
Only the framework being measured is imported, so each worker process holds one framework
(their thread pools fight otherwise).  W9 (W4's first call) lives in first_call.py.
"""
from __future__ import annotations

import numpy as np


def w7_tiny_jit_call(framework):
    """W7: one call of a jitted `x * 2 + 1` on a 3-element float32 array (dispatch cost)."""
    x = np.arange(3, dtype=np.float32)
    if framework == "fjit":
        import fjit
        f = fjit.jit(lambda v: v * 2 + 1)
        xs = fjit.device_put(x)
        f(xs)
        return lambda: f(xs).block_until_ready()
    if framework == "jax":
        import jax
        f = jax.jit(lambda v: v * 2 + 1)
        xs = jax.device_put(x)
        f(xs).block_until_ready()
        return lambda: f(xs).block_until_ready()
    if framework == "torch":
        import torch
        xs = torch.from_numpy(x)
        return lambda: xs * 2 + 1
    if framework == "numpy":
        return lambda: x * 2 + 1
    raise KeyError(framework)


def e1_eager_op(framework):
    """E1: one eager element-wise op (`x * 2`) on a 3-element float32 array, no jit."""
    x = np.arange(3, dtype=np.float32)
    if framework == "fjit":
        import fjit
        xs = fjit.device_put(x)
        return lambda: (xs * 2).block_until_ready()
    if framework == "jax":
        import jax
        xs = jax.device_put(x)
        return lambda: (xs * 2).block_until_ready()
    if framework == "torch":
        import torch
        xs = torch.from_numpy(x)
        return lambda: xs * 2
    if framework == "numpy":
        return lambda: x * 2
    raise KeyError(framework)


def m1_eager_matmul(framework):
    """M1: an eager 256x256 float32 matmul (fjit runs it as one contraction Program)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    if framework == "fjit":
        import fjit
        A, B = fjit.device_put(a), fjit.device_put(b)
        (A @ B).block_until_ready()
        return lambda: (A @ B).block_until_ready()
    if framework == "jax":
        import jax
        A, B = jax.device_put(a), jax.device_put(b)
        (A @ B).block_until_ready()
        return lambda: (A @ B).block_until_ready()
    if framework == "torch":
        import torch
        A, B = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: A @ B
    if framework == "numpy":
        return lambda: a @ b
    raise KeyError(framework)


WORKLOADS = {
    "W7": w7_tiny_jit_call,
    "E1": e1_eager_op,
    "M1": m1_eager_matmul,
}


def _mlp_data():
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)).astype(np.float32)
                       * np.float32(np.sqrt(2.0 / fan_in)), np.zeros(fan_out, np.float32)))
    x = rng.standard_normal((128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    return params, x, y


def mlp_loss(jnp):
    """W4's loss (ReLU MLP, softmax cross-entropy) written against `jnp` (fjit's or JAX's)."""
    def loss(p, x, y):
        h = x
        for w, b in p[:-1]:
            h = jnp.maximum(h @ w + b, 0.0)
        logits = h @ p[-1][0] + p[-1][1]
        m = jnp.max(logits, axis=1, keepdims=True)
        lse = jnp.log(jnp.sum(jnp.exp(logits - m), axis=1)) + m[:, 0]
        picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
        return jnp.mean(lse - picked)
    return loss


def w4_mlp_sgd_step(framework):
    """W4: one SGD step (lr 0.01) of a 784-512-512-10 ReLU MLP with softmax cross-entropy,
    batch 128: forward, backward and update."""
    params, x, y = _mlp_data()
    lr = 0.01
    if framework in ("fjit", "jax"):
        if framework == "fjit":
            import fjit as lib
            import fjit.numpy as jnp
        else:
            import jax as lib
            import jax.numpy as jnp

        loss = mlp_loss(jnp)

        @lib.jit
        def step(p, x, y):
            g = lib.grad(loss)(p, x, y)
            return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(p, g)]

        state = {"p": lib.device_put(params)}
        xs, ys = lib.device_put(x), lib.device_put(y.astype(np.int32))

        def run():
            state["p"] = step(state["p"], xs, ys)
            state["p"][0][0].block_until_ready()
        return run
    if framework == "torch":
        import torch
        p = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
             for w, b in params]
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)

        def run():
            h = xs
            for w, b in p[:-1]:
                h = torch.relu(h @ w + b)
            loss = torch.nn.functional.cross_entropy(h @ p[-1][0] + p[-1][1], ys)
            grads = torch.autograd.grad(loss, [t for pair in p for t in pair])
            with torch.no_grad():
                for t, g in zip([t for pair in p for t in pair], grads):
                    t -= lr * g
        return run
    if framework == "numpy":
        p = [(w.copy(), b.copy()) for w, b in params]
        onehot = np.eye(10, dtype=np.float32)[y]

        def run():
            acts, h = [x], x
            for w, b in p[:-1]:
                h = np.maximum(h @ w + b, 0)
                acts.append(h)
            logits = h @ p[-1][0] + p[-1][1]
            e = np.exp(logits - logits.max(1, keepdims=True))
            d = (e / e.sum(1, keepdims=True) - onehot) / len(x)
            for k in range(len(p) - 1, -1, -1):
                w, b = p[k]
                gw, gb = acts[k].T @ d, d.sum(0)
                if k:
                    d = (d @ w.T) * (acts[k] > 0)
                p[k] = (w - lr * gw, b - lr * gb)
        return run
    raise KeyError(framework)


WORKLOADS["W4"] = w4_mlp_sgd_step


# Large-array workloads.  Inputs are seeded NumPy arrays, converted per framework; fjit and
# JAX share one function body (only the imports differ).  a and b are Python floats passed as
# arguments, so they are weakly typed float32 scalars in fjit and JAX.

N_ELEMENTS = 1 << 24          # 16M float32 = 64 MB per array
GELU_A, GELU_B = 1.5, 0.25

# Bytes a call must move at least (each input read once, the output written once; no
# write-allocate traffic counted, as in STREAM), for the fraction-of-triad columns.
BYTES_MOVED = {
    "W1b": 2 * 4 * N_ELEMENTS,       # read x (64 MB), write y (64 MB)
    "W2": 2 * 4 * 4096 * 4096,       # read x (64 MB), write y (64 MB)
    "T1": 2 * 4 * 4000 * 4000,       # read x (61 MB), write y (61 MB)
}


def _jitted(framework, make_fn, arrays, *scalars):
    """fjit or JAX: jit make_fn(jnp), put the arrays on the device, warm up; the step."""
    if framework == "fjit":
        import fjit as lib
        import fjit.numpy as jnp
    else:
        import jax as lib
        import jax.numpy as jnp
    f = lib.jit(make_fn(jnp))
    args = [lib.device_put(a) for a in arrays] + list(scalars)
    f(*args).block_until_ready()
    return lambda: f(*args).block_until_ready()


def _gelu_fn(m):
    """gelu(x*a + b), tanh form; `m` is jax.numpy, fjit.numpy or numpy."""
    def gelu(x, a, b):
        v = x * a + b
        return 0.5 * v * (1 + m.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))
    return gelu


def w1_gelu(framework):
    """W1: y = gelu(x*a + b) (tanh form) over 16M float32 elements; a, b Python floats."""
    x = np.random.default_rng(1).standard_normal(N_ELEMENTS).astype(np.float32)
    a, b = GELU_A, GELU_B
    if framework in ("fjit", "jax"):
        return _jitted(framework, _gelu_fn, [x], a, b)
    if framework == "torch":
        import torch
        f, xs = _gelu_fn(torch), torch.from_numpy(x)
        return lambda: f(xs, a, b)
    if framework == "numpy":
        f = _gelu_fn(np)
        return lambda: f(x, a, b)
    raise KeyError(framework)


def w1b_axpb(framework):
    """W1b: y = x*a + b over 16M float32 elements (memory bound); a, b Python floats."""
    x = np.random.default_rng(1).standard_normal(N_ELEMENTS).astype(np.float32)
    a, b = GELU_A, GELU_B
    if framework in ("fjit", "jax"):
        return _jitted(framework, lambda jnp: lambda x, a, b: x * a + b, [x], a, b)
    if framework == "torch":
        import torch
        xs = torch.from_numpy(x)
        return lambda: xs * a + b
    if framework == "numpy":
        return lambda: x * a + b
    raise KeyError(framework)


def _softmax_fn(m):
    def softmax(x):
        e = m.exp(x - m.max(x, axis=1, keepdims=True))
        return e / m.sum(e, axis=1, keepdims=True)
    return softmax


def w2_softmax(framework):
    """W2: row softmax of a 4096x4096 float32 matrix (minus the row max, exp, / row sum)."""
    x = np.random.default_rng(2).standard_normal((4096, 4096)).astype(np.float32)
    if framework in ("fjit", "jax"):
        return _jitted(framework, _softmax_fn, [x])
    if framework == "torch":
        import torch
        xs = torch.from_numpy(x)

        def softmax():
            e = torch.exp(xs - torch.amax(xs, dim=1, keepdim=True))
            return e / torch.sum(e, dim=1, keepdim=True)
        return softmax
    if framework == "numpy":
        f = _softmax_fn(np)
        return lambda: f(x)
    raise KeyError(framework)


def w3_matmul(framework):
    """W3: a 1024x1024 @ 1024x1024 float32 matmul (jitted in fjit and JAX)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    if framework in ("fjit", "jax"):
        return _jitted(framework, lambda jnp: lambda a, b: a @ b, [a, b])
    if framework == "torch":
        import torch
        A, B = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: A @ B
    if framework == "numpy":
        return lambda: a @ b
    raise KeyError(framework)


def t1_transpose(framework):
    """T1: y = x.T + 1 for a 4000x4000 float32 matrix, y row-major (the tile pass's case; not
    4096, whose power-of-two rows alias in the caches and punish every framework unevenly).
    NumPy and PyTorch write into a preallocated row-major output: left alone they return a
    transposed view's layout and never transpose at all."""
    x = np.random.default_rng(4).standard_normal((4000, 4000)).astype(np.float32)
    if framework in ("fjit", "jax"):
        return _jitted(framework, lambda jnp: lambda x: x.T + 1.0, [x])
    if framework == "torch":
        import torch
        xs, out = torch.from_numpy(x), torch.empty(4000, 4000)
        return lambda: torch.add(xs.T, 1.0, out=out)
    if framework == "numpy":
        out = np.empty((4000, 4000), np.float32)
        return lambda: np.add(x.T, np.float32(1.0), out=out)
    raise KeyError(framework)


WORKLOADS.update({"W1": w1_gelu, "W1b": w1b_axpb, "W2": w2_softmax, "W3": w3_matmul,
                  "T1": t1_transpose})

from workloads_nn import NN_WORKLOADS  # noqa: E402  (W5, W8: the model library's workloads)

WORKLOADS.update(NN_WORKLOADS)
from workloads_loops import LOOP_WORKLOADS  # noqa: E402  (W6, W6b, RNN: training loops)

WORKLOADS.update(LOOP_WORKLOADS)
