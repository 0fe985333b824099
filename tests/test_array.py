"""Tests of `fjit.Array` (attributes, conversions, operators, methods) and of indexing:
`x[...]` and `x.at[...]`, eagerly and under `fjit.jit`, against NumPy (and JAX's documented
semantics where the two differ: clamping gathers, dropped out-of-bounds updates, weak types)."""
import copy
import operator
import pickle

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp


# --- helpers ----------------------------------------------------------------------------------

def _tol(dtype):
    return {2: 2e-3, 4: 2e-6, 8: 1e-12}.get(np.dtype(dtype).itemsize, 2e-6)


def assert_array(actual, expected, dtype=None, weak_type=None):
    """`actual` is an fjit.Array equal to `expected` (NumPy data), with `dtype` if given."""
    assert type(actual) is fjit.Array, f"expected an fjit.Array, got {type(actual).__name__}"
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), (actual.dtype, np.dtype(dtype))
    if weak_type is not None:
        assert actual.weak_type == weak_type, (actual.weak_type, weak_type)
    got = np.asarray(actual)
    if got.dtype.kind == "f" or expected.dtype.kind == "f":
        tol = _tol(got.dtype if got.dtype.kind == "f" else expected.dtype)
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   rtol=tol, atol=tol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)


def to_numpy_index(index):
    """An index expression with fjit arrays replaced by NumPy arrays (the reference's index)."""
    if isinstance(index, tuple):
        return tuple(to_numpy_index(e) for e in index)
    if isinstance(index, fjit.Array):
        return np.asarray(index)
    return index


def prim_names(program):
    return [eqn.primitive.name for eqn in program.eqns]


RNG = np.random.RandomState(0)
F3 = RNG.randn(2, 3, 4).astype(np.float32)


# =============================================================================================
# 1. attributes and conversions
# =============================================================================================

def test_shape_dtype_ndim_size():
    x = jnp.asarray(F3)
    assert type(x) is fjit.Array
    assert x.shape == (2, 3, 4)
    assert x.dtype == np.float32
    assert x.ndim == 3
    assert x.size == 24
    s = jnp.asarray(np.float32(2.5))
    assert (s.shape, s.ndim, s.size) == ((), 0, 1)
    e = jnp.zeros((3, 0))
    assert (e.shape, e.ndim, e.size) == ((3, 0), 2, 0)
    assert isinstance(x.shape, tuple)


def test_transpose_properties():
    x = jnp.asarray(F3)
    assert_array(x.T, F3.T, np.float32)
    assert_array(x.mT, np.swapaxes(F3, -1, -2), np.float32)
    m = jnp.arange(6).reshape(2, 3)
    assert_array(m.T, np.arange(6).reshape(2, 3).T, np.int32)
    assert_array(m.mT, np.arange(6).reshape(2, 3).T, np.int32)
    v = jnp.arange(3.)
    assert_array(v.T, np.arange(3.), np.float32)


def test_astype_basic():
    x = jnp.asarray(F3)
    assert_array(x.astype(jnp.float16), F3.astype(np.float16), np.float16)
    assert_array(x.astype("float32"), F3, np.float32)
    i = jnp.arange(5, dtype=jnp.int8)
    assert_array(i.astype(jnp.float32), np.arange(5, dtype=np.float32), np.float32)
    assert_array(i.astype(np.int32), np.arange(5), np.int32)
    b = jnp.array([True, False])
    assert_array(b.astype(jnp.float32), [1.0, 0.0], np.float32)
    assert_array(b.astype(jnp.int8), [1, 0], np.int8)


def test_astype_64bit_is_canonicalized_without_x64():
    x = jnp.arange(3.)
    assert x.astype(np.float64).dtype == np.float32
    assert x.astype("int64").dtype == np.int32


def test_astype_64bit_with_x64(x64):
    x = jnp.array([1.5, 2.5], jnp.float32)
    assert_array(x.astype(np.float64), [1.5, 2.5], np.float64)
    assert_array(x.astype(np.int64), [1, 2], np.int64)


def test_astype_float_to_int_truncates():
    x = jnp.array([2.9, -2.9, 0.5, -0.5, 7.0], jnp.float32)
    assert_array(x.astype(jnp.int32), [2, -2, 0, 0, 7], np.int32)
    assert_array(x.astype(jnp.int8), [2, -2, 0, 0, 7], np.int8)


def test_astype_float_to_int_saturates():
    # JAX/XLA semantics: out-of-range values clamp to the type's range and NaN becomes 0.
    x = jnp.array([1.5, -1.5, 3e9, -3e9, np.nan, np.inf, -np.inf], jnp.float32)
    imax, imin = np.iinfo(np.int32).max, np.iinfo(np.int32).min
    assert_array(x.astype(jnp.int32), [1, -1, imax, imin, 0, imax, imin], np.int32)
    y = jnp.array([1.5, -1.5, 300.0, -300.0], jnp.float32)
    assert_array(y.astype(jnp.int8), [1, -1, 127, -128], np.int8)
    assert_array(jnp.array([1.5, -1.5, 300.0, -300.0, np.nan]).astype(jnp.uint8),
                 [1, 0, 255, 0, 0], np.uint8)


def test_astype_bool():
    assert_array(jnp.array([0.0, 0.5, -2.0, np.nan, -0.0]).astype(bool),
                 [False, True, True, True, False], np.bool_)
    assert_array(jnp.array([0, 3, -1]).astype(jnp.bool_), [False, True, True], np.bool_)
    assert_array(jnp.array([0, 3, -1]).astype("bool"), [False, True, True], np.bool_)


def test_weak_type():
    assert jnp.asarray(2.0).weak_type
    assert jnp.asarray(2).weak_type
    assert not jnp.asarray(np.float32(2.0)).weak_type
    assert not jnp.arange(3.).weak_type
    assert not (jnp.arange(3.) * 2.0).weak_type
    w = jnp.asarray(2.0) + 1
    assert w.weak_type and w.dtype == np.float32
    # astype gives a strongly typed result
    assert not jnp.asarray(2.0).astype(jnp.float32).weak_type
    assert not jnp.asarray(2.0).astype(jnp.int32).weak_type


def test_len():
    assert len(jnp.zeros((4, 2))) == 4
    assert len(jnp.zeros((0,))) == 0
    with pytest.raises(TypeError):
        len(jnp.asarray(1.0))


def test_iteration_over_rows():
    x = jnp.asarray(F3)
    rows = list(x)
    assert len(rows) == 2
    for row, expected in zip(rows, F3):
        assert_array(row, expected, np.float32)
    v = list(jnp.arange(3))
    assert [int(e) for e in v] == [0, 1, 2]
    assert all(type(e) is fjit.Array and e.shape == () for e in v)
    assert list(jnp.zeros((0, 2))) == []
    with pytest.raises(TypeError):
        iter(jnp.asarray(1.0))


def test_array_protocol_returns_values():
    x = jnp.asarray(F3)
    a = np.asarray(x)
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, F3)
    np.testing.assert_array_equal(np.array(x), F3)


def test_array_protocol_is_read_only():
    x = jnp.arange(4.)
    a = np.asarray(x)
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 100.0
    np.testing.assert_array_equal(np.asarray(x), [0., 1., 2., 3.])
    # an explicit copy is writable and independent
    c = np.array(x)
    c[0] = 100.0
    np.testing.assert_array_equal(np.asarray(x), [0., 1., 2., 3.])
    # the input NumPy buffer is copied: mutating it afterwards does not change the fjit array
    src = np.arange(3.0, dtype=np.float32)
    y = jnp.asarray(src)
    src[0] = 42.0
    np.testing.assert_array_equal(np.asarray(y), [0., 1., 2.])


def test_array_protocol_with_dtype():
    x = jnp.array([1.5, -2.5, 3.0])
    a = np.asarray(x, dtype=np.float64)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, [1.5, -2.5, 3.0])
    b = np.asarray(x, dtype=np.int32)
    assert b.dtype == np.int32
    np.testing.assert_array_equal(b, [1, -2, 3])
    c = np.asarray(x, dtype=np.float32)
    np.testing.assert_array_equal(c, [1.5, -2.5, 3.0])


@pytest.mark.parametrize("make, expected", [
    (lambda: jnp.array([1.0, 2.0]), "Array([1., 2.], dtype=float32)"),
    (lambda: jnp.arange(3), "Array([0, 1, 2], dtype=int32)"),
    (lambda: jnp.array([1, -2], jnp.int8), "Array([ 1, -2], dtype=int8)"),
    (lambda: jnp.array([1, 2], jnp.uint8), "Array([1, 2], dtype=uint8)"),
    (lambda: jnp.array([1, 2], jnp.float16), "Array([1., 2.], dtype=float16)"),
    (lambda: jnp.array([True, False]), "Array([ True, False], dtype=bool)"),
    (lambda: jnp.array(True), "Array(True, dtype=bool)"),
    (lambda: jnp.asarray(2.0), "Array(2., dtype=float32, weak_type=True)"),
    (lambda: jnp.asarray(3), "Array(3, dtype=int32, weak_type=True)"),
    (lambda: jnp.asarray(np.int32(3)), "Array(3, dtype=int32)"),
    (lambda: jnp.asarray(1) * 2, "Array(2, dtype=int32, weak_type=True)"),
    (lambda: jnp.arange(3) * 2, "Array([0, 2, 4], dtype=int32)"),
    (lambda: jnp.array([np.nan, np.inf, -1.5]), "Array([ nan,  inf, -1.5], dtype=float32)"),
    (lambda: jnp.zeros((0,)), "Array([], shape=(0,), dtype=float32)"),
    (lambda: jnp.zeros((2, 0)), "Array([], shape=(2, 0), dtype=float32)"),
    (lambda: jnp.zeros((0,), jnp.int32), "Array([], shape=(0,), dtype=int32)"),
    (lambda: jnp.zeros((0, 3)) + 1.0, "Array([], shape=(0, 3), dtype=float32)"),
    (lambda: jnp.arange(6).reshape(2, 3), "Array([[0, 1, 2],\n       [3, 4, 5]], dtype=int32)"),
    (lambda: jnp.arange(8.).reshape(2, 2, 2),
     "Array([[[0., 1.],\n        [2., 3.]],\n\n       [[4., 5.],\n        [6., 7.]]], "
     "dtype=float32)"),
    (lambda: jnp.arange(30.),
     "Array([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12.,\n"
     "       13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25.,\n"
     "       26., 27., 28., 29.], dtype=float32)"),
])
def test_repr(make, expected):
    assert repr(make()) == expected


