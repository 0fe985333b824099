"""Fused multiply-add for float32, the way XLA's CPU backend evaluates `a * b + c`.

XLA contracts `a * b + c` into one FMA (a single rounding), and JAX's samplers are written
that way (uniform's `u * (max - min) + min`, erf_inv's Horner steps), so reproducing JAX's
floats needs the same rounding.  float32 has no FMA meta-op, but a float32 product is exact
in float64, so `float32(float64(a) * b + c)` is the FMA except in the rare case where the
float64 sum rounds onto a float32 tie (probability about 2**-29 per value).  The float64
intermediates are made with the primitives directly, since fjit's API would make them float32
again without x64.  Derivatives are those of a * b + c.
"""
from __future__ import annotations

import numpy as np

from .. import lax
from .. import numpy as jnp
from ..core import Tracer
from ..custom_derivatives import custom_jvp
from ..lax.elementwise import PRIMITIVES

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _cast(x, dtype):
    return PRIMITIVES["convert_element_type"].bind(x, new_dtype=dtype, weak_type=False)


def _fma32_value(a, b, c):
    return _cast(lax.add(lax.mul(_cast(a, _F64), _cast(b, _F64)), _cast(c, _F64)), _F32)


_fma32 = custom_jvp(_fma32_value)


@_fma32.defjvp
def _fma32_jvp(primals, tangents):
    (a, b, c), (ta, tb, tc) = primals, tangents
    return _fma32(a, b, c), lax.add(lax.add(lax.mul(ta, b), lax.mul(a, tb)), tc)


def fma(a, b, c):
    """a * b + c rounded once for float32 arrays (broadcast together); a * b + c otherwise."""
    a, b, c = jnp.broadcast_arrays(jnp.asarray(a), jnp.asarray(b), jnp.asarray(c))
    if a.dtype == b.dtype == c.dtype == _F32:
        # Only traced operands can carry derivatives; concrete ones skip the custom_jvp call
        # (which would compile its Program on the first eager call).
        traced = any(isinstance(v, Tracer) for v in (a, b, c))
        return _fma32(a, b, c) if traced else _fma32_value(a, b, c)
    return a * b + c
