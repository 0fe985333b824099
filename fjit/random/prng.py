"""Keys and raw bits: threefry-2x32 (20 rounds) written in uint32 meta-ops.

A key is a raw `uint32[2]` array, as from `jax.random.PRNGKey`.  Everything follows JAX's
default configuration (threefry2x32 with `jax_threefry_partitionable=True`, the default
since JAX 0.5), so keys and bits are bit-for-bit JAX's:

- element i of a sample of any shape hashes the counter pair (hi, lo) of its flat index i
  (as a 64-bit number) under the key; 32-bit bits are the xor of the two output words,
  64-bit bits are hi << 32 | lo, 8/16-bit bits are the low bits of the xor;
- split(key, shape)[i] is the hashed pair of flat index i;
- fold_in(key, d) is the hashed pair of the counter (0, d).

The hash is ~120 element-wise equations (add wraps on uint32), so jit fuses it into one
kernel, vmap batches it over keys and nothing needs a primitive of its own.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .. import dtypes, lax
from ..array import Array
from ..core import Tracer
from ..numpy import asarray

_U32 = np.dtype(np.uint32)
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA  # Threefry's key-schedule constant


def _is_array(x):
    return isinstance(x, (Array, Tracer))


def _as_array(x, dtype=None):
    return asarray(x, dtype)


def _rotl(x, r):
    return lax.bitwise_or(lax.shift_left(x, r), lax.shift_right_logical(x, 32 - r))


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 block cipher (20 rounds) of counters (x1, x2) under key (k1, k2):
    uint32 arrays that broadcast (rank-0 keys with counter arrays in practice)."""
    ks = (k1, k2, lax.bitwise_xor(lax.bitwise_xor(k1, k2), _PARITY))
    x1, x2 = lax.add(x1, ks[0]), lax.add(x2, ks[1])
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x1 = lax.add(x1, x2)
            x2 = lax.bitwise_xor(_rotl(x2, r), x1)
        x1 = lax.add(x1, ks[(group + 1) % 3])
        x2 = lax.add(lax.add(x2, ks[(group + 2) % 3]), group + 1)
    return x1, x2


# --- arguments --------------------------------------------------------------------------------

def check_key(name, key):
    """`key` as an fjit array, or a TypeError naming `name` if it is not one uint32[2] key."""
    if not _is_array(key) and not isinstance(key, (np.ndarray, list, tuple)):
        raise TypeError(f"{name}: expected a PRNG key (uint32[2] from fjit.random.PRNGKey), "
                        f"got {type(key).__name__}")
    key = _as_array(key)
    if key.dtype != _U32 or key.shape != (2,):
        what = f"{key.dtype.name}{list(key.shape)}"
        hint = " (a batch of keys: use fjit.vmap)" if key.dtype == _U32 and \
            key.ndim > 1 and key.shape[-1] == 2 else ""
        raise TypeError(f"{name}: expected a single PRNG key of type uint32[2], got "
                        f"{what}{hint}")
    return key


def canonicalize_shape(name, shape):
    """A sample shape as a tuple of non-negative Python ints (JAX wants a sequence)."""
    if isinstance(shape, (int, np.integer)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"{name}: shape must be a sequence of ints, got {shape!r} (write "
                        f"({shape!r},) for a 1-D shape)")
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{name}: shape {shape} has a negative dimension")
    return shape


def _key_words(key):
    return lax.reshape(lax.slice(key, (0,), (1,)), ()), lax.reshape(lax.slice(key, (1,), (2,)), ())


def _hash_counters(key, shape):
    """The two output words of hashing every flat index of `shape` under `key`."""
    size = math.prod(shape)
    if size > 2 ** 32:
        raise NotImplementedError(f"random samples of more than 2**32 elements ({shape})")
    k1, k2 = _key_words(key)
    lo = lax.reshape(lax.iota(_U32, size), shape)
    hi = lax.full(shape, 0, _U32)
    return threefry2x32(k1, k2, hi, lo)


def random_bits(key, bit_width, shape):
    """Unsigned ints of `bit_width` bits (8, 16, 32 or 64) for a checked key."""
    b1, b2 = _hash_counters(key, shape)
    if bit_width == 64:
        u64 = np.dtype(np.uint64)
        hi = lax.convert_element_type(b1, u64)
        return lax.bitwise_or(lax.shift_left(hi, 32), lax.convert_element_type(b2, u64))
    bits = lax.bitwise_xor(b1, b2)
    if bit_width == 32:
        return bits
    mask = (1 << bit_width) - 1
    return lax.convert_element_type(lax.bitwise_and(bits, mask), np.dtype(f"uint{bit_width}"))


# --- the public key API -----------------------------------------------------------------------