def test_str_and_format():
    assert str(jnp.arange(5.)) == "[0. 1. 2. 3. 4.]"
    assert str(jnp.asarray(2.0)) == "2.0"
    assert str(jnp.arange(4).reshape(2, 2)) == "[[0 1]\n [2 3]]"
    assert format(jnp.asarray(2.5), ".2f") == "2.50"
    assert format(jnp.asarray(np.float32(1 / 3)), ".3f") == "0.333"
    assert format(jnp.asarray(7), "03d") == "007"
    assert f"{jnp.asarray(2.0):.1e}" == "2.0e+00"
    assert format(jnp.asarray([2.5]), "") == str(jnp.asarray([2.5]))


def test_item_and_tolist():
    assert jnp.asarray(3.5).item() == 3.5
    assert type(jnp.asarray(3.5).item()) is float
    assert type(jnp.asarray(3).item()) is int
    assert type(jnp.asarray(True).item()) is bool
    assert jnp.asarray([[3, 4]]).item(1) == 4
    with pytest.raises(ValueError):
        jnp.arange(3).item()
    assert jnp.asarray([[3, 4], [5, 6]]).tolist() == [[3, 4], [5, 6]]
    assert jnp.array([1.5, 2.0]).tolist() == [1.5, 2.0]
    assert jnp.asarray(2.5).tolist() == 2.5
    assert jnp.zeros((0,)).tolist() == []


def test_python_scalar_conversions():
    assert int(jnp.asarray(3.7)) == 3
    assert int(jnp.asarray(-3.7)) == -3
    assert type(int(jnp.asarray(3.7))) is int
    assert float(jnp.asarray(3)) == 3.0
    assert type(float(jnp.asarray(3))) is float
    assert complex(jnp.asarray(2.0)) == 2.0 + 0j
    assert bool(jnp.asarray(0.0)) is False
    assert bool(jnp.asarray(0.5)) is True
    assert bool(jnp.asarray(-1)) is True
    assert bool(jnp.array([2.0])) is True  # a size-1 array converts, like NumPy
    assert operator.index(jnp.asarray(3)) == 3
    assert operator.index(jnp.asarray(np.int8(-2))) == -2
    assert [10, 20, 30][jnp.asarray(1)] == 20
    assert range(10)[jnp.asarray(2):jnp.asarray(5)] == range(2, 5)
    with pytest.raises(TypeError):
        operator.index(jnp.asarray(3.0))
    with pytest.raises(TypeError):
        int(jnp.asarray([3, 4]))
    with pytest.raises(TypeError):
        float(jnp.asarray([3.0, 4.0]))


