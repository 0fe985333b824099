"""Automatic differentiation: jvp, vjp, grad, linearize, Jacobians, custom rules, checkpoint.

1. A row per differentiable primitive (every row of the element-wise table, the structural,
   reduce, reindex and reindex_reduce families, jit and checkpoint), checked with
   fjit.test_util.check_grads at order 2 (which checks order 1 on the way), forward and
   reverse.  Non-differentiable element-wise ops are listed with a zero derivative.
2. A row per differentiable fjit.numpy function, checked the same way, and the derivatives
   at kinks and ties (where finite differences say nothing) against JAX's conventions.
3. The API's semantics against hand-computed values (argnums, has_aux, pytrees, errors).
4. Python control flow on concrete values under grad.
5. Symbolic zeros: no zero tangents are materialised for arguments not differentiated.
6. custom_jvp and custom_vjp under every combination of grad, jit and vmap.
7. checkpoint and its policies, read off the backward Program.
8. eval_shape of transformed functions.
9. The README's gradient Program.

Expected values were checked against JAX 0.10 where JAX defines them (these tests do not
import JAX).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.interpreters.ad import float0
from fjit.lax import indexexpr as ix
from fjit.lax.elementwise import TABLE
from fjit.test_util import check_grads

i0, i1 = ix.idx(0), ix.idx(1)


# --- inputs ---------------------------------------------------------------------------------

_DOMAINS = {"any": (-2.0, 2.0), "pos": (0.5, 3.0), "unit": (-0.8, 0.8), "ge1": (1.2, 3.0),
            "small": (-1.0, 1.0)}


def rnd(shape, domain="any", seed=0):
    """A deterministic float64 NumPy array.  Domains: any, pos (> 0), unit (|x| < 1),
    ge1 (> 1), small, nonzero (|x| >= 0.5, both signs)."""
    shape = tuple(shape)
    rng = np.random.default_rng(zlib.crc32(repr((shape, domain, seed)).encode()))
    if domain == "nonzero":
        magnitude = rng.uniform(0.5, 2.0, shape)
        return np.where(rng.random(shape) < 0.5, -magnitude, magnitude)
    if domain == "distinct":  # well separated values in random order: no ties for max/min
        n = int(np.prod(shape, dtype=np.int64))
        return (rng.permutation(n) * 0.37 - 0.5 * n * 0.37 + 0.1).reshape(shape)
    lo, hi = _DOMAINS[domain]
    return rng.uniform(lo, hi, shape)


def _name(value):
    return getattr(value, "__name__", None) or repr(value)


# =============================================================================================
# 1. Primitives
# =============================================================================================

def _ew(name):
    from fjit.lax.elementwise import PRIMITIVES
    return PRIMITIVES[name]


def _conv(x, dtype, weak=False):
    return _ew("convert_element_type").bind(x, new_dtype=np.dtype(dtype), weak_type=weak)


# One row per differentiable element-wise table row (at least): (table name, function, args,
# check_grads kwargs).  Several rows may test one table row.
_V = (3,)
EW_ROWS = [
    ("neg", lax.neg, [rnd(_V)]),
    ("abs", lax.abs, [rnd(_V, "nonzero")]),
    ("integer_pow", lambda x: lax.integer_pow(x, 3), [rnd(_V)]),
    ("integer_pow", lambda x: lax.integer_pow(x, 2), [rnd(_V)]),
    ("integer_pow", lambda x: lax.integer_pow(x, 1), [rnd(_V)]),
    ("integer_pow", lambda x: lax.integer_pow(x, 0), [rnd(_V)]),
    ("integer_pow", lambda x: lax.integer_pow(x, -2), [rnd(_V, "pos")]),
    ("exp", lax.exp, [rnd(_V)]),
    ("exp2", lax.exp2, [rnd(_V)]),
    ("log", lax.log, [rnd(_V, "pos")]),
    ("log1p", lax.log1p, [rnd(_V, "unit")]),
    ("expm1", lax.expm1, [rnd(_V)]),
    ("sqrt", lax.sqrt, [rnd(_V, "pos")]),
    ("rsqrt", lax.rsqrt, [rnd(_V, "pos")]),
    ("cbrt", lax.cbrt, [rnd(_V, "nonzero")]),
    ("sin", lax.sin, [rnd(_V)]),
    ("cos", lax.cos, [rnd(_V)]),
    ("tan", lax.tan, [rnd(_V, "small")]),
    ("tanh", lax.tanh, [rnd(_V)]),
    ("asin", lax.asin, [rnd(_V, "unit")]),
    ("acos", lax.acos, [rnd(_V, "unit")]),
    ("atan", lax.atan, [rnd(_V)]),
    ("sinh", lax.sinh, [rnd(_V)]),
    ("cosh", lax.cosh, [rnd(_V)]),
    ("asinh", lax.asinh, [rnd(_V)]),
    ("acosh", lax.acosh, [rnd(_V, "ge1")]),
    ("atanh", lax.atanh, [rnd(_V, "unit")]),
    ("logistic", lax.logistic, [rnd(_V)]),
    ("erf", lax.erf, [rnd(_V)]),
    ("add", lax.add, [rnd(_V), rnd(_V, seed=1)]),
    ("add", lambda x, y: lax.add(x, y), [rnd(_V), rnd(())]),  # a rank-0 operand broadcasts
    ("sub", lax.sub, [rnd(_V), rnd(_V, seed=1)]),
    ("sub", lax.sub, [rnd(()), rnd(_V, seed=1)]),
    ("mul", lax.mul, [rnd(_V), rnd(_V, seed=1)]),
    ("mul", lax.mul, [rnd(_V), rnd(())]),
    ("mul", lambda x: lax.mul(x, x), [rnd(_V)]),
    ("div", lax.div, [rnd(_V), rnd(_V, "nonzero", seed=1)]),
    ("div", lax.div, [rnd(()), rnd(_V, "nonzero", seed=1)]),
    ("rem", lax.rem, [np.array([2.3, -1.7, 4.1]), np.array([1.1, 0.9, -1.5])]),
    ("pow", lax.pow, [rnd(_V, "pos"), rnd(_V, seed=1)]),
    ("max", lax.max, [np.array([1.0, -2.0, 0.5]), np.array([0.3, -1.0, 2.0])]),
    ("min", lax.min, [np.array([1.0, -2.0, 0.5]), np.array([0.3, -1.0, 2.0])]),
    ("atan2", lax.atan2, [rnd(_V), rnd(_V, "nonzero", seed=1)]),
    ("select", lambda a, b: lax.select(np.array([True, False, True]), a, b),
     [rnd(_V), rnd(_V, seed=1)]),
    ("select", lambda a: lax.select(np.array([True, False, True]), a, lax.full((3,), 2.0,
                                                                              a.dtype)),
     [rnd(_V)]),
    ("clamp", lambda x: lax.clamp(-1.0, x, 1.0), [np.array([-1.5, 0.3, 1.7])]),
    ("clamp", lax.clamp, [np.array([-1.0, -1.0, -1.0]), np.array([-1.5, 0.3, 1.7]),
                          np.array([1.0, 1.0, 1.0])]),
    ("convert_element_type", lambda x: _conv(x, np.float64, weak=True), [rnd(_V)]),
]

# Rows of the element-wise table with a zero derivative, with operands to call them with.
_F = np.array([-1.7, 0.4, 2.2])
_I = np.array([3, -1, 5], np.int32)
_B = np.array([True, False, True])
ZERO_DERIVATIVE = {
    "sign": (lax.sign, [_F]),
    "floor": (lax.floor, [_F]),
    "ceil": (lax.ceil, [_F]),
    "round": (lax.round, [_F]),
    "is_finite": (lax.is_finite, [_F]),
    "stop_gradient": (lax.stop_gradient, [_F]),
    "nextafter": (lax.nextafter, [_F, _F[::-1].copy()]),
    "not": (lax.bitwise_not, [_I]),
    "eq": (lax.eq, [_F, _F[::-1].copy()]),
    "ne": (lax.ne, [_F, _F[::-1].copy()]),
    "lt": (lax.lt, [_F, _F[::-1].copy()]),
    "le": (lax.le, [_F, _F[::-1].copy()]),
    "gt": (lax.gt, [_F, _F[::-1].copy()]),
    "ge": (lax.ge, [_F, _F[::-1].copy()]),
    "and": (lax.bitwise_and, [_I, _I[::-1].copy()]),
    "or": (lax.bitwise_or, [_I, _I[::-1].copy()]),
    "xor": (lax.bitwise_xor, [_B, _B[::-1].copy()]),
    "shift_left": (lax.shift_left, [_I, np.array([1, 2, 0], np.int32)]),
    "shift_right_logical": (lax.shift_right_logical, [_I, np.array([1, 2, 0], np.int32)]),
    "shift_right_arithmetic": (lax.shift_right_arithmetic, [_I, np.array([1, 2, 0], np.int32)]),
    "bitcast": (lambda x: lax.bitcast_convert_type(x, np.int32),
                [np.array([1.5, -2.0, 3.0], np.float32)]),
}
# convert_element_type to an integer type has a zero derivative too (float0 below).


@pytest.mark.parametrize("name,fn,args", EW_ROWS, ids=[r[0] for r in EW_ROWS])
def test_elementwise_grads(name, fn, args):
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_convert_element_type_to_float32_grads():
    # float64 -> float32 -> float64 loses precision: finite differences need a loose tolerance
    check_grads(lambda x: _conv(_conv(x, np.float32) * 2, np.float64), [rnd(_V)], order=2,
                atol=1e-2, rtol=1e-2)


def test_every_elementwise_row_has_a_derivative_test():
    tested = {row[0] for row in EW_ROWS} | set(ZERO_DERIVATIVE)
    missing = [op.name for op in TABLE if op.name not in tested]
    assert missing == [], f"element-wise ops without a derivative test: {missing}"
    both = {row[0] for row in EW_ROWS} & set(ZERO_DERIVATIVE)
    assert both == set()


@pytest.mark.parametrize("name", sorted(ZERO_DERIVATIVE))
def test_zero_derivative_ops(name):
    fn, args = ZERO_DERIVATIVE[name]
    args = [jnp.asarray(a) for a in args]
    tangents = [jnp.ones_like(a) if np.issubdtype(a.dtype, np.floating) else
                np.zeros(a.shape, float0) for a in args]
    out, t_out = fjit.jvp(fn, tuple(args), tuple(tangents))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(fn(*args)))
    if np.issubdtype(out.dtype, np.floating):
        assert t_out.dtype == out.dtype and t_out.shape == out.shape
        np.testing.assert_array_equal(np.asarray(t_out), np.zeros(out.shape))
    else:  # integer and bool outputs have float0 tangents
        assert np.asarray(t_out).dtype == float0 and t_out.shape == out.shape

    # grad through the op (float inputs made into the op's operands inside) is zero
    def through(*xs):
        ops = [x if np.issubdtype(a.dtype, np.floating) and a.dtype == x.dtype
               else lax.convert_element_type(x, a.dtype) for x, a in zip(xs, args)]
        y = fn(*ops)
        return jnp.sum(lax.convert_element_type(y, jnp.float32) * 3.0) + jnp.sum(xs[0] * 0.0)

    floats = [jnp.asarray(np.asarray(a).astype(np.float32)) for a in args]
    grads = fjit.grad(through, argnums=tuple(range(len(args))))(*floats)
    for g, a in zip(grads, floats):
        assert g.dtype == jnp.float32 and g.shape == a.shape
        np.testing.assert_array_equal(np.asarray(g), np.zeros(a.shape))


def test_convert_to_int_has_float0_tangent_and_zero_grad():
    x = jnp.asarray([1.5, -2.5, 3.0])
    out, t = fjit.jvp(lambda x: lax.convert_element_type(x, jnp.int32), (x,), (jnp.ones(3),))
    assert out.dtype == jnp.int32 and np.asarray(t).dtype == float0
    g = fjit.grad(lambda x: jnp.sum(lax.convert_element_type(
        lax.convert_element_type(x, jnp.int32), jnp.float32)))(x)
    np.testing.assert_array_equal(np.asarray(g), np.zeros(3))


# --- the other families ------------------------------------------------------------------------

def _gather_idx():
    return jnp.asarray(np.array([2, 0, 2, 5, 1], np.int32))  # a repeat and an out-of-bounds


def _scatter_targets():
    return jnp.asarray(np.array([0, 2, 0, 1, 2, 0], np.int32))  # duplicates; all targets hit


def _rr(op, drop=False):
    """reindex_reduce of a (6,) vector into (3,) through the duplicate targets."""
    def f(x):
        return lax.reindex_reduce(x, op, (3,), (ix.load(1, (i0,)),),
                                  drop_if=(ix.eq(i0, 4),) if drop else (),
                                  index_arrays=(_scatter_targets(),))
    f.__name__ = f"reindex_reduce_{op}"
    return f


def _jitted(x, y):
    return jnp.sin(x) * y + jnp.exp(x)


def _nested_jit(x):
    return fjit.jit(lambda z: fjit.jit(jnp.tanh)(z) * z)(x) ** 2


STRUCTURAL_ROWS = [
    ("broadcast_in_dim", lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1,)) * 1.0,
     [rnd((3,))]),
    ("broadcast_in_dim_stretch", lambda x: lax.broadcast_in_dim(x, (2, 3), (0, 1)),
     [rnd((1, 3))]),
    ("broadcast_in_dim_scalar", lambda x: lax.broadcast_in_dim(x, (2, 2), ()), [rnd(())]),
    ("reshape", lambda x: lax.reshape(x, (3, 2)), [rnd((2, 3))]),
    ("reshape_dimensions", lambda x: lax.reshape(x, (6,), (1, 0)), [rnd((2, 3))]),
    ("reduce_sum", lambda x: lax.reduce_sum(x, (1,)), [rnd((2, 3))]),
    ("reduce_sum_all", lambda x: lax.reduce_sum(x, (0, 1)), [rnd((2, 3))]),
    ("reduce_max", lambda x: lax.reduce_max(x, (1,)), [rnd((2, 3), "distinct")]),
    ("reduce_max_all", lambda x: lax.reduce_max(x, (0, 1)), [rnd((2, 3), "distinct")]),
    ("reduce_min", lambda x: lax.reduce_min(x, (0,)), [rnd((2, 3), "distinct")]),
    ("reduce_prod", lambda x: lax.reduce_prod(x, (1,)), [rnd((2, 3))]),
    ("reduce_prod_all", lambda x: lax.reduce_prod(x, (0, 1)), [rnd((2, 3))]),
    ("reduce_prod_with_a_zero", lambda x: lax.reduce_prod(x, (1,)),
     [np.array([[0.0, 1.5, -2.0], [1.2, 0.7, 3.0]])]),
    ("reduce_prod_with_two_zeros", lambda x: lax.reduce_prod(x, (1,)),
     [np.array([[0.0, 1.5, 0.0], [1.2, 0.0, 3.0]])]),
    ("reindex_transpose", lambda x: lax.transpose(x, (1, 0)), [rnd((2, 3))]),
    ("reindex_slice", lambda x: lax.slice(x, (0, 1), (2, 3)), [rnd((2, 3))]),
    ("reindex_strided_slice", lambda x: lax.slice(x, (1,), (6,), (2,)), [rnd((6,))]),
    ("reindex_rev", lambda x: lax.rev(x, (1,)), [rnd((2, 3))]),
    ("reindex_pad", lambda x: lax.pad(x, 0.0, ((1, 2, 1), (0, -1, 0))), [rnd((2, 3))]),
    ("reindex_pad_traced_value", lambda x, v: lax.pad(x, v, ((1, 1, 0),)),
     [rnd((3,)), rnd(())]),
    ("reindex_concatenate", lambda x, y: lax.concatenate([x, y, x], 0),
     [rnd((2,)), rnd((3,), seed=1)]),
    ("reindex_gather", lambda x: lax.reindex(x, (5,), (ix.load(1, (i0,)),), fill=0.5,
                                             index_arrays=(_gather_idx(),)), [rnd((4,))]),
    ("reindex_gather_2d", lambda x: lax.reindex(x, (5, 3), (ix.load(1, (i0,)), i1),
                                                index_arrays=(_gather_idx(),)), [rnd((4, 3))]),
    ("reindex_fill_if", lambda x: lax.reindex(x, (4, 3), (i0, i1), fill=-1.0,
                                              fill_if=(ix.gt(i1, i0),)), [rnd((4, 3))]),
    ("reindex_dynamic_slice", lambda x: lax.dynamic_slice(x, (jnp.asarray(1),), (2,)),
     [rnd((4,))]),
    ("reindex_dynamic_update_slice",
     lambda x, u: lax.dynamic_update_slice(x, u, (jnp.asarray(1),)), [rnd((4,)), rnd((2,))]),
    ("reindex_windows", lambda x: lax.windows(x, (2,), (2,), ((1, 0),)), [rnd((5,))]),
    ("reindex_reduce_add", _rr("add"), [rnd((6,))]),
    ("reindex_reduce_add_drop_if", _rr("add", drop=True), [rnd((6,))]),
    ("reindex_reduce_add_broadcast", lambda x: lax.reindex_reduce(x, "add", (3,), (i1,)),
     [rnd((2, 3))]),
    ("reindex_reduce_mul", _rr("mul"), [rnd((6,))]),
    # target 0 gets x[0], x[2], x[5]: one zero there; target 2 gets x[1], x[4]: no zero
    ("reindex_reduce_mul_one_zero", _rr("mul"), [np.array([0.0, 1.5, -2.0, 0.7, 3.0, 1.1])]),
    # two zeros at target 0
    ("reindex_reduce_mul_two_zeros", _rr("mul"), [np.array([0.0, 1.5, 0.0, 0.7, 3.0, 1.1])]),
    ("reindex_reduce_mul_drop_if", _rr("mul", drop=True), [rnd((6,))]),
    ("reindex_reduce_max", _rr("max"), [rnd((6,), "distinct")]),
    ("reindex_reduce_min", _rr("min"), [rnd((6,), "distinct")]),
    ("reindex_reduce_max_drop_if", _rr("max", drop=True), [rnd((6,), "distinct")]),
    ("jit", fjit.jit(_jitted), [rnd((3,)), rnd((3,), seed=1)]),
    ("jit_nested", _nested_jit, [rnd((3,))]),
    ("checkpoint", fjit.checkpoint(_jitted), [rnd((3,)), rnd((3,), seed=1)]),
    ("checkpoint_everything_saveable",
     fjit.checkpoint(_jitted, policy=fjit.checkpoint_policies.everything_saveable),
     [rnd((3,)), rnd((3,), seed=1)]),
    ("checkpoint_dots_saveable",
     fjit.checkpoint(lambda w, x: jnp.tanh(jnp.tanh(x @ w) @ w.T),
                     policy=fjit.checkpoint_policies.dots_saveable),
     [rnd((3, 2)), rnd((2, 3), seed=1)]),
    ("checkpoint_in_jit", fjit.jit(fjit.checkpoint(_jitted)), [rnd((3,)), rnd((3,), seed=1)]),
]


@pytest.mark.parametrize("name,fn,args", STRUCTURAL_ROWS, ids=[r[0] for r in STRUCTURAL_ROWS])
def test_primitive_grads(name, fn, args):
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_every_primitive_family_has_a_derivative_test():
    from fjit.interpreters import ad
    names = {p.name for p in ad.jvp_rules}
    names -= {op.name for op in TABLE}
    covered = {"broadcast_in_dim", "reshape", "reduce_sum", "reduce_max", "reduce_min",
               "reduce_prod", "reindex", "reindex_reduce", "jit", "checkpoint",
               "custom_jvp_call", "custom_vjp_call",  # section 6
               "argmax", "argmin",  # test_argmax_has_no_tangent
               "scan", "cond", "while"}  # tests/test_scan.py, tests/test_cond_while.py
    row_names = " ".join(r[0] for r in STRUCTURAL_ROWS)
    for name in covered - {"custom_jvp_call", "custom_vjp_call", "argmax", "argmin", "scan",
                           "cond", "while"}:
        assert name in row_names, name
    assert names - covered == set(), f"primitives with jvp rules but no test: {names - covered}"


def test_argmax_has_no_tangent():
    x = jnp.asarray([1.0, 3.0, 2.0])
    out, t = fjit.jvp(lambda x: lax.argmax(x, 0), (x,), (jnp.ones(3),))
    assert int(out) == 1 and np.asarray(t).dtype == float0
    out, t = fjit.jvp(lambda x: lax.argmin(x, 0), (x,), (jnp.ones(3),))
    assert int(out) == 0 and np.asarray(t).dtype == float0
    g = fjit.grad(lambda x: x[lax.argmax(x, 0)] * 2.0)(x)
    np.testing.assert_allclose(np.asarray(g), [0.0, 2.0, 0.0])


def test_max_min_ties_split_the_derivative():
    """JAX's rule: at a tie each operand gets half the tangent; reductions average."""
    x = jnp.asarray([1.0, 2.0, 2.0])
    np.testing.assert_allclose(np.asarray(fjit.grad(lambda x: lax.max(x, 2.0 * jnp.ones(3))
                                                    .sum())(x)), [0.0, 0.5, 0.5])
    np.testing.assert_allclose(np.asarray(fjit.grad(lambda x: lax.reduce_max(x, (0,)))(x)),
                               [0.0, 0.5, 0.5])
    np.testing.assert_allclose(np.asarray(fjit.grad(lambda x: lax.reduce_min(-x, (0,)))(x)),
                               [0.0, -0.5, -0.5])


