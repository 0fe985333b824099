"""Activation functions and friends with jax.nn's names, signatures and defaults.

Everything is written in fjit.numpy / fjit.lax, so grad, vmap and jit apply.  Three choices
worth knowing:

- Kinks get JAX's one-sided derivatives by being written as `where`s instead of max/min
  (whose derivative splits ties): relu'(0) = 0, relu6'(0) = relu6'(6) = 0, like JAX's
  custom rules, with no custom_jvp call to trace or compile.
- softmax has JAX's custom_jvp (tangent y * (t - sum(y * t))): cheap, and zero on masked or
  -inf entries.  A concrete (untraced) input skips the custom_jvp call: nothing can
  differentiate it, and eager code then compiles nothing.
- Branches that are not taken are fed safe inputs ("double where"), so their infinities
  never turn into NaN gradients.
"""
from __future__ import annotations

import functools
import operator

import numpy as np

from .. import dtypes, lax
from .. import numpy as jnp
from ..array import Array
from ..custom_derivatives import custom_jvp
from ..numpy._util import asarray, normalize_axes, normalize_axis, promote_dtypes_inexact

__all__ = ["relu", "relu6", "leaky_relu", "elu", "celu", "selu", "gelu", "silu", "swish",
           "sigmoid", "log_sigmoid", "softplus", "soft_sign", "hard_tanh", "hard_sigmoid",
           "hard_silu", "hard_swish", "tanh", "glu", "softmax", "log_softmax", "logsumexp",
           "standardize", "one_hot"]


def _inexact(x):
    """x as a float array (integers and bools promote to the default float)."""
    (x,) = promote_dtypes_inexact(asarray(x))
    return x


# --- rectifiers -------------------------------------------------------------------------------

def relu(x):
    """max(x, 0); the derivative at 0 is 0 (JAX's rule), NaN propagates."""
    x = asarray(x)
    return jnp.where(x <= 0, jnp.zeros_like(x), x)


def relu6(x):
    """min(max(x, 0), 6); derivative 0 at 0 and at 6 (JAX's rule)."""
    x = asarray(x)
    return jnp.where(x <= 0, 0, jnp.where(x >= 6, 6, x)).astype(x.dtype)


