"""Edge semantics that must match JAX's (issue 13, item 9), on every backend.

1. Integer division and remainder by zero, and MIN // -1, for every integer type: jnp's
   floor_divide, remainder (mod, %), divmod, fmod and lax.div/lax.rem, eagerly and under jit,
   with the divisor as an argument and as a literal.  Expected values are computed below
   from JAX's rules (checked against JAX 0.10.2: `[7, -7, 0] // 0` is `[-2, -2, -1]`,
   `% 0` is `[0, 0, 0]`, lax.div(x, 0) is -1 and lax.rem(x, 0) is x).  The C kernels must
   not trap (C's x / 0 and MIN / -1 are undefined; x86 raises SIGFPE).
2. Gradients of max/min reductions and of maximum/minimum where an operand is NaN or a
   tangent is inf: the NaN element is the chosen one, the others get 0 (JAX under jit gives
   [nan, 0, 0] for grad(min(sqrt(x))) at x = [-1, 4, 9]).
"""
from __future__ import annotations

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax

SIGNED = ["int8", "int16", "int32", "int64"]
UNSIGNED = ["uint8", "uint16", "uint32", "uint64"]


def _trunc(x, y):
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def _wrap(v, dtype):
    return int(np.array(v).astype(object) % (1 << (8 * np.dtype(dtype).itemsize))) \
        if np.issubdtype(dtype, np.unsignedinteger) else v


# JAX's results, one rule per function, on Python ints.
def jax_floor_divide(x, y, dtype):
    info = np.iinfo(dtype)
    if y == 0:
        return info.max if info.min == 0 else (-1 if x == 0 else -2)
    if x == info.min and y == -1:
        return info.min
    return x // y


def jax_remainder(x, y, dtype):
    return 0 if y == 0 else x % y


def jax_fmod(x, y, dtype):
    return 0 if y == 0 else x - _trunc(x, y) * y


def jax_lax_div(x, y, dtype):
    info = np.iinfo(dtype)
    if y == 0:
        return info.max if info.min == 0 else -1
    if x == info.min and y == -1:
        return info.min
    return _trunc(x, y)


def jax_lax_rem(x, y, dtype):
    if y == 0:
        return x
    if y == -1:
        return 0
    return x - _trunc(x, y) * y