def test_pow_derivatives_at_zero_like_jax():
    g = fjit.grad(lambda x: jnp.sum(lax.pow(x, 2.0)))(jnp.asarray([0.0, 1.5]))
    np.testing.assert_allclose(np.asarray(g), [0.0, 3.0])
    g = fjit.grad(lambda y: lax.pow(0.0, y))(2.0)  # d/dy 0**y at y = 2: JAX gives 0
    assert float(g) == 0.0


# =============================================================================================
# 2. fjit.numpy functions
# =============================================================================================

def R(name, fn, *args, **kwargs):
    """A row: `name` is the fjit.numpy function tested ("name:variant" for more rows of one
    function); fn defaults to that function called with args; kwargs go to check_grads."""
    base = name.split(":")[0]
    if fn is None:
        fn = getattr(jnp, base)
    return pytest.param(fn, list(args), kwargs, id=name)


M = (2, 3)
_MASK = np.array([[True, False, True], [False, True, True]])
_D = rnd(M, "distinct")  # no ties anywhere
_NAN = np.array([[0.5, np.nan, -1.2], [2.0, 0.3, np.nan]])
_ROWS_IDX = np.array([1, 0, 1], np.int32)


def _unary(name, domain="any", shape=M):
    return R(name, None, rnd(shape, domain))


UNARY_DOMAINS = {
    "abs": "nonzero", "absolute": "nonzero", "fabs": "nonzero", "acos": "unit",
    "arccos": "unit", "acosh": "ge1", "arccosh": "ge1", "asin": "unit", "arcsin": "unit",
    "asinh": "any", "arcsinh": "any", "atan": "any", "arctan": "any", "atanh": "unit",
    "arctanh": "unit", "cbrt": "nonzero", "cos": "any", "cosh": "any", "deg2rad": "any",
    "degrees": "any", "exp": "any", "exp2": "any", "expm1": "any", "log": "pos",
    "log10": "pos", "log1p": "unit", "log2": "pos", "negative": "any", "positive": "any",
    "rad2deg": "any", "radians": "any", "reciprocal": "nonzero", "sin": "any", "sinh": "any",
    "sqrt": "pos", "square": "any", "tan": "small", "tanh": "any",
}

BINARY = {  # name: (x domain, y domain)
    "add": ("any", "any"), "subtract": ("any", "any"), "multiply": ("any", "any"),
    "divide": ("any", "nonzero"), "true_divide": ("any", "nonzero"),
    "arctan2": ("any", "nonzero"), "atan2": ("any", "nonzero"),
    "float_power": ("pos", "any"), "pow": ("pos", "any"), "power": ("pos", "any"),
    "hypot": ("nonzero", "nonzero"), "logaddexp": ("any", "any"),
    "logaddexp2": ("any", "any"), "copysign": ("nonzero", "nonzero"),
}

_X1 = np.array([[2.3, -1.7, 4.1], [-3.4, 0.4, 5.2]])
_Y1 = np.array([[1.1, 0.9, -1.5], [1.3, -0.7, 2.1]])
_TWIN = rnd(M, "distinct", seed=1)

