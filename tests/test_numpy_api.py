"""fjit.numpy against NumPy, function by function.

Every table row names an fjit.numpy function, its NumPy counterpart and the inputs to call
them with.  `A(shape, dtype, domain)` is an input generator: a deterministic random NumPy array
(made when the test runs), turned into an fjit array for fjit.  `check` runs the fjit function
eagerly and under `fjit.jit` (array arguments traced, everything else static) and compares both
results with NumPy's: the values, with a tolerance suited to the dtype, and the dtype itself.

fjit follows JAX's type promotion, not NumPy's: with x64 off 64-bit results become 32-bit
(`canonical`), Python scalars are weakly typed, integer inputs to inexact functions become the
default float, cumsum keeps narrow integer types, ...  Where JAX's dtype differs from NumPy's
the row or test states JAX's dtype (found by running jax.numpy; these tests do not import JAX).
"""
from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp

F16, F32, F64 = "float16", "float32", "float64"
I8, I32, I64 = "int8", "int32", "int64"
U8 = "uint8"
BOOL = "bool"
ALL = (F32, I32, I8, U8, BOOL)
NUMERIC = (F32, I32, I8, U8)
INTEGER = (I32, I8, U8)
INT_BOOL = (I32, I8, U8, BOOL)


# --- dtype rules ----------------------------------------------------------------------------

def x64_enabled():
    return bool(fjit.config.enable_x64)


def canonical(dtype):
    """JAX's dtype for a NumPy result dtype: without x64, 64-bit types become 32-bit."""
    dtype = np.dtype(dtype)
    if x64_enabled():
        return dtype
    return {np.dtype(I64): np.dtype(I32), np.dtype("uint64"): np.dtype("uint32"),
            np.dtype(F64): np.dtype(F32)}.get(dtype, dtype)


def default_float():
    return np.dtype(F64 if x64_enabled() else F32)


def default_int():
    return np.dtype(I64 if x64_enabled() else I32)


def _is_float(dtype):
    return np.issubdtype(np.dtype(dtype), np.floating)


# --- input generators -----------------------------------------------------------------------

_FLOAT_RANGES = {"any": (-3.0, 3.0), "pos": (0.25, 4.0), "unit": (-0.9, 0.9), "ge1": (1.1, 4.0),
                 "small": (-1.5, 1.5), "shift": (0.0, 3.0)}
_INT_RANGES = {"any": (-3, 3), "pos": (1, 5), "unit": (-1, 1), "ge1": (1, 4), "small": (-2, 2),
               "shift": (0, 3)}


def rand(shape, dtype=F32, domain="any", seed=0):
    """A deterministic random array.  Domains: any, pos (> 0), unit (|x| < 1), ge1 (>= 1),
    small, shift (0..3), nonzero (|x| >= 0.25, both signs), nan (any, with ~25% NaNs)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    rng = np.random.default_rng(zlib.crc32(repr((shape, dtype.name, domain, seed)).encode()))
    if dtype == np.bool_:
        if domain in ("pos", "ge1", "nonzero"):
            return np.ones(shape, bool)
        return np.asarray(rng.random(shape) < 0.5)
    if domain == "nonzero":
        magnitude = rand(shape, dtype, "pos", seed)
        if np.issubdtype(dtype, np.unsignedinteger):
            return magnitude
        return np.where(rng.random(shape) < 0.5, -magnitude, magnitude).astype(dtype)
    if domain == "nan":
        x = rand(shape, dtype, "any", seed)
        if _is_float(dtype):
            x = np.where(rng.random(shape) < 0.25, np.nan, x).astype(dtype)
        return x
    if _is_float(dtype):
        lo, hi = _FLOAT_RANGES[domain]
        return np.asarray(rng.uniform(lo, hi, shape)).astype(dtype)
    lo, hi = _INT_RANGES[domain]
    if np.issubdtype(dtype, np.unsignedinteger):
        lo = max(lo, 0)
    return np.asarray(rng.integers(lo, hi + 1, shape)).astype(dtype)


class A:
    """Input generator: a random array of `shape` and `dtype` drawn from `domain`."""

    def __init__(self, shape, dtype=F32, domain="any", seed=0):
        self.shape, self.dtype, self.domain, self.seed = tuple(shape), np.dtype(dtype), domain, seed

    def make(self):
        return rand(self.shape, self.dtype, self.domain, self.seed)

    def __repr__(self):
        return f"{self.dtype.name}{list(self.shape)}"


class S:
    """A positional argument that is static under jit even though it is a Python scalar."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"S({self.value!r})"


def _make(x):
    if isinstance(x, A):
        return x.make()
    if isinstance(x, S):
        return S(_make(x.value))
    if isinstance(x, (list, tuple)) and any(isinstance(e, A) for e in x):
        return type(x)(_make(e) for e in x)
    return x


def _is_arraylike(x):
    return isinstance(x, (np.ndarray, np.generic))


def _is_array_seq(x):
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_arraylike(e) for e in x)


def _to_fjit(x):
    if _is_arraylike(x):
        return jnp.asarray(x)
    if _is_array_seq(x):
        return type(x)(jnp.asarray(e) for e in x)
    return x


def _frozen(x):
    """A hashable version of a static argument (lists become tuples)."""
    if isinstance(x, (list, tuple)):
        return tuple(_frozen(e) for e in x)
    return x


# --- comparing results ----------------------------------------------------------------------

_TOLERANCE = {np.dtype(F16): 1e-2, np.dtype(F32): 2e-5, np.dtype(F64): 1e-12}


def _tolerance(*dtypes):
    return max([_TOLERANCE.get(np.dtype(d), 0.0) for d in dtypes] + [0.0])


def _expected_dtype(dtype, want):
    if dtype is None:
        return canonical(want.dtype)
    if callable(dtype) and not isinstance(dtype, (type, np.dtype)):
        return np.dtype(dtype())
    return np.dtype(dtype)


