"""Gradient transformations: the building blocks that `chain` composes into optimizers.

Each is a GradientTransformation with optax's name, arguments and formulas.  Stateful ones
check that the updates have the pytree structure their state was built for, so a wrong
gradient tree fails with the transformation's name instead of deep inside a tree_map.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import lax
from .. import numpy as jnp
from ..tree_util import tree_flatten, tree_leaves, tree_map
from .base import (EmptyState, GradientTransformation, OptimizerInputError, cast_like,
                   cast_tree, check_learning_rate, check_state, check_structure,
                   full_like_tree, identity, init_empty_state, require_params,
                   safe_increment, update_moment, zeros_like_tree)
from .base import bias_correction as _debias


# --- states ----------------------------------------------------------------------------------

class TraceState(NamedTuple):
    trace: Any


class ScaleByAdamState(NamedTuple):
    count: Any  # int32 scalar: steps taken
    mu: Any
    nu: Any


class ScaleByRmsState(NamedTuple):
    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    count: Any
    nu: Any


class ScaleByRStdDevState(NamedTuple):
    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any


class ScaleByLionState(NamedTuple):
    count: Any
    mu: Any


class ScaleByScheduleState(NamedTuple):
    count: Any


class MaskedState(NamedTuple):
    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands in for a subtree that a mask leaves out: a pytree node with no leaves, so
    the inner transformation neither sees it nor keeps state for it."""


ScaleState = ClipState = ClipByGlobalNormState = AddDecayedWeightsState = EmptyState
ScaleByTrustRatioState = EmptyState


# --- stateless scalings ------------------------------------------------------------------------

def _stateless(fn):
    return GradientTransformation(init_empty_state, lambda updates, state, params=None:
                                  (fn(updates, params), state))


def scale(step_size) -> GradientTransformation:
    """Multiply updates by a fixed scalar."""
    return _stateless(lambda updates, _: tree_map(lambda g: step_size * g, updates))


def scale_by_schedule(step_size_fn) -> GradientTransformation:
    """Multiply updates by `step_size_fn(count)`; the count is an int32 in the state, so a
    jitted step reads it as data and is traced once."""
    if not callable(step_size_fn):
        raise TypeError(f"scale_by_schedule: step_size_fn must be callable, got "
                        f"{type(step_size_fn).__name__}")

    def init(params):
        return ScaleByScheduleState(count=jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        check_state("scale_by_schedule", state, ScaleByScheduleState)
        step_size = jnp.asarray(step_size_fn(state.count))
        updates = tree_map(lambda g: step_size.astype(g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate, *, flip_sign=True) -> GradientTransformation:
    """Multiply by -learning_rate (a number or a schedule of the step count)."""
    if learning_rate is None:
        return identity()
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    check_learning_rate("scale_by_learning_rate", learning_rate)
    return scale(m * learning_rate)


def clip(max_delta) -> GradientTransformation:
    """Clip each update element to [-max_delta, max_delta]."""
    return _stateless(lambda updates, _: tree_map(
        lambda g: jnp.clip(g, -max_delta, max_delta), updates))


def global_norm(updates):
    """The L2 norm of all leaves together: sqrt(sum of every element squared).  Its
    gradient at zero is zero, not NaN, so clipping can sit inside a differentiated step."""
    leaves = tree_leaves(updates)
    if not leaves:
        return jnp.asarray(0.0)
    sum_sq = sum(jnp.sum(jnp.square(x)) for x in leaves)
    zero = sum_sq == 0
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, sum_sq)))


def clip_by_global_norm(max_norm) -> GradientTransformation:
    """Scale all updates by max_norm / global_norm when the global norm exceeds max_norm,
    keeping their direction."""
    def fn(updates, _):
        g_norm = global_norm(updates)
        small = g_norm < max_norm
        factor = jnp.where(small, 1.0, max_norm / jnp.where(small, 1.0, g_norm))
        return tree_map(lambda t: t * factor.astype(t.dtype), updates)
    return _stateless(fn)


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    """updates + weight_decay * params (decoupled weight decay, as in AdamW); `mask` (a
    pytree of bools, or a function of the params returning one) limits it to some leaves."""
    def update(updates, state, params=None):
        require_params("add_decayed_weights", params)
        check_structure("add_decayed_weights", updates, params, "params")
        return tree_map(lambda g, p: g + weight_decay * p, updates, params), state

    inner = GradientTransformation(init_empty_state, update)
    return inner if mask is None else masked(inner, mask)


# --- momentum and adaptive scalings ------------------------------------------------------------