NUMPY_ROWS = [
    *[_unary(n, d) for n, d in UNARY_DOMAINS.items()],
    *[R(n, None, rnd(M, dx), rnd(M, dy, seed=1)) for n, (dx, dy) in BINARY.items()],
    R("add:broadcast", None, rnd(M), rnd((3,), seed=1)),
    R("multiply:broadcast", None, rnd((2, 1)), rnd((3,), seed=1)),
    R("multiply:python_scalar", lambda x: jnp.multiply(x, 2.5), rnd(M)),
    R("power:int_exponent", lambda x: jnp.power(x, 3), rnd(M)),
    R("power:x_only", lambda x: x ** 2.5, rnd(M, "pos")),
    R("power:exponent_only", lambda y: jnp.power(1.7, y), rnd(M)),
    R("maximum", None, _D, _TWIN), R("minimum", None, _D, _TWIN),
    R("fmax", None, _D, _TWIN), R("fmin", None, _D, _TWIN),
    R("fmod", None, _X1, _Y1), R("mod", None, _X1, _Y1), R("remainder", None, _X1, _Y1),
    R("divmod", None, _X1, _Y1),
    R("where", lambda x, y: jnp.where(_MASK, x, y), rnd(M), rnd(M, seed=1)),
    R("where:scalar_branch", lambda x: jnp.where(x > 0, x, 0.1 * x), rnd(M, "nonzero")),
    R("clip", lambda x: jnp.clip(x, -1.0, 1.0), np.array([[-1.5, 0.3, 1.7], [0.9, -0.2, 4.0]])),
    R("clip:array_bounds", lambda x, lo, hi: jnp.clip(x, lo, hi),
      np.array([-1.5, 0.3, 1.7]), np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0])),
    # reductions
    R("sum", None, rnd(M)),
    R("sum:axis_keepdims", lambda x: jnp.sum(x, axis=0, keepdims=True), rnd(M)),
    R("sum:where", lambda x: jnp.sum(x, axis=1, where=_MASK), rnd(M)),
    R("prod", None, rnd(M)),
    R("prod:axis", lambda x: jnp.prod(x, axis=1), rnd(M)),
    R("max", None, _D), R("max:axis", lambda x: jnp.max(x, axis=1), _D),
    R("min", None, _D), R("min:axis_keepdims", lambda x: jnp.min(x, 0, keepdims=True), _D),
    R("amax", lambda x: jnp.amax(x, axis=0), _D), R("amin", lambda x: jnp.amin(x, axis=1), _D),
    R("ptp", lambda x: jnp.ptp(x, axis=1), _D),
    R("mean", None, rnd(M)), R("mean:axis", lambda x: jnp.mean(x, axis=0), rnd(M)),
    R("mean:where", lambda x: jnp.mean(x, where=_MASK), rnd(M)),
    R("var", None, rnd(M)), R("var:axis_ddof", lambda x: jnp.var(x, axis=1, ddof=1), rnd(M)),
    R("std", None, rnd(M)), R("std:axis", lambda x: jnp.std(x, axis=0), rnd(M)),
    R("cumsum", None, rnd(M)), R("cumsum:axis", lambda x: jnp.cumsum(x, axis=1), rnd(M)),
    R("cumprod", lambda x: jnp.cumprod(x, axis=1), rnd(M)),
    R("cumprod:with_zero", lambda x: jnp.cumprod(x), np.array([1.5, 0.0, -2.0, 0.7])),
    R("cummax", lambda x: jnp.cummax(x, axis=1), _D),
    R("sort", None, _D), R("sort:axis0", lambda x: jnp.sort(x, axis=0), _D),
    R("cummin", lambda x: jnp.cummin(x, axis=0), _D),
    R("cumulative_sum", lambda x: jnp.cumulative_sum(x, axis=1, include_initial=True), rnd(M)),
    R("cumulative_prod", lambda x: jnp.cumulative_prod(x, axis=0), rnd(M)),
    R("nansum", None, _NAN), R("nanprod", None, _NAN), R("nanmean", None, _NAN),
    R("nanmax", lambda x: jnp.nanmax(x, axis=1), _NAN),
    R("nanmin", lambda x: jnp.nanmin(x, axis=1), _NAN),
    R("trace", None, rnd((3, 3))), R("trace:offset", lambda x: jnp.trace(x, 1), rnd(M)),
    R("diagonal", None, rnd((3, 3))), R("diagonal:offset", lambda x: jnp.diagonal(x, -1),
                                        rnd((3, 2))),
    R("diag", None, rnd((3,))), R("diag:of_matrix", None, rnd((3, 3))),
    # shapes
    R("reshape", lambda x: jnp.reshape(x, (3, 2)), rnd(M)),
    R("reshape:method", lambda x: x.reshape(-1, 1) * 1.0, rnd(M)),
    R("ravel", None, rnd(M)),
    R("transpose", None, rnd((2, 3, 2))),
    R("transpose:method", lambda x: x.T, rnd(M)),
    R("permute_dims", lambda x: jnp.permute_dims(x, (2, 0, 1)), rnd((2, 3, 2))),
    R("matrix_transpose", None, rnd((2, 2, 3))),
    R("swapaxes", lambda x: jnp.swapaxes(x, 0, 2), rnd((2, 3, 2))),
    R("moveaxis", lambda x: jnp.moveaxis(x, 0, -1), rnd((2, 3, 2))),
    R("expand_dims", lambda x: jnp.expand_dims(x, (0, 2)), rnd(M)),
    R("squeeze", None, rnd((1, 3, 1))),
    R("broadcast_to", lambda x: jnp.broadcast_to(x, (2, 2, 3)), rnd((2, 1, 3))),
    R("broadcast_arrays", None, rnd((2, 1)), rnd((3,), seed=1)),
    R("atleast_1d", None, rnd(())), R("atleast_2d", None, rnd((3,))),
    R("atleast_3d", None, rnd(M)),
    R("concatenate", lambda x, y: jnp.concatenate([x, y, x], axis=1), rnd(M), rnd((2, 1))),
    R("concat", lambda x, y: jnp.concat([x, y]), rnd(M), rnd((1, 3))),
    R("stack", lambda x, y: jnp.stack([x, y], axis=1), rnd(M), rnd(M, seed=1)),
    R("hstack", lambda x, y: jnp.hstack([x, y]), rnd((3,)), rnd((2,))),
    R("vstack", lambda x, y: jnp.vstack([x, y]), rnd((3,)), rnd(M)),
    R("row_stack", lambda x, y: jnp.row_stack([x, y]), rnd((3,)), rnd((3,), seed=1)),
    R("dstack", lambda x, y: jnp.dstack([x, y]), rnd(M), rnd(M, seed=1)),
    R("column_stack", lambda x, y: jnp.column_stack([x, y]), rnd((3,)), rnd((3, 2))),
    R("split", lambda x: jnp.split(x, [1, 2], axis=1), rnd(M)),
    R("array_split", lambda x: jnp.array_split(x, 2, axis=1), rnd(M)),
    R("hsplit", lambda x: jnp.hsplit(x, 3), rnd(M)),
    R("vsplit", lambda x: jnp.vsplit(x, 2), rnd(M)),
    R("dsplit", lambda x: jnp.dsplit(x, [1]), rnd((1, 2, 3))),
    R("tile", lambda x: jnp.tile(x, (2, 1, 2)), rnd(M)),
    R("repeat", lambda x: jnp.repeat(x, 2, axis=1), rnd(M)),
    R("repeat:array", lambda x: jnp.repeat(x, np.array([2, 0, 1]), axis=1), rnd(M)),
    R("repeat:flat", lambda x: jnp.repeat(x, 2), rnd(M)),
    R("flip", lambda x: jnp.flip(x, 1), rnd(M)), R("flip:all", None, rnd(M)),
    R("fliplr", None, rnd(M)), R("flipud", None, rnd(M)),
    R("rot90", None, rnd(M)), R("rot90:k", lambda x: jnp.rot90(x, 3), rnd(M)),
    R("roll", lambda x: jnp.roll(x, 2, axis=1), rnd(M)),
    R("roll:flat", lambda x: jnp.roll(x, -1), rnd(M)),
    R("pad", lambda x: jnp.pad(x, ((1, 0), (2, 1))), rnd(M)),
    R("pad:constant_values", lambda x: jnp.pad(x, 1, constant_values=2.5), rnd(M)),
    R("pad:traced_constant", lambda x, v: jnp.pad(x, 1, constant_values=v), rnd(M), rnd(())),
    R("pad:edge", lambda x: jnp.pad(x, ((1, 2), (2, 1)), mode="edge"), rnd(M)),
    R("pad:wrap", lambda x: jnp.pad(x, ((1, 2), (2, 1)), mode="wrap"), rnd(M)),
    R("pad:reflect", lambda x: jnp.pad(x, ((1, 1), (2, 2)), mode="reflect"), rnd(M)),
    R("pad:symmetric", lambda x: jnp.pad(x, ((1, 2), (2, 3)), mode="symmetric"), rnd(M)),
    R("tril", None, rnd((3, 3))), R("triu", lambda x: jnp.triu(x, 1), rnd(M)),
    R("copy", None, rnd(M)), R("array", None, rnd(M)), R("asarray", None, rnd(M)),
    R("array:of_list", lambda x, y: jnp.array([x, y, x]), rnd((3,)), rnd((3,), seed=1)),
    R("full", lambda v: jnp.full((2, 3), v), rnd(())),
    R("full_like", lambda x, v: jnp.full_like(x, v) * x, rnd(M), rnd(())),
    R("zeros_like", lambda x: jnp.zeros_like(x) + x, rnd(M)),
    R("ones_like", lambda x: jnp.ones_like(x) * x, rnd(M)),
    R("empty_like", lambda x: jnp.empty_like(x) * 0.0 + x, rnd(M)),
    R("meshgrid", lambda x, y: jnp.meshgrid(x, y), rnd((3,)), rnd((2,))),
    R("meshgrid:ij", lambda x, y: jnp.meshgrid(x, y, indexing="ij"), rnd((3,)), rnd((2,))),
    R("linspace", lambda a, b: jnp.linspace(a, b, 5), rnd(()), rnd((), seed=1)),
    R("linspace:arrays", lambda a, b: jnp.linspace(a, b, 4, endpoint=False, axis=1),
      rnd((2,)), rnd((2,), seed=1)),
    R("logspace", lambda a, b: jnp.logspace(a, b, 4), rnd((), "small"),
      rnd((), "small", seed=1)),
    R("geomspace", lambda a, b: jnp.geomspace(a, b, 4), rnd((2,), "pos"),
      rnd((2,), "pos", seed=1)),
    # contractions
    R("dot", None, rnd(M), rnd((3, 2), seed=1)),
    R("dot:vectors", None, rnd((3,)), rnd((3,), seed=1)),
    R("vdot", None, rnd(M), rnd(M, seed=1)),
    R("inner", None, rnd(M), rnd((2, 3), seed=1)),
    R("outer", None, rnd((3,)), rnd((2,), seed=1)),
    R("kron", None, rnd((2, 2)), rnd((1, 2), seed=1)),
    R("matmul", None, rnd(M), rnd((3, 2), seed=1)),
    R("matmul:batched", None, rnd((2, 2, 3)), rnd((3, 2), seed=1)),
    R("matmul:vector", None, rnd(M), rnd((3,), seed=1)),
    R("matmul:operator", lambda a, b: a @ b, rnd((3,)), rnd((3, 2), seed=1)),
    R("tensordot", lambda a, b: jnp.tensordot(a, b, 1), rnd(M), rnd((3, 2), seed=1)),
    R("tensordot:pairs", lambda a, b: jnp.tensordot(a, b, ((0, 1), (1, 0))), rnd(M),
      rnd((3, 2), seed=1)),
    R("einsum", lambda a, b: jnp.einsum("ij,jk->ik", a, b), rnd(M), rnd((3, 2), seed=1)),
    R("einsum:trace_outer", lambda a, b: jnp.einsum("ii,j->j", a, b), rnd((2, 2)),
      rnd((3,), seed=1)),
    R("einsum:three", lambda a, b, c: jnp.einsum("i,ij,j", a, b, c), rnd((2,)), rnd(M, seed=1),
      rnd((3,), seed=2)),
    # indexing
    R("take", lambda x: jnp.take(x, np.array([2, 0, 2]), axis=1), rnd(M)),
    R("take:flat_fill", lambda x: jnp.take(x, np.array([5, 7, 0]), fill_value=1.5), rnd(M)),
    R("take:clip", lambda x: jnp.take(x, np.array([-1, 4, 1]), axis=1, mode="clip"), rnd(M)),
    R("take_along_axis", lambda x: jnp.take_along_axis(x, np.array([[2, 0], [1, 1]]), 1),
      rnd(M)),
]

INDEXING_ROWS = [  # not fjit.numpy functions: x[...] and x.at[...]
    R("getitem:int", lambda x: x[1], rnd(M)),
    R("getitem:slices", lambda x: x[:, ::-2], rnd(M)),
    R("getitem:none_ellipsis", lambda x: x[None, ..., 1:], rnd(M)),
    R("getitem:int_array", lambda x: x[np.array([1, 0, 1]), 2], rnd(M)),
    R("getitem:negative_and_repeated", lambda x: x[:, np.array([-1, 0, -1, 2])], rnd(M)),
    R("getitem:bool_mask", lambda x: x[_MASK], rnd(M)),
    R("getitem:traced_index", lambda x: x[jnp.asarray(_ROWS_IDX)], rnd(M)),
    R("at.set", lambda x, v: x.at[0, np.array([2, 0])].set(v), rnd(M), rnd((2,))),
    R("at.set:duplicates", lambda x, v: x.at[np.array([1, 1, 0])].set(v), rnd((3,)),
      rnd((3,), seed=1)),
    R("at.add", lambda x, v: x.at[np.array([1, 1, 0])].add(v), rnd((3,)), rnd((3,), seed=1)),
    R("at.subtract", lambda x, v: x.at[1:].subtract(v), rnd((3,)), rnd((2,), seed=1)),
    R("at.multiply", lambda x, v: x.at[np.array([1, 1, 0])].multiply(v), rnd((3,)),
      rnd((3,), seed=1)),
    R("at.divide", lambda x, v: x.at[1].divide(v), rnd((3,)), rnd((), "nonzero")),
    R("at.power", lambda x, v: x.at[np.array([0, 2])].power(v), rnd((3,), "pos"),
      rnd((2,), seed=1)),
    R("at.min", lambda x, v: x.at[np.array([1, 2, 1])].min(v), np.array([0.1, 0.5, -1.0]),
      np.array([-0.3, 0.8, 0.9])),
    R("at.max", lambda x, v: x.at[np.array([1, 2, 1])].max(v), np.array([0.1, 0.5, -1.0]),
      np.array([-0.3, 0.8, 0.9])),
    R("at.get", lambda x: x.at[np.array([4, 0])].get(mode="fill", fill_value=0.0), rnd((3,))),
    R("at.apply", lambda x: x.at[1:].apply(jnp.sin), rnd((3,))),
]

# Public fjit.numpy functions without a derivative to check: integer, bool or constant
# results, or piecewise-constant values.  Those taking floats are checked for a zero gradient.
NON_DIFFERENTIABLE = {
    # piecewise constant on floats: zero derivative
    "sign": jnp.sign, "floor": jnp.floor, "ceil": jnp.ceil, "round": jnp.round,
    "around": jnp.around, "rint": jnp.rint, "trunc": jnp.trunc, "fix": jnp.fix,
    "floor_divide": lambda x: jnp.floor_divide(x, 0.7),
    "heaviside": lambda x: jnp.heaviside(x, 0.5),
    "nextafter": lambda x: jnp.nextafter(x, 10.0),
    # bool or integer results of floats
    "argmax": jnp.argmax, "argmin": jnp.argmin, "isfinite": jnp.isfinite, "isinf": jnp.isinf,
    "argsort": jnp.argsort,
    "isnan": jnp.isnan, "isposinf": jnp.isposinf, "isneginf": jnp.isneginf,
    "signbit": jnp.signbit, "equal": lambda x: jnp.equal(x, 0.4),
    "not_equal": lambda x: jnp.not_equal(x, 0.4), "less": lambda x: jnp.less(x, 0.4),
    "less_equal": lambda x: jnp.less_equal(x, 0.4), "greater": lambda x: jnp.greater(x, 0.4),
    "greater_equal": lambda x: jnp.greater_equal(x, 0.4),
    "isclose": lambda x: jnp.isclose(x, 0.4), "allclose": lambda x: jnp.allclose(x, 0.4),
    "array_equal": lambda x: jnp.array_equal(x, x), "count_nonzero": jnp.count_nonzero,
    "all": jnp.all, "any": jnp.any, "logical_not": jnp.logical_not,
    "logical_and": lambda x: jnp.logical_and(x, x > 0),
    "logical_or": lambda x: jnp.logical_or(x, x > 0),
    "logical_xor": lambda x: jnp.logical_xor(x, x > 0),
    # integer and bool operands only
    "bitwise_and": None, "bitwise_or": None, "bitwise_xor": None, "bitwise_not": None,
    "bitwise_invert": None, "bitwise_left_shift": None, "bitwise_right_shift": None,
    "invert": None, "left_shift": None, "right_shift": None,
    # constants and integer results that take no float operand
    "arange": None, "empty": None, "eye": None, "identity": None, "indices": None,
    "ones": None, "zeros": None, "tri": None, "nonzero": None, "argwhere": None,
    "broadcast_shapes": None,
    # not array functions
    "can_cast": None, "isscalar": None, "promote_types": None, "result_type": None,
    "shape": None, "ndim": None, "size": None, "issubdtype": None, "finfo": None,
    "iinfo": None,
}


