"""erf_inv, the inverse error function normal samples are made with.

The same piecewise polynomials XLA evaluates (M. Giles, "Approximating the erfinv function",
GPU Computing Gems, 2011), in the same order, so normal and truncated-normal samples match
JAX's to the last bit or within an ulp (log1p and sqrt are the C library's here).  float16 and
bfloat16 are computed in float32 like XLA does.  The derivative is the exact one,
sqrt(pi)/2 * exp(erf_inv(x)**2), not the polynomial's.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes, lax
from ..core import Tracer
from ..custom_derivatives import custom_jvp
from ._fma import fma

# float32: w = -log1p(-x*x); w < 5 uses the first row in (w - 2.5), else the second in
# (sqrt(w) - 3).  Highest degree first.
_F32_SMALL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
              0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_F32_LARGE = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
              0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)

# float64: w < 6.25 in (w - 3.125); w < 16 in (sqrt(w) - 3.25); else in (sqrt(w) - 5).
_F64_SMALL = (-3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
              1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
              6.6376381343583238325e-15, -4.0545662729752068639e-14,
              -8.1519341976054721522e-14, 2.6335093153082322977e-12,
              -1.2975133253453532498e-11, -5.4154120542946279317e-11,
              1.051212273321532285e-09, -4.1126339803469836976e-09,
              -2.9070369957882005086e-08, 4.2347877827932403518e-07,
              -1.3654692000834678645e-06, -1.3882523362786468719e-05,
              0.0001867342080340571352, -0.00074070253416626697512,
              -0.0060336708714301490533, 0.24015818242558961693, 1.6536545626831027356)
_F64_MID = (2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
            1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
            2.9234449089955446044e-06, 1.2475304481671778723e-05,
            -4.7318229009055733981e-05, 6.8284851459573175448e-05,
            2.4031110387097893999e-05, -0.0003550375203628474796,
            0.00095328937973738049703, -0.0016882755560235047313,
            0.0024914420961078508066, -0.0037512085075692412107,
            0.005370914553590063617, 1.0052589676941592334, 3.0838856104922207635)
_F64_LARGE = (-2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
              -3.7894654401267369937e-09, 7.6157012080783393804e-09,
              -1.4960026627149240478e-08, 2.9147953450901080826e-08,
              -6.7711997758452339498e-08, 2.2900482228026654717e-07,
              -9.9298272942317002539e-07, 4.5260625972231537039e-06,
              -1.9681778105531670567e-05, 7.5995277030017761139e-05,
              -0.00021503011930044477347, -0.00013871931833623122026,
              1.0103004648645343977, 4.8499064014085844221)


def _const(x, value):
    return lax.full(x.shape, value, x.dtype)


def _pick(cond, a, b, like):
    return lax.select(cond, _const(like, a), _const(like, b))


def _w(x):
    return lax.neg(lax.log1p(lax.mul(x, lax.neg(x))))


def _finish(x, p):
    """p * x, with erf_inv(+-1) = +-inf."""
    at_one = lax.eq(lax.abs(x), _const(x, 1.0))
    return lax.select(at_one, lax.mul(x, _const(x, np.inf)), lax.mul(p, x))


def _erf_inv32(x):
    w = _w(x)
    small = lax.lt(w, _const(x, 5.0))
    w = lax.select(small, lax.sub(w, _const(x, 2.5)), lax.sub(lax.sqrt(w), _const(x, 3.0)))
    p = _pick(small, _F32_SMALL[0], _F32_LARGE[0], x)
    for a, b in zip(_F32_SMALL[1:], _F32_LARGE[1:]):
        p = fma(p, w, _pick(small, a, b, x))
    return _finish(x, p)


def _erf_inv64(x):
    w = _w(x)
    small = lax.lt(w, _const(x, 6.25))
    mid = lax.lt(w, _const(x, 16.0))
    shift = lax.select(mid, _const(x, 3.25), _const(x, 5.0))
    w = lax.select(small, lax.sub(w, _const(x, 3.125)), lax.sub(lax.sqrt(w), shift))

    def coefficient(i):
        c = _const(x, _F64_SMALL[i])
        if i < 19:
            c = lax.select(small, c, _const(x, _F64_MID[i]))
        if i < 17:
            c = lax.select(mid, c, _const(x, _F64_LARGE[i]))
        return c

    p = coefficient(0)
    for i in range(1, 23):
        step = lax.add(coefficient(i), lax.mul(p, w))
        p = step if i < 17 else lax.select(mid if i < 19 else small, step, p)
    return _finish(x, p)


def _erf_inv(x):
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"erf_inv: needs a float array, got {x.dtype.name}")
    if x.dtype == np.float64:
        return _erf_inv64(x)
    if x.dtype == np.float32:
        return _erf_inv32(x)
    return lax.convert_element_type(_erf_inv32(lax.convert_element_type(x, np.float32)),
                                    x.dtype)


_erf_inv_ad = custom_jvp(_erf_inv)


@_erf_inv_ad.defjvp
def _erf_inv_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = _erf_inv_ad(x)
    slope = lax.mul(_const(y, math.sqrt(math.pi) / 2), lax.exp(lax.mul(y, y)))
    return y, lax.mul(t, slope)


def erf_inv(x):
    """The inverse of erf on [-1, 1] (float arrays).  Concrete inputs need no derivative and
    skip the custom_jvp call (which would compile its Program on the first eager call)."""
    return _erf_inv_ad(x) if isinstance(x, Tracer) else _erf_inv(x)
