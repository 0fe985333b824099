"""Dtypes, JAX's type-promotion lattice, weak types and 32-bit canonicalisation.

Array dtypes are plain `numpy.dtype` objects.  bfloat16 comes from the optional `ml_dtypes`
package (the NumPy dtype JAX uses too); without it `fjit.numpy.bfloat16` is missing and
asking for it raises an ImportError that says how to get it.

Promotion follows JAX (https://jax.readthedocs.io/en/latest/type_promotion.html): a lattice
over the dtypes plus the weak categories i* and f* that Python scalars live in, so
`float16_array * 2.0` stays float16 while `int8_array + int16_array` is int16.
"""
from __future__ import annotations

import functools

import numpy as np

from .config import config
from .errors import FjitTypeError, calling_function

try:  # optional: the bfloat16 NumPy dtype
    import ml_dtypes as _ml_dtypes
    bfloat16 = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    _ml_dtypes = None
    bfloat16 = None

bool_ = np.dtype(np.bool_)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, uint16, uint32, uint64 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
float16, float32, float64 = (np.dtype(t) for t in (np.float16, np.float32, np.float64))

_FLOATS = [float16, float32, float64] + ([bfloat16] if bfloat16 is not None else [])
SUPPORTED = [bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64] + _FLOATS

_SHORT = {bool_: "bool", int8: "i8", int16: "i16", int32: "i32", int64: "i64",
          uint8: "u8", uint16: "u16", uint32: "u32", uint64: "u64",
          float16: "f16", float32: "f32", float64: "f64"}
if bfloat16 is not None:
    _SHORT[bfloat16] = "bf16"


def short_name(dtype) -> str:
    """`f32`, `i32`, `bool`, ... as used by the Program printer."""
    return _SHORT[dtype]


def is_float(dtype) -> bool:
    return dtype in _FLOATS


def is_int(dtype) -> bool:
    """Signed or unsigned integer (not bool)."""
    return dtype.kind in "iu"


def is_unsigned(dtype) -> bool:
    return dtype.kind == "u"


def is_bool(dtype) -> bool:
    return dtype == bool_


def kind_name(dtype) -> str:
    if is_bool(dtype):
        return "bool"
    if is_int(dtype):
        return "int"
    return "float"


# --- dtype canonicalisation ------------------------------------------------------------------

_TO_32 = {int64: int32, uint64: uint32, float64: float32}