def assert_matches(got, want, dtype=None, tol=None, where="", signed_zeros=False):
    """`got` (fjit) equals `want` (NumPy): same structure, shape, JAX dtype and values."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)), f"{where}: expected a sequence, got {type(got)}"
        assert len(got) == len(want), f"{where}: {len(got)} results, NumPy has {len(want)}"
        dtypes = dtype if isinstance(dtype, (tuple, list)) else [dtype] * len(want)
        for k, (g, w, d) in enumerate(zip(got, want, dtypes)):
            assert_matches(g, w, d, tol, f"{where}[{k}]", signed_zeros)
        return
    assert isinstance(got, jnp.ndarray), f"{where}: expected an fjit array, got {type(got)}"
    want = np.asarray(want)
    expected = _expected_dtype(dtype, want)
    assert got.dtype == expected, f"{where}: dtype {got.dtype}, expected {expected}"
    assert tuple(got.shape) == want.shape, f"{where}: shape {got.shape}, expected {want.shape}"
    value = np.asarray(got)
    if _is_float(value.dtype) or _is_float(want.dtype):
        t = _tolerance(expected, want.dtype) if tol is None else tol
        np.testing.assert_allclose(value.astype(np.float64), want.astype(np.float64), rtol=t,
                                   atol=t, equal_nan=True, err_msg=where)
        if signed_zeros:
            zeros = want == 0
            np.testing.assert_array_equal(np.signbit(value[zeros]), np.signbit(want[zeros]),
                                          err_msg=f"{where}: signs of zeros")
    else:
        np.testing.assert_array_equal(value, want, err_msg=where)


def check(fn, np_fn, args=(), kwargs=None, *, dtype=None, tol=None, jit=True, static_all=False,
          signed_zeros=False):
    """Run `fn` (an fjit.numpy name or a function) eagerly and under jit and compare both with
    `np_fn` on the same inputs.  Under jit, arrays (and sequences of arrays) are traced, and so
    are positional Python scalars (weakly typed) unless wrapped in S() or `static_all`; all
    other arguments (shapes, axes, modes, ...) are static."""
    kwargs = {k: _make(v) for k, v in (kwargs or {}).items()}
    args = [_make(a) for a in args]
    plain = [a.value if isinstance(a, S) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's empty-slice warnings
        want = np_fn(*plain, **kwargs)
    f = getattr(jnp, fn) if isinstance(fn, str) else fn
    got = f(*[_to_fjit(a) for a in plain], **{k: _to_fjit(v) for k, v in kwargs.items()})
    assert_matches(got, want, dtype, tol, "eager", signed_zeros)
    if not jit:
        return

    def dynamic(a):
        if isinstance(a, S):
            return False
        if _is_arraylike(a) or _is_array_seq(a):
            return True
        return type(a) in (bool, int, float) and not static_all

    static_nums = tuple(k for k, a in enumerate(args) if not dynamic(a))
    static_names = tuple(k for k, v in kwargs.items() if not (_is_arraylike(v) or
                                                                 _is_array_seq(v)))
    jitted = fjit.jit(f, static_argnums=static_nums, static_argnames=static_names)
    got = jitted(*[_frozen(a) if k in static_nums else _to_fjit(a) for k, a in enumerate(plain)],
                 **{k: _frozen(v) if k in static_names else _to_fjit(v)
                    for k, v in kwargs.items()})
    assert_matches(got, want, dtype, tol, "jit", signed_zeros)


def C(id, fn, np_fn, *args, expect=None, tol=None, jit=True, **kwargs):
    """A table row: check(fn, np_fn, args, kwargs) under the pytest id `id`; `expect` is the
    result dtype where JAX's differs from NumPy's (canonicalised)."""
    return pytest.param(fn, np_fn, args, kwargs, expect, tol, jit, id=id)


CASE_ARGS = "fn, np_fn, args, kwargs, dtype, tol, jit"


def _inexact(np_fn):
    """The NumPy function on integer/bool arrays converted to float64 first: JAX promotes them
    to the default float, where NumPy would pick float16 for 8-bit types."""
    def ref(*args, **kwargs):
        args = [a.astype(np.float64) if _is_arraylike(a) and not _is_float(a.dtype) else a
                for a in args]
        return np_fn(*args, **kwargs)
    return ref


# ============================================================================================
# Creation
# ============================================================================================

def _np_empty(shape, dtype=None):  # fjit's empty is zeros; NumPy's is uninitialised
    return np.zeros(shape, dtype)


def _np_empty_like(a, dtype=None, shape=None):
    return np.zeros_like(a, dtype, shape=shape)


CREATION = [
    C("array-nested-floats", "array", np.array, [[1.0, 2.0], [3.0, 4.0]]),
    C("array-ints", "array", np.array, [1, 2, 3]),
    C("array-mixed-scalars", "array", np.array, [1, 2.5, True]),
    C("array-bools", "array", np.array, [True, False]),
    C("array-dtype-int8", "array", np.array, [[1, 2], [3, 4]], dtype="int8"),
    C("array-ndmin", "array", np.array, [1.0, 2.0], ndmin=3),
    C("array-python-float", "array", np.array, 3.5),
    C("array-from-float64", "array", np.array, A((2, 3), F64)),
    C("array-from-uint8", "array", np.array, A((2, 3), U8)),
    C("array-empty", "array", np.array, A((0, 3))),
    C("asarray-list", "asarray", np.asarray, [[1, 2], [3, 4]]),
    C("asarray-int8", "asarray", np.asarray, A((4,), I8)),
    C("asarray-dtype", "asarray", np.asarray, A((2, 2), I32), dtype="float32"),
    C("asarray-bool-to-int8", "asarray", np.asarray, A((3,), BOOL), dtype="int8"),
    C("asarray-python-int", "asarray", np.asarray, 2),
    C("copy", "copy", np.copy, A((2, 3), I8)),
    C("zeros", "zeros", np.zeros, (2, 3)),
    C("zeros-int-shape-int8", "zeros", np.zeros, 4, dtype="int8"),
    C("zeros-scalar", "zeros", np.zeros, ()),
    C("zeros-empty", "zeros", np.zeros, (0, 3)),
    C("ones", "ones", np.ones, (2, 3)),
    C("ones-bool", "ones", np.ones, (2, 3), dtype="bool"),
    C("ones-uint8", "ones", np.ones, 3, dtype="uint8"),
    C("ones-float64-is-float32", "ones", np.ones, (2,), dtype="float64"),
    C("full-int", "full", np.full, (2, 3), 7),
    C("full-float", "full", np.full, (2, 3), 1.5),
    C("full-dtype", "full", np.full, (2,), 2.5, dtype="int8"),
    C("full-bool", "full", np.full, (2, 2), True),
    C("full-array-fill", "full", np.full, (2, 3), A((3,))),
    C("full-scalar-shape", "full", np.full, (), 4.0),
    C("empty", "empty", _np_empty, (2, 3)),
    C("empty-int8", "empty", _np_empty, (3,), dtype="int8"),
    C("zeros_like", "zeros_like", np.zeros_like, A((2, 3), I8)),
    C("zeros_like-dtype", "zeros_like", np.zeros_like, A((2, 3)), dtype="int32"),
    C("zeros_like-shape", "zeros_like", np.zeros_like, A((2, 3), U8), shape=(4, 1)),
    C("ones_like", "ones_like", np.ones_like, A((2, 3))),
    C("ones_like-bool", "ones_like", np.ones_like, A((2,), BOOL)),
    C("ones_like-scalar", "ones_like", np.ones_like, A((), I32)),
    C("full_like-int8", "full_like", np.full_like, A((2, 3), I8), 3),
    C("full_like-dtype", "full_like", np.full_like, A((2, 3)), 2.5, dtype="int32"),
    C("full_like-truncates", "full_like", np.full_like, A((3,), I8), 2.7),
    C("full_like-shape", "full_like", np.full_like, A((3,)), 1.0, shape=(2, 2)),
    C("empty_like", "empty_like", _np_empty_like, A((2, 3), U8)),
    C("arange-stop", "arange", np.arange, 5),
    C("arange-start-stop-step", "arange", np.arange, 2, 10, 3),
    C("arange-negative-step", "arange", np.arange, 10, 2, -3),
    C("arange-negative-range", "arange", np.arange, -1, -8, -2),
    C("arange-float-step", "arange", np.arange, 0.0, 1.0, 0.1),
    C("arange-float-step-int-bounds", "arange", np.arange, 1, 2, 0.3),
    C("arange-negative-float-step", "arange", np.arange, 5, 0, -1.5),
    C("arange-float-stop", "arange", np.arange, 3.5),
    C("arange-empty", "arange", np.arange, 0),
    C("arange-empty-reversed", "arange", np.arange, 5, 1),
    C("arange-empty-wrong-sign-step", "arange", np.arange, 1, 5, -1),
    C("arange-dtype-float32", "arange", np.arange, 4, dtype="float32"),
    C("arange-dtype-int8", "arange", np.arange, -3, 3, dtype="int8"),
    C("linspace", "linspace", np.linspace, 0, 1, 5),
    C("linspace-default-num", "linspace", np.linspace, -2.0, 3.0),
    C("linspace-no-endpoint", "linspace", np.linspace, 0, 1, 5, endpoint=False),
    C("linspace-retstep", "linspace", np.linspace, 0, 10, 6, retstep=True),
    C("linspace-retstep-no-endpoint", "linspace", np.linspace, 0, 10, 4, endpoint=False,
      retstep=True),
    C("linspace-num1", "linspace", np.linspace, 2.0, 3.0, 1),
    C("linspace-num1-retstep", "linspace", np.linspace, 2.0, 3.0, 1, retstep=True),
    C("linspace-num0", "linspace", np.linspace, 0, 1, 0),
    C("linspace-descending", "linspace", np.linspace, 5, -5, 7),
    C("linspace-int-dtype", "linspace", np.linspace, -1, 1, 7, dtype="int32"),
    C("linspace-array-endpoints", "linspace", np.linspace, np.array([0.0, 1.0]),
      np.array([1.0, 3.0]), 4),
    C("linspace-array-endpoints-axis1", "linspace", np.linspace, np.array([0.0, 1.0]),
      np.array([1.0, 3.0]), 4, axis=1),
    C("linspace-array-start-scalar-stop-axis-1", "linspace", np.linspace,
      np.array([[0.0, 1.0], [2.0, 3.0]]), 5.0, 3, axis=-1),
    C("linspace-array-no-endpoint-retstep", "linspace", np.linspace, np.array([0.0, 1.0]),
      np.array([1.0, 3.0]), 4, endpoint=False, retstep=True),
    C("logspace", "logspace", np.logspace, 0, 2, 5),
    C("logspace-base2", "logspace", np.logspace, 0, 3, 4, base=2.0),
    C("logspace-no-endpoint", "logspace", np.logspace, 0, 2, 4, endpoint=False),
    C("logspace-descending", "logspace", np.logspace, 1, -1, 3),
    C("logspace-array-endpoints-axis1", "logspace", np.logspace, np.array([0.0, 1.0]),
      np.array([1.0, 3.0]), 3, axis=1),
    C("geomspace", "geomspace", np.geomspace, 1, 1000, 4),
    C("geomspace-no-endpoint", "geomspace", np.geomspace, 1, 256, 9, endpoint=False),
    C("geomspace-descending", "geomspace", np.geomspace, 2.0, 1.0, 5),
    C("geomspace-negative", "geomspace", np.geomspace, -1.0, -1000.0, 4),
    C("geomspace-array-endpoints-axis1", "geomspace", np.geomspace, np.array([1.0, 10.0]),
      np.array([100.0, 1000.0]), 3, axis=1),
    C("eye", "eye", np.eye, 3),
    C("eye-rectangular", "eye", np.eye, 3, 4),
    C("eye-k1", "eye", np.eye, 3, 4, k=1),
    C("eye-k-2", "eye", np.eye, 4, 3, k=-2),
    C("eye-k-beyond", "eye", np.eye, 3, k=5),
    C("eye-M-keyword", "eye", np.eye, 3, M=2),
    C("eye-int8", "eye", np.eye, 2, dtype="int8"),
    C("eye-empty", "eye", np.eye, 0),
    C("identity", "identity", np.identity, 3),
    C("identity-bool", "identity", np.identity, 2, dtype="bool"),
    C("tri", "tri", np.tri, 3),
    C("tri-k1-rect", "tri", np.tri, 3, 4, k=1),
    C("tri-k-1-rect", "tri", np.tri, 4, 3, k=-1),
    C("tri-k2", "tri", np.tri, 2, 5, 2),
    C("tri-int32", "tri", np.tri, 3, dtype="int32"),
    C("tril", "tril", np.tril, A((3, 4))),
    C("tril-k1", "tril", np.tril, A((3, 4)), k=1),
    C("tril-k-1", "tril", np.tril, A((4, 3)), k=-1),
    C("tril-k-beyond", "tril", np.tril, A((3, 4)), k=-5),
    C("tril-batched-int8", "tril", np.tril, A((2, 3, 3), I8), k=0),
    C("triu", "triu", np.triu, A((3, 4))),
    C("triu-k2", "triu", np.triu, A((3, 4)), k=2),
    C("triu-k-1", "triu", np.triu, A((4, 3)), k=-1),
    C("triu-batched-bool", "triu", np.triu, A((2, 3, 3), BOOL), k=1),
    C("meshgrid-xy", "meshgrid", np.meshgrid, A((3,)), A((4,), seed=1)),
    C("meshgrid-ij", "meshgrid", np.meshgrid, A((3,)), A((4,), seed=1), indexing="ij"),
    C("meshgrid-xy-sparse", "meshgrid", np.meshgrid, A((3,)), A((4,), seed=1), sparse=True),
    C("meshgrid-ij-sparse", "meshgrid", np.meshgrid, A((3,)), A((4,), seed=1), sparse=True,
      indexing="ij"),
    C("meshgrid-three-xy", "meshgrid", np.meshgrid, A((2,)), A((3,), I32), A((4,), U8)),
    C("meshgrid-three-ij-sparse", "meshgrid", np.meshgrid, A((2,)), A((3,)), A((4,)),
      indexing="ij", sparse=True),
    C("meshgrid-one", "meshgrid", np.meshgrid, A((3,))),
    C("meshgrid-flattens-2d", "meshgrid", np.meshgrid, A((2, 2)), A((3,))),
    C("indices", "indices", np.indices, (2, 3)),
    C("indices-sparse", "indices", np.indices, (2, 3), sparse=True),
    C("indices-int8", "indices", np.indices, (3,), dtype="int8"),
    C("indices-3d", "indices", np.indices, (2, 1, 3)),
    C("indices-empty", "indices", np.indices, (0, 2)),
]


@pytest.mark.parametrize(CASE_ARGS, CREATION)
def test_creation(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit, static_all=True)


def test_x64_off_canonicalises_inputs():
    assert jnp.asarray(np.ones(3, np.float64)).dtype == np.float32
    assert jnp.asarray(np.ones(3, np.int64)).dtype == np.int32
    assert jnp.asarray(np.ones(3, np.uint64)).dtype == np.uint32
    assert jnp.zeros(3, dtype=jnp.float64).dtype == np.float32


# ============================================================================================
# Element-wise functions
# ============================================================================================

class U:
    """A unary element-wise function: NumPy reference, input domain, dtypes to test.
    inexact: JAX turns integer/bool inputs into the default float (compare against NumPy on
    float64 inputs).  jax_dtype(input dtype): the result dtype where JAX differs from NumPy."""

    def __init__(self, name, ref, domain="any", dtypes=ALL, inexact=False, jax_dtype=None):
        self.name, self.ref, self.domain, self.dtypes = name, ref, domain, dtypes
        self.inexact, self.jax_dtype = inexact, jax_dtype


def _bool_to_default_int(dtype):
    return default_int() if dtype == np.bool_ else None


def _np_positive(x):  # NumPy rejects bool; JAX returns it unchanged
    return np.positive(x) if x.dtype != bool else x.copy()


UNARY = [
    U("abs", np.abs),
    U("absolute", np.absolute),
    U("fabs", np.fabs, inexact=True),
    U("negative", np.negative, dtypes=NUMERIC),
    U("positive", _np_positive),
    U("sign", np.sign, dtypes=NUMERIC),
    U("square", np.square, jax_dtype=_bool_to_default_int),
    U("sqrt", np.sqrt, "pos", inexact=True),
    U("cbrt", np.cbrt, inexact=True),
    U("reciprocal", np.reciprocal, "nonzero", inexact=True),
    U("exp", np.exp, inexact=True),
    U("exp2", np.exp2, inexact=True),
    U("expm1", np.expm1, inexact=True),
    U("log", np.log, "pos", inexact=True),
    U("log1p", np.log1p, "pos", inexact=True),
    U("log2", np.log2, "pos", inexact=True),
    U("log10", np.log10, "pos", inexact=True),
    U("sin", np.sin, inexact=True),
    U("cos", np.cos, inexact=True),
    U("tan", np.tan, "unit", inexact=True),
    U("arcsin", np.arcsin, "unit", inexact=True),
    U("asin", np.asin, "unit", inexact=True),
    U("arccos", np.arccos, "unit", inexact=True),
    U("acos", np.acos, "unit", inexact=True),
    U("arctan", np.arctan, inexact=True),
    U("atan", np.atan, inexact=True),
    U("sinh", np.sinh, inexact=True),
    U("cosh", np.cosh, inexact=True),
    U("tanh", np.tanh, inexact=True),
    U("arcsinh", np.arcsinh, inexact=True),
    U("asinh", np.asinh, inexact=True),
    U("arccosh", np.arccosh, "ge1", inexact=True),
    U("acosh", np.acosh, "ge1", inexact=True),
    U("arctanh", np.arctanh, "unit", inexact=True),
    U("atanh", np.atanh, "unit", inexact=True),
    U("deg2rad", np.deg2rad, inexact=True),
    U("radians", np.radians, inexact=True),
    U("rad2deg", np.rad2deg, inexact=True),
    U("degrees", np.degrees, inexact=True),
    U("floor", np.floor),
    U("ceil", np.ceil),
    U("trunc", np.trunc),
    U("fix", np.fix),
    U("rint", np.rint, inexact=True),  # JAX: rint of integers is the default float
    U("round", np.round, dtypes=NUMERIC),
    U("around", np.round, dtypes=NUMERIC),
    U("isfinite", np.isfinite),
    U("isinf", np.isinf),
    U("isnan", np.isnan),
    U("isposinf", np.isposinf),
    U("isneginf", np.isneginf),
    U("signbit", np.signbit),
    U("logical_not", np.logical_not),
    U("invert", np.invert, dtypes=INT_BOOL),
    U("bitwise_not", np.bitwise_not, dtypes=INT_BOOL),
    U("bitwise_invert", np.bitwise_invert, dtypes=INT_BOOL),
]

UNARY_SHAPES = [(), (0,), (2, 3), (1, 3, 2)]


@pytest.mark.parametrize("u, dtype", [pytest.param(u, d, id=f"{u.name}-{d}")
                                      for u in UNARY for d in u.dtypes])
def test_unary(u, dtype):
    ref = _inexact(u.ref) if u.inexact else u.ref
    expected = u.jax_dtype(np.dtype(dtype)) if u.jax_dtype else None
    for k, shape in enumerate(UNARY_SHAPES):
        check(u.name, ref, [A(shape, dtype, u.domain, seed=k)], dtype=expected)


SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5,
                    1e-30, -3.7, 7.0], np.float32)

UNARY_SPECIAL = ["abs", "fabs", "negative", "positive", "sign", "square", "sqrt", "cbrt",
                 "reciprocal", "exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sin",
                 "tanh", "arctan", "arcsinh", "floor", "ceil", "trunc", "fix", "rint", "round",
                 "isfinite", "isinf", "isnan", "isposinf", "isneginf", "signbit", "logical_not"]
# Functions whose NumPy result keeps the sign of zero: -0.0 must stay -0.0.
SIGNED_ZERO = {"negative", "floor", "ceil", "trunc", "fix", "rint", "round", "abs", "fabs"}


@pytest.mark.parametrize("name", UNARY_SPECIAL)
def test_unary_special_values(name):
    check(name, getattr(np, name), [SPECIAL], signed_zeros=name in SIGNED_ZERO)


def test_signbit_of_negative_zero_and_nan():
    x = np.array([-0.0, 0.0, -1.0, 1.0, -np.inf, np.inf, np.nan, -np.nan], np.float32)
    check("signbit", np.signbit, [x])
    assert np.asarray(jnp.signbit(jnp.asarray(x))).tolist() == [True, False, True, False, True,
                                                                False, False, True]


ROUND_CASES = [
    C("round-decimals-1", "round", np.round, A((2, 3)), decimals=1),
    C("round-decimals-2", "round", np.round, A((4,), seed=3), decimals=2),
    C("round-decimals-minus1-float", "round", np.round,
      np.array([15.0, 25.0, -15.0, 149.0, 151.0, 0.4], np.float32), decimals=-1),
    C("round-half-even", "round", np.round, np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32)),
    C("round-int-decimals-minus1", "round", np.round,
      np.array([15, 25, -15, -25, 14, 5, -5, 35], np.int32), decimals=-1),
    C("round-int8-decimals-1", "round", np.round, A((3,), I8), decimals=1),
    C("around-decimals-1", "around", np.round, A((2, 3)), decimals=1),
]


@pytest.mark.parametrize(CASE_ARGS, ROUND_CASES)
def test_round(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


class B:
    """A binary element-wise function.  d1/d2: the operands' domains.  bool_to_int: JAX gives
    the default int for two bool operands (NumPy gives int8)."""

    def __init__(self, name, ref, d1="any", d2="any", dtypes=ALL, inexact=False,
                 bool_to_int=False):
        self.name, self.ref, self.d1, self.d2, self.dtypes = name, ref, d1, d2, dtypes
        self.inexact, self.bool_to_int = inexact, bool_to_int


BINARY = [
    B("add", np.add),
    B("subtract", np.subtract, dtypes=NUMERIC),
    B("multiply", np.multiply),
    B("divide", np.divide, d2="nonzero", inexact=True),
    B("true_divide", np.true_divide, d2="nonzero", inexact=True),
    B("floor_divide", np.floor_divide, d2="nonzero", bool_to_int=True),
    B("remainder", np.remainder, d2="nonzero", bool_to_int=True),
    B("mod", np.mod, d2="nonzero", bool_to_int=True),
    B("fmod", np.fmod, d2="nonzero", bool_to_int=True),
    B("divmod", np.divmod, d2="nonzero", bool_to_int=True),
    B("power", np.power, d2="shift", bool_to_int=True),
    B("pow", np.pow, d2="shift", bool_to_int=True),
    B("float_power", np.float_power, d1="pos", inexact=True),
    B("maximum", np.maximum),
    B("minimum", np.minimum),
    B("fmax", np.fmax),
    B("fmin", np.fmin),
    B("arctan2", np.arctan2, inexact=True),
    B("atan2", np.atan2, inexact=True),
    B("hypot", np.hypot, inexact=True),
    B("logaddexp", np.logaddexp, inexact=True),
    B("logaddexp2", np.logaddexp2, inexact=True),
    B("copysign", np.copysign, inexact=True),
    B("heaviside", np.heaviside, inexact=True),
    B("nextafter", np.nextafter, inexact=True),
    B("equal", np.equal),
    B("not_equal", np.not_equal),
    B("less", np.less),
    B("less_equal", np.less_equal),
    B("greater", np.greater),
    B("greater_equal", np.greater_equal),
    B("logical_and", np.logical_and),
    B("logical_or", np.logical_or),
    B("logical_xor", np.logical_xor),
    B("bitwise_and", np.bitwise_and, dtypes=INT_BOOL),
    B("bitwise_or", np.bitwise_or, dtypes=INT_BOOL),
    B("bitwise_xor", np.bitwise_xor, dtypes=INT_BOOL),
    B("left_shift", np.left_shift, d2="shift", dtypes=INT_BOOL, bool_to_int=True),
    B("bitwise_left_shift", np.bitwise_left_shift, d2="shift", dtypes=INT_BOOL,
      bool_to_int=True),
    B("right_shift", np.right_shift, d2="shift", dtypes=INT_BOOL, bool_to_int=True),
    B("bitwise_right_shift", np.bitwise_right_shift, d2="shift", dtypes=INT_BOOL,
      bool_to_int=True),
]

BINARY_SHAPES = [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 1, 3), (3,)),
                 ((0, 3), (1, 3)), ((), ())]


@pytest.mark.parametrize("b, dtype", [pytest.param(b, d, id=f"{b.name}-{d}")
                                      for b in BINARY for d in b.dtypes])
def test_binary(b, dtype):
    ref = _inexact(b.ref) if b.inexact else b.ref
    expected = default_int if b.bool_to_int and dtype == BOOL else None
    for k, (s1, s2) in enumerate(BINARY_SHAPES):
        check(b.name, ref, [A(s1, dtype, b.d1, seed=k), A(s2, dtype, b.d2, seed=k + 10)],
              dtype=expected)


MIXED_PAIRS = [(I8, U8), (I32, F32), (BOOL, I8), (U8, I32), (I8, F32), (U8, F32)]
MIXED_OPS = [B("add", np.add), B("subtract", np.subtract), B("multiply", np.multiply),
             B("true_divide", np.true_divide, d2="nonzero", inexact=True),
             B("floor_divide", np.floor_divide, d2="nonzero"),
             B("remainder", np.remainder, d2="nonzero"),
             B("power", np.power, d2="shift"), B("maximum", np.maximum),
             B("fmin", np.fmin), B("less", np.less), B("equal", np.equal),
             B("arctan2", np.arctan2, inexact=True), B("logical_xor", np.logical_xor)]


@pytest.mark.parametrize("b", MIXED_OPS, ids=lambda b: b.name)
@pytest.mark.parametrize("d1, d2", MIXED_PAIRS, ids=lambda d: d)
def test_binary_mixed_dtypes(b, d1, d2):
    ref = _inexact(b.ref) if b.inexact else b.ref
    check(b.name, ref, [A((2, 3), d1, b.d1, seed=1), A((3,), d2, b.d2, seed=2)])
    check(b.name, ref, [A((3,), d2, b.d1, seed=3), A((2, 3), d1, b.d2, seed=4)])


def test_binary_bitwise_mixed_integers():
    for d1, d2 in [(I8, U8), (BOOL, I8), (U8, I32)]:
        for name in ("bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"):
            check(name, getattr(np, name), [A((2, 3), d1, "any"), A((3,), d2, "shift")])


# Python scalars are weakly typed: they take the array's type (JAX and NEP 50 agree here).
WEAK = [
    C("int8+3", "add", np.add, A((3,), I8), 3),
    C("3+int8", "add", np.add, 3, A((3,), I8)),
    C("uint8+3", "add", np.add, A((3,), U8), 3),
    C("int8-2", "subtract", np.subtract, A((3,), I8), 2),
    C("float16*2.0", "multiply", np.multiply, A((3,), F16), 2.0),
    C("2.0*float16", "multiply", np.multiply, 2.0, A((3,), F16)),
    C("float16+1", "add", np.add, A((3,), F16), 1),
    C("int8+2.5", "add", np.add, A((3,), I8), 2.5),
    C("int8/2", "true_divide", np.true_divide, A((3,), I8), 2, expect=default_float),
    C("bool+1", "add", np.add, A((3,), BOOL), 1),
    C("bool*1.5", "multiply", np.multiply, A((3,), BOOL), 1.5),
    C("int32*True", "multiply", np.multiply, A((3,), I32), True),
    C("maximum-uint8-2", "maximum", np.maximum, A((3,), U8), 2),
    C("power-int8-2", "power", np.power, A((3,), I8), 2),
    C("power-float16-2", "power", np.power, A((3,), F16), 2),
    C("power-float32-0.5", "power", np.power, A((3,), F32, "pos"), 0.5),
    C("floor_divide-int8-2", "floor_divide", np.floor_divide, A((4,), I8), 2),
    C("remainder-int8-3", "remainder", np.remainder, A((4,), I8), 3),
    C("fmod-int8-minus3", "fmod", np.fmod, A((4,), I8), -3),
    C("arctan2-float16-1.0", "arctan2", np.arctan2, A((3,), F16), 1.0),
    C("less-uint8-2", "less", np.less, A((3,), U8), 2),
    C("3+4", "add", np.add, 3, 4),
    C("3+4.5", "add", np.add, 3, 4.5),
]


@pytest.mark.parametrize(CASE_ARGS, WEAK)
def test_weak_python_scalars(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


def test_python_scalar_results_stay_weak():
    assert jnp.add(3, 4).aval.weak_type
    assert not jnp.add(jnp.asarray(np.ones(2, np.int8)), 3).aval.weak_type
    assert jnp.add(jnp.asarray(np.ones(2, np.int8)), 3).dtype == np.int8


_NAN = np.nan
_INF = np.inf
SPECIAL_BINARY = [
    C("maximum-nan", "maximum", np.maximum, np.array([_NAN, 1.0, _NAN, 2.0], np.float32),
      np.array([2.0, _NAN, _NAN, 1.0], np.float32)),
    C("minimum-nan", "minimum", np.minimum, np.array([_NAN, 1.0, _NAN, 2.0], np.float32),
      np.array([2.0, _NAN, _NAN, 1.0], np.float32)),
    C("fmax-nan", "fmax", np.fmax, np.array([_NAN, 1.0, _NAN, 2.0, -_INF], np.float32),
      np.array([2.0, _NAN, _NAN, 1.0, _NAN], np.float32)),
    C("fmin-nan", "fmin", np.fmin, np.array([_NAN, 1.0, _NAN, 2.0, _INF], np.float32),
      np.array([2.0, _NAN, _NAN, 1.0, _NAN], np.float32)),
    C("fmax-nan-broadcast", "fmax", np.fmax, np.array([[_NAN], [1.0]], np.float32),
      np.array([_NAN, 0.0, 3.0], np.float32)),
    C("hypot-special", "hypot", np.hypot,
      np.array([1e30, 3e-30, 0.0, _INF, -_INF, _INF, _NAN, 3.0], np.float32),
      np.array([1e30, 4e-30, 0.0, 1.0, 2.0, _NAN, _INF, -4.0], np.float32), tol=1e-6),
    C("logaddexp-special", "logaddexp", np.logaddexp,
      np.array([-_INF, _INF, _INF, 1000.0, -1000.0, _NAN, 0.0], np.float32),
      np.array([-_INF, _INF, -_INF, 1000.0, 0.0, 1.0, 0.0], np.float32)),
    C("logaddexp2-special", "logaddexp2", np.logaddexp2,
      np.array([-_INF, _INF, 200.0, -200.0, 1.0], np.float32),
      np.array([-_INF, 1.0, 200.0, 0.0, 1.0], np.float32)),
    C("copysign-zeros", "copysign", np.copysign,
      np.array([1.0, -2.0, 3.0, 0.0, _INF, 0.0], np.float32),
      np.array([-0.0, 0.0, -1.0, -1.0, -2.0, 1.0], np.float32)),
    C("arctan2-signed-zeros", "arctan2", np.arctan2,
      np.array([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, _INF], np.float32),
      np.array([-1.0, -1.0, 0.0, -0.0, 0.0, -0.0, _INF], np.float32)),
    C("heaviside-special", "heaviside", np.heaviside,
      np.array([-_INF, -1.0, 0.0, -0.0, 2.0, _INF], np.float32), np.float32(0.5)),
    C("heaviside-nan", "heaviside", np.heaviside, np.array([_NAN, 1.0], np.float32),
      np.array([0.5, _NAN], np.float32)),
    C("nextafter-exact", "nextafter", np.nextafter, np.array([0.0, 1.0, -1.0, 1.0], np.float32),
      np.array([1.0, 2.0, -2.0, 1.0], np.float32), tol=0.0),
    C("floor_divide-float-zero-and-signs", "floor_divide", np.floor_divide,
      np.array([1.0, -1.0, 0.0, 5.5, -5.5, 7.0, -7.0], np.float32),
      np.array([0.0, 0.0, 0.0, 2.0, 2.0, -2.0, -2.0], np.float32)),
    C("remainder-float-zero-and-signs", "remainder", np.remainder,
      np.array([1.0, 0.0, 5.5, -5.5, 7.0, -7.0], np.float32),
      np.array([0.0, 0.0, 2.0, 2.0, -2.0, -2.0], np.float32)),
    C("fmod-float-signs", "fmod", np.fmod, np.array([5.5, -5.5, 7.0, -7.0, 1.0], np.float32),
      np.array([2.0, 2.0, -2.0, -2.0, 0.0], np.float32)),
    C("remainder-infinite-divisor", "remainder", np.remainder,
      np.array([1.0, -1.0, 5.0, -5.0, _INF, 0.0], np.float32),
      np.array([_INF, _INF, -_INF, -_INF, 2.0, _INF], np.float32)),
    C("floor_divide-infinite-divisor", "floor_divide", np.floor_divide,
      np.array([1.0, -1.0, 5.0, _INF, 0.0], np.float32),
      np.array([_INF, _INF, -_INF, 2.0, _INF], np.float32)),
    C("left_shift-past-width-int8", "left_shift", np.left_shift,
      np.array([1, -1, 100, -100, 5, -128], np.int8), np.array([0, 7, 8, 9, 100, 1], np.int8)),
    C("right_shift-past-width-int8", "right_shift", np.right_shift,
      np.array([1, -1, 100, -100, 5, -128], np.int8), np.array([0, 7, 8, 9, 100, 1], np.int8)),
    C("shifts-past-width-uint8", "right_shift", np.right_shift,
      np.array([1, 255, 128], np.uint8), np.array([8, 9, 7], np.uint8)),
    C("left_shift-past-width-int32", "left_shift", np.left_shift,
      np.array([1, -1, 3], np.int32), np.array([31, 32, 40], np.int32)),
    C("divmod-int8-signs", "divmod", np.divmod, np.array([7, -7, 7, -7, 0, 6], np.int8),
      np.array([2, 2, -2, -2, 3, -3], np.int8)),
    C("power-float-special", "power", np.power, np.array([-2.0, -8.0, 0.0, 4.0, 0.0], np.float32),
      np.array([3.0, 1 / 3, 0.0, -0.5, -1.0], np.float32)),
    C("power-float-negative-python-int", "power", np.power, A((2, 3), F32, "nonzero"), -2),
    C("power-int-python-ints", "power", np.power, A((2, 3), I32), S(5)),
    C("power-int-python-zero", "power", np.power, A((2, 3), I8), S(0)),
    C("power-uint8-arrays", "power", np.power, np.array([0, 1, 2, 3], np.uint8),
      np.array([3, 2, 1, 0], np.uint8)),
    C("power-int-array-exponents", "power", np.power, np.array([-3, -2, 2, 5, 1, 0], np.int32),
      np.array([3, 2, 0, 2, 7, 0], np.int32)),
    C("power-int8-float-exponent", "power", np.power, A((3,), I8, "pos"), 0.5),
    C("float_power-ints", "float_power", np.float_power, np.array([2, -2, 3], np.int32),
      np.array([-1, 3, 0], np.int32)),
]


@pytest.mark.parametrize(CASE_ARGS, SPECIAL_BINARY)
def test_binary_special_values(fn, np_fn, args, kwargs, dtype, tol, jit):
    signed = fn in ("copysign", "arctan2")
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit, signed_zeros=signed)


def _jax_int_power(base, exponent):
    """JAX's integer power: negative exponents give the integer part of the true power."""
    out = []
    for b, e in zip(base.tolist(), exponent.tolist()):
        if e >= 0:
            out.append(b ** e)
        else:
            out.append(1 if b == 1 else (-1 if e % 2 else 1) if b == -1 else 0)
    return np.array(out, base.dtype)