@pytest.mark.parametrize("fn,args,kwargs", NUMPY_ROWS + INDEXING_ROWS)
def test_numpy_grads(fn, args, kwargs):
    check_grads(fn, args, order=2, modes=("fwd", "rev"), **kwargs)


def _public_numpy_functions():
    import inspect
    return {name for name, obj in vars(jnp).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isbuiltin(obj))}


def test_every_public_numpy_function_has_a_row():
    rows = {p.id.split(":")[0] for p in NUMPY_ROWS}
    missing = sorted(_public_numpy_functions() - rows - set(NON_DIFFERENTIABLE))
    assert missing == [], f"fjit.numpy functions without a derivative test: {missing}"
    assert rows & set(NON_DIFFERENTIABLE) == set()
    assert rows <= _public_numpy_functions() | {"pow"}


@pytest.mark.parametrize("name", sorted(k for k, v in NON_DIFFERENTIABLE.items()
                                        if v is not None))
def test_numpy_non_differentiable_functions_have_zero_gradient(name):
    fn = NON_DIFFERENTIABLE[name]
    x = jnp.asarray(np.array([[-1.7, 0.4, 2.2], [0.3, -0.6, 1.5]], np.float32))

    def f(x):
        y = jnp.asarray(fn(x))
        return jnp.sum(y.astype(jnp.float32) * 2.0) + jnp.sum(x) * 0.0

    g = fjit.grad(f)(x)
    assert g.dtype == jnp.float32 and g.shape == x.shape
    np.testing.assert_array_equal(np.asarray(g), np.zeros(x.shape))
    _, t = fjit.jvp(fn, (x,), (jnp.ones_like(x),))
    t = np.asarray(t)
    if t.dtype == float0:
        return
    np.testing.assert_array_equal(t, np.zeros(t.shape))


# --- derivatives at kinks and ties: JAX's conventions (values found by running JAX) -----------

_INF, _NAN_ = float("inf"), float("nan")
KINKS = [
    ("abs", lambda x: jnp.sum(lax.abs(x)), [-2.0, 0.0, 3.0], [-1.0, 1.0, 1.0]),
    ("fabs", lambda x: jnp.sum(jnp.fabs(x)), [0.0, -1.0], [1.0, -1.0]),
    ("absolute", lambda x: jnp.sum(jnp.absolute(x)), [0.0, -1.0], [1.0, -1.0]),
    ("copysign", lambda x: jnp.sum(jnp.copysign(x, -1.0)), [0.0, 2.0], [-1.0, -1.0]),
    ("sign", lambda x: jnp.sum(jnp.sign(x) * x), [0.0, -2.0], [0.0, -1.0]),
    ("clip", lambda x: jnp.sum(jnp.clip(x, -1.0, 1.0)), [-1.0, 1.0, 0.0], [0.5, 0.5, 1.0]),
    ("lax.clamp", lambda x: jnp.sum(lax.clamp(-1.0, x, 1.0)), [-1.0, 1.0, 0.0],
     [0.0, 0.0, 1.0]),
    ("maximum", lambda x: jnp.sum(jnp.maximum(x, 0.0)), [0.0, 1.0], [0.5, 1.0]),
    ("minimum", lambda x: jnp.sum(jnp.minimum(x, 0.0)), [0.0, 1.0], [0.5, 0.0]),
    # jnp.fmax/fmin are where((x1 > x2) | isnan(x2), x1, x2) in JAX: a tie follows x2
    ("fmax", lambda x: jnp.sum(jnp.fmax(x, 0.0)), [0.0, 1.0], [0.0, 1.0]),
    ("fmax:second", lambda x: jnp.sum(jnp.fmax(0.0, x)), [0.0, -1.0], [1.0, 0.0]),
    ("fmin", lambda x: jnp.sum(jnp.fmin(x, 0.0)), [0.0, -1.0], [0.0, 1.0]),
    ("max", jnp.max, [1.0, 1.0, 0.0], [0.5, 0.5, 0.0]),
    ("max:initial", lambda x: jnp.max(x, initial=1.5), [1.0, 2.0, 1.5], [0.0, 1.0, 0.0]),
    ("max:where", lambda x: jnp.max(x, where=_BOOL3, initial=-10.0), [1.0, 5.0, 3.0],
     [0.0, 0.0, 1.0]),
    ("ptp", jnp.ptp, [1.0, 1.0, 0.0], [0.5, 0.5, -1.0]),
    ("cummax", lambda x: jnp.sum(jnp.cummax(x)), [1.0, 1.0, 0.0, 2.0], [2.0, 1.0, 0.0, 1.0]),
    ("cummin", lambda x: jnp.sum(jnp.cummin(x)), [3.0, 1.0, 1.0, 2.0], [1.0, 2.0, 1.0, 0.0]),
    ("sqrt", lambda x: jnp.sum(jnp.sqrt(x)), [0.0, 1.0], [_INF, 0.5]),
    ("power:x_at_0", lambda x: jnp.sum(x ** 0.5), [0.0, 1.0], [_INF, 0.5]),
    ("power:y_at_x_0", lambda y: jnp.sum(jnp.power(jnp.zeros(2), y)), [0.0, 2.0], [0.0, 0.0]),
    ("power:int_0", lambda x: jnp.sum(x ** 0), [0.0, 1.0], [0.0, 0.0]),
    ("float_power", lambda x: jnp.sum(jnp.float_power(x, 2.0)), [0.0, -1.0], [0.0, -2.0]),
    ("mod", lambda x: jnp.sum(jnp.mod(x, 1.5)), [1.5, -0.7, 3.0], [1.0, 1.0, 1.0]),
    ("fmod", lambda x: jnp.sum(jnp.fmod(x, 1.5)), [1.5, -0.7, 3.0], [1.0, 1.0, 1.0]),
    ("remainder:y", lambda y: jnp.sum(jnp.remainder(jnp.array([2.3, -1.7, 4.0]), y)),
     [1.1, 0.9, -1.5], [-2.0, 2.0, 3.0]),
    ("fmod:y", lambda y: jnp.sum(jnp.fmod(jnp.array([2.3, -1.7, 4.0]), y)), [1.1, 0.9, -1.5],
     [-2.0, 1.0, 2.0]),
    ("divmod", lambda x: jnp.sum(jnp.divmod(x, 1.5)[1]), [1.5, -0.7], [1.0, 1.0]),
    ("round", lambda x: jnp.sum(jnp.round(x) * x), [0.5, 1.4], [0.0, 1.0]),
    ("trunc", lambda x: jnp.sum(jnp.trunc(x) * x), [0.5, -1.4], [0.0, -1.0]),
    ("var:constant", jnp.var, [1.0, 1.0], [0.0, 0.0]),
    ("std:constant", jnp.std, [1.0, 1.0], [_NAN_, _NAN_]),
    ("prod:zeros", jnp.prod, [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]),
    ("prod:where", lambda x: jnp.prod(x, where=_BOOL3), [2.0, 5.0, 3.0], [3.0, 0.0, 2.0]),
    ("cumprod:zeros", lambda x: jnp.sum(jnp.cumprod(x)), [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]),
    ("mean:where", lambda x: jnp.mean(x, where=_BOOL3), [1.0, 5.0, 3.0], [0.5, 0.0, 0.5]),
    ("sum:initial", lambda x: jnp.sum(x, initial=3.0), [1.0, 2.0], [1.0, 1.0]),
    ("where", lambda x: jnp.sum(jnp.where(x > 0, x, 2.0 * x)), [0.0, 1.0], [2.0, 1.0]),
    ("nanmax", jnp.nanmax, [1.0, _NAN_, 1.0], [0.5, 0.0, 0.5]),
    ("nanmean", jnp.nanmean, [1.0, _NAN_, 3.0], [0.5, 0.0, 0.5]),
    ("nanprod", jnp.nanprod, [2.0, _NAN_, 3.0], [3.0, 0.0, 2.0]),
    ("norm:at_0", lambda x: jnp.sqrt(jnp.sum(x * x)), [0.0, 0.0], [_NAN_, _NAN_]),
    ("at.set:duplicates", lambda x: jnp.sum(jnp.zeros(2).at[np.array([0, 0])].set(x)
                                            * jnp.array([1.0, 2.0])), [1.0, 2.0], [0.0, 1.0]),
    ("at.max:tie", lambda x: jnp.sum(jnp.zeros(2).at[np.array([0, 0])].max(x)), [1.0, 1.0],
     [0.5, 0.5]),
    ("at.max:tie_with_base", lambda x: jnp.sum(x.at[np.array([0, 0])].max(
        jnp.array([1.0, 0.5]))), [1.0, 1.0], [0.5, 1.0]),
    ("take:out_of_bounds", lambda x: jnp.sum(jnp.take(x, np.array([0, 5]), fill_value=0.0)),
     [1.0, 2.0], [1.0, 0.0]),
    ("pad:reflect", lambda x: jnp.sum(jnp.pad(x, 2, mode="reflect") * jnp.arange(7.0)),
     [1.0, 2.0, 3.0], [8.0, 9.0, 4.0]),
]
_BOOL3 = np.array([True, False, True])


@pytest.mark.parametrize("fn,x,want", [pytest.param(*row[1:], id=row[0]) for row in KINKS])
def test_derivatives_at_kinks_like_jax(fn, x, want):
    g = fjit.grad(fn)(jnp.asarray(np.array(x, np.float32)))
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-6)


# =============================================================================================
# 3. API semantics
# =============================================================================================

def _close(got, want, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=atol)


def _f32(*values):
    return jnp.asarray(np.array(values, np.float32))


def test_grad_argnums():
    def f(x, y, z):
        return jnp.sum(jnp.sin(x) * y) + z * 2.0

    x, y, z = _f32(0.1, 0.2, 0.3), _f32(1.0, 2.0, 3.0), jnp.float32(0.5)
    _close(fjit.grad(f)(x, y, z), np.cos([0.1, 0.2, 0.3]) * [1.0, 2.0, 3.0])
    _close(fjit.grad(f, argnums=1)(x, y, z), np.sin([0.1, 0.2, 0.3]))
    _close(fjit.grad(f, argnums=-1)(x, y, z), 2.0)
    gx, gz = fjit.grad(f, argnums=(0, 2))(x, y, z)
    _close(gx, np.cos([0.1, 0.2, 0.3]) * [1.0, 2.0, 3.0])
    _close(gz, 2.0)
    single = fjit.grad(f, argnums=(1,))(x, y, z)
    assert isinstance(single, tuple) and len(single) == 1
    with pytest.raises(TypeError, match="argnums"):
        fjit.grad(f, argnums=3)(x, y, z)


def test_grad_kwargs_are_not_differentiated():
    g = fjit.grad(lambda x, scale=1.0: x * x * scale)(3.0, scale=2.0)
    _close(g, 12.0)


def test_grad_pytree_input():
    def loss(params, x):
        return jnp.sum((x @ params["w"] + params["b"]) ** 2)

    w, b, x = np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0.1, -0.2]), np.array([[1.0, 2.0]])
    g = fjit.grad(loss)({"w": jnp.asarray(w, jnp.float32), "b": jnp.asarray(b, jnp.float32)},
                        jnp.asarray(x, jnp.float32))
    r = x @ w + b
    assert set(g) == {"w", "b"}
    _close(g["b"], 2 * r[0])
    _close(g["w"], 2 * x.T @ r)


def test_grad_has_aux():
    def f(x):
        return jnp.sum(x ** 2), {"double": x * 2, "n": 5}

    x = _f32(1.0, 2.0, 3.0)
    g, aux = fjit.grad(f, has_aux=True)(x)
    _close(g, [2.0, 4.0, 6.0])
    assert aux["n"] == 5
    # the auxiliary data are plain arrays (JAX gives their values), not tracers
    assert isinstance(aux["double"], fjit.Array), type(aux["double"])
    _close(aux["double"], [2.0, 4.0, 6.0])


def test_value_and_grad():
    def f(x, y):
        return jnp.sum(jnp.exp(x) * y)

    x, y = _f32(0.0, 1.0), _f32(2.0, 3.0)
    value, g = fjit.value_and_grad(f)(x, y)
    _close(value, 2.0 + 3.0 * np.e)
    _close(g, [2.0, 3.0 * np.e])
    value, (_gx, gy) = fjit.value_and_grad(f, argnums=(0, 1))(x, y)
    _close(gy, [1.0, np.e])


def test_has_aux_under_jit_vmap_and_an_outer_grad():
    def f(x):
        return x ** 2, x * 3.0

    g, aux = fjit.jit(fjit.grad(f, has_aux=True))(2.0)
    _close(g, 4.0)
    _close(aux, 6.0)
    g, aux = fjit.vmap(fjit.grad(f, has_aux=True))(_f32(1.0, 2.0))
    _close(g, [2.0, 4.0])
    _close(aux, [3.0, 6.0])
    # the aux output is cut from the inner derivative only: an outer grad sees through it
    _close(fjit.grad(lambda y: fjit.grad(f, has_aux=True)(y)[1])(2.0), 3.0)
    _close(fjit.grad(lambda y: fjit.grad(f, has_aux=True)(y)[0]
                     * fjit.grad(f, has_aux=True)(y)[1])(2.0), 24.0)


def test_value_and_grad_has_aux():
    def f(x):
        return jnp.sum(x * 3.0), x + 1.0

    (value, aux), g = fjit.value_and_grad(f, has_aux=True)(_f32(1.0, 2.0))
    _close(value, 9.0)
    _close(g, [3.0, 3.0])
    assert isinstance(aux, fjit.Array), type(aux)
    _close(aux, [2.0, 3.0])


