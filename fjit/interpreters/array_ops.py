"""The few array operations the transformations build themselves: a zero tangent made real,
two tangents added, a broadcast cotangent summed, a batch axis moved or added.

They are lax operations, and lax stands on the interpreters (its primitives carry their
JVP, transpose and batching rules), so the interpreters cannot import lax.  lax hands them
over once, when it loads (`provide`), as JAX's lax fills `ad_util`'s zeros table.
"""
from __future__ import annotations

NEEDED = ("add", "broadcast_in_dim", "convert_element_type", "reduce_sum", "transpose")

_provided: dict = {}


def provide(**ops):
    """Called by fjit.lax with the functions named in NEEDED."""
    missing = sorted(set(NEEDED) - set(ops))
    if missing:
        raise TypeError(f"array_ops.provide: missing {missing}")
    _provided.update(ops)


def _op(name):
    try:
        return _provided[name]
    except KeyError:
        raise RuntimeError("fjit.interpreters used before fjit.lax was imported; "
                           "import fjit first") from None


def zeros(aval):
    """An array of zeros of `aval`'s shape, dtype and weak type."""
    zero = _op("convert_element_type")(0, aval.dtype, weak_type=aval.weak_type)
    return _op("broadcast_in_dim")(zero, aval.shape, ())


def add(a, b):
    return _op("add")(a, b)


def sum_all(x):
    """x summed over every axis."""
    return _op("reduce_sum")(x, tuple(range(len(x.shape))))


def transpose(x, perm):
    return _op("transpose")(x, tuple(perm))


def broadcast_in_dim(x, shape, dims):
    return _op("broadcast_in_dim")(x, tuple(shape), tuple(dims))