def _seed_words(seed):
    """(hi, lo) uint32 words of an integer seed array, like JAX's threefry_seed."""
    if seed.ndim:
        raise TypeError(f"PRNGKey: the seed must be a scalar, got shape {seed.shape} (use "
                        "fjit.vmap to make many keys)")
    if not dtypes.is_int(seed.dtype):
        raise TypeError(f"PRNGKey: the seed must be an integer, got {seed.dtype.name}")
    if seed.dtype.itemsize == 8:
        u64 = np.dtype(np.uint64)
        bits = lax.bitcast_convert_type(seed, u64) if not dtypes.is_unsigned(seed.dtype) else seed
        hi = lax.convert_element_type(lax.shift_right_logical(bits, 32), _U32)
        lo = lax.convert_element_type(lax.bitwise_and(bits, 0xFFFFFFFF), _U32)
        return hi, lo
    if seed.dtype.itemsize < 4:
        seed = lax.convert_element_type(seed, np.dtype(np.uint32 if dtypes.is_unsigned(
            seed.dtype) else np.int32))
    lo = seed if seed.dtype == _U32 else lax.bitcast_convert_type(seed, _U32)
    return lax.full((), 0, _U32), lo


def PRNGKey(seed, *, impl=None):
    """A raw `uint32[2]` key from an integer seed: (high, low) 32-bit words of the seed.

    Without x64 a Python int seed is first wrapped to int32 (as JAX does), so only its low
    32 bits count; with x64 it is an int64."""
    _check_impl(impl)
    if isinstance(seed, (bool, np.bool_)) or (
            isinstance(seed, (float, np.floating))):
        raise TypeError(f"PRNGKey: the seed must be an integer, got {seed!r}")
    if isinstance(seed, int):
        if not -2 ** 63 <= seed < 2 ** 64:
            raise OverflowError(f"PRNGKey: seed {seed} does not fit 64 bits")
        value = seed % 2 ** 64 if dtypes.canonicalize(np.int64).itemsize == 8 else \
            seed % 2 ** 32
        return _as_array(np.array([value >> 32, value & 0xFFFFFFFF], np.uint32))
    hi, lo = _seed_words(_as_array(seed))
    return lax.concatenate([lax.reshape(hi, (1,)), lax.reshape(lo, (1,))], 0)


def key(seed, *, impl=None):
    """Same as PRNGKey: fjit's keys are raw uint32[2] arrays (JAX's `key` returns a typed
    key array; every fjit.random function accepts the raw key in its place)."""
    return PRNGKey(seed, impl=impl)


def _check_impl(impl):
    if impl not in (None, "threefry2x32"):
        raise ValueError(f"fjit.random only implements 'threefry2x32', got impl={impl!r}")


def split(key, num=2):
    """`num` new keys (an int or a shape), stacked on a new leading axis: (*num, 2)."""
    key = check_key("split", key)
    shape = canonicalize_shape("split", tuple(num) if hasattr(num, "__iter__") else (num,))
    b1, b2 = _hash_counters(key, shape)
    n = len(shape)
    return lax.concatenate([lax.reshape(b1, shape + (1,)), lax.reshape(b2, shape + (1,))], n)


def fold_in(key, data):
    """A new key from `key` and the 32-bit integer `data` (hash of the counter (0, data))."""
    key = check_key("fold_in", key)
    if isinstance(data, (int, np.integer)) and not isinstance(data, (bool, np.bool_)):
        if not 0 <= int(data) < 2 ** 32:
            raise OverflowError(f"fold_in: data {int(data)} is out of bounds for uint32")
        data = _as_array(np.uint32(int(data)))
    else:
        data = _as_array(data)
        if data.ndim:
            raise TypeError(f"fold_in: data must be a scalar, got shape {data.shape} (use "
                            "fjit.vmap for batches)")
        if not dtypes.is_int(data.dtype):
            raise TypeError(f"fold_in: data must be an integer, got {data.dtype.name}")
        if data.dtype != _U32:
            data = lax.bitcast_convert_type(data, _U32) if data.dtype == np.int32 else \
                lax.convert_element_type(data, _U32)
    k1, k2 = _key_words(key)
    b1, b2 = threefry2x32(k1, k2, lax.full((), 0, _U32), data)
    return lax.concatenate([lax.reshape(b1, (1,)), lax.reshape(b2, (1,))], 0)


def bits(key, shape=(), dtype=None):
    """Uniform random unsigned ints of `shape` (default uint32, uint64 with x64)."""
    key = check_key("bits", key)
    dtype = dtypes.default_uint() if dtype is None else dtypes.to_dtype(dtype)
    if not dtypes.is_unsigned(dtype):
        raise ValueError(f"bits: dtype must be an unsigned int dtype, got {dtype.name}")
    return random_bits(key, dtype.itemsize * 8, canonicalize_shape("bits", shape))


def key_data(keys):
    """The uint32 data of keys: fjit's keys are that data already."""
    keys = _as_array(keys)
    if keys.dtype != _U32 or not keys.ndim or keys.shape[-1] != 2:
        raise TypeError(f"key_data: expected uint32[..., 2] keys, got "
                        f"{keys.dtype.name}{list(keys.shape)}")
    return keys


def wrap_key_data(key_bits_array, *, impl=None):
    """Keys from their uint32[..., 2] data: the same array, checked."""
    _check_impl(impl)
    return key_data(key_bits_array)


def clone(key):
    """The key itself (keys are immutable values)."""
    return key

