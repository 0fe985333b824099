"""Eager evaluation with the rounding freedom compiled code has, as noise.

Two correct implementations need not agree to the last bit: a vectorised libm (`expf` from
libmvec) may be an ulp or two from NumPy's, and fused float16 code rounds once where eager
rounds after every op.  A program that then hits a discontinuity (pow of a negative base
at an exponent a hair from an integer, a float-to-int cast, a comparison) turns that ulp
into a different value, a NaN or a different integer.  `rounding_noise` makes eager itself
do that: inside it, the results of libm functions (every float type) and of every float
elementwise op (16-bit floats) move by a few ulps at random.  The oracle counts a
mismatch only where a noisy eager run shows the same instability at the same elements.
"""
from __future__ import annotations

import contextlib

import numpy as np

# libm functions: correctly rounded in neither NumPy nor libmvec, so implementations differ.
LIBM_OPS = ("exp", "exp2", "log", "log1p", "expm1", "rsqrt", "cbrt", "sin", "cos", "tan",
            "tanh", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
            "logistic", "erf", "pow", "atan2")
LIBM_ULPS = 2
# float16 / bfloat16: fused code rounds once (from float32) where eager rounds after each op.
ROUNDING_OPS = ("add", "sub", "mul", "div", "rem", "sqrt")
HALF_ULPS = 1
_BITS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _is_half(dtype):
    return dtype.itemsize == 2 and (dtype.kind == "f" or dtype.name == "bfloat16")


def _nudged(value, ulps, rng):
    """`value` with each finite nonzero element moved by up to `ulps` ulps (either way)."""
    value = np.asarray(value)
    if not (value.dtype.kind == "f" or value.dtype.name == "bfloat16") or value.size == 0:
        return value
    bits = np.array(value).view(_BITS[value.dtype.itemsize])   # a copy: impl results may alias
    magnitude_mask = np.array(-1, np.int64).astype(bits.dtype) >> 1
    step = rng.integers(-ulps, ulps + 1, size=value.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        movable = np.isfinite(value.astype(np.float64)) & ((bits & magnitude_mask) > ulps)
    moved = (bits.astype(np.int64) + step).astype(bits.dtype)
    with np.errstate(invalid="ignore", over="ignore"):   # the largest finite value stays finite
        movable &= np.isfinite(moved.view(value.dtype).astype(np.float64))
    return np.where(movable, moved, bits).view(value.dtype)


@contextlib.contextmanager
def rounding_noise(seed: int):
    """Eager evaluation (and anything else calling the primitives' NumPy implementations)
    with ulp noise on libm results and on 16-bit float results, reproducible from `seed`.
    Not thread-safe: it swaps the primitives' `impl` for the duration."""
    from ..lax.elementwise import PRIMITIVES
    rng = np.random.default_rng(seed)

    def noisy(impl, half_ulps, other_ulps):
        def impl_with_noise(*values, **params):
            out = np.asarray(impl(*values, **params))
            ulps = half_ulps if _is_half(out.dtype) else other_ulps
            return _nudged(out, ulps, rng) if ulps else out
        return impl_with_noise

    swapped = []
    try:
        for name in sorted(set(LIBM_OPS) | set(ROUNDING_OPS)):
            primitive = PRIMITIVES[name]
            if name in LIBM_OPS:
                primitive.override_impl(noisy(primitive.impl, LIBM_ULPS, LIBM_ULPS))
            else:
                primitive.override_impl(noisy(primitive.impl, HALF_ULPS, 0))
            swapped.append(primitive)
        yield
    finally:
        for primitive in swapped:
            primitive.override_impl(None)