def trace(decay, nesterov=False, accumulator_dtype=None) -> GradientTransformation:
    """Momentum: t = g + decay * t; the update is t, or g + decay * t for Nesterov."""
    def init(params):
        return TraceState(trace=zeros_like_tree(params, accumulator_dtype))

    def update(updates, state, params=None):
        check_state("trace", state, TraceState)
        check_structure("trace", updates, state.trace, "momentum state")
        f = lambda g, t: g + decay * t  # noqa: E731
        new_trace = tree_map(f, updates, state.trace)
        updates = tree_map(f, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(trace=cast_tree(new_trace, accumulator_dtype))

    return GradientTransformation(init, update)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
                  nesterov=False) -> GradientTransformation:
    """Adam: m_hat / (sqrt(v_hat + eps_root) + eps) with bias-corrected moments; Nesterov
    (NAdam) mixes the next step's debiased momentum with the debiased gradient."""
    def init(params):
        return ScaleByAdamState(count=jnp.zeros((), jnp.int32),
                                mu=zeros_like_tree(params, mu_dtype),
                                nu=zeros_like_tree(params))

    def update(updates, state, params=None):
        check_state("scale_by_adam", state, ScaleByAdamState)
        check_structure("scale_by_adam", updates, state.mu, "optimizer state")
        mu = update_moment(updates, state.mu, b1, 1)
        nu = update_moment(updates, state.nu, b2, 2)
        count = safe_increment(state.count)
        if nesterov:
            mu_hat = tree_map(lambda m, g: b1 * m + (1 - b1) * g,
                              _debias(mu, b1, safe_increment(count)),
                              _debias(updates, b1, count))
        else:
            mu_hat = _debias(mu, b1, count)
        nu_hat = _debias(nu, b2, count)
        updates = tree_map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count, mu=cast_like(mu, state.mu),
                                         nu=cast_like(nu, state.nu))

    return GradientTransformation(init, update)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                 bias_correction=False) -> GradientTransformation:
    """RMSProp: g / sqrt(v + eps) (or g / (sqrt(v) + eps)), v the moving average of g**2."""
    debias = bias_correction

    def init(params):
        nu = full_like_tree(params, initial_scale)
        if debias:
            return ScaleByRmsWithCountState(count=jnp.zeros((), jnp.int32), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(updates, state, params=None):
        check_state("scale_by_rms", state,
                    ScaleByRmsWithCountState if debias else ScaleByRmsState)
        check_structure("scale_by_rms", updates, state.nu, "optimizer state")
        nu = update_moment(updates, state.nu, decay, 2)
        if debias:
            count = safe_increment(state.count)
            nu_hat = _debias(nu, decay, count)
        else:
            nu_hat = nu
        updates = tree_map(lambda g, v: g * _inv_root(v, eps, eps_in_sqrt), updates, nu_hat)
        nu = cast_like(nu, state.nu)
        new_state = ScaleByRmsWithCountState(count, nu) if debias else ScaleByRmsState(nu)
        return updates, new_state

    return GradientTransformation(init, update)


def _inv_root(v, eps, eps_in_sqrt):
    return lax.rsqrt(v + eps) if eps_in_sqrt else 1 / (jnp.sqrt(v) + eps)


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                    bias_correction=False) -> GradientTransformation:
    """Centered RMSProp: divide by the root of the moving variance v - m**2."""
    debias = bias_correction

    def init(params):
        mu, nu = zeros_like_tree(params), full_like_tree(params, initial_scale)
        if debias:
            return ScaleByRStdDevWithCountState(jnp.zeros((), jnp.int32), mu, nu)
        return ScaleByRStdDevState(mu, nu)

    def update(updates, state, params=None):
        check_state("scale_by_stddev", state,
                    ScaleByRStdDevWithCountState if debias else ScaleByRStdDevState)
        check_structure("scale_by_stddev", updates, state.mu, "optimizer state")
        mu = update_moment(updates, state.mu, decay, 1)
        nu = update_moment(updates, state.nu, decay, 2)
        if debias:
            count = safe_increment(state.count)
            mu_hat, nu_hat = _debias(mu, decay, count), _debias(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        updates = tree_map(lambda g, m, v: g * _inv_root(v - m * m, eps, eps_in_sqrt),
                           updates, mu_hat, nu_hat)
        mu, nu = cast_like(mu, state.mu), cast_like(nu, state.nu)
        if debias:
            return updates, ScaleByRStdDevWithCountState(count, mu, nu)
        return updates, ScaleByRStdDevState(mu, nu)

    return GradientTransformation(init, update)


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """AdaGrad: g / sqrt(sum of all g**2 so far + eps), 0 where that sum is 0."""
    def init(params):
        return ScaleByRssState(sum_of_squares=full_like_tree(params, initial_accumulator_value))

    def update(updates, state, params=None):
        check_state("scale_by_rss", state, ScaleByRssState)
        check_structure("scale_by_rss", updates, state.sum_of_squares, "optimizer state")
        sos = tree_map(lambda g, s: g * g + s, updates, state.sum_of_squares)
        updates = tree_map(lambda g, s: g * jnp.where(s > 0, lax.rsqrt(s + eps), 0.0),
                           updates, sos)
        return updates, ScaleByRssState(sum_of_squares=cast_like(sos, state.sum_of_squares))

    return GradientTransformation(init, update)


def _safe_norm(x, min_norm):
    """max(||x||, min_norm), with a finite gradient where ||x|| <= min_norm (also at 0)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x)))
    small = norm <= min_norm
    safe_x = jnp.where(small, jnp.ones_like(x), x)
    return jnp.where(small, min_norm, jnp.sqrt(jnp.sum(jnp.square(safe_x))))


def scale_by_trust_ratio(min_norm=0.0, trust_coefficient=1.0, eps=0.0
                         ) -> GradientTransformation:
    """LAMB/LARS's layer-wise step: scale each leaf by ||param|| / (||update|| + eps)
    (times trust_coefficient), or by 1 where either norm is zero."""
    def update(updates, state, params=None):
        require_params("scale_by_trust_ratio", params)
        check_structure("scale_by_trust_ratio", updates, params, "params")

        def one(u, p):
            p_norm, u_norm = _safe_norm(p, min_norm), _safe_norm(u, min_norm)
            ratio = trust_coefficient * p_norm / (u_norm + eps)
            zero = jnp.logical_or(p_norm == 0.0, u_norm == 0.0)
            return u * jnp.where(zero, 1.0, ratio).astype(u.dtype)

        return tree_map(one, updates, params), state

    return GradientTransformation(init_empty_state, update)


def scale_by_lion(b1=0.9, b2=0.99, mu_dtype=None) -> GradientTransformation:
    """Lion: the update is sign((1 - b1) g + b1 m); the momentum then moves with rate b2."""
    def init(params):
        return ScaleByLionState(count=jnp.zeros((), jnp.int32),
                                mu=zeros_like_tree(params, mu_dtype))

    def update(updates, state, params=None):
        check_state("scale_by_lion", state, ScaleByLionState)
        check_structure("scale_by_lion", updates, state.mu, "optimizer state")
        new_updates = tree_map(lambda g, m: jnp.sign((1 - b1) * g + b1 * m), updates, state.mu)
        mu = cast_like(update_moment(updates, state.mu, b2, 1), state.mu)
        return new_updates, ScaleByLionState(count=safe_increment(state.count), mu=mu)

    return GradientTransformation(init, update)


# --- masking -----------------------------------------------------------------------------------

def _mask_tree(name, tree, mask):
    """`tree` with each subtree whose mask leaf is False replaced by MaskedNode()."""
    flags, mask_def = tree_flatten(mask)
    try:
        subtrees = mask_def.flatten_up_to(tree)
    except ValueError as e:
        raise OptimizerInputError(f"{name}: the mask's structure {mask_def} is not a prefix "
                                f"of the tree's: {e}") from None
    for f in flags:
        if not isinstance(f, (bool, np.bool_)):
            raise TypeError(f"{name}: mask leaves must be Python bools, got "
                            f"{type(f).__name__}")
    return mask_def, flags, mask_def.unflatten(
        [sub if f else MaskedNode() for f, sub in zip(flags, subtrees)])


def masked(inner: GradientTransformation, mask) -> GradientTransformation:
    """Apply `inner` only where `mask` (a pytree of bools with the params' structure or a
    prefix of it, or a function of the params returning one) is True; other updates pass
    through unchanged and `inner` keeps no state for them."""
    def resolve(tree):
        return mask(tree) if callable(mask) else mask

    def init(params):
        return MaskedState(inner_state=inner.init(_mask_tree("masked", params,
                                                             resolve(params))[2]))

    def update(updates, state, params=None):
        check_state("masked", state, MaskedState)
        mask_def, flags, masked_updates = _mask_tree("masked", updates, resolve(updates))
        masked_params = None if params is None else _mask_tree("masked", params,
                                                               resolve(updates))[2]
        new_masked, inner_state = inner.update(masked_updates, state.inner_state,
                                               masked_params)
        new_subs = mask_def.flatten_up_to(new_masked)
        old_subs = mask_def.flatten_up_to(updates)
        out = mask_def.unflatten([n if f else o for f, n, o in zip(flags, new_subs, old_subs)])
        return out, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, update)