def test_grad_of_non_scalar_output_raises():
    with pytest.raises(TypeError, match=r"only defined for scalar-output functions.*\(3,\)"):
        fjit.grad(lambda x: x * 2)(jnp.ones(3))
    with pytest.raises(TypeError, match="scalar-output"):
        fjit.grad(lambda x: (x, x))(1.0)


def test_grad_of_integer_input_raises():
    with pytest.raises(TypeError, match="int32"):
        fjit.grad(lambda x: x * 2.0)(jnp.int32(3))
    with pytest.raises(TypeError, match="allow_int"):
        fjit.grad(lambda x, y: x * y, argnums=(0, 1))(2.0, jnp.int32(3))


def test_grad_allow_int_gives_float0():
    g = fjit.grad(lambda x: x * 2.0, allow_int=True)(jnp.int32(3))
    assert np.asarray(g).dtype == float0 and np.shape(g) == ()
    gx, gn = fjit.grad(lambda x, n: jnp.sum(x * n), argnums=(0, 1), allow_int=True)(
        _f32(1.0, 2.0), jnp.asarray(np.array([3, 4], np.int32)))
    _close(gx, [3.0, 4.0])
    assert np.asarray(gn).dtype == float0 and np.shape(gn) == (2,)


def test_grad_holomorphic_raises():
    with pytest.raises(TypeError):
        fjit.grad(lambda x: x * 2.0, holomorphic=True)(1.0)


def test_grad_of_integer_output_raises():
    with pytest.raises(TypeError):
        fjit.grad(lambda x: jnp.sum(x).astype(jnp.int32))(jnp.ones(3))


def test_jvp_pytrees():
    def f(p):
        return {"y": jnp.sin(p["a"]) * p["b"][0], "z": (p["a"] ** 2,)}

    primals = ({"a": _f32(0.5, 1.0), "b": [jnp.float32(2.0)]},)
    tangents = ({"a": _f32(1.0, -1.0), "b": [jnp.float32(0.5)]},)
    out, t = fjit.jvp(f, primals, tangents)
    a = np.array([0.5, 1.0])
    _close(out["y"], np.sin(a) * 2.0)
    _close(t["y"], np.cos(a) * [1.0, -1.0] * 2.0 + np.sin(a) * 0.5)
    _close(t["z"][0], 2 * a * [1.0, -1.0])
    # a list of primals works like a tuple
    out2, t2 = fjit.jvp(lambda x, y: x * y, [2.0, 3.0], [1.0, 0.0])
    _close(out2, 6.0)
    _close(t2, 3.0)


@pytest.mark.parametrize("tangent", [jnp.ones(2), jnp.ones(3, jnp.int32), jnp.ones((3, 1))],
                         ids=["shape", "dtype", "rank"])
def test_jvp_mismatched_tangent_raises(tangent):
    with pytest.raises((TypeError, ValueError), match="tangent"):
        fjit.jvp(jnp.sin, (jnp.ones(3),), (tangent,))


def test_jvp_structure_errors():
    with pytest.raises(TypeError):
        fjit.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError):
        fjit.jvp(lambda p: p["a"], ({"a": 1.0},), ({"b": 1.0},))
    with pytest.raises(TypeError):
        fjit.jvp(jnp.sin, jnp.ones(3), jnp.ones(3))  # not tuples


def test_jvp_with_integer_input_accepts_any_tangent():
    x, n = _f32(1.0, 2.0), jnp.int32(3)
    for tn in (np.zeros((), float0), jnp.int32(7), 1.0, jnp.ones(5)):
        out, t = fjit.jvp(lambda x, n: x * n, (x, n), (_f32(1.0, 1.0), tn))
        _close(out, [3.0, 6.0])
        _close(t, [3.0, 3.0])


def test_jvp_integer_and_bool_outputs_have_float0_tangents():
    _out, t = fjit.jvp(lambda x: (x > 0, x.astype(jnp.int32), x * 2), (_f32(1.0, -2.0),),
                      (_f32(1.0, 1.0),))
    assert np.asarray(t[0]).dtype == float0 and np.shape(t[0]) == (2,)
    assert np.asarray(t[1]).dtype == float0 and np.shape(t[1]) == (2,)
    _close(t[2], [2.0, 2.0])


def test_jvp_of_output_independent_of_input_is_zeros():
    _out, t = fjit.jvp(lambda x: (jnp.ones(3), x), (jnp.float32(1.0),), (jnp.float32(2.0),))
    assert t[0].dtype == jnp.float32 and t[0].shape == (3,)
    _close(t[0], np.zeros(3))
    _close(t[1], 2.0)


def test_jvp_has_aux():
    _out, t, aux = fjit.jvp(lambda x: (jnp.sin(x), x * 2), (jnp.float32(0.5),),
                           (jnp.float32(1.0),), has_aux=True)
    _close(t, np.cos(0.5))
    assert isinstance(aux, fjit.Array), type(aux)
    _close(aux, 1.0)


def test_linearize():
    def f(x, y):
        return jnp.sin(x) * y, jnp.exp(x)

    x, y = _f32(0.2, 0.4, 0.6), _f32(1.0, -1.0, 2.0)
    out, f_jvp = fjit.linearize(f, x, y)
    _close(out[0], np.sin(x) * y)
    for k, (tx, ty) in enumerate([(_f32(1.0, 0.0, 0.0), _f32(0.0, 0.0, 0.0)),
                                  (_f32(0.5, -1.0, 2.0), _f32(1.0, 1.0, -3.0)),
                                  (_f32(0.0, 0.0, 0.0), _f32(0.0, 2.0, 0.0))]):
        lin = f_jvp(tx, ty)
        _, want = fjit.jvp(f, (x, y), (tx, ty))
        for a, b in zip(lin, want):
            _close(a, b)
    # the linear map is linear
    a, b = f_jvp(_f32(1.0, 2.0, 3.0), _f32(1.0, 1.0, 1.0)), f_jvp(_f32(2.0, 4.0, 6.0),
                                                                  _f32(2.0, 2.0, 2.0))
    _close(b[0], 2 * np.asarray(a[0]))


def test_linearize_does_not_rerun_the_primal():
    calls = []

    def f(x):
        calls.append(1)
        return jnp.sin(x) * 2.0

    _out, f_jvp = fjit.linearize(f, jnp.float32(0.3))
    n = len(calls)
    for t in (1.0, 2.0, -1.0):
        _close(f_jvp(jnp.float32(t)), 2 * np.cos(0.3) * t)
    assert len(calls) == n


def test_linearize_has_aux_and_integer_output():
    _out, f_jvp, aux = fjit.linearize(lambda x: ((x * 3.0, x.astype(jnp.int32)), x + 1.0),
                                     jnp.float32(2.0), has_aux=True)
    t = f_jvp(jnp.float32(1.0))
    _close(t[0], 3.0)
    assert np.asarray(t[1]).dtype == float0
    assert isinstance(aux, fjit.Array), type(aux)
    _close(aux, 3.0)


def test_vjp_pytree_outputs():
    def f(x, y):
        return {"s": jnp.sin(x) * y, "t": (x * 2.0, jnp.sum(y))}

    x, y = _f32(0.1, 0.2), _f32(3.0, 4.0)
    out, pullback = fjit.vjp(f, x, y)
    _close(out["t"][1], 7.0)
    ct = {"s": _f32(1.0, 2.0), "t": (_f32(0.5, 0.5), jnp.float32(3.0))}
    gx, gy = pullback(ct)
    _close(gx, np.cos([0.1, 0.2]) * [3.0, 4.0] * [1.0, 2.0] + 1.0)
    _close(gy, np.sin([0.1, 0.2]) * [1.0, 2.0] + 3.0)
    # the pullback can be called again with another cotangent
    gx2, _ = pullback({"s": _f32(0.0, 0.0), "t": (_f32(1.0, 0.0), jnp.float32(0.0))})
    _close(gx2, [2.0, 0.0])
    with pytest.raises(TypeError):
        pullback({"s": _f32(1.0, 2.0)})
    with pytest.raises((TypeError, ValueError)):
        pullback({"s": _f32(1.0, 2.0, 3.0), "t": (_f32(0.5, 0.5), jnp.float32(3.0))})


def test_vjp_has_aux():
    _out, pullback, aux = fjit.vjp(lambda x: (x * x, {"a": jnp.sum(x), "b": "label"}),
                                  _f32(1.0, 2.0), has_aux=True)
    (g,) = pullback(_f32(1.0, 1.0))
    _close(g, [2.0, 4.0])
    assert aux["b"] == "label"
    assert isinstance(aux["a"], fjit.Array), type(aux["a"])
    _close(aux["a"], 3.0)


def test_vjp_integer_inputs_and_outputs():
    _out, pullback = fjit.vjp(lambda x, n: (x * n, n + 1), _f32(1.0, 2.0), jnp.int32(2))
    gx, gn = pullback((_f32(1.0, 1.0), np.zeros((), float0)))
    _close(gx, [2.0, 2.0])
    assert np.asarray(gn).dtype == float0


def _fn_and_jacobian():
    """f: R^3 -> R^2 (non-square) with its Jacobian and Hessians of a scalar function."""
    def f(x):
        return jnp.stack([x[0] * x[1] * x[2], jnp.sin(x[0]) + x[2] ** 2])

    def jac(x):
        return np.array([[x[1] * x[2], x[0] * x[2], x[0] * x[1]],
                         [np.cos(x[0]), 0.0, 2 * x[2]]])
    return f, jac


@pytest.mark.parametrize("jacobian", [fjit.jacfwd, fjit.jacrev, fjit.jacobian],
                         ids=["jacfwd", "jacrev", "jacobian"])
def test_jacobian_non_square(jacobian):
    f, jac = _fn_and_jacobian()
    x = np.array([0.5, -1.0, 2.0], np.float32)
    J = jacobian(f)(jnp.asarray(x))
    assert J.shape == (2, 3) and J.dtype == jnp.float32
    _close(J, jac(x.astype(np.float64)))


def test_jacobian_of_matrix_function():
    A = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]], np.float32)
    x = np.array([[0.5, 1.0], [-1.0, 2.0]], np.float32)
    f = lambda x: jnp.tanh(jnp.asarray(A) @ x)
    y = np.tanh(A @ x)
    want = np.einsum("ik,jl->ijkl", A, np.eye(2)) * (1 - y ** 2)[:, :, None, None]
    for jacobian in (fjit.jacfwd, fjit.jacrev):
        J = jacobian(f)(jnp.asarray(x))
        assert J.shape == (3, 2, 2, 2)
        _close(J, want, rtol=1e-5, atol=1e-5)


