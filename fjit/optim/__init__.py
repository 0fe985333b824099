"""`fjit.optim`: optax-style optimizers over pytrees.

    import fjit, fjit.numpy as jnp
    from fjit import optim

    opt = optim.adam(optim.warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000))
    state = opt.init(params)

    @fjit.jit
    def step(params, state, x, y):
        grads = fjit.grad(loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state
"""
from .aliases import adagrad, adam, adamw, lamb, lion, rmsprop, sgd
from .base import (EmptyState, GradientTransformation, OptimizerInputError, apply_updates,
                   chain, identity, init_empty_state)
from .schedules import (constant_schedule, cosine_decay_schedule, exponential_decay,
                        join_schedules, linear_schedule, piecewise_constant_schedule,
                        polynomial_schedule, warmup_cosine_decay_schedule)
from .transforms import (AddDecayedWeightsState, ClipByGlobalNormState, ClipState,
                         MaskedNode, MaskedState, ScaleByAdamState, ScaleByLionState,
                         ScaleByRmsState, ScaleByRmsWithCountState, ScaleByRssState,
                         ScaleByRStdDevState, ScaleByRStdDevWithCountState,
                         ScaleByScheduleState, ScaleByTrustRatioState, ScaleState, TraceState,
                         add_decayed_weights, clip, clip_by_global_norm, global_norm, masked,
                         scale, scale_by_adam, scale_by_learning_rate, scale_by_lion,
                         scale_by_rms, scale_by_rss, scale_by_schedule, scale_by_stddev,
                         scale_by_trust_ratio, trace)

__all__ = [
    "GradientTransformation", "EmptyState", "OptimizerInputError", "init_empty_state",
    "identity", "chain", "apply_updates",
    "scale", "scale_by_learning_rate", "scale_by_schedule", "trace", "scale_by_adam",
    "scale_by_rms", "scale_by_stddev", "scale_by_rss", "scale_by_trust_ratio",
    "scale_by_lion", "add_decayed_weights", "clip", "clip_by_global_norm", "global_norm",
    "masked", "MaskedNode", "MaskedState",
    "TraceState", "ScaleByAdamState", "ScaleByRmsState", "ScaleByRmsWithCountState",
    "ScaleByRStdDevState", "ScaleByRStdDevWithCountState", "ScaleByRssState",
    "ScaleByLionState", "ScaleByScheduleState", "ScaleState", "ClipState",
    "ClipByGlobalNormState", "AddDecayedWeightsState", "ScaleByTrustRatioState",
    "sgd", "adam", "adamw", "rmsprop", "adagrad", "lamb", "lion",
    "constant_schedule", "polynomial_schedule", "linear_schedule", "exponential_decay",
    "cosine_decay_schedule", "join_schedules", "warmup_cosine_decay_schedule",
    "piecewise_constant_schedule",
]