def leaky_relu(x, negative_slope=1e-2):
    """x where x >= 0, else negative_slope * x."""
    x = _inexact(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    x = _inexact(x)
    safe = jnp.where(x > 0, 0.0, x)  # exp of a large positive x would overflow unused
    return jnp.where(x > 0, x, alpha * jnp.expm1(safe))


def celu(x, alpha=1.0):
    """max(x, 0) + alpha * expm1(min(x, 0) / alpha) (continuously differentiable elu)."""
    x = _inexact(x)
    return jnp.maximum(x, 0.0) + alpha * jnp.expm1(jnp.minimum(x, 0.0) / alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """scale * elu(x, alpha) with the self-normalising constants."""
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def gelu(x, approximate: bool = True):
    """x * Phi(x): the tanh approximation (default, like JAX) or the exact erf form."""
    x = _inexact(x)
    if approximate:
        inner = float(np.sqrt(2 / np.pi)) * (x + 0.044715 * (x ** 3))
        return x * (0.5 * (1.0 + jnp.tanh(inner)))
    return x * (lax.erf(x * float(1 / np.sqrt(2))) + 1.0) / 2.0


def sigmoid(x):
    """1 / (1 + exp(-x)) (the `logistic` primitive)."""
    return lax.logistic(_inexact(x))


def silu(x):
    """x * sigmoid(x)."""
    x = _inexact(x)
    return x * sigmoid(x)


swish = silu


def softplus(x):
    """log(1 + exp(x)), stable both ways: x + log1p(exp(-x)) for x > 0, log1p(exp(x)) else.

    Written with where (not logaddexp's max) so softplus'(0) is exactly sigmoid(0) = 0.5."""
    x = _inexact(x)
    pos = x > 0
    x_pos = jnp.where(pos, x, 0.0)
    x_neg = jnp.where(pos, 0.0, x)
    return jnp.where(pos, x_pos + jnp.log1p(jnp.exp(-x_pos)), jnp.log1p(jnp.exp(x_neg)))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), without underflow to log(0)."""
    return -softplus(-_inexact(x))


def soft_sign(x):
    """x / (|x| + 1)."""
    x = _inexact(x)
    return x / (jnp.abs(x) + 1)


def hard_tanh(x):
    """x clipped to [-1, 1] (derivative 1 at the ends, like JAX)."""
    x = asarray(x)
    return jnp.where(x > 1, 1, jnp.where(x < -1, -1, x)).astype(x.dtype)


def hard_sigmoid(x):
    """relu6(x + 3) / 6."""
    return relu6(_inexact(x) + 3.0) / 6.0


def hard_silu(x):
    """x * hard_sigmoid(x)."""
    x = _inexact(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def tanh(x):
    """Hyperbolic tangent (jnp.tanh)."""
    return jnp.tanh(x)


def glu(x, axis: int = -1):
    """Gated linear unit: the first half of `axis` times sigmoid of the second half."""
    x = asarray(x)
    axis = normalize_axis(axis, x.ndim, "glu")
    if x.shape[axis] % 2:
        raise ValueError(f"glu: axis {axis} of the input of shape {x.shape} must have an even "
                         f"size, got {x.shape[axis]}")
    a, b = jnp.split(x, 2, axis)
    return a * sigmoid(b)


# --- softmax and friends ----------------------------------------------------------------------

def _masked(x, where, fill):
    return x if where is None else jnp.where(where, x, fill)


def _softmax_value(x, axis, where):
    x_max = jnp.max(x, axis, keepdims=True, where=where, initial=-np.inf)
    unnormalized = jnp.exp(_masked(x, where, -np.inf) - lax.stop_gradient(x_max))
    result = unnormalized / jnp.sum(unnormalized, axis, keepdims=True, where=where)
    return _masked(result, where, 0.0)


@functools.partial(custom_jvp, nondiff_argnums=(1,))
def _softmax(x, axis, where):
    return _softmax_value(x, axis, where)


@_softmax.defjvp
def _softmax_jvp(axis, primals, tangents):
    x, where = primals
    x_dot = tangents[0]
    y = _call_softmax(x, axis, where)
    return y, y * (x_dot - jnp.sum(y * x_dot, axis, keepdims=True, where=where))


def _call_softmax(x, axis, where):
    if isinstance(x, Array) and (where is None or isinstance(where, Array)):
        return _softmax_value(x, axis, where)  # concrete: no derivative can be asked for
    return _softmax(x, axis, where)


def _axes(x, axis, name):
    return normalize_axes(axis, x.ndim, name)


def softmax(x, axis=-1, where=None):
    """exp(x) / sum(exp(x)) over `axis` (an int or tuple), shifted by the max for stability.

    `where` masks entries out: they get probability 0 and take no part in the sums."""
    x = _inexact(x)
    axis = _axes(x, axis, "softmax")
    if where is not None:
        where = asarray(where, dtypes.bool_)
    return _call_softmax(x, axis, where)


def log_softmax(x, axis=-1, where=None):
    """x - logsumexp(x) over `axis`, computed from max-shifted values; masked entries -inf."""
    x = _inexact(x)
    axis = _axes(x, axis, "log_softmax")
    if where is not None:
        where = asarray(where, dtypes.bool_)
    x_max = jnp.max(x, axis, keepdims=True, where=where, initial=-np.inf)
    shifted = _masked(x, where, -np.inf) - lax.stop_gradient(x_max)
    total = jnp.sum(jnp.exp(shifted), axis, keepdims=True, where=where)
    return _masked(shifted - jnp.log(total), where, -np.inf)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, where=None):
    """log(sum(b * exp(a))) over `axis`, stable for large inputs and rows of -inf.

    Like jax.nn.logsumexp: with `b` the sum may be negative; return_sign=True then gives
    (log|sum|, sign), otherwise a negative sum gives NaN."""
    if b is not None:
        a, b = promote_dtypes_inexact(asarray(a), asarray(b))
        shape = jnp.broadcast_shapes(a.shape, b.shape)
        a, b = jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape)
        a = jnp.where(b != 0, a, -np.inf)
    else:
        a = _inexact(a)
    axes = normalize_axes(axis, a.ndim, "logsumexp")
    if where is not None:
        where = asarray(where, dtypes.bool_)
    a_max = jnp.max(a, axes, keepdims=True, where=where, initial=-np.inf)
    a_max = lax.stop_gradient(jnp.where(jnp.isfinite(a_max), a_max, 0.0))
    exp_a = jnp.exp(a - a_max)
    if b is not None:
        exp_a = exp_a * b
    total = jnp.sum(exp_a, axes, keepdims=True, where=where)
    sign = jnp.sign(total)
    out = jnp.log(jnp.abs(total)) + a_max
    if not keepdims:
        out, sign = jnp.squeeze(out, axes), jnp.squeeze(sign, axes)
    if return_sign:
        return out, sign
    if b is not None:
        out = jnp.where(sign < 0, np.nan, out)
    return out


def standardize(x, axis=-1, mean=None, variance=None, epsilon=1e-5, where=None):
    """(x - mean) / sqrt(variance + epsilon), the statistics over `axis` unless given."""
    x = _inexact(x)
    axes = _axes(x, axis, "standardize")
    if mean is None:
        mean = jnp.mean(x, axes, keepdims=True, where=where)
    if variance is None:
        variance = jnp.mean(jnp.square(x - mean), axes, keepdims=True, where=where)
    return (x - mean) * lax.rsqrt(asarray(variance) + epsilon)


def one_hot(x, num_classes, *, dtype=jnp.float_, axis=-1):
    """out[..., k, ...] = (x == k) for k < num_classes at position `axis` of the result.

    Labels outside [0, num_classes) give all-zero rows, like JAX."""
    try:
        num_classes = operator.index(num_classes)
    except TypeError:
        raise TypeError(f"one_hot: num_classes must be a concrete Python int, got "
                        f"{num_classes!r}") from None
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be non-negative, got {num_classes}")
    x = asarray(x)
    if dtypes.is_bool(x.dtype):
        x = x.astype(dtypes.default_int())
    out_axis = normalize_axis(axis, x.ndim + 1, "one_hot")
    shape = list(x.shape)
    shape.insert(out_axis, num_classes)
    labels = lax.expand_dims(x, (out_axis,))
    # int labels compare with a default-int iota: a uint8 iota would wrap past 255 classes
    iota_dtype = x.dtype if dtypes.is_float(x.dtype) else dtypes.default_int()
    classes = lax.broadcasted_iota(iota_dtype, tuple(shape), out_axis)
    return (labels == classes).astype(dtypes.canonicalize(dtype))