def test_jacobian_argnums_tuple():
    def f(x, y):
        return x[:2] * y, jnp.sum(x) * y

    x, y = _f32(1.0, 2.0, 3.0), jnp.float32(2.0)
    for jacobian in (fjit.jacfwd, fjit.jacrev):
        (jx, jy), (kx, ky) = jacobian(f, argnums=(0, 1))(x, y)
        _close(jx, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        _close(jy, [1.0, 2.0])
        _close(kx, [2.0, 2.0, 2.0])
        _close(ky, 6.0)
        assert jy.shape == (2,) and ky.shape == ()
        jy_only = jacobian(f, argnums=1)(x, y)
        _close(jy_only[0], [1.0, 2.0])


def test_jacobian_dict_input_and_output():
    def f(p):
        return {"a": jnp.sin(p["w"]) * p["b"], "c": jnp.sum(p["w"] ** 2)}

    w = np.array([1.0, 2.0, 3.0])
    p = {"w": jnp.asarray(w, jnp.float32), "b": jnp.float32(2.0)}
    for jacobian in (fjit.jacfwd, fjit.jacrev):
        J = jacobian(f)(p)
        assert set(J) == {"a", "c"} and set(J["a"]) == {"w", "b"}
        _close(J["a"]["w"], np.diag(np.cos(w) * 2.0))
        _close(J["a"]["b"], np.sin(w))
        _close(J["c"]["w"], 2 * w)
        _close(J["c"]["b"], 0.0)
        assert J["a"]["w"].shape == (3, 3) and J["a"]["b"].shape == (3,)
        assert J["c"]["w"].shape == (3,) and J["c"]["b"].shape == ()


def test_jacfwd_equals_jacrev():
    def f(x, y):
        return jnp.tanh(x @ y) * jnp.sum(x ** 2, axis=1, keepdims=True)

    x, y = jnp.asarray(rnd((2, 3)), jnp.float32), jnp.asarray(rnd((3, 2), seed=1), jnp.float32)
    a = fjit.jacfwd(f, argnums=(0, 1))(x, y)
    b = fjit.jacrev(f, argnums=(0, 1))(x, y)
    for u, v in zip(a, b):
        assert u.shape == v.shape
        _close(u, v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jacobian", [fjit.jacfwd, fjit.jacrev], ids=["jacfwd", "jacrev"])
def test_jacobian_has_aux(jacobian):
    def f(x):
        return jnp.sin(x), x * 2

    J, aux = jacobian(f, has_aux=True)(_f32(0.0, 1.0))
    _close(J, np.diag(np.cos([0.0, 1.0])))
    assert isinstance(aux, fjit.Array), type(aux)
    _close(aux, [0.0, 2.0])


def test_hessian_has_aux():
    H, aux = fjit.hessian(lambda x: (jnp.sum(jnp.sin(x)), x * 2), has_aux=True)(_f32(0.0, 1.0))
    _close(H, np.diag(-np.sin([0.0, 1.0])))
    _close(aux, [0.0, 2.0])


def test_hessian():
    def f(x):
        return x[0] ** 2 * x[1] + jnp.sin(x[1]) * x[2] + x[2] ** 3

    x = np.array([1.0, 2.0, -0.5])
    H = fjit.hessian(f)(jnp.asarray(x, jnp.float32))
    want = np.array([[2 * x[1], 2 * x[0], 0.0],
                     [2 * x[0], -np.sin(x[1]) * x[2], np.cos(x[1])],
                     [0.0, np.cos(x[1]), 6 * x[2]]])
    assert H.shape == (3, 3)
    _close(H, want, rtol=1e-5, atol=1e-5)


def test_hessian_argnums_and_pytree():
    def f(x, p):
        return jnp.sum(x ** 2 * p["y"]) + p["y"][0] ** 3

    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    H = fjit.hessian(f, argnums=(0, 1))(jnp.asarray(x, jnp.float32),
                                        {"y": jnp.asarray(y, jnp.float32)})
    # JAX's layout: H[i][j] is d/d(arg j) of d/d(arg i), output trees outside input trees
    (hxx, hxp), hp = H
    hpx, hpp = hp["y"]
    _close(hxx, np.diag(2 * y))
    _close(hxp["y"], np.diag(2 * x))
    _close(hpx, np.diag(2 * x))
    _close(hpp["y"], [[6 * y[0], 0.0], [0.0, 0.0]])


def test_hessian_matrix_input_shape():
    H = fjit.hessian(lambda x: jnp.sum(x ** 3))(jnp.ones((2, 2)))
    assert H.shape == (2, 2, 2, 2)
    _close(H.reshape(4, 4), np.diag(np.full(4, 6.0)))


def test_jacobian_integer_input_raises():
    for jacobian in (fjit.jacfwd, fjit.jacrev):
        with pytest.raises(TypeError):
            jacobian(lambda x: x * 2)(jnp.asarray(np.array([1, 2], np.int32)))


def test_higher_order_scalar_derivatives():
    f = jnp.sin
    d = f
    values = []
    for _ in range(4):
        d = fjit.grad(d)
        values.append(float(d(0.7)))
    _close(values, [np.cos(0.7), -np.sin(0.7), -np.cos(0.7), np.sin(0.7)])
    _close(fjit.grad(fjit.grad(lambda x: x ** 4))(2.0), 48.0)
    _close(fjit.jacfwd(fjit.jacrev(lambda x: x ** 3))(2.0), 12.0)


def test_grad_of_jit_and_jit_of_grad():
    f = lambda x: jnp.sum(jnp.tanh(x) ** 2)
    x = _f32(0.1, -0.5, 2.0)
    want = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
    _close(fjit.grad(fjit.jit(f))(x), want)
    _close(fjit.jit(fjit.grad(f))(x), want)
    _close(fjit.jit(fjit.grad(fjit.jit(f)))(x), want)


def test_vmap_of_grad_and_grad_of_vmap():
    f = lambda x, w: jnp.sum(jnp.sin(x * w))
    xs = jnp.asarray(rnd((4, 3)), jnp.float32)
    w = _f32(1.0, 2.0, 3.0)
    per_example = fjit.vmap(fjit.grad(f, argnums=1), in_axes=(0, None))(xs, w)
    want = np.cos(np.asarray(xs) * np.asarray(w)) * np.asarray(xs)
    _close(per_example, want, rtol=1e-5, atol=1e-5)
    total = fjit.grad(lambda w: jnp.sum(fjit.vmap(f, in_axes=(0, None))(xs, w)))(w)
    _close(total, want.sum(0), rtol=1e-5, atol=1e-5)


def test_grad_in_float64(x64):
    g = fjit.grad(lambda x: jnp.sum(jnp.exp(x)))(jnp.asarray(np.array([0.0, 1.0])))
    assert g.dtype == jnp.float64
    _close(g, [1.0, np.e], rtol=1e-14)


def test_grad_of_float16_keeps_dtype():
    g = fjit.grad(lambda x: jnp.sum(x * x))(jnp.asarray(np.array([1.0, 2.0], np.float16)))
    assert g.dtype == jnp.float16
    _close(g, [2.0, 4.0])


def test_gradients_keep_each_input_dtype(x64):
    gx, gy = fjit.grad(lambda x, y: jnp.sum(x * y), argnums=(0, 1))(
        jnp.ones(2, jnp.float16), jnp.ones(2, jnp.float32))
    assert gx.dtype == jnp.float16 and gy.dtype == jnp.float32
    g = fjit.grad(lambda x: jnp.sum(x.astype(jnp.float64) ** 2))(jnp.ones(2, jnp.float32))
    assert g.dtype == jnp.float32
    _close(g, [2.0, 2.0])


def test_grad_weak_type_follows_the_input_like_jax():
    """JAX: the gradient has its input's abstract value, weak type included."""
    g = fjit.grad(lambda x: x * 2.0)(3.0)
    _close(g, 2.0)
    assert g.dtype == jnp.float32
    assert g.weak_type is True
    assert fjit.grad(lambda x: x * 2.0)(jnp.float32(3.0)).weak_type is False


# =============================================================================================
# 4. Python control flow on concrete values
# =============================================================================================

def _absolute(x):
    return x if x > 0 else -x


def _piecewise(x):
    if x < 1.0:
        return x ** 2
    for _ in range(int(x)):  # int() of the primal
        x = x * 2.0
    return x


def test_python_control_flow_under_grad():
    _close(fjit.grad(_absolute)(2.0), 1.0)
    _close(fjit.grad(_absolute)(-2.0), -1.0)
    _close(fjit.grad(_piecewise)(0.5), 1.0)
    _close(fjit.grad(_piecewise)(2.5), 4.0)
    _close(fjit.grad(fjit.grad(_absolute))(3.0), 0.0)
    _close(fjit.jvp(_absolute, (-3.0,), (1.0,))[1], -1.0)
    _close(fjit.jacfwd(_absolute)(-3.0), -1.0)
    _close(fjit.jacrev(_absolute)(-3.0), -1.0)
    _close(fjit.grad(lambda x: x.item() * x)(3.0), 3.0)  # .item() and int() read the primal
    _close(fjit.grad(lambda x: int(x) * x)(3.0), 3.0)
    _close(fjit.grad(lambda x: [1.0, 2.0, 3.0][x.astype(jnp.int32)] * x)(1.0), 2.0)


def test_float_of_a_value_being_differentiated_raises_like_jax():
    """JAX's Tracer.__float__ always raises ConcretizationTypeError, also under grad, where
    bool() and int() read the primal: float() would silently drop the derivative."""
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.grad(lambda x: float(x) * x)(3.0)


def test_python_control_flow_under_jit_of_grad_raises():
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.jit(fjit.grad(_absolute))(2.0)
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.jit(fjit.grad(_piecewise))(2.5)
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.grad(fjit.jit(_absolute))(2.0)
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.make_program(fjit.grad(_absolute))(2.0)


def test_leaked_tangent_tracer_is_detected():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0

    fjit.grad(f)(1.0)
    with pytest.raises(fjit.UnexpectedTracerError):
        jnp.sin(leaked[0])


# =============================================================================================
# 5. Symbolic zeros
# =============================================================================================

def _eqns(program):
    """Every equation of a Program, those of sub-Programs included."""
    for eqn in program.eqns:
        yield eqn
        for value in eqn.params.values():
            if isinstance(value, fjit.Program):
                yield from _eqns(value)


def _names(program):
    return [e.primitive.name for e in _eqns(program)]


def _builds_zeros(eqn):
    """An equation that makes an array of zeros out of nothing (a materialised zero)."""
    from fjit.core import Literal
    if not eqn.invars or not all(isinstance(a, Literal) for a in eqn.invars):
        return False
    return all(np.all(np.asarray(a.value) == 0) for a in eqn.invars)


def test_grad_with_respect_to_x_only_has_no_work_for_y():
    def f(x, y):
        return jnp.sum(jnp.sin(x) * y) + jnp.sum(jnp.exp(y) * jnp.cos(y))

    x, y = jnp.ones(3), jnp.ones(3) * 2
    program = fjit.make_program(fjit.grad(f))(x, y)
    names = _names(program)
    assert "exp" not in names and "cos" in names, program
    assert not [e for e in _eqns(program) if _builds_zeros(e)], program
    _close(fjit.grad(f)(x, y), np.cos(1.0) * 2 * np.ones(3))


def test_jvp_with_zero_tangent_for_y_materialises_nothing():
    def f(x, y):
        return jnp.sin(x) * y + jnp.exp(y)

    def only_x(x, y):
        return fjit.jvp(lambda a: f(a, y), (x,), (jnp.ones_like(x),))[1]

    program = fjit.make_program(only_x)(jnp.ones(3), jnp.ones(3))
    assert "exp" not in _names(program), program
    assert not [e for e in _eqns(program) if _builds_zeros(e)], program
    # the same through jit: the jvp Program has no tangent input for y
    program = fjit.make_program(lambda x, y: fjit.jvp(lambda a: fjit.jit(f)(a, y), (x,),
                                                      (jnp.ones_like(x),))[1])(jnp.ones(3),
                                                                              jnp.ones(3))
    assert not [e for e in _eqns(program) if _builds_zeros(e)], program
    inner = [e for e in program.eqns if e.primitive.name == "jit"]
    assert len(inner) == 1 and len(inner[0].invars) == 3, program  # x, y and x's tangent


def test_grad_through_jit_for_x_only():
    def f(x, y):
        return jnp.sum(jnp.sin(x) * y) + jnp.sum(jnp.exp(y))

    program = fjit.make_program(fjit.grad(fjit.jit(f)))(jnp.ones(3), jnp.ones(3))
    assert not [e for e in _eqns(program) if _builds_zeros(e)], program
    _close(fjit.grad(fjit.jit(f))(jnp.ones(3), jnp.ones(3)), np.cos(1.0) * np.ones(3))


def test_linear_program_of_a_constant_output_is_empty():
    _out, f_jvp = fjit.linearize(lambda x, y: (x * 2.0, jnp.exp(y)), jnp.float32(1.0),
                                jnp.float32(2.0))
    t = f_jvp(jnp.float32(1.0), jnp.float32(0.0))
    _close(t[0], 2.0)
    _close(t[1], 0.0)


def test_stop_gradient():
    stop = fjit.lax.stop_gradient
    x = _f32(1.0, 2.0)
    _close(fjit.grad(lambda x: jnp.sum(stop(x) * x))(x), [1.0, 2.0])
    _close(fjit.grad(lambda x: jnp.sum(stop(x ** 2)))(x), [0.0, 0.0])
    _close(fjit.jvp(stop, (x,), (x,))[1], [0.0, 0.0])
    _close(fjit.grad(lambda x: jnp.sum(fjit.jit(stop)(x) * x))(x), [1.0, 2.0])
    _close(fjit.grad(fjit.grad(lambda x: stop(x) * x ** 2))(3.0), 2 * 3.0)
    # pytrees: floats are stopped, integers pass through
    tree = stop({"a": x, "n": jnp.int32(3)})
    assert tree["n"].dtype == jnp.int32
    g = fjit.grad(lambda x: jnp.sum(stop({"a": x})["a"] * 2.0))(x)
    _close(g, [0.0, 0.0])
    assert g.dtype == jnp.float32 and g.shape == (2,)


def test_stop_gradient_value_is_unchanged():
    x = _f32(1.5, -2.0)
    _close(fjit.lax.stop_gradient(x), x)
    _close(fjit.jit(fjit.lax.stop_gradient)(x), x)


# =============================================================================================
# 6. custom_jvp and custom_vjp
# =============================================================================================

def _transforms(f, x):
    """grad of sum(f) every way: grad, jit(grad), grad(jit), vmap(grad), grad(vmap)."""
    g = fjit.grad(lambda x: jnp.sum(f(x)))
    per_row = fjit.grad(lambda r: jnp.sum(f(r)))
    return {
        "grad": g(x),
        "jit(grad)": fjit.jit(g)(x),
        "grad(jit)": fjit.grad(lambda x: jnp.sum(fjit.jit(f)(x)))(x),
        "vmap(grad)": fjit.vmap(per_row)(x),
        "grad(vmap)": fjit.grad(lambda x: jnp.sum(fjit.vmap(f)(x)))(x),
    }


def _check_all_ways(f, x, want, want_batched=None):
    """`want`: the gradient of sum(f); `want_batched`: that of sum(vmap(f)) where f mixes
    the elements of a row (vmap then maps f over the elements of x)."""
    for how, g in _transforms(f, x).items():
        expected = want_batched if want_batched is not None and "vmap" in how else want
        np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-5, atol=1e-6,
                                   err_msg=how)


@fjit.custom_jvp
def _softplus(x):
    return jnp.log1p(jnp.exp(x))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    # deliberately scaled by 2 so the rule, not the function, is seen to be used
    return _softplus(x), 2.0 * t * fjit.lax.logistic(x)


def test_custom_jvp_used_by_every_transformation():
    x = jnp.asarray(rnd((2, 3)), jnp.float32)
    want = 2.0 / (1 + np.exp(-np.asarray(x, np.float64)))
    _check_all_ways(_softplus, x, want)
    out, t = fjit.jvp(_softplus, (x,), (jnp.ones_like(x),))
    _close(out, np.log1p(np.exp(np.asarray(x, np.float64))))
    _close(t, want)
    _close(fjit.vmap(_softplus)(x), out)
    _close(fjit.jit(_softplus)(x), out)


def test_custom_jvp_second_order():
    @fjit.custom_jvp
    def f(x):
        return jnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), jnp.cos(p[0]) * t[0]))
    _close(fjit.grad(fjit.grad(f))(0.5), -np.sin(0.5))
    check_grads(f, [rnd((3,))], order=2)


def test_custom_jvp_defjvps():
    @fjit.custom_jvp
    def f(x, y):
        return x * jnp.sin(y)

    f.defjvps(lambda tx, ans, x, y: tx * jnp.sin(y) * 10.0,
              lambda ty, ans, x, y: ty * x * jnp.cos(y))
    x, y = _f32(1.0, 2.0), _f32(0.3, 0.4)
    gx, gy = fjit.grad(lambda x, y: jnp.sum(f(x, y)), argnums=(0, 1))(x, y)
    _close(gx, 10 * np.sin([0.3, 0.4]))
    _close(gy, np.array([1.0, 2.0]) * np.cos([0.3, 0.4]))

    @fjit.custom_jvp
    def h(x, y):
        return x * y

    h.defjvps(None, lambda ty, ans, x, y: ty * x)  # no dependence on x
    gx, gy = fjit.grad(lambda x, y: jnp.sum(h(x, y)), argnums=(0, 1))(x, y)
    _close(gx, [0.0, 0.0])
    _close(gy, [1.0, 2.0])
    _check_all_ways(lambda x: h(x, x), x, np.asarray(x))


