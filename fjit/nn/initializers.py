"""Parameter initializers with jax.nn.initializers' names: each factory returns
`init(key, shape, dtype=float32) -> array`.

Fans follow JAX's rule: fan_in = shape[in_axis] * receptive field, fan_out = shape[out_axis] *
receptive field, the receptive field being the product of the other (non-batch) dims.  Dense
weights here are (in, out) (in_axis=-2, out_axis=-1, JAX's default); convolution weights are
(out, in, *kernel), so the conv layers pass in_axis=1, out_axis=0.
"""
from __future__ import annotations

import math

from .. import numpy as jnp
from .. import random


def _dtype(dtype):
    return jnp.float32 if dtype is None else dtype


def zeros(key, shape, dtype=None):
    return jnp.zeros(shape, _dtype(dtype))


def ones(key, shape, dtype=None):
    return jnp.ones(shape, _dtype(dtype))


def constant(value, dtype=None):
    def init(key, shape, dtype=dtype):
        return jnp.full(shape, value, _dtype(dtype))
    return init


def normal(stddev=1e-2, dtype=None):
    def init(key, shape, dtype=dtype):
        return random.normal(key, shape, _dtype(dtype)) * jnp.asarray(stddev, _dtype(dtype))
    return init


def uniform(scale=1e-2, dtype=None):
    """Uniform on [0, scale) (JAX's convention)."""
    def init(key, shape, dtype=dtype):
        return random.uniform(key, shape, _dtype(dtype), 0.0, scale)
    return init


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    def init(key, shape, dtype=dtype):
        dt = _dtype(dtype)
        return random.truncated_normal(key, lower, upper, shape, dt) * jnp.asarray(stddev, dt)
    return init


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"initializers: fans need a weight of rank >= 2, got shape {shape}")
    n = len(shape)
    in_axis, out_axis = in_axis % n, out_axis % n
    batch = {b % n for b in ((batch_axis,) if isinstance(batch_axis, int) else batch_axis)}
    receptive = math.prod(d for k, d in enumerate(shape)
                          if k not in batch and k not in (in_axis, out_axis))
    return shape[in_axis] * receptive, shape[out_axis] * receptive


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(),
                     dtype=None):
    """Samples with variance scale / fan (mode "fan_in", "fan_out" or "fan_avg");
    distribution "truncated_normal" (rescaled so the truncated distribution has that
    variance), "normal" or "uniform"."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError("variance_scaling: distribution must be truncated_normal, normal or "
                         f"uniform, got {distribution!r}")

    def init(key, shape, dtype=dtype):
        dt = _dtype(dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(fan, 1)
        if distribution == "truncated_normal":
            # the standard normal truncated to [-2, 2] has standard deviation 0.87962566
            std = math.sqrt(variance) / 0.87962566103423978
            return random.truncated_normal(key, -2.0, 2.0, shape, dt) * jnp.asarray(std, dt)
        if distribution == "normal":
            return random.normal(key, shape, dt) * jnp.asarray(math.sqrt(variance), dt)
        limit = math.sqrt(3.0 * variance)
        return random.uniform(key, shape, dt, -limit, limit)
    return init


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal


def torch_default(fan_in_axes):
    """PyTorch's default for Linear/Conv weights and biases: uniform(-1/sqrt(fan_in),
    1/sqrt(fan_in)), fan_in the product of `fan_in_axes` of the weight's shape (given here
    because a bias has no fan of its own)."""
    def make(weight_shape):
        fan_in = math.prod(weight_shape[a] for a in fan_in_axes)
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0

        def init(key, shape, dtype=None):
            return random.uniform(key, shape, _dtype(dtype), -bound, bound)
        return init
    return make


__all__ = ["zeros", "ones", "constant", "normal", "uniform", "truncated_normal",
           "variance_scaling", "glorot_uniform", "glorot_normal", "lecun_uniform",
           "lecun_normal", "he_uniform", "he_normal", "xavier_uniform", "xavier_normal",
           "kaiming_uniform", "kaiming_normal", "compute_fans"]
