"""Learning-rate schedules: functions of the step count (an int32 array inside an optimizer,
or a Python int) with optax's names and formulas.  They are written with jnp.where instead
of Python branches on the count, so a jitted step reads the count as data."""
from __future__ import annotations

import math

from .. import numpy as jnp


def constant_schedule(value):
    """The same value at every step."""
    return lambda count: value


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    """(init - end) * (1 - t / transition_steps)**power + end, t = steps since
    transition_begin clipped to [0, transition_steps].  A non-positive transition_steps
    gives the constant init_value (as in optax)."""
    if transition_steps <= 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)

    def schedule(count):
        t = jnp.clip(jnp.asarray(count) - transition_begin, 0, transition_steps)
        frac = 1 - t / transition_steps
        return (init_value - end_value) * frac ** power + end_value

    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """Linear from init_value to end_value over transition_steps, after transition_begin."""
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
                      staircase=False, end_value=None):
    """init_value * decay_rate ** ((t - transition_begin) / transition_steps) (the exponent
    floored when staircase), init_value before transition_begin; end_value bounds it (below
    when decaying, above when growing).  transition_steps <= 0 or decay_rate == 0 give the
    constant init_value (as in optax)."""
    if transition_steps <= 0 or decay_rate == 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)
    bound = None if end_value is None else (jnp.maximum if decay_rate < 1 else jnp.minimum)

    def schedule(count):
        steps = jnp.asarray(count) - transition_begin
        p = steps / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(steps <= 0, init_value, init_value * jnp.power(decay_rate, p))
        return value if bound is None else bound(value, end_value)

    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    """init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * t / decay_steps)))**exponent + alpha),
    with t capped at decay_steps (so it ends at alpha * init_value)."""
    if not decay_steps > 0:
        raise ValueError(f"cosine_decay_schedule: decay_steps must be positive, got "
                         f"{decay_steps!r}")

    def schedule(count):
        t = jnp.minimum(jnp.asarray(count), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(math.pi * t / decay_steps))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)

    return schedule


def join_schedules(schedules, boundaries):
    """schedules[i+1] takes over at boundaries[i], counting its steps from that boundary."""
    schedules, boundaries = list(schedules), list(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules: {len(schedules)} schedules need "
                         f"{len(schedules) - 1} boundaries, got {len(boundaries)}")

    def schedule(step):
        step = jnp.asarray(step)
        out = schedules[0](step)
        for boundary, sched in zip(boundaries, schedules[1:]):
            out = jnp.where(step < boundary, out, sched(step - boundary))
        return out

    return schedule


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
                                 end_value=0.0, exponent=1.0):
    """Linear warmup from init_value to peak_value over warmup_steps, then cosine decay to
    end_value; decay_steps counts the warmup too."""
    if not decay_steps > warmup_steps:
        raise ValueError(f"warmup_cosine_decay_schedule: decay_steps ({decay_steps!r}) "
                         f"must exceed warmup_steps ({warmup_steps!r}); it includes the warmup")
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
                           cosine_decay_schedule(peak_value, decay_steps - warmup_steps,
                                                 alpha, exponent)],
                          [warmup_steps])


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """init_value times every scale whose boundary step has been reached (count >= boundary)."""
    items = sorted((boundaries_and_scales or {}).items())
    if any(scale < 0 for _, scale in items):
        raise ValueError("piecewise_constant_schedule: scale factors must be non-negative, "
                         f"got {boundaries_and_scales!r}")

    def schedule(count):
        count = jnp.asarray(count)
        value = init_value
        for boundary, scale in items:
            value = jnp.where(count < boundary, value, value * scale)
        return value

    return schedule