CASES = [
    (jnp.floor_divide, jax_floor_divide),
    (jnp.remainder, jax_remainder),
    (jnp.fmod, jax_fmod),
    (lax.div, jax_lax_div),
    (lax.rem, jax_lax_rem),
    (lambda x, y: jnp.asarray(x) // y, jax_floor_divide),
    (lambda x, y: jnp.asarray(x) % y, jax_remainder),
    (lambda x, y: jnp.divmod(x, y)[0], jax_floor_divide),
    (lambda x, y: jnp.divmod(x, y)[1], jax_remainder),
]
CASE_IDS = ["floor_divide", "remainder", "fmod", "lax.div", "lax.rem", "floordiv_op", "mod_op",
            "divmod0", "divmod1"]


def _operands(dtype):
    info = np.iinfo(dtype)
    if info.min < 0:
        xs = [7, -7, 0, 5, -5, 1, -1, info.min, info.max, info.min + 1]
        ys = [0, -1, 1, 2, -2, 3, -3, info.min, info.max]
    else:
        xs = [7, 0, 5, 1, info.max, info.max - 1]
        ys = [0, 1, 2, 3, info.max]
    pairs = [(x, y) for x in xs for y in ys]
    return (np.array([p[0] for p in pairs], dtype), np.array([p[1] for p in pairs], dtype))


@pytest.mark.parametrize("fn,rule", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", SIGNED + UNSIGNED)
def test_integer_division_edges_match_jax(fn, rule, dtype, x64):
    x, y = _operands(dtype)
    expected = np.array([rule(int(a), int(b), dtype) for a, b in zip(x, y)], dtype)
    np.testing.assert_array_equal(np.asarray(fn(x, y)), expected, err_msg="eager")
    np.testing.assert_array_equal(np.asarray(fjit.jit(fn)(x, y)), expected, err_msg="jit")


@pytest.mark.parametrize("fn,rule", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("divisor", [0, -1])
def test_literal_divisor_matches_jax(fn, rule, divisor):
    """The divisor is a constant in the Program (a literal the compiler may fold)."""
    x = np.array([7, -7, 0, np.iinfo(np.int32).min, np.iinfo(np.int32).max], np.int32)
    expected = np.array([rule(int(a), divisor, np.int32) for a in x], np.int32)
    got = fjit.jit(lambda x: fn(x, np.int32(divisor)))(x)
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_issue_examples():
    x = jnp.array([7, -7, 0])
    assert np.asarray(x // 0).tolist() == [-2, -2, -1]
    assert np.asarray(x % 0).tolist() == [0, 0, 0]
    assert np.asarray(fjit.jit(lambda x: x // 0)(x)).tolist() == [-2, -2, -1]
    assert np.asarray(fjit.jit(lambda x: x % 0)(x)).tolist() == [0, 0, 0]


# --- max/min gradients with NaN and inf --------------------------------------------------------

X = np.array([-1.0, 4.0, 9.0], np.float32)


# Reductions use JAX's own max/min rule (the tangent times a 0/1 indicator of the chosen
# entries, over their count), so a NaN result -- nothing equals it -- gives 0/0 everywhere,
# as eager JAX does ([nan, nan, nan]; XLA under jax.jit simplifies it to [nan, 0, 0]).
# A select-based rule that matched jax.jit cost LeNet-5's step 27% (its max-pool backward
# kernel): not taken; see docs/reliability.md.

@pytest.mark.parametrize("reduce", [jnp.min, jnp.max, jnp.amin, jnp.amax,
                                    lambda v: v.min(), lambda v: v.max()])
def test_grad_of_extremum_with_nan_entry_is_nan_as_in_eager_jax(reduce):
    f = fjit.grad(lambda x: reduce(jnp.sqrt(x)))
    for got in (f(X), fjit.jit(f)(X)):
        assert np.isnan(np.asarray(got)).all()


@pytest.mark.parametrize("reduce", [jnp.min, jnp.max])
def test_grad_of_extremum_along_axis_with_nan_entry(reduce):
    """Only the row whose result is NaN is NaN; the other row's gradient is exact."""
    x = np.array([[-1.0, 4.0, 9.0], [1.0, 4.0, 9.0]], np.float32)
    f = fjit.grad(lambda x: jnp.sum(reduce(jnp.sqrt(x), axis=1)))
    chosen = 0 if reduce is jnp.min else 2
    for got in (f(x), fjit.jit(f)(x)):
        got = np.asarray(got)
        assert np.isnan(got[0]).all()
        expected = np.zeros(3, np.float32)
        expected[chosen] = 0.5 / np.sqrt(x[1, chosen])
        np.testing.assert_allclose(got[1], expected, rtol=1e-6)


def test_grad_of_extremum_ties_still_split():
    f = fjit.grad(lambda x: jnp.min(x))
    np.testing.assert_array_equal(np.asarray(f(np.array([4.0, 1.0, 1.0], np.float32))),
                                  [0.0, 0.5, 0.5])


def test_jvp_of_maximum_ignores_infinite_tangent_of_a_loser():
    """sqrt'(0) = inf, but 0 is not the larger: the tangent of maximum is that of sqrt(4)
    (element-wise maximum selects; the reduction keeps JAX's indicator rule, above)."""
    for f in (lambda x: jnp.maximum(jnp.sqrt(x), 1.0)[0],):
        _, t = fjit.jvp(f, (np.array([4.0, 0.0], np.float32),), (np.ones(2, np.float32),))
        assert float(t) == 0.25


@pytest.mark.parametrize("op", [jnp.minimum, jnp.maximum])
def test_grad_of_minimum_maximum_with_nan(op):
    """As in JAX: the NaN operand's own gradient is NaN (from sqrt), the others are exact."""
    f = fjit.grad(lambda x: jnp.sum(op(jnp.sqrt(x), 2.5)))
    for got in (f(X), fjit.jit(f)(X)):
        got = np.asarray(got)
        expected = [0.0, 0.0, 1 / 6] if op is jnp.maximum else [0.0, 0.25, 0.0]
        assert np.isnan(got[0])
        np.testing.assert_allclose(got[1:], expected[1:], rtol=1e-6)
