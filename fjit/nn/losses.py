"""Losses in optax's shape: per-example values, no reduction (take the mean yourself).

Written in fjit.numpy, so grad, vmap and jit apply.  Label and target mistakes (wrong shape,
integer logits, float class labels) raise a TypeError or ValueError naming the loss and the
offending shapes/dtypes instead of broadcasting silently.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes, lax
from .. import numpy as jnp
from ..numpy._util import asarray, normalize_axes
from .activations import log_sigmoid, log_softmax

__all__ = ["softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
           "sigmoid_binary_cross_entropy", "squared_error", "l2_loss", "huber_loss",
           "absolute_error", "log_cosh"]


def _float_array(x, name, what):
    x = asarray(x)
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"{name}: {what} must be a floating-point array, got "
                        f"{x.aval.str_short()}")
    return x


def _same_shape(name, a, b, what_a, what_b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: {what_a} of shape {a.shape} and {what_b} of shape "
                         f"{b.shape} must have the same shape")


def _errors(name, predictions, targets):
    """predictions - targets (or predictions alone), both float and of one shape."""
    predictions = _float_array(predictions, name, "predictions")
    if targets is None:
        return predictions
    targets = asarray(targets)
    _same_shape(name, predictions, targets, "predictions", "targets")
    return predictions - targets


def softmax_cross_entropy(logits, labels, axis=-1, where=None):
    """-sum(labels * log_softmax(logits)) over `axis`; labels are one-hot or probabilities.

    Zero labels contribute exactly 0 (also where the logit is -inf)."""
    name = "softmax_cross_entropy"
    logits = _float_array(logits, name, "logits")
    labels = asarray(labels)
    _same_shape(name, logits, labels, "logits", "labels")
    log_probs = log_softmax(logits, axis, where)
    terms = jnp.where(labels == 0, 0.0, labels * log_probs)
    return -jnp.sum(terms, axis, where=where)


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None):
    """logsumexp(logits) - logits[label] over `axis`; `labels` are integer class indices with
    the shape of `logits` without `axis`.  A label outside [0, classes) gives NaN."""
    name = "softmax_cross_entropy_with_integer_labels"
    logits = _float_array(logits, name, "logits")
    labels = asarray(labels)
    if not dtypes.is_int(labels.dtype):
        raise TypeError(f"{name}: labels must be integers (class indices), got "
                        f"{labels.aval.str_short()}")
    (axis,) = normalize_axes(axis, logits.ndim, name)
    want = logits.shape[:axis] + logits.shape[axis + 1:]
    if labels.shape != want:
        raise ValueError(f"{name}: labels of shape {labels.shape} do not match logits of shape "
                         f"{logits.shape} with class axis {axis} (labels need shape {want})")
    if where is not None:
        where = asarray(where, dtypes.bool_)
    # Shift by the (constant) max and pick the label's logit with a one-hot mask: a fused
    # select + sum rather than a gather, and no log_softmax over all the classes.
    logits_max = jnp.max(logits, axis, keepdims=True, where=where, initial=-np.inf)
    shifted = logits - lax.stop_gradient(logits_max)
    hit = lax.expand_dims(labels, (axis,)) == lax.broadcasted_iota(labels.dtype, logits.shape,
                                                                   axis)
    label_logits = jnp.sum(jnp.where(hit, shifted, 0.0), axis)
    if where is not None:  # masked logits must not reach exp (their gradient would be NaN)
        shifted_in = jnp.where(where, shifted, -np.inf)
    else:
        shifted_in = shifted
    normalizers = jnp.log(jnp.sum(jnp.exp(shifted_in), axis, where=where))
    valid = (labels >= 0) & (labels < logits.shape[axis])
    return jnp.where(valid, normalizers - label_logits, np.nan)


def sigmoid_binary_cross_entropy(logits, labels):
    """-labels * log(sigmoid(logits)) - (1 - labels) * log(1 - sigmoid(logits)), from the
    logits (stable for large |logits|); labels are probabilities in [0, 1]."""
    name = "sigmoid_binary_cross_entropy"
    logits = _float_array(logits, name, "logits")
    labels = asarray(labels)
    _same_shape(name, logits, labels, "logits", "labels")
    labels = labels.astype(logits.dtype)
    return -labels * log_sigmoid(logits) - (1.0 - labels) * log_sigmoid(-logits)


def squared_error(predictions, targets=None):
    """(predictions - targets) ** 2, element-wise."""
    return jnp.square(_errors("squared_error", predictions, targets))


def l2_loss(predictions, targets=None):
    """0.5 * squared_error (the factor makes the gradient the plain error)."""
    return 0.5 * jnp.square(_errors("l2_loss", predictions, targets))


def huber_loss(predictions, targets=None, delta=1.0):
    """0.5 * e**2 for |e| <= delta, delta * (|e| - 0.5 * delta) beyond: quadratic near zero,
    linear in the tails."""
    abs_errors = jnp.abs(_errors("huber_loss", predictions, targets))
    quadratic = jnp.minimum(abs_errors, delta)
    return 0.5 * quadratic ** 2 + delta * (abs_errors - quadratic)


def absolute_error(predictions, targets=None):
    """|predictions - targets|, element-wise."""
    return jnp.abs(_errors("absolute_error", predictions, targets))


def log_cosh(predictions, targets=None):
    """log(cosh(e)) for e = predictions - targets, as |e| + log1p(exp(-2|e|)) - log 2: no
    overflow, and the gradient tanh(e) is exact at e = 0 too."""
    abs_errors = jnp.abs(_errors("log_cosh", predictions, targets))
    return abs_errors + jnp.log1p(jnp.exp(-2.0 * abs_errors)) - float(np.log(2.0))