def test_custom_jvp_nondiff_argnums():
    def scaled(fn, n, x):
        return fn(x) * n

    f = fjit.custom_jvp(scaled, nondiff_argnums=(0, 1))

    @f.defjvp
    def f_jvp(fn, n, primals, tangents):
        (x,), (t,) = primals, tangents
        return f(fn, n, x), t * n * 100.0

    x = _f32(0.5, 1.5)
    _close(f(jnp.sin, 3, x), 3 * np.sin([0.5, 1.5]))
    _check_all_ways(lambda x: f(jnp.sin, 3, x), x, np.full(2, 300.0))
    with pytest.raises(TypeError, match="nondiff"):
        fjit.jit(lambda x, n: f(jnp.sin, n, x))(x, jnp.float32(2.0))


def test_custom_jvp_kwargs():
    @fjit.custom_jvp
    def f(x, y=2.0):
        return x * y

    f.defjvp(lambda p, t: (f(*p), t[0] * p[1] * 5.0 + t[1]))
    x = _f32(1.0, 2.0)
    _close(f(x, y=3.0), [3.0, 6.0])
    _check_all_ways(lambda x: f(x, y=3.0), x, [15.0, 15.0])
    _close(fjit.grad(lambda y: jnp.sum(f(x, y=y)))(jnp.float32(3.0)), 2.0)
    _close(fjit.grad(lambda y: jnp.sum(f(y=y, x=x)))(jnp.float32(3.0)), 2.0)


def test_custom_jvp_default_arguments_reach_the_rule():
    """JAX binds the signature with its defaults: the rule sees every argument."""
    @fjit.custom_jvp
    def f(x, y=2.0):
        return x * y

    f.defjvp(lambda p, t: (f(*p), t[0] * p[1] * 5.0 + t[1]))
    x = _f32(1.0, 2.0)
    _close(f(x), [2.0, 4.0])
    _close(fjit.grad(lambda x: jnp.sum(f(x)))(x), [10.0, 10.0])


def test_custom_jvp_pytrees():
    @fjit.custom_jvp
    def f(p):
        return {"prod": p["a"] * p["b"], "pair": (jnp.sin(p["a"]), p["b"])}

    @f.defjvp
    def f_jvp(primals, tangents):
        (p,), (t,) = primals, tangents
        out = f(p)
        return out, {"prod": t["a"] * p["b"] + p["a"] * t["b"],
                     "pair": (jnp.cos(p["a"]) * t["a"] * 7.0, t["b"])}

    p = {"a": _f32(0.5, 1.0), "b": _f32(2.0, 3.0)}
    g = fjit.grad(lambda p: jnp.sum(f(p)["pair"][0]) + jnp.sum(f(p)["prod"]))(p)
    _close(g["a"], 7 * np.cos([0.5, 1.0]) + [2.0, 3.0])
    _close(g["b"], [0.5, 1.0])
    _, t = fjit.jvp(f, (p,), ({"a": _f32(1.0, 1.0), "b": _f32(0.0, 0.0)},))
    _close(t["pair"][0], 7 * np.cos([0.5, 1.0]))
    _close(t["pair"][1], [0.0, 0.0])
    rows = fjit.vmap(fjit.grad(lambda p: f(p)["prod"]))({"a": _f32(0.5, 1.0),
                                                         "b": _f32(2.0, 3.0)})
    _close(rows["a"], [2.0, 3.0])
    # x -> f({a: x, b: 2x}): pair[0] + prod has derivative 7 cos(x) + 4x
    x = _f32(0.5, 1.0)
    _check_all_ways(lambda x: f({"a": x, "b": 2 * x})["pair"][0]
                    + f({"a": x, "b": 2 * x})["prod"], x,
                    7 * np.cos([0.5, 1.0]) + 4 * np.array([0.5, 1.0]))


def test_custom_jvp_integer_argument():
    @fjit.custom_jvp
    def f(x, n):
        return x ** n

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, n), (tx, tn) = primals, tangents
        assert np.asarray(tn).dtype == float0
        return f(x, n), tx * n * x ** (n - 1)

    _close(fjit.grad(f)(2.0, 3), 12.0)
    _close(fjit.jit(fjit.grad(f))(2.0, jnp.int32(3)), 12.0)


def test_custom_jvp_closure_over_differentiated_value_raises():
    def outer(y):
        @fjit.custom_jvp
        def f(x):
            return x * y

        f.defjvp(lambda p, t: (f(p[0]), t[0] * y))
        return f(2.0)

    with pytest.raises(TypeError):
        fjit.grad(outer)(3.0)


def test_custom_jvp_undefined_rule_raises():
    @fjit.custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(AttributeError, match="no_rule"):
        no_rule(1.0)


def test_custom_jvp_wrong_output_structure_raises():
    @fjit.custom_jvp
    def bad_pair(x):
        return x * 2

    bad_pair.defjvp(lambda p, t: (bad_pair(p[0]), (t[0], t[0])))
    with pytest.raises(TypeError, match="bad_pair"):
        fjit.grad(bad_pair)(1.0)

    @fjit.custom_jvp
    def bad_shape(x):
        return x * 2

    bad_shape.defjvp(lambda p, t: (bad_shape(p[0]), jnp.ones(3)))
    with pytest.raises(TypeError, match="bad_shape"):
        fjit.jvp(bad_shape, (jnp.float32(1.0),), (jnp.float32(1.0),))

    @fjit.custom_jvp
    def not_a_pair(x):
        return x * 2

    not_a_pair.defjvp(lambda p, t: t[0])
    with pytest.raises(TypeError, match="not_a_pair"):
        fjit.grad(not_a_pair)(1.0)


@fjit.custom_vjp
def _clip_gradient(x, lo, hi):
    return x


def _clip_gradient_fwd(x, lo, hi):
    return x, {"bounds": (lo, hi)}  # pytree residuals


def _clip_gradient_bwd(res, g):
    lo, hi = res["bounds"]
    return jnp.clip(g, lo, hi) * 10.0, None, None  # None: zero cotangent for lo and hi


_clip_gradient.defvjp(_clip_gradient_fwd, _clip_gradient_bwd)


def test_custom_vjp_used_by_every_transformation():
    x = jnp.asarray(rnd((2, 3)), jnp.float32)
    f = lambda x: _clip_gradient(x, -0.5, 0.5) * x
    # d/dx sum(c(x) * x) = bwd(x) + c(x) with bwd(g=x) = 10 * clip(x)
    want = 10 * np.clip(np.asarray(x), -0.5, 0.5) + np.asarray(x)
    _check_all_ways(f, x, want)
    gx, glo, ghi = fjit.grad(lambda x, lo, hi: jnp.sum(_clip_gradient(x, lo, hi)),
                             argnums=(0, 1, 2))(x, jnp.float32(-0.5), jnp.float32(0.5))
    _close(gx, np.full((2, 3), 5.0))
    _close(glo, 0.0)
    _close(ghi, 0.0)
    assert glo.dtype == jnp.float32 and glo.shape == ()


def test_custom_vjp_value_and_eval():
    x = _f32(0.3, 2.0)
    _close(_clip_gradient(x, -1.0, 1.0), x)
    _close(fjit.jit(_clip_gradient)(x, -1.0, 1.0), x)
    _close(fjit.vmap(_clip_gradient, in_axes=(0, None, None))(x, -1.0, 1.0), x)


def test_custom_vjp_residuals_from_fwd_are_used():
    calls = []

    @fjit.custom_vjp
    def f(x, y):
        return jnp.sin(x) * y

    def fwd(x, y):
        calls.append("fwd")
        return f(x, y), (jnp.cos(x), jnp.sin(x), y)

    def bwd(res, g):
        calls.append("bwd")
        cos_x, sin_x, y = res
        return g * cos_x * y, g * sin_x

    f.defvjp(fwd, bwd)
    x, y = _f32(0.1, 0.2), _f32(2.0, 3.0)
    gx, gy = fjit.grad(lambda x, y: jnp.sum(f(x, y)), argnums=(0, 1))(x, y)
    _close(gx, np.cos([0.1, 0.2]) * [2.0, 3.0])
    _close(gy, np.sin([0.1, 0.2]))
    assert calls == ["fwd", "bwd"]
    _check_all_ways(lambda x: f(x, x), x, np.cos(np.asarray(x)) * np.asarray(x) +
                    np.sin(np.asarray(x)))


def test_custom_vjp_nondiff_argnums():
    def apply(fn, x):
        return fn(x)

    f = fjit.custom_vjp(apply, nondiff_argnums=(0,))
    f.defvjp(lambda fn, x: (fn(x), x), lambda fn, x, g: (g * fn(x) * 2.0,))
    x = _f32(0.5, 1.0)
    _close(f(jnp.exp, x), np.exp([0.5, 1.0]))
    _check_all_ways(lambda x: f(jnp.exp, x), x, 2 * np.exp([0.5, 1.0]))


def test_custom_vjp_integer_argument():
    @fjit.custom_vjp
    def f(x, n):
        return x * n

    f.defvjp(lambda x, n: (f(x, n), n), lambda n, g: (g * n * 3.0, None))
    x = _f32(1.0, 2.0)
    _close(f(x, 2), [2.0, 4.0])
    _close(fjit.grad(lambda x: jnp.sum(f(x, 2)))(x), [6.0, 6.0])
    _close(fjit.grad(lambda x: jnp.sum(f(x, jnp.int32(2))))(x), [6.0, 6.0])
    _close(fjit.jit(fjit.grad(lambda x, n: jnp.sum(f(x, n))))(x, jnp.int32(2)), [6.0, 6.0])
    g = fjit.grad(lambda x, n: jnp.sum(f(x, n)), argnums=(0, 1), allow_int=True)(
        x, jnp.int32(2))
    assert np.asarray(g[1]).dtype == float0
    _close(fjit.vmap(fjit.grad(lambda x, n: f(x, n)), in_axes=(0, None))(x, jnp.int32(2)),
           [6.0, 6.0])
    _check_all_ways(lambda x: f(x, jnp.int32(2)), x, [6.0, 6.0])
    # a batched integer argument
    ns = jnp.asarray(np.array([2, 3], np.int32))
    _close(fjit.vmap(fjit.grad(lambda x, n: f(x, n)))(x, ns), [6.0, 9.0])


@fjit.custom_vjp
def _scaled_tree(x, scale=1.0):
    return {"a": x * scale, "b": (jnp.sum(x),)}


def _scaled_tree_fwd(x, scale=1.0):
    return _scaled_tree(x, scale), scale


def _scaled_tree_bwd(scale, ct):
    return ct["a"] * scale + ct["b"][0] * 100.0, None


_scaled_tree.defvjp(_scaled_tree_fwd, _scaled_tree_bwd)


def test_custom_vjp_kwargs_and_pytree_output():
    x = _f32(1.0, 2.0)
    out = _scaled_tree(x, scale=3.0)
    _close(out["a"], [3.0, 6.0])
    _close(out["b"][0], 3.0)

    def f(x):
        out = _scaled_tree(x, scale=3.0)
        return out["a"] + out["b"][0]

    # d/dx sum(a + b) with a 2-vector: ct a = 1, ct b = 2 -> 3 + 200; per element 3 + 100
    _check_all_ways(f, x, [203.0, 203.0], want_batched=[103.0, 103.0])


def test_custom_vjp_default_arguments_reach_the_rules():
    """JAX binds the signature with its defaults: bwd gives a cotangent for `scale` too."""
    x = _f32(1.0, 2.0)
    _close(fjit.grad(lambda x: _scaled_tree(x)["b"][0])(x), [100.0, 100.0])


def test_jvp_of_custom_vjp_raises():
    f = lambda x: _clip_gradient(x, -1.0, 1.0)
    with pytest.raises(TypeError, match="_clip_gradient"):
        fjit.jvp(f, (_f32(1.0),), (_f32(1.0),))
    with pytest.raises(TypeError, match="_clip_gradient"):
        fjit.jit(lambda x: fjit.jvp(f, (x,), (x,)))(_f32(1.0))
    with pytest.raises(TypeError, match="_clip_gradient"):
        fjit.linearize(f, _f32(1.0))[1](_f32(1.0))
    # reverse over reverse is fine
    _close(fjit.grad(fjit.grad(lambda x: jnp.sum(f(x) ** 2)))(jnp.float32(0.3)), 20.0)


def test_jacfwd_of_custom_vjp_raises_but_hessian_differentiates_bwd():
    """JAX: jacfwd (forward mode) of a custom_vjp function raises TypeError "can't apply
    forward-mode autodiff (jvp) to a custom_vjp function"; hessian = jacfwd(jacrev) works,
    differentiating the user's bwd rule (jax 0.10.2 gives [[20, 0], [0, 0]] here)."""
    f = lambda x: _clip_gradient(x, -1.0, 1.0)
    with pytest.raises(TypeError, match="_clip_gradient"):
        fjit.jacfwd(f)(_f32(1.0, 2.0))
    hess = fjit.hessian(lambda x: jnp.sum(f(x) ** 2))(_f32(0.2, 2.0))
    np.testing.assert_allclose(np.asarray(hess), [[20.0, 0.0], [0.0, 0.0]], rtol=1e-6)


def test_custom_vjp_undefined_rule_raises():
    @fjit.custom_vjp
    def no_vjp(x):
        return x

    with pytest.raises(AttributeError, match="no_vjp"):
        no_vjp(1.0)


