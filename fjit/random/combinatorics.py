"""Discrete samplers: categorical, permutation, choice.

permutation is JAX's shuffle: sort by fresh random uint32 keys (stable), once per round, with
ceil(3 * ln(n) / ln(2**32 - 1)) rounds (1 up to n = 1625), so it is JAX's permutation exactly.
The sort is fjit.numpy.argsort (a bitonic network of meta-ops).  Top-k is a descending stable
argsort: ties go to the lower index, as in XLA's TopK.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes, lax
from .. import numpy as jnp
from .distributions import _check_shape, _uniform, gumbel, randint
from .prng import canonicalize_shape, check_key, random_bits, split as _split


def _axis(name, axis, ndim):
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis {axis} is out of bounds for {ndim} dimension(s)")
    return axis % ndim


def _top_k_indices(x, k):
    """Indices of the k largest entries along the last axis (ties: lower index first)."""
    order = jnp.argsort(x, axis=-1, descending=True)
    return order[..., :k]


def categorical(key, logits, axis=-1, shape=None, replace=True, mode=None):
    """Samples of category indices with probabilities softmax(logits, axis): the argmax of
    logits plus Gumbel noise (with replacement) or the top k of it (without)."""
    key = check_key("categorical", key)
    logits = jnp.asarray(logits)
    if logits.ndim == 0:
        raise ValueError("categorical: logits must have at least one dimension")
    axis = _axis("categorical", axis, logits.ndim)
    batch_shape = tuple(np.delete(logits.shape, axis))
    shape = batch_shape if shape is None else canonicalize_shape("categorical", shape)
    _check_shape("categorical", shape, batch_shape)
    prefix = shape[:len(shape) - len(batch_shape)]
    if replace:
        noise_shape = list(shape[len(prefix):])
        noise_shape.insert(axis, logits.shape[axis])
        noise = gumbel(key, prefix + tuple(noise_shape), logits.dtype, mode)
        expanded = lax.reshape(logits, (1,) * len(prefix) + logits.shape)
        return jnp.argmax(noise + expanded, axis=axis + len(prefix))
    k = math.prod(prefix)
    if k > logits.shape[axis]:
        raise ValueError(f"categorical: {k} samples without replacement exceed the "
                         f"{logits.shape[axis]} categories")
    noisy = logits + gumbel(key, logits.shape, logits.dtype, mode)
    idx = _top_k_indices(jnp.moveaxis(noisy, axis, -1), k)  # batch_shape + (k,)
    idx = jnp.moveaxis(idx, -1, 0)
    return lax.reshape(idx, shape)


def _shuffle(key, x, axis):
    """x reordered along `axis` by sorting on random keys (JAX's rounds and keys)."""
    rounds = int(np.ceil(3 * np.log(max(1, x.size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        keys = _split(key)
        key, subkey = keys[0], keys[1]
        sort_keys = random_bits(subkey, 32, x.shape)
        x = jnp.take_along_axis(x, jnp.argsort(sort_keys, axis=axis), axis=axis)
    return x


def permutation(key, x, axis=0, independent=False):
    """A random permutation of arange(x) (int x) or of x along `axis`: the same one for
    every slice, or one per slice if `independent`."""
    key = check_key("permutation", key)
    if isinstance(x, (int, np.integer)) or (hasattr(x, "ndim") and x.ndim == 0):
        value = np.asarray(x)
        if not np.issubdtype(value.dtype, np.integer):
            raise TypeError(f"permutation: x must be an integer or an array with at least "
                            f"one dimension, got {value.dtype.name} scalar")
        _axis("permutation", axis, 1)
        return _shuffle(key, jnp.arange(int(value)), 0)
    x = jnp.asarray(x)
    axis = _axis("permutation", axis, x.ndim)
    if independent or x.ndim == 1:
        return _shuffle(key, x, axis)
    order = _shuffle(key, jnp.arange(x.shape[axis]), 0)
    return jnp.take(x, order, axis=axis)


def _searchsorted_left(sorted_1d, values):
    """For each value, how many entries of the sorted 1-D array are < it."""
    less = sorted_1d < values[..., None]
    return jnp.sum(less, axis=-1, dtype=dtypes.default_int())


def choice(key, a, shape=(), replace=True, p=None, axis=0, mode=None):
    """Samples from arange(a) (int a) or from the slices of a along `axis`: uniform or with
    probabilities p, with or without replacement (JAX's algorithms)."""
    key = check_key("choice", key)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"choice: shape must be a sequence, got {shape!r}")
    shape = canonicalize_shape("choice", shape)
    arr = jnp.asarray(a)
    if arr.ndim == 0:
        n_inputs = int(np.asarray(a))
    else:
        axis = _axis("choice", axis, arr.ndim)
        n_inputs = arr.shape[axis]
    n_draws = math.prod(shape)
    if n_draws == 0:
        return jnp.zeros(shape, arr.dtype)
    if n_inputs <= 0:
        raise ValueError("choice: a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"choice: cannot take a larger sample ({n_draws}) than the "
                         f"population ({n_inputs}) when replace=False")
    if p is None:
        if replace:
            ind = randint(key, shape, 0, n_inputs)
            result = ind if arr.ndim == 0 else jnp.take(arr, ind, axis=axis)
        else:
            slices = (slice(None),) * axis + (slice(n_draws),)
            result = permutation(key, n_inputs if arr.ndim == 0 else arr, axis)[slices]
    else:
        p = jnp.asarray(p)
        if not dtypes.is_float(p.dtype):
            p = p.astype(dtypes.to_inexact(p.dtype))
        if p.shape != (n_inputs,):
            raise ValueError(f"choice: p must be None or a 1-D vector of size "
                             f"a.shape[axis] = {n_inputs}, got shape {p.shape}")
        if replace:
            cumulative = jnp.cumsum(p)
            r = cumulative[-1] * (1 - _uniform(key, shape, cumulative.dtype, 0.0, 1.0))
            ind = _searchsorted_left(cumulative, r)
        else:
            g = gumbel(key, (n_inputs,), p.dtype, mode) + jnp.log(p)
            ind = _top_k_indices(g, n_draws)
        result = ind if arr.ndim == 0 else jnp.take(arr, ind, axis=axis)
    new_shape = shape if arr.ndim == 0 else arr.shape[:axis] + shape + arr.shape[axis + 1:]
    return jnp.reshape(result, new_shape)
