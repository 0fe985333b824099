"""Ready-made optimizers with optax's names, signatures and defaults: each is a `chain` of
transformations ending in the (negative) learning rate, a number or a schedule.  Their
errors name the optimizer (`adam: ...`)."""
from __future__ import annotations

from .base import GradientTransformation, chain, check_learning_rate, identity, named
from .transforms import (add_decayed_weights, scale_by_adam, scale_by_learning_rate,
                         scale_by_lion, scale_by_rms, scale_by_rss, scale_by_stddev,
                         scale_by_trust_ratio, trace)


def _lr(name, learning_rate):
    check_learning_rate(name, learning_rate)
    return scale_by_learning_rate(learning_rate)


def sgd(learning_rate, momentum=None, nesterov=False,
        accumulator_dtype=None) -> GradientTransformation:
    """Gradient descent, with (Nesterov) momentum when `momentum` is given."""
    return named("sgd", chain(
        trace(momentum, nesterov, accumulator_dtype) if momentum is not None else identity(),
        _lr("sgd", learning_rate)))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov=False) -> GradientTransformation:
    """Adam (NAdam with nesterov=True)."""
    return named("adam", chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype,
                                             nesterov=nesterov),
                               _lr("adam", learning_rate)))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
          weight_decay=1e-4, mask=None, *, nesterov=False) -> GradientTransformation:
    """Adam with decoupled weight decay: the decay is added to Adam's direction before the
    learning rate scales both, so the parameter shrinks by lr * weight_decay * p per step."""
    return named("adamw", chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype,
                                              nesterov=nesterov),
                                add_decayed_weights(weight_decay, mask),
                                _lr("adamw", learning_rate)))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
            centered=False, momentum=None, nesterov=False,
            bias_correction=False) -> GradientTransformation:
    """RMSProp (centered: divide by the running standard deviation), optionally followed
    by momentum on the scaled step."""
    rms = scale_by_stddev if centered else scale_by_rms
    return named("rmsprop", chain(
        rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        _lr("rmsprop", learning_rate),
        trace(momentum, nesterov) if momentum is not None else identity()))


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """AdaGrad: steps divided by the root of the sum of all squared gradients."""
    return named("adagrad", chain(scale_by_rss(initial_accumulator_value, eps),
                                  _lr("adagrad", learning_rate)))


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0,
         mask=None) -> GradientTransformation:
    """LAMB: Adam's direction plus weight decay, rescaled per leaf by the trust ratio
    ||param|| / ||step||."""
    return named("lamb", chain(scale_by_adam(b1, b2, eps, eps_root),
                               add_decayed_weights(weight_decay, mask),
                               scale_by_trust_ratio(),
                               _lr("lamb", learning_rate)))


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3,
         mask=None) -> GradientTransformation:
    """Lion: sign of an interpolated momentum, plus decoupled weight decay."""
    return named("lion", chain(scale_by_lion(b1, b2, mu_dtype),
                               add_decayed_weights(weight_decay, mask),
                               _lr("lion", learning_rate)))