def canonicalize(dtype) -> np.dtype:
    """Map a requested dtype to the one fjit stores: 64-bit types become 32-bit unless x64."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise FjitTypeError(f"{calling_function()}: data type {dtype!r} not understood") \
            from None
    if dtype not in _SHORT:
        if dtype.kind == "c":
            raise FjitTypeError(f"{calling_function()}: fjit does not support complex dtypes "
                                f"yet (got {dtype})")
        raise FjitTypeError(f"{calling_function()}: fjit does not support dtype {dtype}")
    if not config.enable_x64:
        return _TO_32.get(dtype, dtype)
    return dtype


def default_int() -> np.dtype:
    return int64 if config.enable_x64 else int32


def default_uint() -> np.dtype:
    return uint64 if config.enable_x64 else uint32


def default_float() -> np.dtype:
    return float64 if config.enable_x64 else float32


def to_inexact(dtype) -> np.dtype:
    """The float type integer/bool inputs of float functions become (JAX's rule): float32 for
    types of up to 32 bits, float64 (if x64 is on) for 64-bit integers."""
    if is_float(dtype):
        return dtype
    return canonicalize(float64 if dtype.itemsize > 4 else float32)


def to_dtype(spec) -> np.dtype:
    """A user's dtype argument (np.float32, 'int8', jnp.float32, float, ...) as a canonical dtype."""
    if spec is None:
        raise FjitTypeError("dtype must not be None here")
    if spec is float:
        return default_float()
    if spec is int:
        return default_int()
    if spec is bool:
        return bool_
    if spec is complex:
        raise FjitTypeError("fjit does not support complex dtypes yet")
    if isinstance(spec, str) and spec == "bfloat16":
        return require_bfloat16()
    inner = getattr(spec, "dtype", None)
    if isinstance(inner, np.dtype):  # fjit.numpy scalar types carry their dtype
        spec = inner
    return canonicalize(spec)


def require_bfloat16() -> np.dtype:
    if bfloat16 is None:
        raise ImportError("bfloat16 needs the ml_dtypes package: pip install 'fjit[bfloat16]'")
    return bfloat16


# --- the promotion lattice --------------------------------------------------------------------

# Nodes are dtypes plus the weak categories of Python scalars.
I_WEAK, F_WEAK = "i*", "f*"

_LATTICE_EDGES = {
    bool_: [I_WEAK],
    I_WEAK: [uint8, int8],
    uint8: [int16, uint16], uint16: [int32, uint32], uint32: [int64, uint64], uint64: [F_WEAK],
    int8: [int16], int16: [int32], int32: [int64], int64: [F_WEAK],
    F_WEAK: [float16] + ([bfloat16] if bfloat16 is not None else []),
    float16: [float32], float32: [float64], float64: [],
}
if bfloat16 is not None:
    _LATTICE_EDGES[bfloat16] = [float32]


def _upper_sets():
    ups = {}

    def visit(node):
        if node not in ups:
            result = {node}
            for succ in _LATTICE_EDGES[node]:
                result |= visit(succ)
            ups[node] = frozenset(result)
        return ups[node]

    for node in _LATTICE_EDGES:
        visit(node)
    return ups


_UPPER = _upper_sets()


@functools.lru_cache(maxsize=None)
def _least_upper_bound(nodes: frozenset):
    common = frozenset.intersection(*(_UPPER[n] for n in nodes))
    for candidate in common:
        if _UPPER[candidate] == common:
            return candidate
    names = ", ".join(sorted(str(n) for n in nodes))
    raise FjitTypeError(f"no common type for {names}")


def _lattice_node(dtype, weak: bool):
    if weak and not is_bool(dtype):
        return I_WEAK if is_int(dtype) else F_WEAK
    return dtype


def promote(*dtypes_and_weak) -> tuple[np.dtype, bool]:
    """JAX's result type of (dtype, weak_type) pairs: returns (canonical dtype, weak_type)."""
    return _promote_cached(tuple(dtypes_and_weak), config.enable_x64)


@functools.lru_cache(maxsize=4096)
def _promote_cached(pairs, _x64):
    dtypes = [d for d, _ in pairs]
    weaks = [w for _, w in pairs]
    if len(set(dtypes)) == 1 and (len(pairs) == 1 or not all(weaks)):
        out, out_weak = dtypes[0], (weaks[0] if len(pairs) == 1 else False)
    elif all(weaks):
        out, out_weak = _least_upper_bound(frozenset(dtypes)), True
    else:
        node = _least_upper_bound(frozenset(_lattice_node(d, w) for d, w in pairs))
        out_weak = node in (I_WEAK, F_WEAK)
        out = {I_WEAK: default_int(), F_WEAK: default_float()}.get(node, node)
    if out_weak and is_bool(out):
        out_weak = False
    return canonicalize(out), out_weak


def scalar_type_of(value) -> tuple[np.dtype, bool]:
    """(dtype, weak_type) of a Python or NumPy scalar/array given to an fjit operation.
    NumPy scalars are strongly typed, as in JAX, although np.float64 subclasses float."""
    if isinstance(value, np.generic):
        return canonicalize(value.dtype), False
    if isinstance(value, bool):
        return bool_, False
    if isinstance(value, int):
        return default_int(), True
    if isinstance(value, float):
        return default_float(), True
    if isinstance(value, complex):
        raise FjitTypeError("fjit does not support complex numbers yet")
    return canonicalize(np.asarray(value).dtype), False


# --- limits -----------------------------------------------------------------------------------

def finfo(dtype):
    dtype = np.dtype(dtype)
    if _ml_dtypes is not None and dtype == bfloat16:
        return _ml_dtypes.finfo(dtype)
    return np.finfo(dtype)


def iinfo(dtype):
    return np.iinfo(np.dtype(dtype))


def lowest(dtype):
    """The identity of max: -inf for floats, the smallest value for ints, False for bool."""
    if is_bool(dtype):
        return False
    if is_int(dtype):
        return int(iinfo(dtype).min)
    return -np.inf


def highest(dtype):
    """The identity of min: +inf for floats, the largest value for ints, True for bool."""
    if is_bool(dtype):
        return True
    if is_int(dtype):
        return int(iinfo(dtype).max)
    return np.inf