def test_bool_of_multi_element_array_raises():
    with pytest.raises(ValueError):
        bool(jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        if jnp.arange(3) > 0:
            pass


def test_builtin_round():
    # Python's round(x) protocol returns an integer value when ndigits is omitted
    # (JAX: round(jnp.asarray(2.567)) -> Array(3, dtype=int32)).
    r = round(jnp.asarray(2.567))
    assert r == 3
    assert np.issubdtype(np.asarray(r).dtype, np.integer)
    r1 = round(jnp.asarray(np.float32(2.567)), 1)
    assert_array(r1, np.round(np.float32(2.567), 1), np.float32)


def test_hash_raises():
    with pytest.raises(TypeError):
        hash(jnp.asarray(3))
    with pytest.raises(TypeError):
        {jnp.arange(3): 1}


def test_setitem_raises():
    x = jnp.arange(3)
    with pytest.raises(TypeError, match=r"\.at\["):
        x[0] = 1
    with pytest.raises(TypeError, match=r"\.at\["):
        x[1:] = jnp.zeros(2, jnp.int32)
    np.testing.assert_array_equal(np.asarray(x), [0, 1, 2])


@pytest.mark.parametrize("make", [
    lambda: jnp.asarray(F3),
    lambda: jnp.array([1, -2, 3], jnp.int8),
    lambda: jnp.array([True, False]),
    lambda: jnp.asarray(1.5),
    lambda: jnp.asarray(7),
    lambda: jnp.zeros((0, 2), jnp.uint8),
])
def test_pickle_round_trip(make):
    x = make()
    y = pickle.loads(pickle.dumps(x))
    assert type(y) is fjit.Array
    assert y.dtype == x.dtype
    assert y.shape == x.shape
    assert y.weak_type == x.weak_type
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    # the unpickled array works like any other
    assert_array(y + y, np.asarray(x) + np.asarray(x) if x.dtype != np.bool_ else np.asarray(x),
                 x.dtype)


def test_copy_and_deepcopy():
    x = jnp.array([1.0, 2.0])
    for y in (copy.copy(x), copy.deepcopy(x), x.copy()):
        assert type(y) is fjit.Array
        assert_array(y, [1.0, 2.0], np.float32, weak_type=False)
    w = jnp.asarray(2.0)
    assert copy.deepcopy(w).weak_type
    d = copy.deepcopy({"a": x, "b": [x, 3]})
    assert_array(d["a"], [1.0, 2.0], np.float32)
    assert d["b"][1] == 3


def test_block_until_ready_and_devices():
    x = jnp.arange(3.)
    assert x.block_until_ready() is x
    devs = fjit.devices()
    assert isinstance(devs, list) and len(devs) >= 1
    assert x.device == fjit.default_device()
    assert x.device in devs
    assert x.devices() == {x.device}
    assert fjit.default_device() in fjit.devices()
    assert fjit.devices("cpu") == [fjit.default_device()]
    assert fjit.default_device().platform == "cpu"
    assert repr(fjit.default_device()) == "CpuDevice(id=0)"


def test_device_put_numpy_and_scalars():
    a = fjit.device_put(np.arange(3.0))
    assert_array(a, [0.0, 1.0, 2.0], np.float32, weak_type=False)
    b = fjit.device_put(np.arange(3))
    assert_array(b, [0, 1, 2], np.int32)
    s = fjit.device_put(3)
    assert_array(s, 3, np.int32, weak_type=True)
    f = fjit.device_put(2.5)
    assert_array(f, 2.5, np.float32, weak_type=True)
    t = fjit.device_put(True)
    assert_array(t, True, np.bool_, weak_type=False)
    g = fjit.device_put(np.float32(2))
    assert_array(g, 2.0, np.float32, weak_type=False)
    x = jnp.arange(3.)
    assert fjit.device_put(x) is x or np.array_equal(np.asarray(fjit.device_put(x)), [0, 1, 2])
    on = fjit.device_put(np.ones(2), fjit.devices()[0])
    assert_array(on, [1.0, 1.0], np.float32)
    assert on.device == fjit.devices()[0]


def test_device_put_copies_numpy_input():
    src = np.arange(3.0, dtype=np.float32)
    a = fjit.device_put(src)
    src[:] = -1
    np.testing.assert_array_equal(np.asarray(a), [0.0, 1.0, 2.0])


def test_device_put_pytree():
    tree = {"a": np.ones((2, 2)), "b": [np.arange(3), 1.5], "c": (jnp.arange(2.),)}
    out = fjit.device_put(tree)
    assert set(out) == {"a", "b", "c"}
    assert_array(out["a"], np.ones((2, 2)), np.float32)
    assert isinstance(out["b"], list)
    assert_array(out["b"][0], np.arange(3), np.int32)
    assert_array(out["b"][1], 1.5, np.float32, weak_type=True)
    assert isinstance(out["c"], tuple)
    assert_array(out["c"][0], [0.0, 1.0], np.float32)


# =============================================================================================
# 2. operators
# =============================================================================================

# Operands: name -> (kind, general values, small non-negative values for ** and shifts).
_F = [1.5, -2.25, 3.0, 0.5]
_FP = [1.5, 0.5, 2.0, 1.25]
_I = [7, -3, 2, 5]
_IP = [1, 2, 3, 0]
OPERANDS = {
    "f32": ("fjit", np.array(_F, np.float32), np.array(_FP, np.float32)),
    "f16": ("fjit", np.array(_F, np.float16), np.array(_FP, np.float16)),
    "i32": ("fjit", np.array(_I, np.int32), np.array(_IP, np.int32)),
    "i8": ("fjit", np.array(_I, np.int8), np.array(_IP, np.int8)),
    "u8": ("fjit", np.array([7, 3, 2, 5], np.uint8), np.array(_IP, np.uint8)),
    "b": ("fjit", np.array([True, False, True, True]), np.array([True, False, True, True])),
    "np_f64": ("numpy", np.array([2.0, 0.5, -1.25, 4.0]), np.array([2.0, 0.5, 1.25, 1.0])),
    "np_i64": ("numpy", np.array([2, -1, 3, 4]), np.array([2, 1, 3, 0])),
    "np_i16": ("numpy", np.array([2, -1, 3, 4], np.int16), np.array([2, 1, 3, 0], np.int16)),
    "np_b": ("numpy", np.array([True, True, False, True]), np.array([True, True, False, True])),
    "np_f32s": ("numpy", np.float32(2.0), np.float32(1.5)),
    "np_i64s": ("numpy", np.int64(3), np.int64(2)),
    "py_int": ("python", 3, 2),
    "py_float": ("python", 2.5, 1.5),
    "py_bool": ("python", True, True),
}

# (fjit operand, other operand, JAX's promoted dtype with x64 off, weak result)
PAIRS = [
    ("f32", "f32", np.float32, False),
    ("i32", "i32", np.int32, False),
    ("f32", "i32", np.float32, False),
    ("i8", "i32", np.int32, False),
    ("i8", "u8", np.int16, False),
    ("u8", "u8", np.uint8, False),
    ("f16", "f32", np.float32, False),
    ("f16", "i32", np.float16, False),
    ("i8", "py_int", np.int8, False),
    ("u8", "py_int", np.uint8, False),
    ("i32", "py_int", np.int32, False),
    ("f32", "py_int", np.float32, False),
    ("f32", "py_float", np.float32, False),
    ("f16", "py_float", np.float16, False),
    ("i32", "py_float", np.float32, True),
    ("i8", "py_float", np.float32, True),
    ("b", "py_int", np.int32, True),
    ("b", "py_float", np.float32, True),
    ("i32", "py_bool", np.int32, False),
    ("f32", "np_f64", np.float32, False),
    ("f16", "np_f64", np.float32, False),
    ("i32", "np_f64", np.float32, False),
    ("i32", "np_i64", np.int32, False),
    ("i8", "np_i64", np.int32, False),
    ("i8", "np_i16", np.int16, False),
    ("u8", "np_i16", np.int16, False),
    ("f32", "np_i64", np.float32, False),
    ("i32", "np_b", np.int32, False),
    ("i32", "np_f32s", np.float32, False),
    ("f16", "np_f32s", np.float32, False),
    ("i8", "np_i64s", np.int32, False),
    ("f32", "np_i64s", np.float32, False),
    ("b", "b", np.bool_, False),
    ("b", "np_b", np.bool_, False),
    ("b", "py_bool", np.bool_, False),
]

ARITH = {
    "+": (operator.add, np.add),
    "-": (operator.sub, np.subtract),
    "*": (operator.mul, np.multiply),
    "/": (operator.truediv, np.true_divide),
    "//": (operator.floordiv, np.floor_divide),
    "%": (operator.mod, np.remainder),
    "**": (operator.pow, np.power),
}
BITWISE = {
    "&": (operator.and_, np.bitwise_and),
    "|": (operator.or_, np.bitwise_or),
    "^": (operator.xor, np.bitwise_xor),
}
SHIFTS = {
    "<<": (operator.lshift, np.left_shift),
    ">>": (operator.rshift, np.right_shift),
}
COMPARE = {
    "==": (operator.eq, np.equal),
    "!=": (operator.ne, np.not_equal),
    "<": (operator.lt, np.less),
    "<=": (operator.le, np.less_equal),
    ">": (operator.gt, np.greater),
    ">=": (operator.ge, np.greater_equal),
}


def _operand(name, small):
    kind, general, nonneg = OPERANDS[name]
    value = nonneg if small else general
    if kind == "fjit":
        return jnp.asarray(value), np.asarray(value)
    return value, np.asarray(value)


def _cases():
    for left, right, dtype, weak in PAIRS:
        kind = np.dtype(dtype).kind
        ops = dict(COMPARE)
        if kind in "iuf":
            ops.update(ARITH)
        if kind in "iub":
            ops.update(BITWISE)
        if kind in "iu":
            ops.update(SHIFTS)
        has_bool = "b" in (np.asarray(OPERANDS[left][1]).dtype.kind,
                            np.asarray(OPERANDS[right][1]).dtype.kind)
        for sym in ops:
            if has_bool and sym in ("/", "//", "%"):
                continue  # a False divisor: integer division by zero is unspecified
            if sym == "**" and right == "np_i64s":
                continue  # JAX special-cases concrete integer exponents (integer_pow)
            for swapped in (False, True):
                yield pytest.param(left, right, dtype, weak, sym, swapped,
                                   id=f"{right if swapped else left}{sym}"
                                      f"{left if swapped else right}")


@pytest.mark.parametrize("left, right, dtype, weak, sym, swapped", list(_cases()))
def test_binary_operator(left, right, dtype, weak, sym, swapped):
    table = {**ARITH, **BITWISE, **SHIFTS, **COMPARE}
    py_op, np_op = table[sym]
    small = sym in ("**", "<<", ">>")
    a, a_np = _operand(left, small)
    b, b_np = _operand(right, small)
    if swapped:
        a, b, a_np, b_np = b, a, b_np, a_np
    result = py_op(a, b)
    if sym in COMPARE:
        expected_dtype = np.bool_
    elif sym == "/" and np.dtype(dtype).kind != "f":
        expected_dtype = np.float32
    else:
        expected_dtype = dtype
    compute = expected_dtype if sym not in COMPARE else dtype
    with np.errstate(all="ignore"):
        expected = np_op(a_np.astype(compute), b_np.astype(compute))
    assert_array(result, np.broadcast_to(expected, (4,)), expected_dtype)
    if sym not in COMPARE and sym != "**":
        assert result.weak_type == weak


@pytest.mark.parametrize("name", ["f32", "f16", "i32", "i8"])
@pytest.mark.parametrize("other", ["f32", "i32", "np_f64", "np_i64", "py_int", "py_float"])
def test_divmod(name, other):
    x, x_np = _operand(name, False)
    y, y_np = _operand(other, False)
    for a, b, a_np, b_np in ((x, y, x_np, y_np), (y, x, y_np, x_np)):
        q, r = divmod(a, b)
        dtype = q.dtype  # the promoted dtype (checked by test_binary_operator)
        assert r.dtype == dtype
        with np.errstate(all="ignore"):
            assert_array(q, np.floor_divide(a_np.astype(dtype), b_np.astype(dtype)), dtype)
            assert_array(r, np.remainder(a_np.astype(dtype), b_np.astype(dtype)), dtype)


def test_divmod_dtypes():
    q, r = divmod(jnp.array([7, -7], jnp.int8), 2)
    assert_array(q, [3, -4], np.int8)
    assert_array(r, [1, 1], np.int8)
    q, r = divmod(7.5, jnp.array([2.0, -2.0]))
    assert_array(q, [3.0, -4.0], np.float32)
    assert_array(r, [1.5, -0.5], np.float32)


def test_floor_division_and_modulo_signs():
    a = np.array([-7, 7, -7, 7, 0], np.int32)
    b = np.array([3, -3, -3, 3, 5], np.int32)
    assert_array(jnp.asarray(a) // jnp.asarray(b), a // b, np.int32)
    assert_array(jnp.asarray(a) % jnp.asarray(b), a % b, np.int32)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    assert_array(jnp.asarray(af) // jnp.asarray(bf), af // bf, np.float32)
    assert_array(jnp.asarray(af) % jnp.asarray(bf), af % bf, np.float32)
    assert_array(-7 % jnp.array([3, -3]), np.array([-7 % 3, -7 % -3]), np.int32)


@pytest.mark.parametrize("name", ["f32", "f16", "i32", "i8", "u8", "b"])
def test_unary_operators(name):
    x, x_np = _operand(name, False)
    if x_np.dtype != np.bool_:
        assert_array(-x, np.negative(x_np), x_np.dtype)
        assert_array(abs(x), np.abs(x_np), x_np.dtype)
    assert_array(+x, x_np, x_np.dtype)
    if x_np.dtype.kind in "iub":
        assert_array(~x, np.invert(x_np), x_np.dtype)
    else:
        with pytest.raises(TypeError):
            ~x


def test_unary_edge_values():
    assert_array(-jnp.arange(3, dtype=jnp.uint8), [0, 255, 254], np.uint8)
    assert_array(abs(jnp.array([-128, 5], jnp.int8)), [-128, 5], np.int8)
    assert_array(~jnp.array([0, 5], jnp.uint8), [255, 250], np.uint8)
    assert_array(~jnp.array([True, False]), [False, True], np.bool_)
    w = -jnp.asarray(2.0)
    assert_array(w, -2.0, np.float32, weak_type=True)


def test_shift_values():
    assert_array(jnp.array([-8, 8], jnp.int32) >> 1, [-4, 4], np.int32)
    assert_array(jnp.array([255, 8], jnp.uint8) >> 1, [127, 4], np.uint8)
    assert_array(1 << jnp.arange(4), [1, 2, 4, 8], np.int32)
    assert_array(jnp.array([1, 2], jnp.int32) << 30, [1 << 30, -(1 << 31)], np.int32)


def test_numpy_array_on_the_left_returns_fjit_array():
    x = jnp.arange(3.)
    n = np.array([1.0, 2.0, 3.0])
    for r, expected in [(n + x, n + np.arange(3.)), (n - x, n - np.arange(3.)),
                        (n * x, n * np.arange(3.)), (n / (x + 1), n / (np.arange(3.) + 1)),
                        (n ** x, n ** np.arange(3.)), (n // (x + 1), n // (np.arange(3.) + 1)),
                        (n % (x + 1), n % (np.arange(3.) + 1))]:
        assert_array(r, expected, np.float32)
    for r, expected in [(n < x, n < np.arange(3.)), (n == x, n == np.arange(3.)),
                        (n >= x, n >= np.arange(3.)), (n != x, n != np.arange(3.))]:
        assert_array(r, expected, np.bool_)
    i = jnp.arange(3, dtype=jnp.int8)
    assert_array(np.array([1, 2, 3], np.int16) & i, np.array([1, 2, 3]) & np.arange(3), np.int16)
    assert_array(np.float32(2) * i, 2 * np.arange(3), np.float32)
    assert_array(np.int16(2) * i, 2 * np.arange(3), np.int16)
    assert_array(np.float64(2) * i, 2 * np.arange(3), np.float32)


def test_python_scalar_on_the_left():
    x = jnp.arange(3)
    assert_array(2 ** x, [1, 2, 4], np.int32, weak_type=False)
    assert_array(2.0 ** jnp.arange(3.), [1.0, 2.0, 4.0], np.float32)
    assert_array(10 - jnp.arange(3, dtype=jnp.uint8), [10, 9, 8], np.uint8)
    assert_array(1 / jnp.array([2.0, 4.0]), [0.5, 0.25], np.float32)
    assert_array(7 // jnp.array([2, -2]), [3, -4], np.int32)
    assert_array(1 | jnp.array([True, False]), [1, 1], np.int32)
    assert_array(3 > x, [True, True, True], np.bool_)
    assert_array(1 == x, [False, True, False], np.bool_)


def test_weak_scalar_keeps_array_dtype():
    assert_array(jnp.array([1, 2], jnp.int8) + 3, [4, 5], np.int8, weak_type=False)
    assert_array(jnp.array([1, 2], jnp.uint8) * 3, [3, 6], np.uint8)
    assert_array(jnp.array([1, 2], jnp.float16) * 2.5, [2.5, 5.0], np.float16)
    assert_array(jnp.array([1, 2], jnp.int16) + 2.5, [3.5, 4.5], np.float32, weak_type=True)
    # float32 meets a float64 NumPy array: stays float32 with x64 off
    r = jnp.array([1.5, 2.0], jnp.float32) + np.array([1.0, 2.0])
    assert_array(r, [2.5, 4.0], np.float32)


def test_python_int_out_of_range_for_default_int_raises():
    with pytest.raises(OverflowError):
        jnp.arange(3) + 2 ** 40


def test_operator_dtypes_with_x64(x64):
    f32 = jnp.array([1.5, 2.0], jnp.float32)
    assert_array(f32 + np.array([1.0, 2.0]), [2.5, 4.0], np.float64)
    assert_array(np.array([1.0, 2.0]) + f32, [2.5, 4.0], np.float64)
    assert_array(f32 + 2.5, [4.0, 4.5], np.float32)
    assert_array(jnp.array([1, 2], jnp.int8) + 3, [4, 5], np.int8)
    assert_array(jnp.array([1, 2], jnp.int32) + np.array([1, 2]), [2, 4], np.int64)
    assert_array(jnp.arange(3) * 2, [0, 2, 4], np.int64)
    assert_array(jnp.array([1, 2], jnp.int32) + 2.5, [3.5, 4.5], np.float64, weak_type=True)


def test_matmul():
    a = RNG.randn(2, 3).astype(np.float32)
    b = RNG.randn(3, 4).astype(np.float32)
    v = RNG.randn(3).astype(np.float32)
    A, B, V = jnp.asarray(a), jnp.asarray(b), jnp.asarray(v)
    assert_array(A @ B, a @ b, np.float32)
    assert_array(A @ V, a @ v, np.float32)
    assert_array(V @ B, v @ b, np.float32)
    assert_array(V @ V, v @ v, np.float32)
    assert_array(a @ B, a @ b, np.float32)          # NumPy on the left: __rmatmul__
    assert_array(A @ b.astype(np.float64), a @ b, np.float32)
    batch = RNG.randn(5, 2, 3).astype(np.float32)
    assert_array(jnp.asarray(batch) @ B, batch @ b, np.float32)
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert_array(jnp.asarray(i) @ np.ones((3, 2), np.int32), i @ np.ones((3, 2), np.int32),
                 np.int32)
    with pytest.raises((TypeError, ValueError)):
        A @ 2.0
    with pytest.raises((TypeError, ValueError)):
        2.0 @ A


def test_unsupported_operand_types():
    x = jnp.arange(3)
    with pytest.raises(TypeError):
        x + "a"
    with pytest.raises(TypeError):
        "a" + x
    with pytest.raises(TypeError):
        x + None
    assert (x == None) is False  # noqa: E711  (falls back to identity comparison)
    assert (x != "a") is True


# =============================================================================================
# 3. methods
# =============================================================================================

XM = {
    "f32": RNG.randn(2, 3, 4).astype(np.float32),
    "i8": RNG.randint(-5, 5, (2, 3, 4)).astype(np.int8),
    "u8": RNG.randint(0, 5, (2, 3, 4)).astype(np.uint8),
    "i32": RNG.randint(-5, 5, (2, 3, 4)).astype(np.int32),
    "bool": RNG.rand(2, 3, 4) > 0.5,
}


def _method_dtype(name, dtype):
    dtype = np.dtype(dtype)
    if name in ("any", "all"):
        return np.bool_
    if name in ("argmax", "argmin"):
        return np.int32
    if name in ("mean", "var", "std"):
        return np.float32
    if name in ("sum", "prod"):
        if dtype == np.bool_:
            return np.int32
        if dtype.kind in "iu" and dtype.itemsize < 4:
            return np.uint32 if dtype.kind == "u" else np.int32
        return dtype
    if name in ("cumsum", "cumprod"):
        return np.int32 if dtype == np.bool_ else dtype
    return dtype


REDUCTION_KWARGS = [{}, {"axis": 0}, {"axis": 1}, {"axis": -1}, {"axis": (0, 2)},
                    {"axis": 1, "keepdims": True}, {"axis": None, "keepdims": True},
                    {"axis": (-1, 0), "keepdims": True}]


REDUCTIONS = ["sum", "mean", "max", "min", "prod", "any", "all", "argmax", "argmin", "var",
              "std", "cumsum", "cumprod", "ptp"]


@pytest.mark.parametrize("name, dt", [(n, d) for n in REDUCTIONS for d in XM
                                      if (n, d) != ("ptp", "bool")])  # JAX rejects bool ptp
def test_reduction_methods(name, dt):
    x_np = XM[dt]
    x = jnp.asarray(x_np)
    dtype = _method_dtype(name, x_np.dtype)
    for kw in REDUCTION_KWARGS:
        if name in ("cumsum", "cumprod") and (
                "keepdims" in kw or isinstance(kw.get("axis"), tuple)):
            continue
        if name in ("argmax", "argmin") and isinstance(kw.get("axis"), tuple):
            continue
        result = getattr(x, name)(**kw)
        if name == "ptp":
            expected = np.ptp(x_np, **kw)
        elif name in ("mean", "var", "std"):
            expected = getattr(x_np.astype(np.float64), name)(**kw)
        elif name in ("sum", "prod", "cumsum", "cumprod"):
            expected = getattr(x_np, name)(dtype=dtype, **kw)  # wraps like fjit's int32
        else:
            expected = getattr(x_np, name)(**kw)
        assert_array(result, expected, dtype)


def test_reduction_functions_match_methods():
    x_np = XM["f32"]
    x = jnp.asarray(x_np)
    assert_array(jnp.max(x, axis=1), x_np.max(axis=1), np.float32)
    assert_array(jnp.min(x), x_np.min(), np.float32)
    assert_array(jnp.ptp(x, axis=0), np.ptp(x_np, axis=0), np.float32)


def test_reduction_options():
    x_np = XM["f32"]
    x = jnp.asarray(x_np)
    assert_array(x.var(ddof=1), x_np.astype(np.float64).var(ddof=1), np.float32)
    assert_array(x.std(axis=0, ddof=1), x_np.astype(np.float64).std(axis=0, ddof=1),
                 np.float32)
    assert_array(jnp.asarray(XM["i8"]).sum(dtype=jnp.float32), XM["i8"].sum(dtype=np.float32),
                 np.float32)
    assert_array(x.max(axis=1, initial=0.5), x_np.max(axis=1, initial=0.5), np.float32)
    assert_array(x.sum(axis=1, where=x > 0), x_np.sum(axis=1, where=x_np > 0), np.float32)
    assert_array(x.argmax(keepdims=True), x_np.argmax(keepdims=True), np.int32)
    assert_array(jnp.asarray(XM["bool"]).cumsum(), XM["bool"].cumsum(), np.int32)


RESHAPE_CASES = [
    ("reshape", ((4, 6),)), ("reshape", (4, 6)), ("reshape", ((4, -1),)), ("reshape", (-1,)),
    ("reshape", (-1, 2, 3)), ("reshape", (24,)), ("reshape", ([2, 12],)),
    ("transpose", ()), ("transpose", ((1, 0, 2),)), ("transpose", (2, 0, 1)),
    ("transpose", (-1, 0, 1)), ("transpose", ([0, 2, 1],)),
    ("ravel", ()), ("flatten", ()),
    ("swapaxes", (0, 2)), ("swapaxes", (-1, 1)), ("swapaxes", (1, 1)),
    ("repeat", (2,)), ("repeat", (2, 1)), ("repeat", (3, -1)),
    ("diagonal", ()), ("diagonal", (1, 1, 2)), ("diagonal", (-1, 0, 2)), ("diagonal", (0, 2, 1)),
    ("trace", ()), ("trace", (1,)), ("trace", (0, 1, 2)),
    ("conj", ()),
]


@pytest.mark.parametrize("dt", ["f32", "i32"])
@pytest.mark.parametrize("name, args", RESHAPE_CASES,
                         ids=[f"{n}{a}" for n, a in RESHAPE_CASES])
def test_shape_methods(name, args, dt):
    x_np = XM[dt]
    x = jnp.asarray(x_np)
    result = getattr(x, name)(*args)
    expected = getattr(x_np, name)(*args)
    dtype = np.int32 if (name == "trace" and dt == "i32") else x_np.dtype
    assert_array(result, expected, dtype)


def test_squeeze():
    x_np = np.arange(6.0, dtype=np.float32).reshape(1, 3, 1, 2)
    x = jnp.asarray(x_np)
    assert_array(x.squeeze(), x_np.squeeze(), np.float32)
    assert_array(x.squeeze(0), x_np.squeeze(0), np.float32)
    assert_array(x.squeeze(axis=2), x_np.squeeze(axis=2), np.float32)
    assert_array(x.squeeze((0, 2)), x_np.squeeze((0, 2)), np.float32)
    assert_array(x.squeeze(-2), x_np.squeeze(-2), np.float32)
    with pytest.raises((ValueError, TypeError)):
        x.squeeze(1)


def test_repeat_with_array_repeats():
    x_np = XM["f32"]
    x = jnp.asarray(x_np)
    assert_array(x.repeat(jnp.array([1, 0, 2]), axis=1),
                 x_np.repeat([1, 0, 2], axis=1), np.float32)
    assert_array(x.repeat(np.array([2, 1]), axis=0), x_np.repeat([2, 1], axis=0), np.float32)


def test_take():
    x_np = XM["f32"]
    x = jnp.asarray(x_np)
    assert_array(x.take(jnp.array([0, 5, -1])), x_np.take([0, 5, -1]), np.float32)
    assert_array(x.take(np.array([0, 2, -1, 1]), axis=2), x_np.take([0, 2, -1, 1], axis=2),
                 np.float32)
    assert_array(x.take(jnp.array([[0, 2]]), axis=1), x_np.take([[0, 2]], axis=1), np.float32)
    assert_array(x.take(3), x_np.take(3), np.float32)
    # out-of-bounds: fill (NaN) by default, like JAX; clip / wrap modes like NumPy
    idx = np.array([0, 5, -1, 30])
    expected = x_np.take([0, 5, -1, 0])
    expected[3] = np.nan
    assert_array(x.take(jnp.asarray(idx)), expected, np.float32)
    assert_array(x.take(idx, mode="clip"), x_np.take(np.maximum(idx, 0), mode="clip"),
                 np.float32)
    assert_array(x.take(idx, mode="wrap"), x_np.take(idx, mode="wrap"), np.float32)
    assert_array(jnp.asarray(XM["i32"]).take(jnp.array([1, 30])),
                 [XM["i32"].ravel()[1], np.iinfo(np.int32).min], np.int32)


def test_dot():
    a = XM["f32"][0]
    b = XM["f32"][1]
    A, B = jnp.asarray(a), jnp.asarray(b)
    assert_array(A.dot(B.T), a.dot(b.T), np.float32)
    assert_array(A[0].dot(B[1]), a[0].dot(b[1]), np.float32)
    assert_array(A.dot(b[0]), a.dot(b[0]), np.float32)
    assert_array(A.dot(2.0), a * 2.0, np.float32)
    i = XM["i32"][0]
    assert_array(jnp.asarray(i).dot(jnp.asarray(i.T)), i.dot(i.T), np.int32)


def test_clip():
    x_np = XM["f32"]
    x = jnp.asarray(x_np)
    assert_array(x.clip(-0.5, 0.5), x_np.clip(-0.5, 0.5), np.float32)
    assert_array(x.clip(min=0), x_np.clip(min=0), np.float32)
    assert_array(x.clip(max=0.1), x_np.clip(max=0.1), np.float32)
    lo = np.full((4,), -0.2, np.float32)
    assert_array(x.clip(lo, jnp.asarray(lo) + 0.5), x_np.clip(lo, lo + 0.5), np.float32)
    i = XM["i32"]
    assert_array(jnp.asarray(i).clip(-2, 2), i.clip(-2, 2), np.int32)


def test_round():
    x_np = XM["f32"] * 10
    x = jnp.asarray(x_np)
    assert_array(x.round(), x_np.round(), np.float32)
    assert_array(x.round(2), x_np.round(2), np.float32)
    assert_array(x.round(-1), x_np.round(-1), np.float32)
    halves = np.arange(6.0, dtype=np.float32) - 2.5
    assert_array(jnp.asarray(halves).round(), halves.round(), np.float32)  # half to even
    assert_array(jnp.asarray(XM["i32"]).round(), XM["i32"], np.int32)


def test_conj_and_real():
    x_np = XM["f32"]
    x = jnp.asarray(x_np)
    assert_array(x.conj(), x_np, np.float32)
    assert_array(x.conjugate(), x_np, np.float32)
    assert_array(x.real, x_np, np.float32)


# =============================================================================================
# 4. __getitem__
# =============================================================================================

A1 = np.arange(7.0, dtype=np.float32)
A2 = np.arange(20, dtype=np.int32).reshape(4, 5)
A3 = np.arange(60.0, dtype=np.float32).reshape(3, 4, 5)

I = np.array  # NumPy integer index arrays
J = jnp.array  # fjit integer index arrays

INDEX_CASES = [
    # ints
    (A1, 0), (A1, 3), (A1, -1), (A1, -7), (A1, np.int32(2)), (A1, np.int64(-2)), (A1, np.uint8(3)),
    (A2, 1), (A2, -1), (A2, (2, 3)), (A2, (-1, -5)), (A3, (1, 2, 3)), (A3, (-1, 0)),
    # slices
    (A1, slice(None)), (A1, slice(2, None)), (A1, slice(None, -2)), (A1, slice(None, None, -1)),
    (A1, slice(10, -10, -1)), (A1, slice(-10, 10)), (A1, slice(5, 2)), (A1, slice(1, 6, 3)),
    (A2, (slice(1, 3), slice(None, None, 2))), (A2, (slice(None, None, -2), slice(4, 0, -3))),
    (A2, (slice(None), 2)), (A2, (1, slice(None, None, -1))), (A3, (slice(1, None), 0, slice(3))),
    (A3, (slice(None, None, -1), slice(None, None, -1), slice(None, None, -1))),
    (A3, (slice(-2, None), slice(1, -1), slice(None, None, 4))),
    # None / newaxis
    (A1, None), (A1, (None, None)), (A1, (slice(None), None)), (A2, (None, 1)),
    (A2, (1, None, slice(None), None)), (A3, (slice(None), None, 0)), (A2, np.newaxis),
    (A3, (None, Ellipsis, None)), (A3, (slice(None), slice(None), slice(None), None)),
    # Ellipsis
    (A1, Ellipsis), (A2, Ellipsis), (A2, (Ellipsis, 1)), (A2, (1, Ellipsis)),
    (A3, (Ellipsis, 2)), (A3, (0, Ellipsis)), (A3, (0, Ellipsis, 1)), (A3, (Ellipsis, 1, 2)),
    (A3, (1, 2, 3, Ellipsis)), (A3, (Ellipsis, None)), (A3, (slice(None, None, -1), Ellipsis)),
    (A3, (Ellipsis, slice(1, 3), None)),
    # integer arrays: lists, NumPy arrays, fjit arrays
    (A1, [0, 2, 4]), (A1, [-1, -7, 3, 3]), (A1, I([6, 0, 1])), (A1, J([1, 1, 5])),
    (A1, J([[0, 1], [2, -1]])), (A1, I([[[3]]])), (A1, I(3)), (A1, J(3)),
    (A1, I([1, 2], np.uint8)), (A1, J([1, -2], jnp.int8)), (A2, [3, 0]), (A2, J([[1, 2]])),
    (A2, ([0, 1, 3], [4, 0, 2])), (A2, (J([[0], [3]]), J([1, 2, 4]))),
    (A2, (I([[0, 1], [2, 3]]), I([[4], [0]]))), (A2, (J(1), J(2))), (A3, [[1, 0], [2, 1]]),
    (A3, (J([0, 2]), J([1, 3]), J([4, 0]))), (A3, (I([[0], [2]]), I([[1, 2]]), 1)),
    # mixed advanced + basic indexing
    (A2, (slice(None), [0, 2])), (A2, ([0, 2], slice(1, None))), (A2, (Ellipsis, [4, 0])),
    (A2, ([1, 3], -1)), (A2, (None, [1, 3], None, slice(None))),
    (A3, (0, slice(None), [1, 2])),          # separated by a slice: advanced dims go first
    (A3, ([0, 1], slice(None), [1, 2])),     # same
    (A3, (J([0, 2]), slice(1, 3), J([1, 4]))),
    (A3, ([[0], [2]], slice(None), [1, 2, 3])),
    (A3, (slice(None), [0, 1], [1, 2])),     # adjacent: dims stay in place
    (A3, ([0, 1], [1, 2], slice(None))),
    (A3, (slice(None), [0, 3], 4)),
    (A3, (1, [0, 1], 2)), (A3, (1, slice(None), [2])), (A3, ([0, 1], Ellipsis, [1, 2])),
    (A3, (None, [0, 1], slice(None), [[1], [2]])), (A3, (Ellipsis, [0, 1])),
    (A3, (slice(None), None, [0, 2], None)), (A3, ([[1, 0]], None, slice(2), [[2], [3]])),
    (A3, (slice(None, None, -1), [1, 3], slice(None, None, -2))),
    # boolean masks (concrete)
    (A1, A1 > 2), (A1, jnp.asarray(A1) % 2 == 0), (A1, [True, False, True, False, False, True, True]),
    (A2, np.array([True, False, True, True])), (A2, (slice(None), np.array([1, 0, 0, 1, 1], bool))),
    (A2, A2 % 3 == 0), (A2, jnp.asarray(A2) > 100), (A3, A3 % 7 == 1),
    (A3, np.array([True, False, True])), (A3, (np.array([True, False, True]), slice(None), [1, 2])),
    (A3, (slice(None), np.array([True, False, True, True]), 0)),
    (A3, (1, np.ones((4, 5), bool))), (A3, (Ellipsis, np.array([0, 1, 0, 1, 0], bool))),
    (A3, (A3[:, :, 0] > 20, slice(2))), (A2, (True,)), (A2, (Ellipsis, True)),
    # empty results
    (A1, slice(3, 3)), (A1, slice(5, 1)), (A1, slice(1, 5, -1)), (A1, I([], np.int32)),
    (A1, J(np.zeros(0, np.int32))), (A2, (slice(None), I([], np.int32))), (A2, np.zeros((4, 5), bool)),
    (A3, (slice(2, 1), 0)), (A3, (I([], np.int32), slice(None), I([], np.int32))), (A1, []),
]


def _ids(cases):
    return [f"{k}-{c[0].ndim}d-{c[1]!r}"[:80] for k, c in enumerate(cases)]


@pytest.mark.parametrize("base, index", INDEX_CASES, ids=_ids(INDEX_CASES))
def test_getitem(base, index):
    x = jnp.asarray(base)
    expected = base[to_numpy_index(index)]
    result = x[index]
    assert_array(result, expected, base.dtype)
    assert not result.weak_type


@pytest.mark.parametrize("base, index", INDEX_CASES[::3], ids=_ids(INDEX_CASES[::3]))
def test_getitem_under_jit_with_static_index(base, index):
    x = jnp.asarray(base)
    result = fjit.jit(lambda v: v[index])(x)
    assert_array(result, base[to_numpy_index(index)], base.dtype)


@pytest.mark.parametrize("step", [None, 1, 2, 3, -1, -2, -4])
def test_getitem_slice_combinations(step):
    x = jnp.asarray(A1)
    bounds = [None, 0, 1, 3, 6, 7, -1, -3, -7, 10, -10]
    for start in bounds:
        for stop in bounds:
            s = slice(start, stop, step)
            assert_array(x[s], A1[s], np.float32)


@pytest.mark.parametrize("s0", [slice(None), slice(1, None, 2), slice(None, None, -1),
                                slice(5, -10, -2), slice(-2, 10)])
def test_getitem_slice_combinations_2d(s0):
    x = jnp.asarray(A2)
    for s1 in [slice(None), slice(1, 4), slice(None, None, -2), slice(10, None, -3),
               slice(-1, -4, -1), slice(3, 1)]:
        assert_array(x[s0, s1], A2[s0, s1], np.int32)


def test_getitem_rank0():
    x = jnp.asarray(np.float32(3.0))
    assert_array(x[()], np.float32(3.0), np.float32)
    assert_array(x[...], np.float32(3.0), np.float32)
    assert_array(x[None], np.array([3.0]), np.float32)


def test_getitem_rank0_boolean_mask():
    # a full-shape mask of a rank-0 array (and rank-0 boolean array indices) work in NumPy/JAX
    x_np = np.asarray(3.0, np.float32)
    x = jnp.asarray(x_np)
    assert_array(x[x > 0], x_np[x_np > 0], np.float32)
    assert_array(x[x < 0], x_np[x_np < 0], np.float32)
    v = jnp.arange(5.)
    assert_array(v[np.array(True)], np.arange(5.)[np.array(True)], np.float32)
    assert_array(v[jnp.array(False)], np.arange(5.)[np.array(False)], np.float32)


def test_getitem_advanced_dims_move_to_front():
    x = jnp.asarray(A3)
    assert x[0, :, [1, 2]].shape == (2, 4)
    assert x[[0, 1], :, [1, 2]].shape == (2, 4)
    assert x[:, [0, 1], [1, 2]].shape == (3, 2)
    assert x[[[0], [1]], :, [1, 2, 3]].shape == (2, 3, 4)
    assert x[None, 0, :, [1, 2]].shape == (2, 1, 4)


def test_getitem_out_of_bounds_array_indices_clamp():
    x = jnp.arange(5.)
    assert_array(x[jnp.array([7, -1, -9])], [4.0, 4.0, 0.0], np.float32)
    assert_array(x[np.array([100, -100, 2])], [4.0, 0.0, 2.0], np.float32)
    assert_array(x[[5, -6]], [4.0, 0.0], np.float32)
    m = jnp.asarray(A2)
    assert_array(m[jnp.array([10, -10]), :], A2[[3, 0], :], np.int32)
    assert_array(m[:, jnp.array([0, -1, 9])], A2[:, [0, 4, 4]], np.int32)
    big = jnp.arange(300.)
    assert_array(big[jnp.array([-1, -100, 127], jnp.int8)], [299.0, 200.0, 127.0], np.float32)
    assert_array(big[np.array([255, 200], np.uint8)], [255.0, 200.0], np.float32)


@pytest.mark.parametrize("base, index", [
    (A1, 7), (A1, -8), (A1, np.int64(7)), (A2, 4), (A2, (0, 5)), (A2, (-5, 0)),
    (A3, (Ellipsis, 5)), (A3, (0, 4)), (A2, ([0], 7)), (A2, (slice(None), -6)),
])
def test_getitem_out_of_bounds_static_int_raises(base, index):
    with pytest.raises(IndexError):
        jnp.asarray(base)[index]
    with pytest.raises(IndexError):
        fjit.jit(lambda v: v[index])(jnp.asarray(base))


@pytest.mark.parametrize("base, index", [
    (A1, (0, 0)), (A2, (0, 0, 0)), (A2, (Ellipsis, 0, 0, 0)), (A2, (None, 0, 0, 0)),
    (A3, (0, 0, 0, 0)), (A2, (A2 > 3, 0)), (A1, (slice(None), slice(None))),
    (A1, ([0], [0])),
])
def test_getitem_too_many_indices_raises(base, index):
    with pytest.raises(IndexError):
        jnp.asarray(base)[index]


@pytest.mark.parametrize("index", [
    1.0, np.float32(1.0), (0, 1.0), [1.0, 2.0], np.array([1.5]),
    jnp.asarray(1.0), jnp.array([0.0, 1.0]),
])
def test_getitem_float_index_raises(index):
    x = jnp.asarray(A2)
    with pytest.raises(IndexError):
        x[index]


def test_getitem_other_invalid_indices():
    x = jnp.asarray(A2)
    with pytest.raises(IndexError):
        x[..., ...]
    with pytest.raises(ValueError):
        x[::0]
    with pytest.raises(IndexError):
        x["a"]


# =============================================================================================
# 5. indexing under jit with traced indices
# =============================================================================================

def test_jit_traced_scalar_index():
    f = fjit.jit(lambda x, i: x[i])
    x = jnp.asarray(A1)
    for i in range(-7, 7):
        assert_array(f(x, i), A1[i], np.float32)
    assert_array(f(x, jnp.asarray(np.int32(3))), A1[3], np.float32)
    # out of bounds traced scalars clamp like JAX's gather
    assert_array(f(x, 10), A1[6], np.float32)
    assert_array(f(x, -30), A1[0], np.float32)
    m = jnp.asarray(A2)
    assert_array(f(m, 2), A2[2], np.int32)
    assert_array(fjit.jit(lambda x, i: x[i, 1:])(m, 2), A2[2, 1:], np.int32)
    assert_array(fjit.jit(lambda x, i: x[:, i])(m, -1), A2[:, -1], np.int32)
    assert_array(fjit.jit(lambda x, i, j: x[i, ::-1, j])(jnp.asarray(A3), 1, 2),
                 A3[1, ::-1, 2], np.float32)


def test_jit_traced_index_array():
    f = fjit.jit(lambda x, i: x[i])
    x = jnp.asarray(A1)
    idx = np.array([0, -1, 3, 3], np.int32)
    assert_array(f(x, jnp.asarray(idx)), A1[idx], np.float32)
    assert_array(f(x, idx), A1[idx], np.float32)
    assert_array(f(x, jnp.array([7, -1, -9])), [6.0, 6.0, 0.0], np.float32)
    assert_array(f(x, jnp.array([[1, 2], [3, 4]])), A1[[[1, 2], [3, 4]]], np.float32)
    m = jnp.asarray(A2)
    assert_array(fjit.jit(lambda x, i: x[:, i])(m, jnp.array([0, -1, 9])),
                 A2[:, [0, 4, 4]], np.int32)
    assert_array(fjit.jit(lambda x, i, j: x[i, j])(m, jnp.array([0, -1]), jnp.array([1, 2])),
                 A2[[0, -1], [1, 2]], np.int32)
    g = fjit.jit(lambda x, i, j: x[i, :, j])
    i, j = np.array([0, 2]), np.array([1, 4])
    assert_array(g(jnp.asarray(A3), jnp.asarray(i), jnp.asarray(j)), A3[i, :, j], np.float32)
    big = jnp.arange(300.)
    assert_array(f(big, jnp.array([-1, -100, 127], jnp.int8)), [299.0, 200.0, 127.0],
                 np.float32)
    assert_array(f(big, np.array([255, 200], np.uint8)), [255.0, 200.0], np.float32)


def test_jit_traced_boolean_mask_raises():
    x = jnp.asarray(A1)
    with pytest.raises(fjit.NonConcreteBooleanIndexError):
        fjit.jit(lambda x, m: x[m])(x, jnp.asarray(A1 > 2))
    with pytest.raises(fjit.NonConcreteBooleanIndexError):
        fjit.jit(lambda x: x[x > 2])(x)
    with pytest.raises(fjit.NonConcreteBooleanIndexError):
        fjit.jit(lambda x, m: x.at[m].set(0.0))(x, jnp.asarray(A1 > 2))
    with pytest.raises(IndexError):  # it is an IndexError, like JAX's
        fjit.jit(lambda x: x[x > 2])(x)
    # a concrete mask closed over by the traced function is fine
    mask = A1 > 2
    assert_array(fjit.jit(lambda x: x[mask])(x), A1[mask], np.float32)


# =============================================================================================
# 6. .at[...]
# =============================================================================================

def _np_at(op, base, index, values):
    """The NumPy reference of x.at[index].op(values) (unbuffered for add/mul/min/max)."""
    out = base.copy()
    index = to_numpy_index(index)
    values = np.asarray(values)
    if op == "set":
        out[index] = values.astype(out.dtype)
        return out
    ufunc = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "mul": np.multiply,
             "min": np.minimum, "max": np.maximum, "divide": np.divide,
             "power": np.power}[op]
    ufunc.at(out, index, values.astype(out.dtype))
    return out


AT_CASES = [
    # (base, index, values)
    (A1, 2, 10.0),
    (A1, -1, 10.0),
    (A1, slice(1, 4), np.array([1.0, 2.0, 3.0], np.float32)),
    (A1, slice(None, None, -2), 5.0),
    (A1, np.array([1, 1, 3]), np.array([10.0, 20.0, 30.0], np.float32)),
    (A1, J([0, 6, 0, -1]), np.array([1.0, 2.0, 3.0, 4.0], np.float32)),
    (A1, [2, 2, 2], 3.0),
    (A1, A1 > 3, 7.0),
    (A1, Ellipsis, 1.5),
    (A2, 1, np.array([1, 2, 3, 4, 5], np.int32)),
    (A2, (slice(None), 1), 100),
    (A2, (slice(None, None, 2), slice(None, None, -2)), -1),
    (A2, (J([0, 3]), slice(1, 3)), 2),
    (A2, (J([0, 0, 3]), J([1, 1, 2])), np.array([1, 2, 3], np.int32)),
    (A2, (Ellipsis, -1), 3),
    (A2, np.array([True, False, True, False]), np.arange(5, dtype=np.int32)),
    (A2, A2 > 10, 5),
    (A2, slice(1, 3), np.array([[7], [8]], np.int32)),
    (A2, (None, 1), 4),
    (A2, (1, None), np.arange(5, dtype=np.int32)),
    (A2, J([[0, 1], [1, 3]]), 2),
    (A3, (0, slice(None), [1, 2]), np.arange(8, dtype=np.float32).reshape(2, 4)),
    (A3, ([0, 1], slice(None), [1, 1]), np.arange(8, dtype=np.float32).reshape(2, 4)),
    (A3, (slice(None), [0, 0, 3], 2), np.arange(9, dtype=np.float32).reshape(3, 3)),
    (A3, (J([[0], [2]]), J([1, 1, 3])), 2.0),
    (A3, (Ellipsis, J([4, 0, 4])), np.arange(3, dtype=np.float32)),
]

AT_OPS = ["set", "add", "subtract", "multiply", "mul", "min", "max"]


@pytest.mark.parametrize("op", AT_OPS)
@pytest.mark.parametrize("base, index, values", AT_CASES, ids=_ids(AT_CASES))
def test_at_update(base, index, values, op):
    x = jnp.asarray(base)
    before = np.asarray(x).copy()
    result = getattr(x.at[index], op)(values)
    assert_array(result, _np_at(op, base, index, values), base.dtype)
    np.testing.assert_array_equal(np.asarray(x), before)  # x itself is unchanged


@pytest.mark.parametrize("op", AT_OPS)
@pytest.mark.parametrize("base, index, values", AT_CASES[::2], ids=_ids(AT_CASES[::2]))
def test_at_update_under_jit(base, index, values, op):
    x = jnp.asarray(base)
    f = fjit.jit(lambda x, v: getattr(x.at[index], op)(v))
    assert_array(f(x, values), _np_at(op, base, index, values), base.dtype)


def test_at_set_last_write_wins():
    x = jnp.zeros(5)
    idx = np.array([1, 3, 1, 1, 3, 0])
    vals = np.arange(1.0, 7.0, dtype=np.float32)
    expected = np.zeros(5, np.float32)
    expected[idx] = vals
    assert_array(x.at[idx].set(vals), expected, np.float32)
    assert_array(x.at[jnp.asarray(idx)].set(jnp.asarray(vals)), expected, np.float32)
    f = fjit.jit(lambda x, i, v: x.at[i].set(v))
    assert_array(f(x, jnp.asarray(idx), jnp.asarray(vals)), expected, np.float32)
    m = jnp.zeros((3, 2), jnp.int32)
    rows = np.array([2, 0, 2])
    vals2 = np.array([[1, 2], [3, 4], [5, 6]], np.int32)
    expected2 = np.zeros((3, 2), np.int32)
    expected2[rows] = vals2
    assert_array(m.at[rows].set(vals2), expected2, np.int32)


def test_at_divide_and_power():
    base = np.arange(1.0, 8.0, dtype=np.float32)
    x = jnp.asarray(base)
    for index, values in [(np.array([1, 4]), np.array([2.0, 4.0], np.float32)),
                          (slice(0, 3), 2.0), (-1, np.float32(7.0)), (base > 4, 0.5)]:
        assert_array(x.at[index].divide(values), _np_at("divide", base, index, values),
                     np.float32)
        assert_array(x.at[index].power(values), _np_at("power", base, index, values),
                     np.float32)
    assert_array(jnp.arange(5).at[np.array([1, 2])].power(2), [0, 1, 4, 3, 4], np.int32)


def test_at_apply_and_get():
    x = jnp.asarray(A2)
    expected = A2.copy()
    expected[1:3] = expected[1:3] * 10
    assert_array(x.at[1:3].apply(lambda v: v * 10), expected, np.int32)
    expected = A2.copy()
    expected[[0, 3], 2] = -expected[[0, 3], 2]
    assert_array(x.at[np.array([0, 3]), 2].apply(lambda v: -v), expected, np.int32)
    assert_array(x.at[1].get(), A2[1], np.int32)
    assert_array(x.at[:, ::-2].get(), A2[:, ::-2], np.int32)
    assert_array(x.at[np.array([3, 0]), 1:].get(), A2[[3, 0], 1:], np.int32)
    assert_array(x.at[A2 > 12].get(), A2[A2 > 12], np.int32)
    # get clamps out-of-bounds indices by default, like x[idx]
    assert_array(x.at[jnp.array([9, -9])].get(), A2[[3, 0]], np.int32)


def test_at_get_fill():
    x = jnp.arange(7.)
    idx = jnp.array([1, 7, -1, -8, 100])
    assert_array(x.at[idx].get(mode="fill", fill_value=-5), [1.0, -5.0, 6.0, -5.0, -5.0],
                 np.float32)
    assert_array(x.at[idx].get(mode="fill"), [1.0, np.nan, 6.0, np.nan, np.nan], np.float32)
    i = jnp.arange(7)
    imin = np.iinfo(np.int32).min
    assert_array(i.at[idx].get(mode="fill"), [1, imin, 6, imin, imin], np.int32)
    assert_array(i.at[idx].get(mode="fill", fill_value=0), [1, 0, 6, 0, 0], np.int32)
    assert_array(i.at[idx].get(), [1, 6, 6, 0, 6], np.int32)
    m = jnp.asarray(A2)
    assert_array(m.at[jnp.array([0, 4]), 1].get(mode="fill", fill_value=-1), [A2[0, 1], -1],
                 np.int32)
    f = fjit.jit(lambda x, i: x.at[i].get(mode="fill", fill_value=-5.0))
    assert_array(f(x, idx), [1.0, -5.0, 6.0, -5.0, -5.0], np.float32)


def _drop_oob(idx, n):
    idx = np.asarray(idx)
    wrapped = np.where(idx < 0, idx + n, idx)
    keep = (wrapped >= 0) & (wrapped < n)
    return wrapped, keep


@pytest.mark.parametrize("op", ["set", "add", "multiply", "min", "max", "subtract"])
def test_at_out_of_bounds_indices_are_dropped(op):
    base = np.arange(5.0, dtype=np.float32)
    idx = np.array([-1, 5, -6, 2, 100, -5])
    vals = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], np.float32)
    wrapped, keep = _drop_oob(idx, 5)
    expected = _np_at(op, base, wrapped[keep], vals[keep])
    x = jnp.asarray(base)
    assert_array(getattr(x.at[idx], op)(vals), expected, np.float32)
    assert_array(getattr(x.at[jnp.asarray(idx)], op)(jnp.asarray(vals)), expected, np.float32)
    f = fjit.jit(lambda x, i, v: getattr(x.at[i], op)(v))
    assert_array(f(x, jnp.asarray(idx), jnp.asarray(vals)), expected, np.float32)


def test_at_out_of_bounds_multidim_dropped():
    x = jnp.arange(6).reshape(2, 3)
    assert_array(x.at[np.array([0, 1, 2]), np.array([3, 0, 1])].set(-1),
                 [[0, 1, 2], [-1, 4, 5]], np.int32)
    assert_array(x.at[jnp.array([5, -1])].add(10), [[0, 1, 2], [13, 14, 15]], np.int32)
    big = jnp.zeros(300)
    out = big.at[jnp.array([-1, -100], jnp.int8)].set(-5.0)
    assert_array(out[np.array([-1, -100])], [-5.0, -5.0], np.float32)
    assert float(out.sum()) == -10.0


def test_at_jit_traced_scalar_index():
    x = jnp.arange(7.)
    f = fjit.jit(lambda x, i, v: x.at[i].set(v))
    assert_array(f(x, 3, 100.0), _np_at("set", A1, 3, 100.0), np.float32)
    assert_array(f(x, -1, 100.0), _np_at("set", A1, -1, 100.0), np.float32)
    assert_array(f(x, 10, 100.0), A1, np.float32)  # dropped
    g = fjit.jit(lambda x, i, v: x.at[i].add(v))
    assert_array(g(x, jnp.array([0, 0, 2]), jnp.array([1.0, 2.0, 3.0])),
                 [3.0, 1.0, 5.0, 3.0, 4.0, 5.0, 6.0], np.float32)
    h = fjit.jit(lambda x, i: x.at[i, 1:].multiply(2))
    assert_array(h(jnp.asarray(A2), 2), _np_at("multiply", A2, (2, slice(1, None)), 2), np.int32)


def test_at_values_cast_to_array_dtype():
    xi = jnp.arange(7)
    assert_array(xi.at[jnp.array([1, 2])].set(2.7), [0, 2, 2, 3, 4, 5, 6], np.int32)
    assert_array(xi.at[jnp.array([1, 2])].add(jnp.array([2.7, -2.7])),
                 [0, 3, 0, 3, 4, 5, 6], np.int32)
    assert_array(jnp.arange(5, dtype=jnp.int8).at[jnp.array([0, 1])].set(jnp.array([1.9, -1.9])),
                 [1, -1, 2, 3, 4], np.int8)
    assert_array(jnp.arange(5.).at[jnp.array([1, 1])].set(jnp.array([1, 2], jnp.int32)),
                 [0.0, 2.0, 2.0, 3.0, 4.0], np.float32)
    assert_array(jnp.arange(5, dtype=jnp.uint8).at[jnp.array([0, 1])].add(44),
                 [44, 45, 2, 3, 4], np.uint8)
    h = jnp.arange(3, dtype=jnp.float16).at[1].set(np.float64(0.1))
    assert_array(h, np.array([0, 0.1, 2], np.float16), np.float16)
    r = jnp.arange(3.).at[1].set(5)
    assert r.dtype == np.float32 and not r.weak_type


def test_at_bool_arrays():
    xb = jnp.array([True, False, True, False])
    xb_np = np.array([True, False, True, False])
    assert_array(xb.at[jnp.array([0, 1])].set(True), [True, True, True, False], np.bool_)
    assert_array(xb.at[1:].set(False), [True, False, False, False], np.bool_)
    assert_array(xb.at[jnp.array([0, 1])].min(jnp.array([False, True])),
                 [False, False, True, False], np.bool_)
    assert_array(xb.at[jnp.array([0, 1])].max(jnp.array([False, True])),
                 [True, True, True, False], np.bool_)
    assert_array(xb.at[xb_np].set(False), [False, False, False, False], np.bool_)
    assert_array(jnp.zeros(3).at[jnp.array([True, False, True])].set(1.0), [1.0, 0.0, 1.0],
                 np.float32)
    f = fjit.jit(lambda x, i: x.at[i].set(True))
    assert_array(f(xb, jnp.array([3])), [True, False, True, True], np.bool_)


def test_at_broadcasting_values():
    x = jnp.zeros((3, 4), jnp.int32)
    assert_array(x.at[:, 1:3].set(np.array([7, 8], np.int32)),
                 [[0, 7, 8, 0]] * 3, np.int32)
    assert_array(x.at[np.array([0, 2])].add(np.array([[1], [2]], np.int32)),
                 [[1, 1, 1, 1], [0, 0, 0, 0], [2, 2, 2, 2]], np.int32)
    assert_array(x.at[np.array([0, 2])].set(jnp.arange(4)),
                 [[0, 1, 2, 3], [0, 0, 0, 0], [0, 1, 2, 3]], np.int32)
    with pytest.raises((ValueError, TypeError)):
        x.at[0].set(jnp.arange(3))


def test_at_empty_index():
    x = jnp.arange(7.)
    assert_array(x.at[jnp.array([], jnp.int32)].set(5.0), A1, np.float32)
    assert_array(x.at[jnp.array([], jnp.int32)].add(5.0), A1, np.float32)
    assert_array(x.at[3:3].set(5.0), A1, np.float32)
    assert_array(x.at[A1 > 100].set(5.0), A1, np.float32)


def test_at_does_not_mutate():
    base = np.arange(6.0, dtype=np.float32)
    x = jnp.asarray(base)
    view = np.asarray(x)
    y = x.at[np.array([0, 0, 5])].add(1.0)
    z = x.at[1:3].set(-1.0)
    w = fjit.jit(lambda x: x.at[2].multiply(10.0))(x)
    np.testing.assert_array_equal(np.asarray(x), base)
    np.testing.assert_array_equal(view, base)
    assert_array(y, [2.0, 1.0, 2.0, 3.0, 4.0, 6.0], np.float32)
    assert_array(z, [0.0, -1.0, -1.0, 3.0, 4.0, 5.0], np.float32)
    assert_array(w, [0.0, 1.0, 20.0, 3.0, 4.0, 5.0], np.float32)
    # same index object, no aliasing between results
    a = x.at[0].set(9.0)
    b = x.at[0].set(8.0)
    assert float(a[0]) == 9.0 and float(b[0]) == 8.0 and float(x[0]) == 0.0


def test_at_repr():
    assert "_IndexUpdateRef" in repr(jnp.arange(3).at[1])


# =============================================================================================
# 7. Program structure
# =============================================================================================

def test_program_slice_and_flip_is_one_reindex():
    p = fjit.make_program(lambda x: x[1:, ::-1])(jnp.ones((3, 4)))
    assert prim_names(p) == ["reindex"]
    assert p.out_avals[0].shape == (2, 4)


def test_program_traced_index_is_one_reindex():
    p = fjit.make_program(lambda x, i: x[i])(jnp.ones((3, 4)), 1)
    assert prim_names(p) == ["reindex"]
    assert p.out_avals[0].shape == (4,)
    p = fjit.make_program(lambda x, i: x[i])(jnp.ones((3, 4)), jnp.array([0, 2, 2]))
    assert prim_names(p) == ["reindex"]
    assert p.out_avals[0].shape == (3, 4)


@pytest.mark.parametrize("index", [
    (0, slice(None), [1, 2]), ([0, 1], slice(None), [1, 2]), (None, Ellipsis, 1),
    (slice(None, None, 2), None, np.array([0, 3])), (A3 > 30,),
])
def test_program_getitem_is_one_reindex(index):
    p = fjit.make_program(lambda x: x[index])(jnp.asarray(A3))
    assert prim_names(p) == ["reindex"]
    assert p.out_avals[0].shape == A3[index].shape


def test_program_identity_index_has_no_equations():
    p = fjit.make_program(lambda x: x[...])(jnp.ones((3, 4)))
    assert prim_names(p) == []


def test_program_at_add_is_reindex_reduce():
    p = fjit.make_program(lambda x, i, v: x.at[i].add(v))(
        jnp.ones((3, 4)), jnp.array([0, 1]), 1.0)
    names = prim_names(p)
    assert "reindex_reduce" in names
    assert names.count("reindex_reduce") == 1
    p = fjit.make_program(lambda x, v: x.at[1:, ::2].add(v))(jnp.ones((3, 4)), jnp.ones((2, 2)))
    assert prim_names(p).count("reindex_reduce") == 1


def test_python_bool_index_adds_an_axis():
    v = np.arange(5.0, dtype=np.float32)
    assert_array(jnp.asarray(v)[True], v[True], np.float32)
    assert_array(jnp.asarray(v)[False], v[False], np.float32)


def test_at_divide_of_ints_promotes_like_true_division():
    x = jnp.arange(5)
    out = x.at[2].divide(2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out), [0.0, 1.0, 1.0, 3.0, 4.0])