def test_custom_vjp_wrong_structures_raise():
    @fjit.custom_vjp
    def fwd_pair(x):
        return x

    fwd_pair.defvjp(lambda x: (x, x, x), lambda r, g: (g,))
    with pytest.raises(TypeError, match="fwd_pair"):
        fjit.grad(fwd_pair)(1.0)

    @fjit.custom_vjp
    def fwd_out(x):
        return x

    fwd_out.defvjp(lambda x: ((x, x), None), lambda r, g: (g,))
    with pytest.raises(TypeError, match="fwd_out"):
        fjit.grad(fwd_out)(1.0)

    @fjit.custom_vjp
    def fwd_shape(x):
        return x

    fwd_shape.defvjp(lambda x: (jnp.ones(3), None), lambda r, g: (g,))
    with pytest.raises(TypeError, match="fwd_shape"):
        fjit.grad(fwd_shape)(1.0)

    @fjit.custom_vjp
    def bwd_count(x, y):
        return x * y

    bwd_count.defvjp(lambda x, y: (x * y, None), lambda r, g: (g,))
    with pytest.raises(TypeError, match="bwd_count"):
        fjit.grad(bwd_count)(1.0, 2.0)

    @fjit.custom_vjp
    def bwd_tuple(x):
        return x

    bwd_tuple.defvjp(lambda x: (x, None), lambda r, g: g)
    with pytest.raises(TypeError, match="bwd_tuple"):
        fjit.grad(bwd_tuple)(1.0)

    @fjit.custom_vjp
    def bwd_shape(x):
        return x

    bwd_shape.defvjp(lambda x: (x, None), lambda r, g: (jnp.ones(3),))
    with pytest.raises(TypeError, match="bwd_shape"):
        fjit.grad(bwd_shape)(1.0)

    @fjit.custom_vjp
    def bwd_tree(p):
        return p["a"]

    bwd_tree.defvjp(lambda p: (p["a"], None), lambda r, g: ((g,),))
    with pytest.raises(TypeError, match="bwd_tree"):
        fjit.grad(bwd_tree)({"a": 1.0})


# =============================================================================================
# 7. checkpoint
# =============================================================================================

def _backward_program(program):
    """The Program of the `jit[name=transpose(...)]` equation of a gradient Program."""
    eqns = [e for e in program.eqns if e.primitive.name == "jit"
            and e.params["name"].startswith("transpose(")]
    assert len(eqns) == 1, program
    return eqns[0].params["program"]


def _chain(x):
    return jnp.sum(jnp.sin(jnp.sin(x)) * jnp.exp(x))


P = fjit.checkpoint_policies


@pytest.mark.parametrize("policy", [None, P.nothing_saveable, P.everything_saveable,
                                    P.dots_saveable], ids=_name)
def test_checkpoint_gradients_equal_plain_ones(policy):
    x = jnp.asarray(rnd((3,)), jnp.float32)
    f = fjit.checkpoint(_chain, policy=policy)
    _close(fjit.grad(f)(x), fjit.grad(_chain)(x), rtol=1e-6)
    _close(f(x), _chain(x))
    _close(fjit.jit(fjit.grad(f))(x), fjit.grad(_chain)(x), rtol=1e-6)
    _close(fjit.grad(fjit.grad(lambda x: f(x)))(jnp.float32(0.3)),
           fjit.grad(fjit.grad(_chain))(jnp.float32(0.3)), rtol=1e-5)
    _close(fjit.jvp(f, (x,), (jnp.ones_like(x),))[1],
           fjit.jvp(_chain, (x,), (jnp.ones_like(x),))[1], rtol=1e-6)


def test_checkpoint_nothing_saveable_recomputes_in_the_backward_pass():
    f = fjit.checkpoint(_chain, policy=P.nothing_saveable)
    backward = _backward_program(fjit.make_program(fjit.grad(f))(jnp.ones(3)))
    names = _names(backward)
    assert "sin" in names and "exp" in names, backward
    # the default policy saves nothing too
    backward = _backward_program(fjit.make_program(fjit.grad(fjit.checkpoint(_chain)))(
        jnp.ones(3)))
    assert "sin" in _names(backward), backward


def test_checkpoint_everything_saveable_recomputes_nothing():
    f = fjit.checkpoint(_chain, policy=P.everything_saveable)
    backward = _backward_program(fjit.make_program(fjit.grad(f))(jnp.ones(3)))
    names = _names(backward)
    assert "sin" not in names and "exp" not in names and "cos" not in names, backward


def _mlp(w1, w2, x):
    return jnp.sum(jnp.tanh(jnp.tanh(x @ w1) @ w2))


def test_checkpoint_dots_saveable_saves_contractions():
    args = (jnp.ones((3, 5)), jnp.ones((5, 2)), jnp.ones((4, 3)))

    def backward(policy):
        f = fjit.checkpoint(_mlp, policy=policy)
        return _backward_program(fjit.make_program(fjit.grad(f, argnums=(0, 1)))(*args))

    dots = backward(P.dots_saveable)
    in_shapes = [v.aval.shape for v in dots.invars]
    assert (4, 5) in in_shapes and (4, 2) in in_shapes, dots  # x @ w1 and h @ w2 passed in
    assert _names(dots).count("tanh") == 2, dots  # tanh is recomputed
    # the forward contractions are not recomputed: only the three of the backward pass remain
    assert _names(dots).count("reduce_sum") == _names(backward(P.everything_saveable)).count(
        "reduce_sum")
    assert _names(backward(P.nothing_saveable)).count("reduce_sum") == \
        _names(dots).count("reduce_sum") + 2
    assert "tanh" not in _names(backward(P.everything_saveable))

    w1, w2, x = (jnp.asarray(rnd((3, 5)), jnp.float32), jnp.asarray(rnd((5, 2), seed=1),
                                                                    jnp.float32),
                 jnp.asarray(rnd((4, 3), seed=2), jnp.float32))
    for policy in (P.dots_saveable, P.nothing_saveable, P.everything_saveable):
        got = fjit.grad(fjit.checkpoint(_mlp, policy=policy), argnums=(0, 1))(w1, w2, x)
        want = fjit.grad(_mlp, argnums=(0, 1))(w1, w2, x)
        for a, b in zip(got, want):
            _close(a, b, rtol=1e-5, atol=1e-6)


def test_checkpoint_under_vmap_and_jit():
    f = fjit.checkpoint(lambda x, w: jnp.sum(jnp.sin(x * w)))
    plain = lambda x, w: jnp.sum(jnp.sin(x * w))
    xs = jnp.asarray(rnd((4, 3)), jnp.float32)
    w = jnp.asarray(rnd((3,), seed=1), jnp.float32)
    got = fjit.vmap(fjit.grad(f, argnums=1), in_axes=(0, None))(xs, w)
    want = fjit.vmap(fjit.grad(plain, argnums=1), in_axes=(0, None))(xs, w)
    _close(got, want, rtol=1e-6)
    got = fjit.grad(lambda w: jnp.sum(fjit.vmap(f, in_axes=(0, None))(xs, w)))(w)
    _close(got, np.asarray(want).sum(0), rtol=1e-5)
    _close(fjit.jit(fjit.vmap(fjit.grad(f, argnums=1), in_axes=(0, None)))(xs, w), want,
           rtol=1e-6)
    _close(fjit.vmap(f, in_axes=(0, None))(xs, w), fjit.vmap(plain, in_axes=(0, None))(xs, w))


def test_checkpoint_static_argnums():
    def f(x, n):
        for _ in range(n):  # n must be a Python int
            x = jnp.sin(x)
        return x

    g = fjit.checkpoint(f, static_argnums=(1,))
    x = jnp.float32(0.5)
    _close(g(x, 3), np.sin(np.sin(np.sin(0.5))))
    _close(fjit.grad(g)(x, 2), np.cos(np.sin(0.5)) * np.cos(0.5))
    _close(fjit.jit(fjit.grad(g), static_argnums=1)(x, 2), np.cos(np.sin(0.5)) * np.cos(0.5))
    _close(fjit.grad(fjit.checkpoint(f, static_argnums=1))(x, 1), np.cos(0.5))


def test_checkpoint_pytree_and_kwargs():
    @fjit.checkpoint
    def f(p, scale=1.0):
        return {"out": jnp.sin(p["a"]) * p["b"] * scale}

    p = {"a": _f32(0.1, 0.2), "b": jnp.float32(2.0)}
    g = fjit.grad(lambda p: jnp.sum(f(p, scale=3.0)["out"]))(p)
    _close(g["a"], 6 * np.cos([0.1, 0.2]))
    _close(g["b"], 3 * np.sum(np.sin([0.1, 0.2])))


def test_remat_is_checkpoint():
    assert fjit.remat is fjit.checkpoint


def test_nested_checkpoint():
    inner = fjit.checkpoint(lambda x: jnp.sin(jnp.sin(x)))
    outer = fjit.checkpoint(lambda x: jnp.exp(inner(x)) * x)
    plain = lambda x: jnp.exp(jnp.sin(jnp.sin(x))) * x
    x = jnp.asarray(rnd((3,)), jnp.float32)
    _close(fjit.grad(lambda x: jnp.sum(outer(x)))(x), fjit.grad(lambda x: jnp.sum(plain(x)))(x),
           rtol=1e-6)


# =============================================================================================
# 8. eval_shape
# =============================================================================================

S = fjit.ShapeDtypeStruct


def test_eval_shape_of_jit():
    out = fjit.eval_shape(fjit.jit(lambda x, y: (x * 2, y + 1, x.sum())), jnp.ones((2, 3)), 1)
    assert out == (S((2, 3), jnp.float32), S((), jnp.int32, weak_type=True),
                   S((), jnp.float32))
    assert out[1].weak_type and not out[0].weak_type
    assert fjit.eval_shape(fjit.jit(lambda x: x * 2), 1.0) == S((), jnp.float32, True)
    out = fjit.eval_shape(fjit.jit(lambda x: x.astype(jnp.int32)), S((4,), jnp.float16))
    assert out == S((4,), jnp.int32)


def test_eval_shape_of_grad():
    out = fjit.eval_shape(fjit.grad(lambda x: jnp.sum(x * 2)), jnp.ones(3))
    assert out == S((3,), jnp.float32) and not out.weak_type
    out = fjit.eval_shape(fjit.jit(fjit.grad(lambda x: jnp.sum(x ** 2))),
                          S((2, 3), jnp.float16))
    assert out == S((2, 3), jnp.float16)
    out = fjit.eval_shape(fjit.value_and_grad(lambda x: jnp.sum(x)), jnp.ones(3))
    assert out == (S((), jnp.float32), S((3,), jnp.float32))
    for jac in (fjit.jacfwd, fjit.jacrev):
        assert fjit.eval_shape(jac(lambda x: x[:2] * 2), jnp.ones(3)) == S((2, 3), jnp.float32)
    assert fjit.eval_shape(fjit.hessian(lambda x: jnp.sum(x ** 3)),
                           jnp.ones((2, 2))) == S((2, 2, 2, 2), jnp.float32)
    out = fjit.eval_shape(lambda x: fjit.jvp(jnp.sin, (x,), (x,)), jnp.ones(3))
    assert out == (S((3,), jnp.float32), S((3,), jnp.float32))


def test_eval_shape_of_grad_x64(x64):
    out = fjit.eval_shape(fjit.grad(lambda x: jnp.sum(jnp.sin(x))), S((3,), jnp.float64))
    assert out == S((3,), jnp.float64)
    out = fjit.eval_shape(fjit.grad(lambda x: x * 2.0), S((), jnp.float32))
    assert out == S((), jnp.float32)


def test_eval_shape_of_grad_of_weak_input_like_jax():
    """JAX: eval_shape(grad(f), 2.0) is ShapeDtypeStruct((), float32, weak_type=True)."""
    out = fjit.eval_shape(fjit.grad(lambda x, y: x * y), 2.0, jnp.float32(1.0))
    assert out == S((), jnp.float32, weak_type=True)
    out = fjit.eval_shape(fjit.grad(lambda x, y: x * y, argnums=(0, 1)), 2.0, jnp.float32(1.0))
    assert out == (S((), jnp.float32, weak_type=True), S((), jnp.float32))


def test_eval_shape_runs_nothing():
    calls = []

    def f(x):
        calls.append(type(x).__name__)
        return jnp.sum(jnp.sin(x))

    fjit.eval_shape(fjit.grad(f), S((1000, 1000), jnp.float32))
    assert calls and all(name != "Array" for name in calls)


# =============================================================================================
# 9. The README's gradient Program
# =============================================================================================

META_OPS = {op.name for op in TABLE} | {"broadcast_in_dim", "reshape", "iota", "reindex",
                                        "reindex_reduce", "reduce_sum", "reduce_max",
                                        "reduce_min", "reduce_prod", "reduce_and", "reduce_or",
                                        "argmax", "argmin"}


def test_readme_gradient_program():
    f = fjit.grad(lambda x: fjit.numpy.sum(fjit.numpy.tanh(x) ** 2))
    program = fjit.make_program(f)(fjit.numpy.ones(3))
    text = str(program)
    names = {e.primitive.name for e in program.eqns}
    assert names <= META_OPS, names - META_OPS
    assert {"tanh", "mul", "sub"} <= names
    for word in ("jit", "jvp", "transpose", "checkpoint", "custom", "pjit"):
        assert word not in text, text
    assert text.startswith("{ lambda ; a:f32[3]. let")
    fjit.typecheck(program)
    x = np.array([-1.0, 0.25, 2.0], np.float32)
    want = 2 * np.tanh(x.astype(np.float64)) * (1 - np.tanh(x.astype(np.float64)) ** 2)
    _close(f(jnp.asarray(x)), want)
    from fjit.core import eval_program
    (got,) = eval_program(program, jnp.asarray(x))
    _close(got, want)
    _close(fjit.jit(f)(jnp.asarray(x)), want)


def test_logaddexp_splits_the_derivative_at_a_tie():
    """d/dx logaddexp(x, y) = sigmoid(x - y): 1/2 each at x == y (was 0 and 1)."""
    gx, gy = fjit.grad(lambda x, y: jnp.logaddexp(x, y), argnums=(0, 1))(0.0, 0.0)
    assert float(gx) == 0.5 and float(gy) == 0.5
