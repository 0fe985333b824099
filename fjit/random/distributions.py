"""Samplers built on the raw bits, following JAX's algorithms step for step so that the same
key gives the same numbers (bit-exact where only integer ops and IEEE + - * / are involved;
within an ulp or so where log/erf/tan of the C library differ from XLA's approximations)."""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes, lax
from .. import numpy as jnp
from ._erf_inv import erf_inv
from ._fma import fma
from .prng import canonicalize_shape, check_key, random_bits, split as _split


def _float_dtype(name, dtype):
    dtype = dtypes.default_float() if dtype is None else dtypes.to_dtype(dtype)
    if not dtypes.is_float(dtype):
        raise ValueError(f"{name}: dtype must be a float dtype, got {dtype.name}")
    return dtype


def _shape_or_none(name, shape):
    return None if shape is None else canonicalize_shape(name, shape)


def _check_shape(name, shape, *param_shapes):
    """Parameters must broadcast to exactly `shape` (JAX's rule)."""
    try:
        full = tuple(np.broadcast_shapes(shape, *param_shapes))
    except ValueError:
        full = None
    if full != tuple(shape):
        raise ValueError(f"{name}: parameter shapes {', '.join(map(str, param_shapes))} must "
                         f"broadcast to the shape argument {tuple(shape)}")


def _as(x, dtype):
    """x (Python scalar or array) as an array of `dtype`."""
    return jnp.asarray(x, dtype)


def _unit_floats(key, shape, dtype):
    """Floats in [0, 1): random mantissa bits under the exponent of 1.0, minus 1."""
    info = dtypes.finfo(dtype)
    nbits, nmant = info.bits, info.nmant
    rng_bits = 8 if nmant < 8 else nbits
    uint = np.dtype(f"uint{nbits}")
    bits = random_bits(key, rng_bits, shape)
    if rng_bits != nbits:
        bits = lax.convert_element_type(bits, uint)
    one_bits = int(np.array(1.0, dtype).view(uint))
    mantissa = lax.bitwise_or(lax.shift_right_logical(bits, rng_bits - nmant), one_bits)
    return lax.sub(lax.bitcast_convert_type(mantissa, dtype), lax.full((), 1.0, dtype))


