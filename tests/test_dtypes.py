"""Type promotion against JAX's tables (recorded from jax 0.10.2), weak types, x64."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import dtypes

# result of `a + b` as JAX computes it; '*' marks a weakly typed result.  'i*' and 'f*' are
# Python ints and floats.  Recorded with jax 0.10.2 (x64 off).
NAMES_32 = ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16",
            "bfloat16", "float32", "i*", "f*"]
TABLE_32 = """
bool     bool     int8     int16    int32    uint8    uint16   uint32   float16  bfloat16 float32  int32*   float32*
int8     int8     int8     int16    int32    int16    int32    int32    float16  bfloat16 float32  int8     float32*
int16    int16    int16    int16    int32    int16    int32    int32    float16  bfloat16 float32  int16    float32*
int32    int32    int32    int32    int32    int32    int32    int32    float16  bfloat16 float32  int32    float32*
uint8    uint8    int16    int16    int32    uint8    uint16   uint32   float16  bfloat16 float32  uint8    float32*
uint16   uint16   int32    int32    int32    uint16   uint16   uint32   float16  bfloat16 float32  uint16   float32*
uint32   uint32   int32    int32    int32    uint32   uint32   uint32   float16  bfloat16 float32  uint32   float32*
float16  float16  float16  float16  float16  float16  float16  float16  float16  float32  float32  float16  float16
bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 float32  bfloat16 float32  bfloat16 bfloat16
float32  float32  float32  float32  float32  float32  float32  float32  float32  float32  float32  float32  float32
i*       int32*   int8     int16    int32    uint8    uint16   uint32   float16  bfloat16 float32  int32*   float32*
f*       float32* float32* float32* float32* float32* float32* float32* float16  bfloat16 float32  float32* float32*
"""

NAMES_64 = ["bool", "int8", "int32", "int64", "uint8", "uint32", "uint64", "float16",
            "bfloat16", "float32", "float64", "i*", "f*"]
TABLE_64 = """
bool     bool     int8     int32    int64    uint8    uint32   uint64   float16  bfloat16 float32  float64  int64*   float64*
int8     int8     int8     int32    int64    int16    int64    float64* float16  bfloat16 float32  float64  int8     float64*
int32    int32    int32    int32    int64    int32    int64    float64* float16  bfloat16 float32  float64  int32    float64*
int64    int64    int64    int64    int64    int64    int64    float64* float16  bfloat16 float32  float64  int64    float64*
uint8    uint8    int16    int32    int64    uint8    uint32   uint64   float16  bfloat16 float32  float64  uint8    float64*
uint32   uint32   int64    int64    int64    uint32   uint32   uint64   float16  bfloat16 float32  float64  uint32   float64*
uint64   uint64   float64* float64* float64* uint64   uint64   uint64   float16  bfloat16 float32  float64  uint64   float64*
float16  float16  float16  float16  float16  float16  float16  float16  float16  float32  float32  float64  float16  float16
bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 bfloat16 float32  bfloat16 float32  float64  bfloat16 bfloat16
float32  float32  float32  float32  float32  float32  float32  float32  float32  float32  float32  float64  float32  float32
float64  float64  float64  float64  float64  float64  float64  float64  float64  float64  float64  float64  float64  float64
i*       int64*   int8     int32    int64    uint8    uint32   uint64   float16  bfloat16 float32  float64  int64*   float64*
f*       float64* float64* float64* float64* float64* float64* float64* float16  bfloat16 float32  float64  float64* float64*
"""


def _cases(names, table):
    rows = [line.split() for line in table.strip().splitlines()]
    for row in rows:
        a = row[0]
        for b, expected in zip(names, row[1:]):
            yield a, b, expected


def _pair(name):
    """(dtype, weak) of a table entry."""
    if name == "i*":
        return dtypes.default_int(), True
    if name == "f*":
        return dtypes.default_float(), True
    return np.dtype(dtypes.bfloat16 if name == "bfloat16" else name), False


def _value(name):
    if name == "i*":
        return 1
    if name == "f*":
        return 1.0
    return jnp.zeros((), _pair(name)[0])


def _check(a, b, expected):
    want_weak = expected.endswith("*")
    want = np.dtype(dtypes.bfloat16 if expected.rstrip("*") == "bfloat16"
                    else expected.rstrip("*"))
    assert dtypes.promote(_pair(a), _pair(b)) == (want, want_weak)
    x, y = _value(a), _value(b)
    result = jnp.logical_or(x, y) if a == b == "bool" else jnp.add(x, y)
    if isinstance(x, int) and isinstance(y, int) or isinstance(x, float) and isinstance(y, float) \
            or {type(x), type(y)} == {int, float}:
        result = jnp.add(jnp.asarray(x), jnp.asarray(y))
    assert result.dtype == want, (a, b)
    assert result.weak_type == want_weak, (a, b)


@pytest.mark.parametrize("a,b,expected", list(_cases(NAMES_32, TABLE_32)))
def test_promotion_table_x64_off(a, b, expected):
    _check(a, b, expected)


@pytest.mark.parametrize("a,b,expected", list(_cases(NAMES_64, TABLE_64)))
def test_promotion_table_x64_on(x64, a, b, expected):
    _check(a, b, expected)


def test_promotion_is_symmetric():
    for a in NAMES_32:
        for b in NAMES_32:
            assert dtypes.promote(_pair(a), _pair(b)) == dtypes.promote(_pair(b), _pair(a))


def test_defaults_follow_x64(x64):
    assert jnp.arange(3).dtype == np.int64
    assert jnp.zeros(2).dtype == np.float64
    assert jnp.asarray(np.ones(2)).dtype == np.float64
    fjit.config.update("enable_x64", False)
    assert jnp.arange(3).dtype == np.int32
    assert jnp.zeros(2).dtype == np.float32
    assert jnp.asarray(np.ones(2)).dtype == np.float32  # 64-bit input is canonicalised
    assert jnp.asarray(np.ones(2, np.int64)).dtype == np.int32
    assert jnp.asarray(np.ones(2, np.uint64)).dtype == np.uint32


def test_python_scalars_are_weak():
    x = jnp.ones(3, jnp.int8)
    assert (x + 3).dtype == np.int8
    assert (jnp.ones(3, jnp.float16) * 2.0).dtype == np.float16
    assert (x * 2.5).dtype == np.float32 and (x * 2.5).weak_type
    assert jnp.asarray(2.0).weak_type and not jnp.ones(()).weak_type
    assert (jnp.asarray(2.0) * jnp.float32(3)).weak_type is False


def test_python_int_overflow_is_an_error():
    with pytest.raises(OverflowError):
        jnp.ones(3, jnp.int8) + 300
    with pytest.raises(OverflowError):
        jnp.asarray(2 ** 40)


def test_complex_is_rejected_clearly():
    with pytest.raises(TypeError, match="complex"):
        jnp.asarray(np.ones(2, np.complex64))
    with pytest.raises(TypeError, match="complex"):
        jnp.asarray(1 + 2j)


def test_bfloat16_is_storage_and_computes_in_float32():
    x = jnp.asarray([1.0, 2.5, 3.0], jnp.bfloat16)
    assert x.dtype == dtypes.bfloat16
    y = jnp.exp(x)
    assert y.dtype == dtypes.bfloat16
    expected = np.exp(np.array([1.0, 2.5, 3.0], np.float32)).astype(dtypes.bfloat16)
    np.testing.assert_array_equal(np.asarray(y), expected)
    assert (x + x).dtype == dtypes.bfloat16
    np.testing.assert_array_equal(np.asarray(jnp.sum(x)), np.asarray(6.5, dtypes.bfloat16))


def test_config_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown option"):
        fjit.config.update("no_such_option", 1)
    fjit.config.update("jax_enable_x64", False)  # JAX's spelling works too
    assert fjit.config.enable_x64 is False


def test_scalar_types_are_dtypes_and_constructors():
    assert np.dtype(jnp.float32) == np.float32
    assert jnp.float32 == np.float32
    x = jnp.int8(5)
    assert x.dtype == np.int8 and x.shape == () and int(x) == 5
    assert jnp.zeros(2, dtype=jnp.uint8).dtype == np.uint8
    assert jnp.promote_types(jnp.int8, jnp.uint8) == np.int16
    assert jnp.result_type(jnp.ones(2, jnp.int8), 2.0) == np.float32


@pytest.mark.parametrize("scalar", [np.float64(0.5), np.float32(0.5), np.int64(3), np.bool_(True)])
def test_numpy_scalars_are_strongly_typed_under_jit_as_in_eager(x64, scalar):
    """np.float64 subclasses Python's float, but it is a NumPy value with a dtype: strongly
    typed, as in JAX (the fuzzer found jit treating it as weak: f16 + np.float64 gave f16)."""
    x = np.ones(3, np.float16)
    add = lambda a, b: jnp.where(a < 0, a, b)
    eager, jitted = add(x, scalar), fjit.jit(add)(x, scalar)
    want = {np.float64: np.float64, np.float32: np.float32}.get(type(scalar), np.float16)
    assert eager.dtype == jitted.dtype == want
    assert not fjit.jit(lambda s: s)(scalar).weak_type
