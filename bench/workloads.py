"""Benchmark workloads, each written once per framework.

A workload is `setup(framework) -> step`, where calling `step()` runs the work once and
blocks until it is done.  Only the framework being measured is imported, so each worker
process holds one framework (their thread pools fight otherwise).
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