def _uniform(key, shape, dtype, minval, maxval):
    minval, maxval = _as(minval, dtype), _as(maxval, dtype)
    _check_shape("uniform", shape, minval.shape, maxval.shape)
    floats = _unit_floats(key, shape, dtype)
    return jnp.maximum(minval, fma(floats, maxval - minval, minval))


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval) (minval/maxval broadcast to `shape`)."""
    key = check_key("uniform", key)
    return _uniform(key, canonicalize_shape("uniform", shape), _float_dtype("uniform", dtype),
                    minval, maxval)


def normal(key, shape=(), dtype=None):
    """Standard normal floats: sqrt(2) * erf_inv(u) for u uniform in (-1, 1)."""
    key = check_key("normal", key)
    dtype = _float_dtype("normal", dtype)
    shape = canonicalize_shape("normal", shape)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    u = _uniform(key, shape, dtype, float(lo), 1.0)
    return lax.mul(lax.full((), math.sqrt(2), dtype), erf_inv(u))


def truncated_normal(key, lower, upper, shape=None, dtype=None):
    """Normal floats conditioned on (lower, upper), by inverting the CDF of a uniform."""
    key = check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    lower, upper = _as(lower, dtype), _as(upper, dtype)
    shape = _shape_or_none("truncated_normal", shape)
    if shape is None:
        shape = jnp.broadcast_shapes(lower.shape, upper.shape)
    _check_shape("truncated_normal", shape, lower.shape, upper.shape)
    sqrt2 = lax.full((), math.sqrt(2), dtype)
    a, b = lax.erf(lax.div(lower, sqrt2)), lax.erf(lax.div(upper, sqrt2))
    u = _uniform(key, shape, dtype, a, b)
    out = lax.mul(sqrt2, erf_inv(u))
    inf = lax.full((), np.inf, dtype)
    return jnp.clip(out, lax.nextafter(lax.stop_gradient(lower), inf),
                    lax.nextafter(lax.stop_gradient(upper), lax.neg(inf)))


def bernoulli(key, p=0.5, shape=None, mode="low"):
    """Booleans that are True with probability p (`shape` defaults to p's shape).  mode
    'high' spends two uniforms per sample for resolution below 2**-nmant."""
    key = check_key("bernoulli", key)
    if mode not in ("low", "high"):
        raise ValueError(f"bernoulli: mode must be 'high' or 'low', got {mode!r}")
    p = jnp.asarray(p)
    if not dtypes.is_float(p.dtype):
        raise TypeError(f"bernoulli: the probability p must have a float dtype, got "
                        f"{p.dtype.name}")
    shape = p.shape if shape is None else canonicalize_shape("bernoulli", shape)
    _check_shape("bernoulli", shape, p.shape)
    if mode == "high":
        u = _uniform(key, (2,) + shape, p.dtype, 0.0, 1.0)
        u1, u2 = u[0], u[1] * (2.0 ** -dtypes.finfo(p.dtype).nmant)
        return u2 < p - u1
    return _uniform(key, shape, p.dtype, 0.0, 1.0) < p


def rademacher(key, shape=(), dtype=None):
    """-1 or +1 with equal probability (ints by default)."""
    key = check_key("rademacher", key)
    dtype = dtypes.default_int() if dtype is None else dtypes.to_dtype(dtype)
    b = lax.convert_element_type(bernoulli(key, 0.5, canonicalize_shape("rademacher", shape)),
                                 dtype)
    return lax.convert_element_type(2 * b - 1, dtype)


def _clip_to(val, dtype):
    """Integer `val` converted to `dtype`, clipped to its range instead of wrapping."""
    src, dst = dtypes.iinfo(val.dtype), dtypes.iinfo(dtype)
    lo, hi = max(int(dst.min), int(src.min)), min(int(dst.max), int(src.max))
    return lax.convert_element_type(jnp.clip(val, lax.full((), lo, val.dtype),
                                             lax.full((), hi, val.dtype)), dtype)


def randint(key, shape, minval, maxval, dtype=None):
    """Uniform ints in [minval, maxval): (2 * nbits random bits) mod span, as JAX does (so
    slightly biased unless the span is a power of two).  Narrow ints sample in int32."""
    key = check_key("randint", key)
    dtype = dtypes.default_int() if dtype is None else dtypes.to_dtype(dtype)
    if not dtypes.is_int(dtype):
        raise TypeError(f"randint: dtype must be an integer dtype, got {dtype.name}")
    shape = canonicalize_shape("randint", shape)
    info = dtypes.iinfo(dtype)
    sample_dtype = dtype
    if info.bits < 32:
        sample_dtype = np.dtype(np.int32)
        minval = jnp.clip(jnp.asarray(minval).astype(np.int32), int(info.min), int(info.max))
        maxval = jnp.clip(jnp.asarray(maxval).astype(np.int32), int(info.min),
                          int(info.max) + 1)
    out = _randint(key, shape, minval, maxval, sample_dtype)
    return lax.convert_element_type(out, dtype)


def _randint(key, shape, minval, maxval, dtype):
    minval, maxval = jnp.asarray(minval), jnp.asarray(maxval)
    _check_shape("randint", shape, minval.shape, maxval.shape)
    if not dtypes.is_int(minval.dtype):
        minval = minval.astype(int)
    if not dtypes.is_int(maxval.dtype):
        maxval = maxval.astype(int)
    top = lax.full((), int(dtypes.iinfo(dtype).max), dtype)
    maxval_out_of_range = maxval > _clip_to(top, maxval.dtype)
    minval, maxval = _clip_to(minval, dtype), _clip_to(maxval, dtype)
    nbits = dtypes.iinfo(dtype).bits
    uint = np.dtype(f"uint{nbits}")
    k1, k2 = _split(key)
    higher, lower = random_bits(k1, nbits, shape), random_bits(k2, nbits, shape)

    # Differences in the unsigned type: wrapping is defined there.
    umin, umax = lax.convert_element_type(minval, uint), lax.convert_element_type(maxval, uint)
    span = umax - umin
    span = jnp.where(maxval <= minval, lax.full((), 1, uint), span)
    span = jnp.where(maxval_out_of_range & (maxval > minval), span + lax.full((), 1, uint),
                     span)
    span = jnp.broadcast_to(span, shape)
    # (hi * 2**nbits + lo) mod span without overflow: 2**nbits mod span from two halves.
    multiplier = lax.rem(lax.full(shape, 2 ** (nbits // 2), uint), span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher, span), multiplier), lax.rem(lower, span))
    offset = lax.rem(offset, span)
    return lax.convert_element_type(umin + offset, dtype)


def _tiny(dtype):
    return float(dtypes.finfo(dtype).tiny)


def gumbel(key, shape=(), dtype=None, mode=None):
    """Gumbel(0, 1) floats: -log(-log(u)).  mode 'high' uses two uniforms per sample to
    reach further into the tail."""
    key = check_key("gumbel", key)
    dtype = _float_dtype("gumbel", dtype)
    shape = canonicalize_shape("gumbel", shape)
    mode = "low" if mode is None else mode
    if mode not in ("low", "high"):
        raise ValueError(f"gumbel: mode must be 'low' or 'high', got {mode!r}")
    if mode == "high":
        u = _uniform(key, (2,) + shape, dtype, 0.0, 1.0)
        high, low = u[0], u[1]
        scale = lax.full((), 2.0 ** -dtypes.finfo(dtype).nmant, dtype)
        x = jnp.where(high >= 0.5, high, fma(scale, low, high) + _tiny(dtype))
        return -jnp.log(-jnp.log1p(-x))
    return -jnp.log(-jnp.log(_uniform(key, shape, dtype, _tiny(dtype), 1.0)))


def exponential(key, shape=(), dtype=None):
    """Exponential(1) floats: -log1p(-u)."""
    key = check_key("exponential", key)
    dtype = _float_dtype("exponential", dtype)
    u = _uniform(key, canonicalize_shape("exponential", shape), dtype, 0.0, 1.0)
    return lax.neg(lax.log1p(lax.neg(u)))


def laplace(key, shape=(), dtype=None):
    """Laplace(0, 1) floats: sign(u) * log1p(-|u|) for u uniform in (-1, 1)."""
    key = check_key("laplace", key)
    dtype = _float_dtype("laplace", dtype)
    lo = -1.0 + float(dtypes.finfo(dtype).epsneg)
    u = _uniform(key, canonicalize_shape("laplace", shape), dtype, lo, 1.0)
    return lax.mul(lax.sign(u), lax.log1p(lax.neg(lax.abs(u))))


def logistic(key, shape=(), dtype=None):
    """Logistic(0, 1) floats: log(u) - log1p(-u)."""
    key = check_key("logistic", key)
    dtype = _float_dtype("logistic", dtype)
    x = _uniform(key, canonicalize_shape("logistic", shape), dtype, _tiny(dtype), 1.0)
    return lax.sub(lax.log(x), lax.log1p(lax.neg(x)))


def cauchy(key, shape=(), dtype=None):
    """Standard Cauchy floats: tan(pi * (u - 1/2))."""
    key = check_key("cauchy", key)
    dtype = _float_dtype("cauchy", dtype)
    u = _uniform(key, canonicalize_shape("cauchy", shape), dtype,
                 float(dtypes.finfo(dtype).eps), 1.0)
    return lax.tan(lax.mul(lax.full((), np.pi, dtype), lax.sub(u, lax.full((), 0.5, dtype))))


def lognormal(key, sigma=1.0, shape=None, dtype=None):
    """exp(sigma * normal)."""
    key = check_key("lognormal", key)
    dtype = _float_dtype("lognormal", dtype)
    sigma = _as(sigma, dtype)
    shape = sigma.shape if shape is None else canonicalize_shape("lognormal", shape)
    _check_shape("lognormal", shape, sigma.shape)
    return jnp.exp(normal(key, shape, dtype) * sigma)