def test_power_integer_array_negative_exponents():
    base = np.array([-2, -1, -1, 0, 1, 2, 3], np.int32)
    exponent = np.array([-1, -1, -2, -1, -3, -2, 2], np.int32)
    check("power", _jax_int_power, [base, exponent])


CLOSE = [
    C("isclose", "isclose", np.isclose,
      np.array([1.0, 1.00001, _INF, -_INF, _NAN, 0.0, 1e-9, 2.0], np.float32),
      np.array([1.0, 1.0, _INF, _INF, _NAN, 1e-9, 0.0, 2.1], np.float32)),
    C("isclose-equal_nan", "isclose", np.isclose, np.array([_NAN, 1.0, _NAN], np.float32),
      np.array([_NAN, _NAN, 1.0], np.float32), equal_nan=True),
    C("isclose-tolerances", "isclose", np.isclose, np.array([1.0, 1.001, 100.0], np.float32),
      np.array([1.0005, 1.0, 101.0], np.float32), rtol=0.0, atol=1e-3),
    C("isclose-broadcast-scalar", "isclose", np.isclose, A((2, 3)), 0.5),
    C("isclose-ints", "isclose", np.isclose, A((2, 3), I32), A((3,), I32, seed=1)),
    C("allclose-true", "allclose", np.allclose, np.array([1.0, 2.0], np.float32),
      np.array([1.000001, 2.0], np.float32)),
    C("allclose-false", "allclose", np.allclose, np.array([1.0, 2.0], np.float32),
      np.array([1.1, 2.0], np.float32)),
    C("allclose-nan", "allclose", np.allclose, np.array([_NAN, 2.0], np.float32),
      np.array([_NAN, 2.0], np.float32)),
    C("allclose-equal_nan", "allclose", np.allclose, np.array([_NAN, 2.0], np.float32),
      np.array([_NAN, 2.0], np.float32), equal_nan=True),
    C("allclose-inf", "allclose", np.allclose, np.array([_INF, 1.0], np.float32),
      np.array([_INF, 1.0], np.float32)),
    C("array_equal-same", "array_equal", np.array_equal, np.array([1, 2, 3], np.int8),
      np.array([1, 2, 3], np.int8)),
    C("array_equal-different", "array_equal", np.array_equal, np.array([1, 2, 3], np.int8),
      np.array([1, 2, 4], np.int8)),
    C("array_equal-shapes", "array_equal", np.array_equal, A((2, 3)), A((3, 2))),
    C("array_equal-int-float", "array_equal", np.array_equal, np.array([1, 2], np.int32),
      np.array([1.0, 2.0], np.float32)),
    C("array_equal-nan", "array_equal", np.array_equal, np.array([_NAN, 1.0], np.float32),
      np.array([_NAN, 1.0], np.float32)),
    C("array_equal-equal_nan", "array_equal", np.array_equal,
      np.array([_NAN, 1.0], np.float32), np.array([_NAN, 1.0], np.float32), equal_nan=True),
]


