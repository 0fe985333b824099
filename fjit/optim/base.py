"""The optimizer interface, optax's shape: a GradientTransformation is two pure functions
over pytrees, `init(params) -> state` and `update(updates, state, params=None) ->
(updates, state)`.  Because both are ordinary fjit functions, a training step that calls
them can be jitted, and the state (NamedTuples of arrays, step counts as int32 arrays) is a
pytree that can be a jit argument and result, so a jitted step is traced once, not per step.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from .. import numpy as jnp
from ..tree_util import tree_map, tree_structure


class GradientTransformation(NamedTuple):
    """A pair of pure functions: `init(params) -> state` and
    `update(updates, state, params=None) -> (new_updates, new_state)`."""
    init: Callable[[Any], Any]
    update: Callable[..., tuple]


class EmptyState(NamedTuple):
    """The state of a stateless transformation: a pytree with no leaves."""


class OptimizerInputError(ValueError):
    """update() got updates, state or params that do not fit together: pytree structures
    that differ, or no params where a transformation needs them."""


def init_empty_state(params):
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Leaves updates unchanged (e.g. `sgd` without momentum has no trace step)."""
    return GradientTransformation(init_empty_state, lambda updates, state, params=None:
                                  (updates, state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply `transforms` in order; the state is the tuple of their states."""
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain: argument {i} is a {type(t).__name__}, not a "
                            "GradientTransformation")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise TypeError(f"chain: expected a tuple of {len(transforms)} states (one per "
                            f"transformation), got {type(state).__name__}")
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def named(name: str, transform: GradientTransformation) -> GradientTransformation:
    """`transform`, with its input errors prefixed by `name` (the alias the user called,
    e.g. `adam: scale_by_adam: ...`) and the updates checked against the params if given."""

    def update(updates, state, params=None):
        if params is not None:
            check_structure(name, updates, params, "params")
        try:
            return transform.update(updates, state, params)
        except OptimizerInputError as e:
            raise OptimizerInputError(f"{name}: {e}") from None

    return GradientTransformation(transform.init, update)


def apply_updates(params, updates):
    """params + updates leaf-wise, each result keeping its parameter's dtype (so a float32
    parameter stays float32 whatever the update's dtype)."""
    check_structure("apply_updates", updates, params, "params")

    def add(p, u):
        p = jnp.asarray(p)
        return jnp.asarray(p + u).astype(p.dtype)

    return tree_map(add, params, updates)


# --- helpers shared by the transformations ---------------------------------------------------

def check_structure(name, updates, reference, what):
    """Raise OptimizerInputError (a ValueError) naming `name` unless the trees match."""
    got, want = tree_structure(updates), tree_structure(reference)
    if got != want:
        raise OptimizerInputError(f"{name}: the updates and the {what} differ in pytree "
                                  f"structure: {got} vs {want}")


def check_state(name, state, cls):
    if not isinstance(state, cls):
        raise TypeError(f"{name}: expected a {cls.__name__} as the state, got "
                        f"{type(state).__name__} (was it made by this optimizer's init?)")


def check_learning_rate(name, learning_rate):
    """A learning rate is a number (or a scalar array) or a schedule."""
    if callable(learning_rate):
        return
    number = isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool)
    if not (number or getattr(learning_rate, "shape", None) == ()):
        raise TypeError(f"{name}: learning_rate must be a number or a schedule (a callable "
                        f"of the step count), got {type(learning_rate).__name__}")


def require_params(name, params):
    if params is None:
        raise OptimizerInputError(f"{name}: this transformation needs the params; call "
                                  "update(updates, state, params)")


def zeros_like_tree(tree, dtype=None):
    """Zeros (strongly typed, so the state's types do not change after a step)."""
    return tree_map(lambda p: jnp.zeros(np.shape(p), dtype or jnp.asarray(p).dtype), tree)


def full_like_tree(tree, value):
    return tree_map(lambda p: jnp.full(np.shape(p), value, jnp.asarray(p).dtype), tree)


def cast_tree(tree, dtype):
    return tree if dtype is None else tree_map(lambda x: x.astype(dtype), tree)


def cast_like(tree, like):
    return tree_map(lambda x, y: x.astype(y.dtype), tree, like)


_INT32_MAX = int(np.iinfo(np.int32).max)


def safe_increment(count):
    """count + 1 for an int32 step counter, saturating instead of wrapping around."""
    return jnp.where(count < _INT32_MAX, count + 1, _INT32_MAX).astype(jnp.int32)


def update_moment(updates, moments, decay, order):
    """The exponential moving average decay * m + (1 - decay) * g**order."""
    return tree_map(lambda g, m: (1 - decay) * (g ** order) + decay * m, updates, moments)


def bias_correction(moment, decay, count):
    """Adam's debiasing m / (1 - decay**count) (count >= 1)."""
    return tree_map(lambda m: m / (1 - decay ** count).astype(m.dtype), moment)
