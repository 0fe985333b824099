"""fjit.numpy.sort / argsort (a bitonic network of meta-ops) against NumPy's stable sort:
dtypes, axes, sizes that are not powers of two, ties, NaNs and signed zeros, descending
order (JAX's: NaNs first, ties in their original order), gradients, vmap and jit."""
from __future__ import annotations

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.test_util import check_grads

SIZES = (0, 1, 2, 3, 5, 8, 13, 33)


def _data(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    x = rng.integers(-4, 5, shape)  # many ties
    if np.issubdtype(dtype, np.unsignedinteger):
        x = x + 4
    x = x.astype(dtype)
    if np.issubdtype(dtype, np.floating) and x.size > 3:
        flat = x.reshape(-1)
        flat[::7] = np.nan
        flat[1::5] = -0.0
        flat[2::11] = np.inf
        flat[3::13] = -np.inf
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.int8, np.bool_,
                                   np.float16])
def test_matches_numpy_stable_sort(dtype):
    for n in SIZES:
        x = _data(dtype, (3, n), seed=n)
        for axis in (0, 1, -1):
            want_idx = np.argsort(x, axis=axis, kind="stable")
            got_idx = np.asarray(jnp.argsort(x, axis=axis))
            assert got_idx.dtype == np.int32
            np.testing.assert_array_equal(got_idx, want_idx, err_msg=f"n={n} axis={axis}")
            got = np.asarray(jnp.sort(x, axis=axis))
            assert got.dtype == x.dtype
            np.testing.assert_array_equal(got, np.sort(x, axis=axis, kind="stable"))


def _descending_reference(x, axis):
    """Stable descending order with NaNs first: sort by (not NaN, -value)."""
    x = np.moveaxis(x, axis, -1)
    out = np.empty(x.shape, np.int64)
    for i in np.ndindex(x.shape[:-1]):
        row = x[i].astype(np.float64)
        out[i] = np.lexsort((-np.nan_to_num(row, nan=0.0), ~np.isnan(row)))
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8])
def test_descending(dtype):
    for n in (1, 6, 13):
        x = _data(dtype, (2, n), seed=n)
        for axis in (0, 1):
            got = np.asarray(jnp.argsort(x, axis=axis, descending=True))
            np.testing.assert_array_equal(got, _descending_reference(x, axis))
            values = np.asarray(jnp.sort(x, axis=axis, descending=True))
            np.testing.assert_array_equal(values, np.take_along_axis(x, got, axis))


def test_descending_matches_jax():
    x = np.array([3., np.nan, 1., 3., -np.inf, 1., np.nan, -0., 0.], np.float32)
    np.testing.assert_array_equal(np.asarray(jnp.argsort(x, descending=True)),
                                  [1, 6, 0, 3, 2, 5, 7, 8, 4])  # jax.numpy 0.10.2
    np.testing.assert_array_equal(np.asarray(jnp.argsort(x)), [4, 7, 8, 2, 5, 0, 3, 1, 6])


def test_axis_none_and_3d():
    x = _data(np.float32, (2, 3, 5))
    np.testing.assert_array_equal(np.asarray(jnp.argsort(x, axis=None)),
                                  np.argsort(x, axis=None, kind="stable"))
    np.testing.assert_array_equal(np.asarray(jnp.sort(x, axis=1)), np.sort(x, axis=1))
    np.testing.assert_array_equal(np.asarray(jnp.sort(np.float32(2.0), axis=None)), [2.0])


def test_x64(x64):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 11))
    x[0, 3] = np.nan
    np.testing.assert_array_equal(np.asarray(jnp.sort(x)), np.sort(x))
    i = rng.integers(-2 ** 40, 2 ** 40, (21,))
    got = jnp.argsort(i)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(got), np.argsort(i, kind="stable"))


def test_under_jit():
    x = _data(np.float32, (3, 7), seed=4)
    sort = fjit.jit(lambda x: (jnp.sort(x, axis=0), jnp.argsort(x, descending=True)))
    values, order = sort(x)
    np.testing.assert_array_equal(np.asarray(values), np.sort(x, axis=0))
    np.testing.assert_array_equal(np.asarray(order), _descending_reference(x, 1))


def test_vmap():
    x = _data(np.int32, (4, 9), seed=2)
    np.testing.assert_array_equal(np.asarray(fjit.vmap(jnp.argsort)(x)),
                                  np.argsort(x, axis=1, kind="stable"))


def test_gradient_is_the_permutation():
    x = jnp.array([0.3, -1.2, 2.5, 0.7, -0.1])
    w = jnp.arange(5.0)
    g = np.asarray(fjit.grad(lambda x: jnp.sum(jnp.sort(x) * w))(x))
    order = np.argsort(np.asarray(x))
    expected = np.empty(5, np.float32)
    expected[order] = np.arange(5.0)
    np.testing.assert_array_equal(g, expected)
    check_grads(lambda x: jnp.sort(x, axis=0) ** 2, (np.array([[0.5, -1.0], [2.0, 0.25],
                                                               [-0.75, 1.5]]),), 2)


def test_errors():
    with pytest.raises(ValueError, match="sort: 'order'"):
        jnp.sort(jnp.ones(3), order="x")
    with pytest.raises(ValueError, match="argsort: axis"):
        jnp.argsort(jnp.float32(1.0))
    with pytest.raises(np.exceptions.AxisError):
        jnp.sort(jnp.ones((2, 3)), axis=2)