@pytest.mark.parametrize(CASE_ARGS, CLOSE)
def test_isclose_allclose_array_equal(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


WHERE = [
    C("where", "where", np.where, A((2, 3), BOOL), A((2, 3)), A((2, 3), seed=1)),
    C("where-broadcast", "where", np.where, A((3, 1), BOOL), A((1, 4)), A(())),
    C("where-int-condition", "where", np.where, A((2, 3), I8), A((2, 3), I8, seed=1),
      A((2, 3), I8, seed=2)),
    C("where-float-condition", "where", np.where, np.array([0.0, -0.0, 2.0, _NAN], np.float32),
      np.arange(4, dtype=np.int32), -1),
    C("where-mixed-dtypes", "where", np.where, A((2, 3), BOOL), A((2, 3), I8), A((2, 3))),
    C("where-uint8-int8", "where", np.where, A((2, 3), BOOL), A((2, 3), U8), A((3,), I8)),
    C("where-weak-scalar", "where", np.where, A((2, 3), BOOL), A((2, 3), I8), 0),
    C("where-two-scalars", "where", np.where, A((2, 3), BOOL), 1.0, 0),
    C("where-empty", "where", np.where, A((0, 3), BOOL), A((0, 3)), A((1, 3))),
]


@pytest.mark.parametrize(CASE_ARGS, WHERE)
def test_where(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


def test_where_one_argument_is_nonzero():
    x = rand((3, 4), I8)
    check("where", np.where, [x], jit=False)
    check("nonzero", np.nonzero, [x], jit=False)
    check("argwhere", np.argwhere, [x], jit=False)
    check("nonzero", np.nonzero, [rand((5,), BOOL)], jit=False)


CLIP = [
    C("clip", "clip", np.clip, A((2, 3)), -1, 1),
    C("clip-no-lower", "clip", np.clip, A((2, 3)), None, 1),
    C("clip-no-upper", "clip", np.clip, A((2, 3)), -1, None),
    C("clip-int8", "clip", np.clip, A((2, 3), I8), -1, 2),
    C("clip-uint8", "clip", np.clip, A((2, 3), U8), 1, 2),
    C("clip-array-bounds", "clip", np.clip, A((2, 3)), A((3,), seed=1), 1.0),
    C("clip-keywords", "clip", np.clip, A((2, 3)), min=-0.5, max=0.5),
    C("clip-keyword-max-only", "clip", np.clip, A((2, 3), I32), max=1),
    C("clip-int-float-bounds", "clip", np.clip, A((2, 3), I32), 0.5, 2.5),
    C("clip-lower-above-upper", "clip", np.clip, A((4,)), 1.0, -1.0),
    C("clip-scalar", "clip", np.clip, A(()), -0.1, 0.1),
]


@pytest.mark.parametrize(CASE_ARGS, CLIP)
def test_clip(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


# ============================================================================================
# Reductions
# ============================================================================================

MASK = np.array([[True, False, True, True], [False, False, True, False],
                 [True, True, True, False]])  # broadcasts against the (2, 3, 4) input

AXES = [{}, dict(axis=0), dict(axis=-1), dict(axis=(0, 2)), dict(axis=1, keepdims=True),
        dict(axis=(0, -1), keepdims=True), dict(keepdims=True)]


class R:
    """A reduction: NumPy reference, input domain, dtypes and extra keyword variants, each
    (kwargs, dtypes it applies to)."""

    def __init__(self, name, ref, domain="any", dtypes=ALL, extra=(), axes=AXES):
        self.name, self.ref, self.domain, self.dtypes = name, ref, domain, dtypes
        self.extra, self.axes = extra, axes


def _kw_id(kwargs):
    parts = []
    for k, v in kwargs.items():
        parts.append(f"{k}=mask" if isinstance(v, np.ndarray) else f"{k}={v}")
    return ",".join(parts) or "default"


REDUCTIONS = [
    R("sum", np.sum, extra=[(dict(dtype="float32"), ALL), (dict(dtype="int8"), INT_BOOL),
                            (dict(initial=5), NUMERIC), (dict(where=MASK), ALL),
                            (dict(axis=1, where=MASK, keepdims=True, initial=1), NUMERIC)]),
    R("prod", np.prod, "small", extra=[(dict(dtype="float32"), ALL), (dict(initial=2), NUMERIC),
                                       (dict(where=MASK), ALL),
                                       (dict(where=MASK, initial=2), NUMERIC)]),
    R("max", np.max, extra=[(dict(initial=1), NUMERIC), (dict(where=MASK, initial=0), NUMERIC),
                            (dict(axis=2, where=MASK, initial=0), NUMERIC)]),
    R("min", np.min, extra=[(dict(initial=1), NUMERIC), (dict(where=MASK, initial=2), NUMERIC)]),
    R("amax", np.amax, dtypes=(F32, I8)),
    R("amin", np.amin, dtypes=(F32, U8)),
    R("mean", np.mean, extra=[(dict(dtype="float32"), ALL), (dict(where=MASK), ALL),
                              (dict(axis=1, where=MASK, keepdims=True), NUMERIC)]),
    R("var", np.var, extra=[(dict(ddof=1), ALL), (dict(axis=0, ddof=1), ALL),
                            (dict(where=MASK), NUMERIC), (dict(dtype="float32"), INTEGER),
                            (dict(axis=(0, 1), where=MASK, ddof=1), (F32, I8))]),
    R("std", np.std, extra=[(dict(ddof=1), ALL), (dict(axis=(1, 2), ddof=2), NUMERIC),
                            (dict(where=MASK), NUMERIC)]),
    R("any", np.any, extra=[(dict(where=MASK), ALL)]),
    R("all", np.all, extra=[(dict(where=MASK), ALL)]),
    R("ptp", np.ptp, dtypes=NUMERIC),
    R("count_nonzero", np.count_nonzero),
    R("nansum", np.nansum, "nan", extra=[(dict(where=MASK), (F32,))]),
    R("nanprod", np.nanprod, "nan"),
    R("nanmax", np.nanmax, "nan", dtypes=NUMERIC,
      extra=[(dict(axis=1, where=MASK, initial=-5), (F32, I8))]),
    R("nanmin", np.nanmin, "nan", dtypes=NUMERIC),
    R("nanmean", np.nanmean, "nan", dtypes=NUMERIC, extra=[(dict(where=MASK), (F32,))]),
]

# nansum/nanprod of bool: NumPy's nansum on bool gives int64, JAX's int32 == canonical.
REDUCTION_PARAMS = [
    pytest.param(r, dt, kw, id=f"{r.name}-{dt}-{_kw_id(kw)}")
    for r in REDUCTIONS
    for kw, dts in [(a, r.dtypes) for a in r.axes] + list(r.extra)
    for dt in r.dtypes if dt in dts
]


@pytest.mark.parametrize("r, dtype, kwargs", REDUCTION_PARAMS)
def test_reduction(r, dtype, kwargs):
    check(r.name, r.ref, [A((2, 3, 4), dtype, r.domain)], kwargs)


EMPTY_AND_SCALAR_REDUCTIONS = [
    C("sum-empty", "sum", np.sum, A((0, 3))),
    C("sum-empty-axis0", "sum", np.sum, A((0, 3), I8), axis=0),
    C("sum-empty-axis1", "sum", np.sum, A((0, 3)), axis=1),
    C("prod-empty", "prod", np.prod, A((0, 3), I32)),
    C("any-empty", "any", np.any, A((0, 3))),
    C("all-empty", "all", np.all, A((0, 3))),
    C("mean-empty-axis0", "mean", np.mean, A((0, 3)), axis=0),
    C("count_nonzero-empty", "count_nonzero", np.count_nonzero, A((0, 3))),
    C("max-empty-other-axis", "max", np.max, A((0, 3)), axis=1),
    C("max-empty-initial", "max", np.max, A((0, 3)), axis=0, initial=-1.0),
    C("min-empty-initial", "min", np.min, A((0,), I8), initial=3),
    C("cumsum-empty", "cumsum", np.cumsum, A((0, 3)), axis=0),
    C("argmax-empty-other-axis", "argmax", np.argmax, A((0, 3)), axis=1),
    C("sum-scalar", "sum", np.sum, A(())),
    C("prod-scalar-int8", "prod", np.prod, A((), I8)),
    C("max-scalar", "max", np.max, A(())),
    C("mean-scalar", "mean", np.mean, A((), I32)),
    C("var-scalar", "var", np.var, A(())),
    C("argmax-scalar", "argmax", np.argmax, A(())),
    C("cumsum-scalar", "cumsum", np.cumsum, A(())),
    C("any-scalar", "any", np.any, A((), I8)),
    C("count_nonzero-scalar", "count_nonzero", np.count_nonzero, A((), BOOL)),
    # sort/argsort (more in tests/test_sorting.py); NumPy's stable kind is JAX's order.
    C("sort-axis0", "sort", lambda a, **k: np.sort(a, kind="stable", **k), A((5, 3)), axis=0,
      jit=False),
    C("argsort-int8", "argsort", lambda a, **k: np.argsort(a, kind="stable", **k),
      A((3, 6), I8), jit=False),
]


@pytest.mark.parametrize(CASE_ARGS, EMPTY_AND_SCALAR_REDUCTIONS)
def test_reduction_empty_and_scalar(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


ARG_AXES = [{}, dict(axis=0), dict(axis=-1), dict(axis=1, keepdims=True), dict(keepdims=True)]


@pytest.mark.parametrize("kwargs", ARG_AXES, ids=_kw_id)
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, dtype, kwargs):
    check(name, getattr(np, name), [A((2, 3, 4), dtype)], kwargs)


def test_argmax_argmin_nan_and_ties():
    x = np.array([[1.0, _NAN, 3.0, _NAN], [2.0, 2.0, 1.0, 1.0]], np.float32)
    for name in ("argmax", "argmin"):
        check(name, getattr(np, name), [x], dict(axis=1))
        check(name, getattr(np, name), [x])


def _np_accumulate(ufunc):
    def ref(x, axis=None, dtype=None):
        if axis is None:
            x, axis = x.ravel(), 0
        return ufunc.accumulate(x, axis=axis, dtype=dtype)
    return ref


def _scan_dtype(dtype, kwargs):
    """JAX's cumsum/cumprod dtype: the requested one, else the input's (bool -> default int)."""
    if "dtype" in kwargs:
        return np.dtype(kwargs["dtype"])
    return default_int() if dtype == BOOL else canonical(dtype)


SCANS = [("cumsum", np.cumsum, "any"), ("cumprod", np.cumprod, "unit"),
         ("cummax", _np_accumulate(np.maximum), "any"),
         ("cummin", _np_accumulate(np.minimum), "any")]
SCAN_KWARGS = [{}, dict(axis=0), dict(axis=1), dict(axis=-1), dict(axis=None, dtype="float32")]


SCAN_PARAMS = [pytest.param(name, ref, domain, dtype, kwargs,
                           id=f"{name}-{dtype}-{_kw_id(kwargs)}")
               for name, ref, domain in SCANS for dtype in ALL for kwargs in SCAN_KWARGS
               if not (name in ("cummax", "cummin") and "dtype" in kwargs)]


@pytest.mark.parametrize("name, ref, domain, dtype, kwargs", SCAN_PARAMS)
def test_cumulative(name, ref, domain, dtype, kwargs):
    if name in ("cummax", "cummin"):
        expected = canonical(dtype)  # NumPy's maximum.accumulate keeps the dtype too
    else:
        expected = _scan_dtype(dtype, kwargs)
    check(name, ref, [A((2, 3, 4), dtype, domain)], kwargs, dtype=expected)


@pytest.mark.parametrize("dtype", [F32, I8, U8, BOOL])
def test_cumulative_sum_prod(dtype):
    # JAX: cumulative_sum widens narrow ints like sum (int8 -> int32, uint8 -> uint32: NumPy's
    # dtype, canonicalised); cumulative_prod keeps them like cumprod (bool -> int32).
    x = A((5,), dtype, "unit")
    check("cumulative_sum", np.cumulative_sum, [x], dict(axis=0))
    check("cumulative_sum", np.cumulative_sum, [A((2, 3), dtype)], dict(axis=1))
    check("cumulative_prod", np.cumulative_prod, [x], dict(axis=0),
          dtype=_scan_dtype(dtype, {}))


NAN_SLICES = np.array([[_NAN, _NAN, _NAN], [1.0, _NAN, -2.0]], np.float32)


@pytest.mark.parametrize("name", ["nansum", "nanprod", "nanmax", "nanmin", "nanmean"])
def test_nan_reductions_all_nan_slices(name):
    check(name, getattr(np, name), [NAN_SLICES], dict(axis=1))
    check(name, getattr(np, name), [NAN_SLICES], dict(axis=0, keepdims=True))


# ============================================================================================
# Shape manipulation
# ============================================================================================

X3 = A((2, 3, 4))


def _fill_value(dtype):
    """JAX's fill for out-of-bounds take: NaN, the int minimum, the uint maximum, True."""
    dtype = np.dtype(dtype)
    if _is_float(dtype):
        return np.asarray(np.nan, dtype)
    if dtype == np.bool_:
        return np.asarray(True)
    info = np.iinfo(dtype)
    return np.asarray(info.max if np.issubdtype(dtype, np.unsignedinteger) else info.min, dtype)


def np_take_fill(a, indices, axis=None):
    """take with JAX's default mode: negative indices wrap once, others out of range fill."""
    if axis is None:
        a, axis = a.ravel(), 0
    n = a.shape[axis]
    idx = np.where(indices < 0, indices + n, indices)
    oob = (idx < 0) | (idx >= n)
    out = np.take(a, np.clip(idx, 0, n - 1), axis=axis)
    mask = oob.reshape((1,) * axis + oob.shape + (1,) * (a.ndim - axis - 1))
    return np.where(mask, _fill_value(a.dtype), out)


def np_take_along_axis(a, indices, axis, mode=None):
    """take_along_axis with JAX's modes: negative indices count from the end (once), then
    None fills what is still out of range, clip clamps it; wrap takes indices modulo n."""
    if axis is None:
        a, indices, axis = a.ravel(), indices.ravel(), 0
    n = a.shape[axis]
    if mode == "clip":
        idx = np.where(indices < 0, indices + n, indices)
        return np.take_along_axis(a, np.clip(idx, 0, n - 1), axis)
    if mode == "wrap":
        return np.take_along_axis(a, indices % n, axis)
    idx = np.where(indices < 0, indices + n, indices)
    oob = (idx < 0) | (idx >= n)
    return np.where(oob, _fill_value(a.dtype), np.take_along_axis(a, np.clip(idx, 0, n - 1),
                                                                  axis))


def np_repeat_total(a, repeats, axis=None, total_repeat_length=None):
    """JAX's repeat(total_repeat_length=n): truncated to n, or padded with the last element."""
    out = np.repeat(a, repeats, axis)
    if total_repeat_length is None:
        return out
    out = out[:total_repeat_length]
    extra = total_repeat_length - len(out)
    return np.concatenate([out, np.repeat(out[-1:], extra)]) if extra else out


TAKE_OOB = np.array([-5, 1, 4, -1, 3], np.int32)
ALONG_IDX = np.array([[0, 3, 1], [2, 2, 0], [1, 0, 3]], np.int32)
ALONG_OOB = np.array([[0, -1, 4], [2, 7, -5], [-4, 3, 1]], np.int32)
ALONG_OOB_POSITIVE = np.array([[0, 5, 4], [2, 7, 1], [9, 3, 1]], np.int32)

SHAPE_OPS = [
    C("reshape", "reshape", np.reshape, X3, (6, 4)),
    C("reshape-minus1", "reshape", np.reshape, X3, (3, -1)),
    C("reshape-minus1-int", "reshape", np.reshape, X3, S(-1)),
    C("reshape-order-F", "reshape", np.reshape, X3, (4, 6), order="F"),
    C("reshape-order-F-minus1", "reshape", np.reshape, X3, (-1, 2, 3), order="F"),
    C("reshape-shape-keyword", "reshape", np.reshape, X3, shape=(24,)),
    C("reshape-scalar", "reshape", np.reshape, A(()), (1, 1)),
    C("reshape-to-scalar", "reshape", np.reshape, A((1, 1)), ()),
    C("reshape-empty", "reshape", np.reshape, A((0, 3)), (3, 0, 1)),
    C("reshape-int8", "reshape", np.reshape, A((2, 6), I8), (3, 4)),
    C("ravel", "ravel", np.ravel, X3),
    C("ravel-order-F", "ravel", np.ravel, X3, order="F"),
    C("ravel-scalar", "ravel", np.ravel, A(())),
    C("transpose", "transpose", np.transpose, X3),
    C("transpose-axes", "transpose", np.transpose, X3, (1, 0, 2)),
    C("transpose-axes-negative", "transpose", np.transpose, X3, (-1, 0, 1)),
    C("transpose-1d", "transpose", np.transpose, A((3,))),
    C("permute_dims", "permute_dims", np.permute_dims, X3, (2, 0, 1)),
    C("matrix_transpose", "matrix_transpose", np.matrix_transpose, X3),
    C("swapaxes", "swapaxes", np.swapaxes, X3, S(0), S(2)),
    C("swapaxes-negative", "swapaxes", np.swapaxes, X3, S(-1), S(1)),
    C("moveaxis", "moveaxis", np.moveaxis, X3, S(0), S(-1)),
    C("moveaxis-lists", "moveaxis", np.moveaxis, X3, [0, 1], [-1, -2]),
    C("moveaxis-lists-4d", "moveaxis", np.moveaxis, A((2, 3, 4, 5)), [3, 0], [0, 2]),
    C("expand_dims", "expand_dims", np.expand_dims, X3, S(1)),
    C("expand_dims-negative", "expand_dims", np.expand_dims, X3, S(-1)),
    C("expand_dims-tuple", "expand_dims", np.expand_dims, X3, (0, 4)),
    C("expand_dims-tuple-negative", "expand_dims", np.expand_dims, X3, (-1, 1)),
    C("expand_dims-scalar", "expand_dims", np.expand_dims, A(()), (0, 1)),
    C("squeeze", "squeeze", np.squeeze, A((1, 3, 1, 2))),
    C("squeeze-axis", "squeeze", np.squeeze, A((1, 3, 1, 2)), axis=0),
    C("squeeze-axis-tuple", "squeeze", np.squeeze, A((1, 3, 1, 2)), axis=(0, 2)),
    C("squeeze-axis-negative", "squeeze", np.squeeze, A((1, 3, 1, 2)), axis=-2),
    C("squeeze-scalar", "squeeze", np.squeeze, A(())),
    C("broadcast_to", "broadcast_to", np.broadcast_to, A((3, 1)), (2, 3, 4)),
    C("broadcast_to-scalar", "broadcast_to", np.broadcast_to, A((), I8), (2, 2)),
    C("broadcast_to-int-shape", "broadcast_to", np.broadcast_to, A((1,)), S(3)),
    C("broadcast_to-empty", "broadcast_to", np.broadcast_to, A((1, 3)), (0, 3)),
    C("broadcast_arrays", "broadcast_arrays", np.broadcast_arrays, A((3, 1)), A((1, 4), I8),
      A(())),
    C("broadcast_arrays-empty", "broadcast_arrays", np.broadcast_arrays, A((0, 1)), A((3,))),
    C("atleast_1d-scalar", "atleast_1d", np.atleast_1d, A(())),
    C("atleast_1d-2d", "atleast_1d", np.atleast_1d, A((2, 3))),
    C("atleast_1d-many", "atleast_1d", np.atleast_1d, A(()), A((2, 3)), A((3,), I8)),
    C("atleast_2d-scalar", "atleast_2d", np.atleast_2d, A(())),
    C("atleast_2d-1d", "atleast_2d", np.atleast_2d, A((3,))),
    C("atleast_2d-3d", "atleast_2d", np.atleast_2d, X3),
    C("atleast_2d-many", "atleast_2d", np.atleast_2d, A(()), A((3,))),
    C("atleast_3d-scalar", "atleast_3d", np.atleast_3d, A(())),
    C("atleast_3d-1d", "atleast_3d", np.atleast_3d, A((3,))),
    C("atleast_3d-2d", "atleast_3d", np.atleast_3d, A((2, 3))),
    C("atleast_3d-4d", "atleast_3d", np.atleast_3d, A((1, 2, 3, 4))),
    C("atleast_3d-many", "atleast_3d", np.atleast_3d, A(()), A((3,)), A((2, 3))),
    C("concatenate", "concatenate", np.concatenate, [A((2, 3)), A((1, 3), seed=1)]),
    C("concatenate-axis1-mixed", "concatenate", np.concatenate, [A((2, 3)), A((2, 1), I8)],
      axis=1),
    C("concatenate-axis-negative", "concatenate", np.concatenate,
      [A((2, 3, 1)), A((2, 3, 2), seed=1)], axis=-1),
    C("concatenate-axis-None", "concatenate", np.concatenate, [A((2, 3)), A((4,), seed=1)],
      axis=None),
    C("concatenate-empty", "concatenate", np.concatenate, [A((0, 3)), A((2, 3))]),
    C("concatenate-int8-uint8", "concatenate", np.concatenate, [A((2,), I8), A((3,), U8)]),
    C("concatenate-three", "concatenate", np.concatenate,
      [A((1, 2)), A((2, 2), seed=1), A((3, 2), seed=2)]),
    C("concatenate-tuple", "concatenate", np.concatenate, (A((2,), BOOL), A((1,), BOOL))),
    C("concat", "concat", np.concat, [A((2, 3)), A((2, 2), seed=1)], axis=1),
    C("stack", "stack", np.stack, [A((2, 3)), A((2, 3), seed=1)]),
    C("stack-axis1", "stack", np.stack, [A((2, 3)), A((2, 3), seed=1)], axis=1),
    C("stack-axis-negative", "stack", np.stack, [A((2, 3)), A((2, 3), I8)], axis=-1),
    C("stack-scalars", "stack", np.stack, [A(()), A((), seed=1), A((), seed=2)]),
    C("hstack-1d", "hstack", np.hstack, [A((2,)), A((3,), seed=1)]),
    C("hstack-2d", "hstack", np.hstack, [A((2, 1)), A((2, 3), seed=1)]),
    C("hstack-scalars", "hstack", np.hstack, [A(()), A((), seed=1)]),
    C("vstack-1d", "vstack", np.vstack, [A((3,)), A((3,), seed=1)]),
    C("vstack-2d", "vstack", np.vstack, [A((1, 3)), A((2, 3), seed=1)]),
    C("row_stack", "row_stack", np.vstack, [A((3,)), A((2, 3), seed=1)]),
    C("dstack-1d", "dstack", np.dstack, [A((3,)), A((3,), seed=1)]),
    C("dstack-2d", "dstack", np.dstack, [A((2, 3)), A((2, 3), seed=1)]),
    C("dstack-3d", "dstack", np.dstack, [A((2, 3, 1)), A((2, 3, 2), seed=1)]),
    C("column_stack-1d", "column_stack", np.column_stack, [A((3,)), A((3,), seed=1)]),
    C("column_stack-mixed", "column_stack", np.column_stack, [A((3,)), A((3, 2), seed=1)]),
    C("split-sections", "split", np.split, A((6, 4)), S(3)),
    C("split-indices", "split", np.split, A((6, 4)), [1, 4]),
    C("split-sections-axis1", "split", np.split, A((6, 4)), S(2), axis=1),
    C("split-indices-axis1", "split", np.split, A((6, 4)), [1], axis=1),
    C("split-indices-past-end", "split", np.split, A((6,)), [2, 10]),
    C("split-indices-decreasing", "split", np.split, A((6,)), [4, 2]),
    C("split-indices-negative", "split", np.split, A((6,)), [-4, -1]),
    C("array_split", "array_split", np.array_split, A((7,)), S(3)),
    C("array_split-2d", "array_split", np.array_split, A((5, 2)), S(3)),
    C("array_split-axis1", "array_split", np.array_split, A((2, 5)), S(4), axis=1),
    C("array_split-more-sections", "array_split", np.array_split, A((2,)), S(4)),
    C("array_split-indices", "array_split", np.array_split, A((7,)), [2, 5]),
    C("hsplit-2d", "hsplit", np.hsplit, A((3, 4)), S(2)),
    C("hsplit-1d", "hsplit", np.hsplit, A((6,)), S(3)),
    C("hsplit-indices", "hsplit", np.hsplit, A((3, 4)), [1, 3]),
    C("vsplit", "vsplit", np.vsplit, A((4, 3)), S(2)),
    C("vsplit-indices", "vsplit", np.vsplit, A((4, 3)), [1]),
    C("dsplit", "dsplit", np.dsplit, A((2, 3, 4)), S(2)),
    C("tile-int", "tile", np.tile, A((2, 3)), S(2)),
    C("tile-tuple", "tile", np.tile, A((2, 3)), (2, 1)),
    C("tile-more-reps-than-dims", "tile", np.tile, A((3,)), (2, 1, 2)),
    C("tile-fewer-reps-than-dims", "tile", np.tile, A((2, 3)), (3,)),
    C("tile-zero", "tile", np.tile, A((2, 3)), (0, 2)),
    C("tile-scalar", "tile", np.tile, A(()), S(3)),
    C("tile-bool", "tile", np.tile, A((2,), BOOL), (2, 2)),
    C("repeat-flat", "repeat", np.repeat, A((2, 3)), S(2)),
    C("repeat-axis", "repeat", np.repeat, A((2, 3)), S(3), axis=1),
    C("repeat-axis-negative", "repeat", np.repeat, A((2, 3), I8), S(2), axis=-2),
    C("repeat-zero", "repeat", np.repeat, A((2, 3)), S(0), axis=0),
    C("repeat-per-element", "repeat", np.repeat, A((2, 3)), [1, 0, 2], axis=1),
    C("repeat-per-element-flat", "repeat", np.repeat, A((2, 3), I8), [1, 2, 0, 1, 3, 1]),
    C("repeat-one-count-list", "repeat", np.repeat, A((3,)), [2]),
    C("repeat-scalar", "repeat", np.repeat, A(()), S(3)),
    C("repeat-total-length-truncates", "repeat", np_repeat_total, A((3,)), S(2),
      total_repeat_length=4),
    C("repeat-total-length-pads", "repeat", np_repeat_total, A((3,)), S(2),
      total_repeat_length=8),
    C("repeat-per-element-total-length", "repeat", np_repeat_total, A((3,)), [1, 0, 2],
      total_repeat_length=5),
    C("flip", "flip", np.flip, X3),
    C("flip-axis0", "flip", np.flip, X3, axis=0),
    C("flip-axis-negative", "flip", np.flip, X3, axis=-1),
    C("flip-axis-tuple", "flip", np.flip, X3, axis=(0, 2)),
    C("flip-scalar", "flip", np.flip, A(())),
    C("fliplr", "fliplr", np.fliplr, A((2, 3))),
    C("fliplr-3d", "fliplr", np.fliplr, X3),
    C("flipud", "flipud", np.flipud, A((3,))),
    C("flipud-2d", "flipud", np.flipud, A((2, 3), U8)),
    C("rot90", "rot90", np.rot90, A((2, 3))),
    C("rot90-k2", "rot90", np.rot90, A((2, 3)), k=2),
    C("rot90-k3", "rot90", np.rot90, A((2, 3)), k=3),
    C("rot90-k-1", "rot90", np.rot90, A((2, 3)), k=-1),
    C("rot90-k4", "rot90", np.rot90, A((2, 3)), k=4),
    C("rot90-3d", "rot90", np.rot90, X3),
    C("rot90-axes12", "rot90", np.rot90, X3, k=1, axes=(1, 2)),
    C("rot90-axes20", "rot90", np.rot90, X3, k=1, axes=(2, 0)),
    C("rot90-k2-axes02", "rot90", np.rot90, X3, k=2, axes=(0, 2)),
    C("rot90-k3-axes02", "rot90", np.rot90, X3, k=3, axes=(0, 2)),
    C("roll-flat", "roll", np.roll, X3, S(3)),
    C("roll-flat-negative", "roll", np.roll, X3, S(-7)),
    C("roll-axis", "roll", np.roll, X3, S(1), axis=1),
    C("roll-axis-negative-shift", "roll", np.roll, X3, S(-2), axis=-1),
    C("roll-shift-beyond-size", "roll", np.roll, X3, S(10), axis=2),
    C("roll-multiple-axes", "roll", np.roll, X3, (1, -2), axis=(0, 2)),
    C("roll-same-axis-twice", "roll", np.roll, X3, (1, 2), axis=(1, 1)),
    C("roll-one-shift-many-axes", "roll", np.roll, X3, S(1), axis=(0, 1)),
    C("roll-traced-shift", "roll", np.roll, X3, 2, axis=1),
    C("roll-empty", "roll", np.roll, A((0, 3)), S(1), axis=0),
    C("roll-scalar", "roll", np.roll, A(()), S(1)),
    C("pad-int-width", "pad", np.pad, A((2, 3)), S(1)),
    C("pad-pair-width", "pad", np.pad, A((2, 3)), (1, 2)),
    C("pad-per-axis-widths", "pad", np.pad, A((2, 3)), ((1, 2), (0, 3))),
    C("pad-constant-value", "pad", np.pad, A((2, 3)), ((1, 2), (2, 1)), constant_values=5),
    C("pad-constant-per-side", "pad", np.pad, A((2, 3)), ((1, 2), (2, 1)),
      constant_values=((1, 2), (3, 4))),
    C("pad-constant-before-after", "pad", np.pad, A((2, 3)), S(1), constant_values=(7, 9)),
    C("pad-constant-int8", "pad", np.pad, A((2, 3), I8), (1, 2), mode="constant",
      constant_values=-1),
    C("pad-constant-bool", "pad", np.pad, A((2,), BOOL), S(2), constant_values=True),
    C("pad-constant-empty-axis", "pad", np.pad, A((0, 2)), S(1)),
    C("pad-constant-traced-value", "pad", np.pad, A((2, 3)), S(1),
      constant_values=np.float32(2.5)),
    C("pad-edge", "pad", np.pad, A((2, 3)), ((1, 2), (3, 0)), mode="edge"),
    C("pad-wrap", "pad", np.pad, A((2, 3)), ((1, 2), (3, 0)), mode="wrap"),
    C("pad-reflect", "pad", np.pad, A((2, 3)), ((1, 0), (2, 1)), mode="reflect"),
    C("pad-symmetric", "pad", np.pad, A((2, 3)), ((1, 2), (3, 0)), mode="symmetric"),
    C("pad-wrap-wide", "pad", np.pad, A((3,)), S(7), mode="wrap"),
    C("pad-reflect-wide", "pad", np.pad, A((3,)), S(5), mode="reflect"),
    C("pad-reflect-wide-uneven", "pad", np.pad, A((4,)), (7, 2), mode="reflect"),
    C("pad-symmetric-wide", "pad", np.pad, A((3,)), S(7), mode="symmetric"),
    C("pad-wrap-wide-2d", "pad", np.pad, A((2, 3)), ((5, 4), (7, 6)), mode="wrap"),
    C("pad-reflect-wide-2d", "pad", np.pad, A((2, 3)), ((5, 4), (7, 6)), mode="reflect"),
    C("pad-symmetric-wide-2d", "pad", np.pad, A((2, 3)), ((5, 4), (7, 6)), mode="symmetric"),
    C("pad-reflect-length1", "pad", np.pad, A((1,)), S(3), mode="reflect"),
    C("pad-edge-int8", "pad", np.pad, A((2, 3), I8), S(2), mode="edge"),
    C("pad-edge-zero-width", "pad", np.pad, A((2, 3)), S(0), mode="edge"),
    C("take-flat", "take", np.take, A((3, 4)), np.array([0, 5, 11, 2])),
    C("take-axis1", "take", np.take, A((3, 4)), np.array([[0, 2], [1, 1]]), axis=1),
    C("take-negative-index", "take", np.take, A((3, 4)), np.array([-1, 0]), axis=0),
    C("take-scalar-index", "take", np.take, A((3, 4)), np.array(2), axis=1),
    C("take-clip", "take", np.take, A((3, 4)), TAKE_OOB, axis=1, mode="clip"),
    C("take-wrap", "take", np.take, A((3, 4)), TAKE_OOB, axis=1, mode="wrap"),
    C("take-clip-flat-int8", "take", np.take, A((2, 3), I8), np.array([-1, 9, 2]), mode="clip"),
    C("take-default-fills-float", "take", np_take_fill, A((3, 4)), TAKE_OOB, axis=1),
    C("take-default-fills-int8", "take", np_take_fill, A((3, 4), I8), TAKE_OOB, axis=1),
    C("take-default-fills-int32", "take", np_take_fill, A((3, 4), I32), TAKE_OOB, axis=0),
    C("take-default-fills-uint8", "take", np_take_fill, A((3, 4), U8), TAKE_OOB, axis=1),
    C("take-default-fills-bool", "take", np_take_fill, A((3, 4), BOOL), TAKE_OOB, axis=1),
    C("take-default-fills-flat", "take", np_take_fill, A((2, 3)), np.array([6, -7, -6, 5])),
    C("take_along_axis", "take_along_axis", np.take_along_axis, A((3, 4)), ALONG_IDX, axis=1),
    C("take_along_axis-axis0", "take_along_axis", np.take_along_axis, A((3, 4)),
      np.array([[2, 0, 1, 1]]), axis=0),
    C("take_along_axis-broadcast", "take_along_axis", np.take_along_axis, A((3, 4), I8),
      np.array([[1], [0], [3]]), axis=1),
    C("take_along_axis-None", "take_along_axis", np.take_along_axis, A((3, 4)),
      np.array([0, 11, 5]), axis=None),
    C("take_along_axis-argsort", "take_along_axis", np.take_along_axis, X3,
      np.argsort(rand((2, 3, 4)), axis=-1), axis=-1),
    C("take_along_axis-clip", "take_along_axis", np_take_along_axis, A((3, 4)),
      ALONG_OOB_POSITIVE, axis=1, mode="clip"),
    C("take_along_axis-clip-negative", "take_along_axis", np_take_along_axis, A((3, 4)),
      ALONG_OOB, axis=1, mode="clip"),
    C("take_along_axis-wrap", "take_along_axis", np_take_along_axis, A((3, 4)), ALONG_OOB,
      axis=1, mode="wrap"),
    C("take_along_axis-default-fills-float", "take_along_axis", np_take_along_axis, A((3, 4)),
      ALONG_OOB, axis=1),
    C("take_along_axis-default-fills-int8", "take_along_axis", np_take_along_axis,
      A((3, 4), I8), ALONG_OOB, axis=1),
    C("diagonal", "diagonal", np.diagonal, A((3, 4))),
    C("diagonal-offset1", "diagonal", np.diagonal, A((3, 4)), offset=1),
    C("diagonal-offset-1", "diagonal", np.diagonal, A((3, 4)), offset=-1),
    C("diagonal-offset3", "diagonal", np.diagonal, A((3, 4)), offset=3),
    C("diagonal-offset-3-empty", "diagonal", np.diagonal, A((3, 4)), offset=-3),
    C("diagonal-offset5-empty", "diagonal", np.diagonal, A((3, 4)), offset=5),
    C("diagonal-axes12", "diagonal", np.diagonal, X3, offset=1, axis1=1, axis2=2),
    C("diagonal-axes20", "diagonal", np.diagonal, X3, axis1=2, axis2=0),
    C("diagonal-axes-negative", "diagonal", np.diagonal, X3, offset=-1, axis1=-1, axis2=-2),
    C("diag-from-1d", "diag", np.diag, A((3,))),
    C("diag-from-1d-k1", "diag", np.diag, A((3,)), k=1),
    C("diag-from-1d-k-2", "diag", np.diag, A((3,), I8), k=-2),
    C("diag-from-2d", "diag", np.diag, A((3, 4))),
    C("diag-from-2d-k1", "diag", np.diag, A((3, 4)), k=1),
    C("diag-from-2d-k-2", "diag", np.diag, A((3, 4)), k=-2),
    C("trace", "trace", np.trace, A((3, 4))),
    C("trace-offset1", "trace", np.trace, A((3, 4)), offset=1),
    C("trace-offset-2", "trace", np.trace, A((3, 4)), offset=-2),
    C("trace-3d-axes", "trace", np.trace, X3, axis1=1, axis2=2),
    C("trace-int8", "trace", np.trace, A((3, 3), I8)),
    C("trace-dtype", "trace", np.trace, A((3, 3), I32), dtype="float32"),
]


@pytest.mark.parametrize(CASE_ARGS, SHAPE_OPS)
def test_shape_ops(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


@pytest.mark.parametrize("shapes", [[(2, 3), (3,)], [(3, 1), (1, 4), ()], [(0, 1), (3,)],
                                    [(5,)], [(2, 1, 3), (4, 1), (1,)], [3, (2, 1)]])
def test_broadcast_shapes(shapes):
    assert tuple(jnp.broadcast_shapes(*shapes)) == np.broadcast_shapes(*shapes)


# ============================================================================================
# Contractions
# ============================================================================================

MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (5, 3, 4)),
                 ((3,), (5, 3, 4)), ((5, 2, 3), (3,)), ((2, 0), (0, 3)), ((0, 3), (3, 2))]


@pytest.mark.parametrize("dtype", [F32, I32, I8, U8, BOOL])
@pytest.mark.parametrize("s1, s2", MATMUL_SHAPES, ids=str)
def test_matmul(s1, s2, dtype):
    check("matmul", np.matmul, [A(s1, dtype, seed=1), A(s2, dtype, seed=2)])


def test_matmul_operator_and_mixed_dtypes():
    check(lambda x, y: x @ y, np.matmul, [A((2, 3)), A((3, 4), seed=1)])
    check("matmul", np.matmul, [A((2, 3), I8), A((3, 4), seed=1)])
    check("matmul", np.matmul, [A((2, 3), I8), A((3, 4), U8, seed=1)])


CONTRACTIONS = [
    C("dot-scalar-array", "dot", np.dot, A(()), A((2, 3))),
    C("dot-array-scalar", "dot", np.dot, A((2, 3), I8), A((), I8)),
    C("dot-1d-1d", "dot", np.dot, A((3,)), A((3,), seed=1)),
    C("dot-2d-1d", "dot", np.dot, A((2, 3)), A((3,), seed=1)),
    C("dot-1d-2d", "dot", np.dot, A((3,)), A((3, 4), seed=1)),
    C("dot-2d-2d", "dot", np.dot, A((2, 3)), A((3, 4), seed=1)),
    C("dot-3d-1d", "dot", np.dot, A((4, 2, 3)), A((3,), seed=1)),
    C("dot-2d-3d", "dot", np.dot, A((2, 3)), A((4, 3, 5), seed=1)),
    C("dot-3d-3d", "dot", np.dot, A((3, 2, 3)), A((4, 3, 5), seed=1)),
    C("dot-1d-3d", "dot", np.dot, A((3,)), A((2, 3, 4), seed=1)),
    C("dot-int8", "dot", np.dot, A((2, 3), I8), A((3, 2), I8, seed=1)),
    C("dot-bool", "dot", np.dot, A((2, 3), BOOL), A((3, 2), BOOL, seed=1)),
    C("dot-empty", "dot", np.dot, A((0, 3)), A((3, 2), seed=1)),
    C("vdot-1d", "vdot", np.vdot, A((3,)), A((3,), seed=1)),
    C("vdot-flattens", "vdot", np.vdot, A((2, 3)), A((3, 2), seed=1)),
    C("vdot-int32", "vdot", np.vdot, A((4,), I32), A((2, 2), I32, seed=1)),
    C("inner-1d", "inner", np.inner, A((3,)), A((3,), seed=1)),
    C("inner-2d", "inner", np.inner, A((2, 3)), A((4, 3), seed=1)),
    C("inner-3d-2d", "inner", np.inner, A((2, 3, 4)), A((5, 4), seed=1)),
    C("inner-scalar", "inner", np.inner, A((2, 3)), A(())),
    C("outer", "outer", np.outer, A((3,)), A((4,), seed=1)),
    C("outer-flattens", "outer", np.outer, A((2, 2)), A((3,), I8, seed=1)),
    C("outer-int8", "outer", np.outer, A((3,), I8), A((2,), I8, seed=1)),
    C("tensordot-axes0", "tensordot", np.tensordot, A((2, 3)), A((4,), seed=1), axes=0),
    C("tensordot-axes1", "tensordot", np.tensordot, A((2, 3)), A((3, 4), seed=1), axes=1),
    C("tensordot-axes2", "tensordot", np.tensordot, A((2, 3, 4)), A((3, 4, 5), seed=1)),
    C("tensordot-pair-lists", "tensordot", np.tensordot, A((3, 2, 4)), A((2, 3, 5), seed=1),
      axes=([1, 0], [0, 1])),
    C("tensordot-int-pair", "tensordot", np.tensordot, A((2, 3)), A((3, 4), seed=1),
      axes=(1, 0)),
    C("tensordot-negative-axes", "tensordot", np.tensordot, A((2, 3)), A((3, 4), seed=1),
      axes=([-1], [0])),
    C("tensordot-tuple-pair", "tensordot", np.tensordot, A((2, 3, 4)), A((5, 4), seed=1),
      axes=((2,), (1,))),
    C("tensordot-int8", "tensordot", np.tensordot, A((2, 3), I8), A((3, 2), I8, seed=1),
      axes=1),
    C("kron-1d", "kron", np.kron, A((2,)), A((3,), seed=1)),
    C("kron-2d", "kron", np.kron, A((2, 2)), A((2, 3), seed=1)),
    C("kron-mixed-ranks", "kron", np.kron, A((2,)), A((3, 2), seed=1)),
    C("kron-int8", "kron", np.kron, A((2, 2), I8), A((2,), I8, seed=1)),
    C("einsum-matmul", "einsum", np.einsum, "ij,jk->ik", A((2, 3)), A((3, 4), seed=1)),
    C("einsum-implicit", "einsum", np.einsum, "ij,jk", A((2, 3)), A((3, 4), seed=1)),
    C("einsum-transposed-output", "einsum", np.einsum, "ij,jk->ki", A((2, 3)),
      A((3, 4), seed=1)),
    C("einsum-implicit-sorts-labels", "einsum", np.einsum, "ba", A((2, 3))),
    C("einsum-transpose", "einsum", np.einsum, "ij->ji", A((2, 3))),
    C("einsum-permute", "einsum", np.einsum, "ijk->kij", X3),
    C("einsum-diagonal", "einsum", np.einsum, "ii->i", A((3, 3))),
    C("einsum-trace", "einsum", np.einsum, "ii", A((3, 3))),
    C("einsum-trace-explicit", "einsum", np.einsum, "ii->", A((3, 3), I8)),
    C("einsum-repeated-batch", "einsum", np.einsum, "iij->ij", A((3, 3, 2))),
    C("einsum-sum-all", "einsum", np.einsum, "ij->", A((2, 3))),
    C("einsum-sum-axis", "einsum", np.einsum, "ij->j", A((2, 3))),
    C("einsum-inner", "einsum", np.einsum, "i,i", A((3,)), A((3,), seed=1)),
    C("einsum-outer", "einsum", np.einsum, "i,j->ij", A((3,)), A((2,), seed=1)),
    C("einsum-hadamard", "einsum", np.einsum, "ij,ij->ij", A((2, 3)), A((2, 3), seed=1)),
    C("einsum-batched", "einsum", np.einsum, "bij,bjk->bik", A((5, 2, 3)),
      A((5, 3, 4), seed=1)),
    C("einsum-ellipsis", "einsum", np.einsum, "...ij,...jk->...ik", A((5, 2, 3)),
      A((5, 3, 4), seed=1)),
    C("einsum-ellipsis-broadcast", "einsum", np.einsum, "...ij,...jk->...ik", A((2, 1, 2, 3)),
      A((5, 3, 4), seed=1)),
    C("einsum-ellipsis-implicit", "einsum", np.einsum, "...ij,...jk", A((5, 2, 3)),
      A((3, 4), seed=1)),
    C("einsum-ellipsis-sum", "einsum", np.einsum, "i...->...", A((3, 2, 4))),
    C("einsum-three-operands", "einsum", np.einsum, "ij,jk,kl->il", A((2, 3)),
      A((3, 4), seed=1), A((4, 5), seed=2)),
    C("einsum-three-batched", "einsum", np.einsum, "bij,bjk,bkl->bil", A((2, 2, 3)),
      A((2, 3, 4), seed=1), A((2, 4, 2), seed=2)),
    C("einsum-three-shared", "einsum", np.einsum, "i,i,i->i", A((3,)), A((3,), seed=1),
      A((3,), seed=2)),
    C("einsum-int8", "einsum", np.einsum, "ij,jk->ik", A((2, 3), I8), A((3, 2), I8, seed=1)),
    C("einsum-mixed-dtypes", "einsum", np.einsum, "ij,j->i", A((2, 3), I8), A((3,), seed=1)),
    C("einsum-spaces", "einsum", np.einsum, "ij, jk -> ik", A((2, 3)), A((3, 4), seed=1)),
]


@pytest.mark.parametrize(CASE_ARGS, CONTRACTIONS)
def test_contractions(fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


# ============================================================================================
# Programs: contractions are meta-ops
# ============================================================================================

def _primitives(program):
    return [eqn.primitive.name for eqn in program.eqns]


def test_matmul_program_primitives():
    program = fjit.make_program(lambda x, y: jnp.tanh(x @ y).sum(0))(jnp.ones((3, 4)),
                                                                     jnp.ones((4, 5)))
    names = _primitives(program)
    assert set(names) == {"broadcast_in_dim", "mul", "reduce_sum", "tanh"}, names


META_OPS = {"broadcast_in_dim", "mul", "reduce_sum", "reindex", "reshape"}

CONTRACTION_PROGRAMS = [
    ("einsum-matmul", lambda x, y: jnp.einsum("ij,jk->ik", x, y), (2, 3), (3, 4)),
    ("einsum-transposed", lambda x, y: jnp.einsum("ij,jk->ki", x, y), (2, 3), (3, 4)),
    ("einsum-diagonal", lambda x, y: jnp.einsum("ii->i", x), (3, 3), (1,)),
    ("einsum-trace", lambda x, y: jnp.einsum("ii", x), (3, 3), (1,)),
    ("einsum-ellipsis", lambda x, y: jnp.einsum("...ij,...jk->...ik", x, y), (2, 1, 2, 3),
     (5, 3, 4)),
    ("einsum-three", lambda x, y: jnp.einsum("ij,jk,kl->il", x, y, y.T), (2, 3), (3, 3)),
    ("tensordot-int", lambda x, y: jnp.tensordot(x, y, 1), (2, 3), (3, 4)),
    ("tensordot-pairs", lambda x, y: jnp.tensordot(x, y, axes=([1, 0], [0, 1])), (3, 2, 4),
     (2, 3, 5)),
    ("dot-1d", lambda x, y: jnp.dot(x, y), (3,), (3,)),
    ("dot-2d", lambda x, y: jnp.dot(x, y), (2, 3), (3, 4)),
    ("dot-nd", lambda x, y: jnp.dot(x, y), (3, 2, 3), (4, 3, 5)),
    ("matmul-batched", lambda x, y: jnp.matmul(x, y), (2, 1, 2, 3), (5, 3, 4)),
    ("matmul-vector", lambda x, y: jnp.matmul(x, y), (3,), (5, 3, 4)),
    ("inner", lambda x, y: jnp.inner(x, y), (2, 3), (4, 3)),
    ("outer", lambda x, y: jnp.outer(x, y), (2, 3), (4,)),
    ("vdot", lambda x, y: jnp.vdot(x, y), (2, 3), (3, 2)),
    ("kron", lambda x, y: jnp.kron(x, y), (2, 2), (2, 3)),
]


@pytest.mark.parametrize("f, s1, s2", [pytest.param(f, s1, s2, id=i)
                                       for i, f, s1, s2 in CONTRACTION_PROGRAMS])
def test_contraction_programs_are_meta_ops(f, s1, s2):
    program = fjit.make_program(f)(jnp.ones(s1), jnp.ones(s2))
    names = set(_primitives(program))
    assert names <= META_OPS, f"unexpected primitives {names - META_OPS}"
    assert names, "the Program is empty"


# ============================================================================================
# Errors
# ============================================================================================

def _raises_on_both(f, *args, exc=TypeError, match=()):
    """f raises `exc` eagerly and under jit; the message contains every string in `match`."""
    for run in (f, fjit.jit(f)):
        with pytest.raises(exc) as info:
            run(*args)
        for text in match:
            assert text in str(info.value), f"{text!r} not in {str(info.value)!r}"


def test_broadcast_error_names_op_and_shapes():
    x, y = jnp.ones((2, 3)), jnp.ones((4,))
    _raises_on_both(jnp.add, x, y, exc=TypeError, match=("add", "(2, 3)", "(4,)"))
    _raises_on_both(jnp.add, x, y, exc=ValueError)
    _raises_on_both(jnp.maximum, x, y, exc=TypeError, match=("maximum", "(2, 3)", "(4,)"))
    _raises_on_both(lambda a, b: a * b, x, y, exc=TypeError, match=("(2, 3)", "(4,)"))
    _raises_on_both(lambda c, a, b: jnp.where(c, a, b), jnp.ones((3,), bool), x, y,
                    exc=TypeError, match=("where",))


def test_matmul_dimension_mismatch():
    _raises_on_both(jnp.matmul, jnp.ones((2, 3)), jnp.ones((4, 5)), exc=TypeError,
                    match=("(2, 3)", "(4, 5)"))
    _raises_on_both(lambda a, b: a @ b, jnp.ones((3,)), jnp.ones((4,)), exc=TypeError,
                    match=("(3,)", "(4,)"))
    _raises_on_both(jnp.matmul, jnp.ones((2, 2, 3)), jnp.ones((3, 3, 4)), exc=TypeError,
                    match=("matmul",))


def test_contraction_size_mismatch():
    _raises_on_both(lambda a, b: jnp.einsum("ij,jk->ik", a, b), jnp.ones((2, 3)),
                    jnp.ones((4, 5)), exc=(TypeError, ValueError))
    _raises_on_both(lambda a, b: jnp.tensordot(a, b, 1), jnp.ones((2, 3)), jnp.ones((4, 5)),
                    exc=TypeError)
    _raises_on_both(jnp.dot, jnp.ones((2, 3)), jnp.ones((2, 3)), exc=TypeError)


def test_reshape_wrong_size():
    with pytest.raises((TypeError, ValueError)):
        jnp.reshape(jnp.ones(6), (4,))
    with pytest.raises((TypeError, ValueError)):
        jnp.reshape(jnp.ones(6), (4, -1))
    with pytest.raises((TypeError, ValueError)):
        jnp.ones(6).reshape(2, 2)
    with pytest.raises((TypeError, ValueError)):
        jnp.reshape(jnp.ones(6), (-1, -1))
    with pytest.raises((TypeError, ValueError)):
        fjit.jit(lambda x: jnp.reshape(x, (5,)))(jnp.ones(6))


def test_split_unequal_sections():
    with pytest.raises(ValueError):
        jnp.split(jnp.ones(5), 2)
    with pytest.raises(ValueError):
        jnp.split(jnp.ones((2, 5)), 3, axis=1)
    with pytest.raises(ValueError):
        jnp.hsplit(jnp.ones((2, 5)), 2)
    assert len(jnp.array_split(jnp.ones(5), 2)) == 2


def test_other_errors():
    with pytest.raises(ValueError):
        jnp.broadcast_to(jnp.ones((2, 3)), (3, 3))
    with pytest.raises((TypeError, ValueError)):
        jnp.concatenate([jnp.ones((2, 3)), jnp.ones((2, 4))])
    with pytest.raises(ValueError):
        jnp.stack([jnp.ones((2,)), jnp.ones((3,))])
    with pytest.raises(ValueError):
        jnp.max(jnp.ones((0, 3)))
    with pytest.raises(ValueError):
        jnp.argmax(jnp.ones((0,)))
    with pytest.raises((TypeError, ValueError)):  # NumPy: ValueError, JAX: TypeError
        jnp.power(jnp.asarray(np.array([1, 2], np.int32)), -1)
    with pytest.raises(TypeError):
        jnp.negative(jnp.asarray(np.array([True])))
    with pytest.raises(TypeError):
        jnp.subtract(jnp.asarray(np.array([True])), jnp.asarray(np.array([False])))
    with pytest.raises(TypeError):
        jnp.invert(jnp.ones(3))
    with pytest.raises(np.exceptions.AxisError):
        jnp.sum(jnp.ones((2, 3)), axis=2)
    with pytest.raises(ValueError):
        jnp.sum(jnp.ones((2, 3)), axis=(0, 0))
    with pytest.raises(ValueError):
        jnp.squeeze(jnp.ones((2, 3)), axis=0)


# ============================================================================================
# Dtype helpers and NumPy names
# ============================================================================================

PROMOTIONS = [  # (a, b, JAX's promote_types)
    (I8, U8, "int16"), (BOOL, I8, I8), (I32, F16, F16), (U8, I32, I32), (I8, F32, F32),
    (F16, F32, F32), ("uint16", "int16", I32), (BOOL, BOOL, BOOL), (U8, "uint32", "uint32"),
]


@pytest.mark.parametrize("a, b, expected", PROMOTIONS)
def test_promote_types(a, b, expected):
    assert jnp.promote_types(a, b) == np.dtype(expected)
    assert jnp.promote_types(b, a) == np.dtype(expected)


def test_result_type_and_helpers():
    i8 = jnp.asarray(np.ones(2, np.int8))
    assert jnp.result_type(i8, 3) == np.int8
    assert jnp.result_type(i8, 2.5) == np.float32
    assert jnp.result_type(3, 2.5) == np.float32
    assert jnp.result_type(i8, jnp.asarray(np.ones(2, np.uint8))) == np.int16
    assert jnp.can_cast(np.int8, np.int32) and not jnp.can_cast(np.float32, np.int8)
    assert jnp.isscalar(3.0) and jnp.isscalar(jnp.asarray(1.0)) and not jnp.isscalar(i8)
    assert jnp.finfo(jnp.float32).eps == np.finfo(np.float32).eps
    assert jnp.iinfo(jnp.int8).min == -128
    x = jnp.ones((2, 3))
    assert jnp.shape(x) == (2, 3) and jnp.ndim(x) == 2 and jnp.size(x) == 6
    assert jnp.float32(2).dtype == np.float32 and jnp.int8(3).dtype == np.int8
    assert np.dtype(jnp.uint8) == np.uint8


# ============================================================================================
# 64-bit types (x64 on): NumPy's dtypes are JAX's, except where JAX keeps narrow types
# ============================================================================================

X64_CASES = [
    C("exp-f64", "exp", np.exp, A((2, 3), F64)),
    C("sin-int64", "sin", _inexact(np.sin), A((2, 3), I64)),
    C("add-f64", "add", np.add, A((2, 3), F64), A((3,), F64, seed=1)),
    C("add-f32-python-float", "add", np.add, A((3,), F32), 1.5),
    C("add-int64", "add", np.add, A((3,), I64), A((3,), I64, seed=1)),
    C("true_divide-int64", "true_divide", np.true_divide, A((3,), I64),
      A((3,), I64, "nonzero", seed=1)),
    C("float_power-f64", "float_power", np.float_power, A((3,), F64, "pos"), A((3,), F64)),
    C("sum-int8", "sum", np.sum, A((2, 3), I8)),
    C("sum-uint8", "sum", np.sum, A((2, 3), U8), axis=0),
    C("sum-bool", "sum", np.sum, A((2, 3), BOOL)),
    C("prod-int32", "prod", np.prod, A((2, 3), I32, "small"), axis=1),
    C("mean-int64", "mean", np.mean, A((2, 3), I64)),
    C("var-int64", "var", np.var, A((2, 3), I64), ddof=1),
    C("std-f64", "std", np.std, A((2, 3), F64), axis=0),
    C("argmax-f64", "argmax", np.argmax, A((2, 3), F64), axis=1),
    C("count_nonzero", "count_nonzero", np.count_nonzero, A((2, 3), I8), axis=0),
    C("cumsum-int8-stays-int8", "cumsum", np.cumsum, A((2, 3), I8), axis=1, expect=I8),
    C("cumsum-f64", "cumsum", np.cumsum, A((2, 3), F64)),
    C("matmul-f64", "matmul", np.matmul, A((2, 3), F64), A((3, 4), F64, seed=1)),
    C("einsum-f64", "einsum", np.einsum, "ij,jk->ki", A((2, 3), F64), A((3, 4), F64, seed=1)),
    C("take-f64-fills-nan", "take", np_take_fill, A((3,), F64), np.array([0, 5, -1])),
    C("take-int64-fills-min", "take", np_take_fill, A((3,), I64), np.array([0, 5, -1])),
    C("where-f64", "where", np.where, A((3,), BOOL), A((3,), F64), 0),
]


@pytest.mark.parametrize(CASE_ARGS, X64_CASES)
def test_x64(x64, fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


X64_CREATION = [
    C("arange-int64", "arange", np.arange, 5),
    C("arange-float64", "arange", np.arange, 0.0, 1.0, 0.1),
    C("linspace-f64", "linspace", np.linspace, 0, 1, 7),
    C("eye-f64", "eye", np.eye, 3),
    C("indices-int64", "indices", np.indices, (2, 3)),
    C("zeros-f64", "zeros", np.zeros, (2,)),
    C("full-int64", "full", np.full, (2,), 7),
    C("array-f64", "array", np.array, A((2,), F64)),
    C("asarray-list-floats", "asarray", np.asarray, [1.0, 2.0]),
]


@pytest.mark.parametrize(CASE_ARGS, X64_CREATION)
def test_x64_creation(x64, fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit, static_all=True)


def test_x64_keeps_float64_precision(x64):
    x = np.array([1e-10, 1.0 + 1e-12, 123456789.123456789], np.float64)
    got = jnp.add(jnp.asarray(x), 1e-13)
    assert got.dtype == np.float64
    np.testing.assert_allclose(np.asarray(got), x + 1e-13, rtol=1e-15)
    assert jnp.sum(jnp.asarray(np.ones(3, np.int8))).dtype == np.int64
    assert jnp.cumsum(jnp.asarray(np.ones(3, np.int8))).dtype == np.int8
    assert jnp.mean(jnp.asarray(np.ones(3, np.int64))).dtype == np.float64


# JAX (jax/_src/dtypes.py, _dtype_to_inexact) makes integers of up to 32 bits and bools
# float32 and 64-bit integers float64, whatever enable_x64 says.
X64_INEXACT = [
    C("sin-int32", "sin", _inexact(np.sin), A((2, 3), I32), expect=F32),
    C("sin-int8", "sin", _inexact(np.sin), A((2, 3), I8), expect=F32),
    C("exp-bool", "exp", _inexact(np.exp), A((2, 3), BOOL), expect=F32),
    C("true_divide-int32", "true_divide", np.true_divide, A((3,), I32),
      A((3,), I32, "nonzero", seed=1), expect=F32),
    C("mean-int32", "mean", np.mean, A((2, 3), I32), expect=F32),
    C("var-uint8", "var", np.var, A((2, 3), U8), ddof=1, expect=F32),
]


@pytest.mark.parametrize(CASE_ARGS, X64_INEXACT)
def test_x64_integers_to_inexact_follow_jax(x64, fn, np_fn, args, kwargs, dtype, tol, jit):
    check(fn, np_fn, args, kwargs, dtype=dtype, tol=tol, jit=jit)


def test_every_public_function_is_tested_here():
    """A new fjit.numpy function needs a row in this file's tables."""
    import inspect
    import re
    source = open(__file__).read()
    mentioned = set(re.findall(r"jnp\.(\w+)", source)) | set(re.findall(r'"(\w+)"', source))
    skip = {"ndarray", "dtype", "issubdtype", "finfo", "iinfo", "shape", "ndim", "size",
            "can_cast", "isscalar", "promote_types", "result_type"}
    public = {name for name, obj in vars(jnp).items()
              if not name.startswith("_") and inspect.isfunction(obj) and name not in skip}
    assert sorted(public - mentioned) == []



@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float16", "float32", "int32", "bool"])
@pytest.mark.parametrize("scalar", [2, -3.5, 0, 1e40])
def test_array_and_python_scalar_promote_like_the_general_path(dtype, scalar):
    """The eager fast path for `x op scalar` (either side) gives exactly what dtype
    promotion and broadcasting give on the general path: dtypes, weak types, values."""
    from fjit.numpy import _util
    x = jnp.asarray(np.array([1, 0, 3], dtype=dtype))
    weak_x = jnp.asarray(2.0)
    for args in ((x, scalar), (scalar, x), (weak_x, scalar)):
        try:
            general = _util.broadcast_operands("op", *_util.promote_dtypes(*args))
        except (TypeError, OverflowError) as error:
            with pytest.raises(type(error)):
                _util.promote_args("op", *args)
            continue
        fast = _util.promote_args("op", *args)
        for a, b in zip(fast, general):
            assert a.aval == b.aval
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
