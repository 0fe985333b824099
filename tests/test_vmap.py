"""`fjit.vmap`, checked against Python loops over the batch.

Every case runs the function once per batch element (eagerly, unbatched), stacks the results
with NumPy along `out_axes`, and compares that with `vmap` run eagerly and with `jit(vmap)`
(whose Program the test-wide `check_programs` typechecks).

Sections: 1. every primitive under vmap (one row per element-wise TABLE op, then the
structural, reduce, reindex and higher-order primitives and the lax views); 2. `fjit.numpy`
under vmap; 3. the API (in_axes/out_axes pytrees, kwargs, axis_size, nesting); 4. errors;
5. the Programs vmap produces.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.lax import indexexpr as ix
from fjit.lax.elementwise import TABLE
from fjit.tree_util import tree_flatten

f16, f32, f64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
i8, i32, i64 = np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64)
u8, u16, u32 = np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32)
b1 = np.dtype(np.bool_)

i0, i1, i2 = ix.idx(0), ix.idx(1), ix.idx(2)

NB = 3  # the batch size used throughout

META_FAMILIES = {"elementwise", "broadcast", "reduce", "argreduce", "reindex",
                 "reindex_reduce", "reshape", "iota"}


def A(value, dtype=None):
    """An fjit Array holding `value` (with `dtype`)."""
    return fjit.device_put(np.asarray(value, dtype=dtype))


def is_float(dtype):
    return np.dtype(dtype).kind == "f"


LOOSE = {"rtol": 1e-5, "atol": 1e-5}  # for comparisons with NumPy computing in its own order


def assert_same(got, expected, exact=False, tol=None):
    """`got` (an fjit Array) has `expected`'s dtype and shape and matches its values."""
    assert isinstance(got, fjit.Array), type(got)
    expected = np.asarray(expected)
    value = np.asarray(got)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert value.dtype == expected.dtype
    assert value.shape == expected.shape, (value.shape, expected.shape)
    if exact or not is_float(expected.dtype):
        np.testing.assert_array_equal(value, expected)
    else:
        tol = tol or ({"rtol": 4e-3, "atol": 1e-3} if expected.dtype == f16 else
                      {"rtol": 1e-5, "atol": 1e-6} if expected.dtype == f32 else
                      {"rtol": 1e-12, "atol": 1e-14})
        np.testing.assert_allclose(value, expected, **tol)


def example(args, in_axes, k):
    """The k-th batch element of every argument (unmapped ones whole), as fjit Arrays."""
    return [A(np.take(a, k, axis=ax)) if ax is not None else A(a)
            for a, ax in zip(args, in_axes)]


def loop(f, args, in_axes, out_axes=0, size=None):
    """Run f once per batch element and stack each output leaf along out_axes (an int)."""
    if size is None:
        size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    per_k = [tree_flatten(f(*example(args, in_axes, k)))[0] for k in range(size)]
    return [np.stack([np.asarray(leaves[j]) for leaves in per_k], axis=out_axes)
            for j in range(len(per_k[0]))], per_k[0]


def check_vmap(f, args, in_axes, out_axes=0, exact=False, size=None):
    """vmap(f) and jit(vmap(f)) both equal the stacked loop, dtypes and weak types included."""
    in_axes = tuple(in_axes)
    expected, first = loop(f, args, in_axes, out_axes, size)
    arrays = [A(a) for a in args]
    mapped = fjit.vmap(f, in_axes=in_axes, out_axes=out_axes, axis_size=size)
    for run in (mapped, fjit.jit(mapped)):
        outs = tree_flatten(run(*arrays))[0]
        assert len(outs) == len(expected)
        for got, want, one in zip(outs, expected, first):
            assert_same(got, want, exact)
            assert got.aval.weak_type == one.aval.weak_type, (got.aval, one.aval)


# =============================================================================================
# 1a. Element-wise ops: one row per TABLE op (its own dtypes and domains)
# =============================================================================================

FLOAT_DOMAIN = {"any": (-3, 3), "pos": (0.1, 4), "unit": (-0.9, 0.9), "ge1": (1.1, 4),
                "nonzero": (0.5, 3), "lo": (-2, -1), "hi": (1, 2)}


def gen(rng, domain, dtype, shape):
    """Random operand values of `dtype` in `domain` (as in tests/test_lax.py)."""
    if domain == "pred" or dtype == b1:
        return rng.random(shape) < 0.5
    if is_float(dtype):
        lo, hi = FLOAT_DOMAIN[domain]
        v = rng.uniform(lo, hi, shape)
        if domain == "nonzero":
            v = v * rng.choice([-1.0, 1.0], shape)
        return v.astype(dtype)
    signed = dtype.kind == "i"
    if domain == "bits":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if domain == "shift":
        lo, hi = 0, dtype.itemsize * 8 - 1
    elif domain in ("nonzero", "pos"):
        lo, hi = 1, 10
    elif domain == "lo":
        lo, hi = (-6, -2) if signed else (0, 4)
    elif domain == "hi":
        lo, hi = (2, 6) if signed else (12, 16)
    else:
        lo, hi = (-10, 10) if signed else (0, 20)
    v = rng.integers(lo, hi, shape, endpoint=True)
    if domain == "nonzero" and signed:
        v = v * rng.choice([-1, 1], shape)
    return v.astype(dtype)


FLOATS = (f32, f16)
NUMERIC = (f32, i32, u8)
ALL = (f32, i32, b1)
INTS = (i32, u8)
INTBOOL = (i32, b1)


@dataclass(frozen=True)
class EW:
    name: str                 # the TABLE row
    fn: Callable
    dtypes: tuple
    domains: tuple            # one per operand
    exact: bool = False
    label: str = ""

    @property
    def id(self):
        return self.name + (f"[{self.label}]" if self.label else "")


def U(name, fn, dtypes=FLOATS, domain="any", **kw):
    return EW(name, fn, dtypes, (domain,), **kw)


def B(name, fn, dtypes=NUMERIC, domains=("any", "any"), **kw):
    return EW(name, fn, dtypes, domains, **kw)


BITCAST_TO = {f32: i32, i32: f32, u8: i8, f16: u16}

EW_ROWS = [
    U("neg", lax.neg, NUMERIC),
    U("abs", lax.abs, NUMERIC),
    U("sign", lax.sign, NUMERIC),
    U("integer_pow", lambda x: lax.integer_pow(x, 3), NUMERIC, label="3"),
    U("integer_pow", lambda x: lax.integer_pow(x, -2), FLOATS, "nonzero", label="-2"),
    U("exp", lax.exp),
    U("exp2", lax.exp2),
    U("log", lax.log, domain="pos"),
    U("log1p", lax.log1p, domain="pos"),
    U("expm1", lax.expm1),
    U("sqrt", lax.sqrt, domain="pos"),
    U("rsqrt", lax.rsqrt, domain="pos"),
    U("cbrt", lax.cbrt),
    U("sin", lax.sin),
    U("cos", lax.cos),
    U("tan", lax.tan, domain="unit"),
    U("tanh", lax.tanh),
    U("asin", lax.asin, domain="unit"),
    U("acos", lax.acos, domain="unit"),
    U("atan", lax.atan),
    U("sinh", lax.sinh),
    U("cosh", lax.cosh),
    U("asinh", lax.asinh),
    U("acosh", lax.acosh, domain="ge1"),
    U("atanh", lax.atanh, domain="unit"),
    U("logistic", lax.logistic),
    U("erf", lax.erf),
    U("floor", lax.floor),
    U("ceil", lax.ceil),
    U("round", lax.round, label="away"),
    U("round", lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), label="even"),
    U("is_finite", lax.is_finite),
    U("stop_gradient", lax.stop_gradient, ALL, exact=True),
    U("not", lax.bitwise_not, INTBOOL + (u8,), "bits"),
    B("add", lax.add),
    B("sub", lax.sub),
    B("mul", lax.mul),
    B("div", lax.div, domains=("any", "nonzero")),
    B("rem", lax.rem, domains=("any", "nonzero")),
    B("pow", lax.pow, FLOATS, domains=("pos", "any")),
    B("max", lax.max, ALL),
    B("min", lax.min, ALL),
    B("atan2", lax.atan2, FLOATS),
    B("nextafter", lax.nextafter, FLOATS, exact=True),
    B("eq", lax.eq, ALL),
    B("ne", lax.ne, ALL),
    B("lt", lax.lt, ALL),
    B("le", lax.le, ALL),
    B("gt", lax.gt, ALL),
    B("ge", lax.ge, ALL),
    B("and", lax.bitwise_and, INTBOOL, domains=("bits", "bits")),
    B("or", lax.bitwise_or, INTBOOL, domains=("bits", "bits")),
    B("xor", lax.bitwise_xor, INTBOOL, domains=("bits", "bits")),
    B("shift_left", lax.shift_left, INTS, domains=("bits", "shift")),
    B("shift_right_logical", lax.shift_right_logical, INTS, domains=("bits", "shift")),
    B("shift_right_arithmetic", lax.shift_right_arithmetic, INTS, domains=("bits", "shift")),
    EW("select", lax.select, ALL, ("pred", "any", "any")),
    EW("clamp", lax.clamp, NUMERIC, ("lo", "any", "hi")),
    EW("convert_element_type", lambda x: lax.convert_element_type(x, f32), ALL, ("any",),
       label="f32"),
    EW("convert_element_type", lambda x: lax.convert_element_type(x, i32), ALL, ("any",),
       label="i32"),
    EW("convert_element_type", lambda x: lax.convert_element_type(x, b1), ALL, ("any",),
       label="bool"),
    EW("bitcast", lambda x: lax.bitcast_convert_type(x, BITCAST_TO[x.dtype]), tuple(BITCAST_TO),
       ("any",), exact=True),
]

FULL = (2, 4)
# (label, [(example shape, in_axis) per operand], out_axes)
LAYOUTS = {
    1: [("ax0", [(FULL, 0)], 0),
        ("ax1-out1", [(FULL, 1)], 1),
        ("ax-1-out-1", [(FULL, -1)], -1),
        ("rank0", [((), 0)], 0),
        ("rank0-out-1", [((), 0)], -1)],
    2: [("0-0", [(FULL, 0), (FULL, 0)], 0),
        ("1-None-out-1", [(FULL, 1), (FULL, None)], -1),
        ("None--1-out1", [(FULL, None), (FULL, -1)], 1),
        ("2-0-out1", [(FULL, 2), (FULL, 0)], 1),
        ("full0-rank0None", [(FULL, 0), ((), None)], 0),
        ("rank0None-full1", [((), None), (FULL, 1)], -1),
        ("rank0batched-fullNone", [((), 0), (FULL, None)], 0),
        ("fullNone-rank0batched-out1", [(FULL, None), ((), 0)], 1),
        ("rank0batched-full-1", [((), 0), (FULL, -1)], -1),
        ("rank0-rank0", [((), 0), ((), 0)], 0),
        ("rank0batched-rank0None", [((), None), ((), 0)], 0)],
    3: [("0-0-0", [(FULL, 0)] * 3, 0),
        ("None-1-0-out-1", [(FULL, None), (FULL, 1), (FULL, 0)], -1),
        ("rank0batched-fullNone-rank0None-out1", [((), 0), (FULL, None), ((), None)], 1),
        ("fullNone-rank0batched-full1", [(FULL, None), ((), 0), (FULL, 1)], 0),
        ("rank0None-rank0None-fullbatched", [((), None), ((), None), (FULL, -1)], 0),
        ("rank0-all-batched", [((), 0)] * 3, 0)],
}


def _ew_params():
    params = []
    for row in EW_ROWS:
        for dtype in row.dtypes:
            layouts = LAYOUTS[len(row.domains)]
            for label, operands, out_axes in layouts:
                params.append(pytest.param(row, dtype, operands, out_axes,
                                           id=f"{row.id}-{dtype.name}-{label}"))
    return params


def _batched_shape(shape, axis):
    if axis is None:
        return shape
    full = list(shape)
    full.insert(axis % (len(shape) + 1), NB)
    return tuple(full)


@pytest.mark.parametrize("row,dtype,operands,out_axes", _ew_params())
def test_elementwise_vmap(row, dtype, operands, out_axes, request):
    rng = np.random.default_rng(zlib.crc32(request.node.name.encode()))
    args = [gen(rng, dom, dtype, _batched_shape(shape, axis))
            for dom, (shape, axis) in zip(row.domains, operands)]
    with np.errstate(all="ignore"):
        check_vmap(row.fn, args, [axis for _, axis in operands], out_axes, exact=row.exact)


def test_every_table_op_has_a_vmap_row():
    table = {op.name for op in TABLE}
    rows = {row.name for row in EW_ROWS}
    assert table - rows == set(), f"ops without a vmap row: {sorted(table - rows)}"
    assert rows - table == set(), f"vmap rows for unknown ops: {sorted(rows - table)}"


def test_elementwise_vmap_float64(x64):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(NB, 2, 4)), rng.normal(size=(2, 4))
    check_vmap(lambda a, b: lax.atan2(lax.mul(a, b), b), [x, y], (0, None))
    check_vmap(lambda a: lax.convert_element_type(a, i64), [x * 10], (1,), 1)


# =============================================================================================
# 1b. Structural, reduce, reindex, higher-order primitives and the lax views
# =============================================================================================

_RNG = np.random.default_rng(1234)


def R(*shape, dtype=f32, lo=-3, hi=3):
    """Deterministic random values of `shape` and `dtype`."""
    if dtype == b1:
        return _RNG.random(shape) < 0.5
    if is_float(dtype):
        return _RNG.uniform(lo, hi, shape).astype(dtype)
    return _RNG.integers(lo, hi, shape, endpoint=True).astype(dtype)


def I(values, dtype=i32):
    return np.asarray(values, dtype=dtype)


@dataclass
class Case:
    id: str
    fn: Callable
    args: list
    in_axes: tuple
    out_axes: int = 0
    exact: bool = False
    size: int | None = None


CASES: list[Case] = []


def case(id, fn, args, in_axes, out_axes=0, **kw):
    CASES.append(Case(id, fn, list(args), tuple(in_axes), out_axes, **kw))


# --- broadcast_in_dim, reshape, iota ---------------------------------------------------------

case("broadcast_in_dim-new-dims", lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1,)),
     [R(NB, 3)], (0,))
case("broadcast_in_dim-size1-dims", lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (0, 2)),
     [R(1, NB, 1)], (1,), -1)
case("broadcast_in_dim-size1-at-end", lambda x: lax.broadcast_in_dim(x, (5, 3, 4), (1, 2)),
     [R(3, 1, NB, dtype=i32)], (-1,), 1)
case("broadcast_in_dim-rank0", lambda x: lax.broadcast_in_dim(x, (2, 3), ()), [R(NB)], (0,), 1)
case("reshape-merge", lambda x: lax.reshape(x, (8,)), [R(2, NB, 4)], (1,))
case("reshape-split", lambda x: lax.reshape(x, (2, 2, 3)), [R(12, NB, dtype=i32)], (-1,), -1)
case("reshape-dimensions", lambda x: lax.reshape(x, (8,), dimensions=(1, 0)), [R(NB, 2, 4)],
     (0,), 1)
case("reshape-to-rank0", lambda x: lax.reshape(x, ()), [R(1, NB)], (1,))
case("iota-inside", lambda x: lax.add(x, lax.iota(f32, 4)), [R(NB, 4)], (0,))
case("iota-broadcasted", lambda x: lax.mul(x, lax.broadcasted_iota(i32, (2, 4), 1)),
     [R(2, 4, NB, dtype=i32)], (2,), 1)
case("iota-only", lambda x: lax.broadcasted_iota(f32, (2, 3), 0), [R(NB, 2)], (0,), -1)

# --- reductions ------------------------------------------------------------------------------

REDUCERS = {"sum": (lax.reduce_sum, (f32, i32)), "prod": (lax.reduce_prod, (f32, i32)),
            "max": (lax.reduce_max, (f32, i32, b1)), "min": (lax.reduce_min, (f32, i32, b1)),
            "and": (lax.reduce_and, (b1, i32)), "or": (lax.reduce_or, (b1, i32))}
# (example axes reduced, batch dim of the (2, 3, 4) example -> batched rank 4, out_axes)
REDUCE_LAYOUTS = [((0,), 0, 0), ((1,), 0, 0), ((0,), 1, 0), ((2,), 1, 1), ((0, 2), 2, -1),
                  ((1, 2), 1, 0), ((0, 1, 2), 3, 0), ((), 2, 1), ((0, 1), 2, 1)]

for _name, (_fn, _dts) in REDUCERS.items():
    for _n, _dt in enumerate(_dts):
        for _axes, _bdim, _out in (REDUCE_LAYOUTS if _n == 0 else REDUCE_LAYOUTS[2:4]):
            _shape = [2, 3, 4]
            _shape.insert(_bdim, NB)
            _args = [R(*_shape, dtype=_dt, lo=-2, hi=2) if _name == "prod" else
                     R(*_shape, dtype=_dt)]
            case(f"reduce_{_name}-{_dt.name}-axes{_axes}-bdim{_bdim}-out{_out}",
                 lambda x, f=_fn, a=_axes: f(x, a), _args, (_bdim,), _out)

for _name, _fn in (("argmax", lax.argmax), ("argmin", lax.argmin)):
    for _axis, _bdim, _out in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 1), (0, 2, -1),
                               (1, 2, 0), (2, 1, 0), (2, 3, 0)]:
        _shape = [2, 3, 4]
        _shape.insert(_bdim, NB)
        case(f"{_name}-axis{_axis}-bdim{_bdim}", lambda x, f=_fn, a=_axis: f(x, a),
             [R(*_shape)], (_bdim,), _out)
    case(f"{_name}-ties-i32", lambda x, f=_fn: f(x, 1, i8), [R(NB, 2, 5, dtype=i32, lo=0, hi=2)],
         (0,))

# --- reindex ---------------------------------------------------------------------------------

case("reindex-transpose", lambda x: lax.reindex(x, (4, 2), (i1, i0)), [R(2, NB, 4)], (1,), -1)
case("reindex-strided-negative", lambda x: lax.reindex(x, (5,), (8 - 2 * i0,), fill=-1.0),
     [R(NB, 8)], (0,))
case("reindex-negative-stride-2d", lambda x: lax.reindex(x, (2, 2), (1 - i0, 3 - 2 * i1)),
     [R(2, 4, NB, dtype=i32)], (-1,), 1)
case("reindex-pad-interior-fill_if",
     lambda x: lax.reindex(x, (2, 9), (i0, (i1 - 1) // 2), fill=9.0,
                           fill_if=(ix.ne((i1 - 1) % 2, 0),)),
     [R(2, NB, 4)], (1,))
case("reindex-rank0-operand", lambda x: lax.reindex(x, (3,), ()), [R(NB)], (0,), -1)
_TABLE5 = R(5, 4)
_ROWS = I([[4, 0, 2], [1, 1, -1], [5, 3, 0]])  # per batch element; -1 and 5 fall outside
_GATHER = lambda x, rows: lax.reindex(x, (3, 4), (ix.load(1, (i0,)), i1), fill=-1.0,
                                      index_arrays=(rows,))
case("gather-index-batched-data-not", _GATHER, [_TABLE5, _ROWS], (None, 0))
case("gather-index-batched-at1", _GATHER, [_TABLE5, _ROWS.T.copy()], (None, 1), -1)
case("gather-both-batched", _GATHER, [R(NB, 5, 4), _ROWS], (0, 0))
case("gather-both-batched-data-at-end", _GATHER, [R(5, 4, NB), _ROWS.T.copy()], (-1, 1), 1)
case("gather-data-batched-only", _GATHER, [R(5, NB, 4), I([3, 0, 4])], (1, None))
_POINTS = I([[[0, 1], [4, 3], [2, 2]], [[1, 0], [3, 3], [5, 0]], [[2, 1], [0, 0], [4, 4]]])
case("gather-points-index-batched",
     lambda x, p: lax.reindex(x, (3,), (ix.load(1, (i0, 0)), ix.load(1, (i0, 1))), fill=7.0,
                              index_arrays=(p,)),
     [_TABLE5, np.moveaxis(_POINTS, 0, 1).copy()], (None, 1))
case("gather-two-index-operands-one-batched",
     lambda x, r, c: lax.reindex(x, (3,), (ix.load(1, (i0,)), ix.load(2, (i0,))),
                                 index_arrays=(r, c)),
     [_TABLE5, _ROWS % 5, I([3, 0, 1])], (None, 0, None))
case("gather-fill_if-loads-batched",
     lambda x, r: lax.reindex(x, (3, 4), (ix.load(1, (i0,)), i1), fill=0.0,
                              fill_if=(ix.eq(ix.load(1, (i0,)), 0),), index_arrays=(r,)),
     [_TABLE5, _ROWS % 5], (None, 0))

# --- reindex_reduce --------------------------------------------------------------------------

_TARGETS = I([[0, 2, 2, 3, 0, 0, 2], [1, 1, 1, 4, 4, 0, 5], [3, 3, 3, 3, -1, 2, 2]])
for _op in ("add", "max", "min", "mul"):
    _scatter = (lambda x, t, op=_op: lax.reindex_reduce(x, op, (5,), (ix.load(1, (i0,)),),
                                                        index_arrays=(t,)))
    _vals = R(NB, 7, lo=-2, hi=2)
    case(f"scatter-{_op}-data-batched", _scatter, [_vals, _TARGETS[0]], (0, None))
    case(f"scatter-{_op}-indices-batched", _scatter, [_vals[0], _TARGETS], (None, 0), -1)
    case(f"scatter-{_op}-both-batched", _scatter, [_vals.T.copy(), _TARGETS], (1, 0), 1)
    case(f"scatter-{_op}-i32-both", _scatter, [R(7, NB, dtype=i32), _TARGETS.T.copy()],
         (1, 1))
for _op in ("and", "or"):
    case(f"scatter-{_op}-bool-indices-batched",
         lambda x, t, op=_op: lax.reindex_reduce(x, op, (6,), (ix.load(1, (i0,)),),
                                                 index_arrays=(t,)),
         [R(7, dtype=b1), _TARGETS], (None, 0))
case("scatter-rows-drop_if-2d",
     lambda x, t: lax.reindex_reduce(x, "add", (4, 3), (ix.load(1, (i0,)), i1),
                                     drop_if=(ix.eq(i1, 2),), index_arrays=(t,)),
     [R(5, 3, NB), I([[0, 3, 3], [1, 1, 0], [3, 2, 2], [0, 0, 0], [2, 3, 1]])], (2, 1))
case("reindex_reduce-no-loads", lambda x: lax.reindex_reduce(x, "max", (4,), (i1,)),
     [R(2, NB, 4)], (1,))
case("reindex_reduce-to-rank0", lambda x: lax.reindex_reduce(x, "add", (), ()),
     [R(2, 4, NB)], (-1,))

case("scatter-drop_if-loads-batched-index",
     lambda x, t: lax.reindex_reduce(x, "add", (5,), (ix.load(1, (i0,)),),
                                     drop_if=(ix.eq(ix.load(1, (i0,)), 2),), index_arrays=(t,)),
     [R(7), _TARGETS], (None, 0))
case("scatter-rank0-target", lambda x: lax.reindex_reduce(x, "min", (), ()), [R(NB, 3)], (0,))
case("full-of-batched-value", lambda v: lax.full((2, 3), v), [R(NB)], (0,), -1)
case("full-converts-batched-value", lambda v: lax.full((2,), v, i32), [R(NB, lo=0, hi=9)],
     (0,))

# --- the views in fjit.lax -------------------------------------------------------------------

case("transpose", lambda x: lax.transpose(x, (2, 0, 1)), [R(2, NB, 3, 4)], (1,), -1)
case("slice-strided", lambda x: lax.slice(x, (0, 1), (2, 8), (1, 3)), [R(NB, 2, 8)], (0,), 1)
case("slice_in_dim-negative", lambda x: lax.slice_in_dim(x, -5, -1, 2, axis=1),
     [R(2, 8, NB, dtype=i32)], (-1,))
case("rev", lambda x: lax.rev(x, (0, 1)), [R(2, NB, 4)], (1,), 1)
case("pad-interior-negative",
     lambda x: lax.pad(x, -7.0, [(1, 2, 1), (-1, 1, 0)]), [R(NB, 3, 4)], (0,), -1)
case("pad-traced-value-batched",
     lambda x, v: lax.pad(x, v, [(2, 0, 1), (0, 1, 2)]), [R(2, 3, NB), R(NB)], (2, 0))
case("pad-traced-value-unbatched",
     lambda x, v: lax.pad(x, v, [(1, 1, 0)]), [R(3, NB), R()], (1, None), 1)
case("pad-value-batched-only",
     lambda x, v: lax.pad(x, v, [(1, 1, 1)]), [R(3), R(NB)], (None, 0))
case("concatenate-mixed",
     lambda a, b, c: lax.concatenate([a, b, c], 1),
     [R(2, NB, 3), R(2, 1), R(NB, 2, 2)], (1, None, 0), -1)
case("concatenate-dim0-unbatched-first",
     lambda a, b: lax.concatenate([a, b], 0), [R(1, 4, dtype=i32), R(2, 4, NB, dtype=i32)],
     (None, 2))
_DS = lambda x, s0, s1: lax.dynamic_slice(x, (s0, s1), (2, 2))
case("dynamic_slice-starts-batched", _DS, [R(4, 5), I([0, 3, -1]), I([4, 1, 2])],
     (None, 0, 0))
case("dynamic_slice-one-start-batched", _DS, [R(4, 5, NB), I([2, 5, -9]), I(1)],
     (2, 0, None), 1)
case("dynamic_slice-data-batched-only", _DS, [R(NB, 4, 5), I(1), I(3)], (0, None, None))
_DUS = lambda x, u, s: lax.dynamic_update_slice(x, u, (s, 1))
case("dynamic_update_slice-start-batched", _DUS, [R(4, 5), R(2, 3), I([0, 2, 3])],
     (None, None, 0))
case("dynamic_update_slice-update-batched", _DUS, [R(4, 5), R(2, NB, 3), I([3, -2, 1])],
     (None, 1, 0), -1)
case("dynamic_update_slice-operand-batched", _DUS, [R(4, NB, 5), R(2, 3), I(2)],
     (1, None, None))
case("dynamic_update_slice-all-batched", _DUS, [R(NB, 4, 5), R(2, 3, NB), I([1, 0, 2])],
     (0, 2, 0))
case("windows", lambda x: lax.windows(x, (2, 3), (1, 2), ((1, 0), (1, 1)), (1, 1), fill=-1.0),
     [R(4, NB, 5)], (1,))
case("windows-dilated", lambda x: lax.windows(x, (1, 2), None, None, (1, 2)),
     [R(NB, 2, 6)], (0,), 2)

# --- jit, checkpoint, custom_jvp, custom_vjp -------------------------------------------------


@fjit.jit
def _jitted(x, w):
    return jnp.tanh(x @ w) + 1.0, w.sum()


def _checkpointed(x, w):
    return fjit.checkpoint(lambda a, b: jnp.sin(a * b).sum(0))(x, w)


@fjit.custom_jvp
def _cj(x, y):
    return jnp.sin(x) * y


@_cj.defjvp
def _cj_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    return _cj(x, y), 3.0 * tx * y + ty  # deliberately not the true derivative


@fjit.custom_vjp
def _cv(x, w):
    return jnp.tanh(x) * w


def _cv_fwd(x, w):
    return _cv(x, w), (x, w)


def _cv_bwd(res, g):
    x, w = res
    return 2.0 * g * w, (g * x).sum() + jnp.zeros_like(w)  # deliberately not the derivative


_cv.defvjp(_cv_fwd, _cv_bwd)

case("jit-inside", _jitted, [R(NB, 2, 3), R(3, 4)], (0, None))
case("jit-inside-both-batched", _jitted, [R(2, 3, NB), R(NB, 3, 4)], (-1, 0), -1)
case("jit-inside-unbatched-output", lambda x, w: _jitted(x, w)[1] + 0 * x.sum(),
     [R(NB, 2, 3), R(3, 4)], (0, None))
case("jit-nested-jit", fjit.jit(lambda x: _jitted(x, jnp.ones((3, 2)))[0].sum(1)),
     [R(2, NB, 3)], (1,))
case("checkpoint", _checkpointed, [R(NB, 2, 4), R(2, 4)], (0, None))
case("checkpoint-both", _checkpointed, [R(2, 4, NB), R(2, NB, 4)], (2, 1), -1)
case("custom_jvp", _cj, [R(NB, 4), R(4)], (0, None))
case("custom_jvp-both", _cj, [R(4, NB), R(NB, 4)], (1, 0), 1)
_cjn = fjit.custom_jvp(lambda x, n: x ** n, nondiff_argnums=(1,))
_cjn.defjvp(lambda n, primals, tangents: (_cjn(primals[0], n), n * tangents[0]))


@fjit.custom_vjp
def _cvt(p, x):
    return {"y": p["w"] * x + p["b"], "z": x.sum()}


_cvt.defvjp(lambda p, x: (_cvt(p, x), {"x": x, "w": p["w"]}),
            lambda res, g: ({"w": g["y"] * res["x"], "b": g["y"]}, g["y"] * res["w"] + g["z"]))

case("custom_jvp-nondiff_argnums", lambda x: _cjn(x, 3), [R(2, NB)], (1,))
case("custom_vjp-pytrees", lambda w, b, x: _cvt({"w": w, "b": b}, x),
     [R(4), R(NB, 4), R(4, NB)], (None, 0, 1), -1)
case("custom_vjp", _cv, [R(NB, 4), R(4)], (0, None))
case("custom_vjp-second-batched", _cv, [R(4), R(4, NB)], (None, 1), -1)


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES])
def test_primitive_vmap(c):
    check_vmap(c.fn, c.args, c.in_axes, c.out_axes, exact=c.exact, size=c.size)


def test_reduce_rows_cover_every_monoid():
    from fjit.lax.reduce import MONOIDS
    assert set(REDUCERS) == set(MONOIDS)


def test_custom_jvp_rule_survives_vmap():
    """grad(sum(vmap(f))) uses the (batched) custom jvp rule, per example."""
    x, y = R(NB, 4), R(4)

    def total(x, y):
        return fjit.vmap(_cj, in_axes=(0, None))(x, y).sum()

    gx, gy = fjit.grad(total, argnums=(0, 1))(A(x), A(y))
    assert_same(gx, 3.0 * y * np.ones_like(x))
    assert_same(gy, np.full(4, float(NB), f32))


def test_custom_vjp_rule_survives_vmap():
    """The batched bwd runs per example; the cotangent of an unbatched argument sums."""
    x, w = R(NB, 4), R(4)

    def total(x, w):
        return fjit.vmap(_cv, in_axes=(0, None))(x, w).sum()

    gx, gw = fjit.grad(total, argnums=(0, 1))(A(x), A(w))
    assert_same(gx, 2.0 * np.broadcast_to(w, x.shape))
    assert_same(gw, np.full(4, x.sum(), f32))


def test_custom_jvp_nondiff_argnums_rule_survives_vmap():
    x = R(NB, 2)
    g = fjit.grad(lambda a: fjit.vmap(lambda r: _cjn(r, 3))(a).sum())(A(x))
    assert_same(g, np.full((NB, 2), 3.0, f32))


def test_vmap_of_grad_of_custom_functions():
    x, w = R(NB, 4), R(4)
    g = fjit.vmap(fjit.grad(lambda a, b: _cv(a, b).sum()), in_axes=(0, None))(A(x), A(w))
    assert_same(g, 2.0 * np.broadcast_to(w, x.shape))
    g = fjit.vmap(fjit.grad(lambda a, b: _cj(a, b).sum()), in_axes=(0, None))(A(x), A(w))
    assert_same(g, 3.0 * np.broadcast_to(w, x.shape))


# =============================================================================================
# 2. fjit.numpy under vmap
# =============================================================================================

NP_CASES: list[Case] = []


def np_case(id, fn, args, in_axes, out_axes=0, **kw):
    NP_CASES.append(Case(id, fn, list(args), tuple(in_axes), out_axes, **kw))


np_case("matmul-both", jnp.matmul, [R(NB, 2, 3), R(NB, 3, 4)], (0, 0))
np_case("matmul-lhs-batched", jnp.matmul, [R(2, NB, 3), R(3, 4)], (1, None), 1)
np_case("matmul-rhs-batched", lambda a, b: a @ b, [R(2, 3), R(3, 4, NB)], (None, 2), -1)
np_case("matmul-vector", jnp.matmul, [R(NB, 3), R(3, 4)], (0, None))
np_case("matmul-int", jnp.matmul, [R(NB, 2, 3, dtype=i32), R(3, 2, dtype=i32)], (0, None))
np_case("dot", jnp.dot, [R(3, NB), R(3)], (1, None))
np_case("einsum-contract", lambda a, b: jnp.einsum("ij,jk->ki", a, b),
        [R(2, 3, NB), R(3, 4)], (2, None))
np_case("einsum-outer-both", lambda a, b: jnp.einsum("i,j->ij", a, b), [R(NB, 2), R(3, NB)],
        (0, 1), 1)
np_case("einsum-trace", lambda a: jnp.einsum("ii", a), [R(3, NB, 3)], (1,))
_T = R(5, 4)
np_case("index-batched-scalar", lambda x, i: x[i], [_T, I([4, 0, -2])], (None, 0))
np_case("index-batched-array", lambda x, i: x[i, 1:], [_T, I([[0, 4], [-1, 2], [3, 3]])],
        (None, 0))
np_case("index-both-batched", lambda x, i: x[:, i], [R(NB, 5, 4), I([3, 0, -1])], (0, 0), -1)
np_case("index-data-batched", lambda x, i: x[i], [R(5, NB, 4), I([1, 4])], (1, None))
np_case("at-add-batched-index-and-values", lambda x, i, v: x.at[i].add(v),
        [_T, I([[1, 1], [0, 4], [3, -1]]), R(NB, 2, 4)], (None, 0, 0))
np_case("at-add-index-batched-only", lambda x, i, v: x.at[i].add(v),
        [_T, I([2, 2, 0]), R(4)], (None, 0, None), 1)
np_case("at-set-all-batched", lambda x, i, v: x.at[i, 1].set(v),
        [R(5, 4, NB), I([0, 3, 3]), R(NB)], (2, 0, 0))
np_case("at-max-dups", lambda x, i, v: x.at[i].max(v),
        [R(NB, 5), I([[1, 1, 2], [0, 0, 0], [4, 3, 4]]), R(NB, 3)], (0, 0, 0))
np_case("take_along_axis-index-batched",
        lambda x, i: jnp.take_along_axis(x, i, axis=1),
        [R(3, 4), I([[[0], [3], [1]], [[2], [2], [2]], [[3], [0], [1]]])], (None, 0))
np_case("take_along_axis-both",
        lambda x, i: jnp.take_along_axis(x, i, axis=0),
        [R(3, NB, 4), I([[[0, 2, 1, 1]], [[2, 2, 0, 1]], [[1, 0, 0, 2]]])], (1, 0), 1)
np_case("where-cond-batched", jnp.where, [R(NB, 2, 4, dtype=b1), R(2, 4), R(4)],
        (0, None, None))
np_case("where-mixed", lambda c, x: jnp.where(c, x, 0.5), [R(2, 4, dtype=b1), R(2, NB, 4)],
        (None, 1), -1)
np_case("cumsum", lambda x: jnp.cumsum(x, axis=1), [R(2, NB, 5)], (1,))
np_case("cumsum-int-axis0", lambda x: jnp.cumsum(x, axis=0), [R(4, 2, NB, dtype=i32)], (2,),
        1)
np_case("cumprod", lambda x: jnp.cumprod(x, axis=-1), [R(NB, 2, 4, lo=-1.5, hi=1.5)], (0,))
np_case("sum-keepdims", lambda x: jnp.sum(x, axis=1, keepdims=True), [R(2, NB, 4)], (1,), 2)
np_case("max-keepdims", lambda x: jnp.max(x, axis=(0, 1), keepdims=True), [R(2, 4, NB)],
        (-1,))
np_case("mean-keepdims", lambda x: jnp.mean(x, axis=0, keepdims=True), [R(NB, 2, 4)], (0,))
np_case("any-all", lambda x: (jnp.any(x, axis=1, keepdims=True), jnp.all(x)),
        [R(2, NB, 4, dtype=b1)], (1,))
np_case("argmax-keepdims", lambda x: jnp.argmax(x, axis=0, keepdims=True), [R(2, NB, 4)],
        (1,))
np_case("prod-int", lambda x: jnp.prod(x, axis=-1), [R(NB, 2, 4, dtype=i32, lo=-2, hi=2)],
        (0,))
np_case("concatenate-mixed", lambda a, b: jnp.concatenate([a, b, a], axis=0),
        [R(2, NB, 4), R(1, 4)], (1, None))
np_case("concatenate-axis-1", lambda a, b: jnp.concatenate([b, a], axis=-1),
        [R(NB, 2, 3), R(2, 1)], (0, None), -1)
np_case("stack-mixed", lambda a, b: jnp.stack([a, b, a * 2], axis=1), [R(2, 4), R(2, 4, NB)],
        (None, -1))
np_case("stack-with-constant", lambda a: jnp.stack([a, jnp.zeros(4)], axis=-1),
        [R(NB, 4)], (0,), 1)
for _mode in ("constant", "edge", "wrap", "reflect", "symmetric"):
    np_case(f"pad-{_mode}", lambda x, m=_mode: jnp.pad(x, ((1, 2), (3, 1)), mode=m),
            [R(2, NB, 3)], (1,))
np_case("pad-constant-values-batched",
        lambda x, v: jnp.pad(x, ((1, 1), (0, 2)), constant_values=v), [R(NB, 2, 3), R(NB)],
        (0, 0), -1)
np_case("pad-constant-values-only-batched",
        lambda x, v: jnp.pad(x, 2, constant_values=v), [R(3), R(NB)], (None, 0))
np_case("roll-batched-shift", lambda x, s: jnp.roll(x, s, axis=1),
        [R(NB, 2, 5), I([1, -2, 7])], (0, 0))
np_case("roll-shift-only-batched", lambda x, s: jnp.roll(x, s), [R(2, 3), I([0, 4, -1])],
        (None, 0), 1)
np_case("roll-static", lambda x: jnp.roll(x, (1, -1), axis=(0, 1)), [R(2, 3, NB)], (2,))
np_case("reshape-transpose-methods", lambda x: x.reshape(4, 2).T.ravel(), [R(NB, 2, 4)], (0,))
np_case("softmax-like", lambda x: jnp.exp(x - x.max(-1, keepdims=True)) /
        jnp.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True), [R(2, NB, 4)], (1,))
np_case("weak-scalar-arith", lambda x: x * 2 + 1, [R(NB, 3, dtype=i32)], (0,))


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in NP_CASES])
def test_numpy_vmap(c):
    check_vmap(c.fn, c.args, c.in_axes, c.out_axes, exact=c.exact, size=c.size)


def test_matmul_against_numpy():
    """The loop oracle agrees with NumPy itself, for one representative case."""
    a, b = R(NB, 2, 3), R(3, 4)
    out = fjit.vmap(jnp.matmul, in_axes=(0, None))(A(a), A(b))
    assert_same(out, np.matmul(a, b).astype(f32), tol=LOOSE)


# =============================================================================================
# 3. The API
# =============================================================================================

def test_in_axes_int_none_negative():
    x, y = R(2, NB), R(2)
    out = fjit.vmap(lambda a, b: a * b, in_axes=-1)(A(x), A(np.stack([y] * NB, -1)))
    assert_same(out, (x * y[:, None]).T)
    out = fjit.vmap(lambda a, b: a * b, in_axes=(-1, None))(A(x), A(y))
    assert_same(out, (x * y[:, None]).T)
    out = fjit.vmap(lambda a, b: a * b, in_axes=[1, None])(A(x), A(y))  # a list works too
    assert_same(out, (x * y[:, None]).T)


def test_in_axes_none_everywhere_with_axis_size_broadcasts():
    x = R(2, 3)
    out = fjit.vmap(lambda a: jnp.sin(a), in_axes=None, axis_size=NB)(A(x))
    assert_same(out, np.broadcast_to(np.sin(x), (NB, 2, 3)))
    out = fjit.vmap(lambda a: jnp.sin(a), in_axes=None, axis_size=NB, out_axes=-1)(A(x))
    assert_same(out, np.broadcast_to(np.sin(x)[..., None], (2, 3, NB)))


def test_axis_size_no_arguments():
    out = fjit.vmap(lambda: jnp.arange(3), axis_size=4)()
    assert_same(out, np.broadcast_to(np.arange(3, dtype=i32), (4, 3)))
    out = fjit.vmap(lambda: (jnp.ones(2), 2.0), axis_size=2, out_axes=(1, 0))()
    assert_same(out[0], np.ones((2, 2), f32))
    assert_same(out[1], np.full(2, 2.0, f32))


def test_axis_size_consistent_with_mapped_axis():
    x = R(NB, 2)
    assert_same(fjit.vmap(jnp.sum, axis_size=NB)(A(x)), x.sum(1))


def test_pytree_in_axes_dicts_and_tuples():
    params = {"w": R(3, 2), "b": R(NB, 2)}
    xs = (R(NB, 3), R(4))

    def f(p, x):
        return {"out": x[0] @ p["w"] + p["b"], "aux": x[1].sum() + p["w"].sum()}

    in_axes = ({"w": None, "b": 0}, (0, None))
    out = fjit.vmap(f, in_axes=in_axes, out_axes={"out": 1, "aux": None})(
        {k: A(v) for k, v in params.items()}, tuple(A(v) for v in xs))
    assert set(out) == {"out", "aux"}
    expected = np.stack([xs[0][k] @ params["w"] + params["b"][k] for k in range(NB)], 1)
    assert_same(out["out"], expected, tol=LOOSE)
    assert_same(out["aux"], np.float32(xs[1].sum() + params["w"].sum()), tol=LOOSE)


def test_pytree_in_axes_prefix_and_none_inside():
    tree = {"a": R(NB, 2), "b": (R(2, NB), R(5))}
    arg = {"a": A(tree["a"]), "b": (A(tree["b"][0]), A(tree["b"][1]))}
    f = lambda t: t["a"] + t["b"][0] + t["b"][1].sum()
    out = fjit.vmap(f, in_axes=({"a": 0, "b": (1, None)},))(arg)
    assert_same(out, tree["a"] + tree["b"][0].T + tree["b"][1].sum(), tol=LOOSE)
    # None for a whole subtree
    out = fjit.vmap(lambda t: t["a"] + t["b"][1].sum(), in_axes=({"a": 0, "b": None},))(arg)
    assert_same(out, tree["a"] + tree["b"][1].sum(), tol=LOOSE)
    # one axis for a whole dict (a prefix), None for a second argument
    both = {"a": R(NB, 2), "b": R(NB)}
    y = R(2)
    out = fjit.vmap(lambda t, v: t["a"] * t["b"] + v, in_axes=(0, None))(
        {"a": A(both["a"]), "b": A(both["b"])}, A(y))
    assert_same(out, both["a"] * both["b"][:, None] + y, tol=LOOSE)


def test_keyword_arguments_are_mapped_over_axis_0():
    x, y = R(NB, 2), R(NB, 2)
    out = fjit.vmap(lambda a, b=None: a - 2 * b, in_axes=(0,))(A(x), b=A(y))
    assert_same(out, x - 2 * y)
    out = fjit.vmap(lambda a, scale: a * scale, in_axes=(None,))(A(x[0]), scale=A(y[:, 0]))
    assert_same(out, x[0][None, :] * y[:, :1])


def test_out_axes_pytree():
    x = R(NB, 2, 4)
    out = fjit.vmap(lambda a: (a, {"s": a.sum(0), "t": a.T}), out_axes=(0, {"s": -1, "t": 1}))(
        A(x))
    assert_same(out[0], x)
    assert_same(out[1]["s"], x.sum(1).T)
    assert_same(out[1]["t"], np.moveaxis(np.swapaxes(x, 1, 2), 0, 1))


def test_out_axes_none_for_unbatched_output():
    x, w = R(NB, 2), R(2)
    out, same = fjit.vmap(lambda a, b: (a * b, b * 2), in_axes=(0, None), out_axes=(0, None))(
        A(x), A(w))
    assert_same(out, x * w)
    assert_same(same, w * 2)


def test_out_axes_none_for_batched_output_raises():
    with pytest.raises(ValueError, match="out_axes"):
        fjit.vmap(lambda a: a + 1, out_axes=None)(A(R(NB, 2)))


def test_out_axes_negative_on_unbatched_output():
    w = R(2, 4)
    out = fjit.vmap(lambda a, b: b, in_axes=(0, None), out_axes=-1)(A(R(NB)), A(w))
    assert_same(out, np.broadcast_to(w[..., None], (2, 4, NB)))
    out = fjit.vmap(lambda a, b: b, in_axes=(0, None), out_axes=1)(A(R(NB)), A(w))
    assert_same(out, np.broadcast_to(w[:, None, :], (2, NB, 4)))


def test_nested_vmap_two_levels():
    x, y = R(NB, 4, 2), R(2, 4)
    inner = fjit.vmap(lambda a, b: a * b, in_axes=(0, 1))   # over x's axis 1 and y's axis 1
    out = fjit.vmap(lambda a: inner(a, A(y)))(A(x))          # over x's axis 0
    expected = np.stack([np.stack([x[k, j] * y[:, j] for j in range(4)]) for k in range(NB)])
    assert_same(out, expected)


def test_nested_vmap_outer_product():
    a, b = R(NB), R(4)
    out = fjit.vmap(lambda u: fjit.vmap(lambda v: u * v)(A(b)))(A(a))
    assert_same(out, a[:, None] * b[None, :])
    out = fjit.vmap(lambda v: fjit.vmap(lambda u: u * v, out_axes=0)(A(a)), out_axes=1)(A(b))
    assert_same(out, a[:, None] * b[None, :])


def test_nested_vmap_three_levels_different_axes():
    x = R(2, NB, 4)  # outer level over x's axis 1, middle over x's axis 0, inner over 4
    y = R(4, 2)
    f = fjit.vmap(fjit.vmap(fjit.vmap(lambda a, b: jnp.sin(a) * b, in_axes=(0, 0)),
                            in_axes=(0, 1), out_axes=1),
                  in_axes=(1, None), out_axes=-1)
    out = f(A(x), A(y))
    expected = np.empty((4, 2, NB), f32)
    for k in range(NB):
        for m in range(2):
            for i in range(4):
                expected[i, m, k] = np.sin(x[m, k, i]) * y[i, m]
    assert_same(out, expected)


def test_nested_vmap_with_reductions_and_gather():
    x, idx = R(NB, 2, 5), I([[[4, 0], [1, 1]], [[2, 3], [0, 0]], [[1, 4], [3, 2]]])
    f = fjit.vmap(fjit.vmap(lambda r, i: r[i].sum() * r.max()))
    out = f(A(x), A(idx))
    expected = np.array([[x[k, m][idx[k, m]].sum() * x[k, m].max() for m in range(2)]
                         for k in range(NB)], f32)
    assert_same(out, expected)


def test_python_scalar_outputs():
    out = fjit.vmap(lambda a: 3.0)(A(R(NB, 2)))
    assert_same(out, np.full(NB, 3.0, f32))
    assert out.aval.weak_type
    out = fjit.vmap(lambda a: (a, 7))(A(R(NB)))
    assert_same(out[1], np.full(NB, 7, i32))


def test_function_ignores_its_batched_argument():
    w = R(2, 3)
    out = fjit.vmap(lambda a, b: jnp.tanh(b), in_axes=(0, None))(A(R(NB, 5)), A(w))
    assert_same(out, np.broadcast_to(np.tanh(w), (NB, 2, 3)))
    out = fjit.jit(fjit.vmap(lambda a: jnp.ones(2)))(A(R(NB, 5)))
    assert_same(out, np.ones((NB, 2), f32))


def test_vmap_preserves_dtypes_and_weak_types():
    out = fjit.vmap(lambda a: a + 1)(A(R(NB, 2, dtype=u8, lo=0, hi=5)))
    assert out.dtype == u8 and not out.aval.weak_type
    out = fjit.vmap(lambda a: a.astype(f16))(A(R(NB, 2)))
    assert out.dtype == f16


def test_vmap_of_jit_and_jit_of_vmap_agree():
    x, w = R(NB, 2, 3), R(3, 4)
    f = lambda a, b: jnp.tanh(a @ b).sum(-1)
    one = fjit.vmap(fjit.jit(f), in_axes=(0, None))(A(x), A(w))
    two = fjit.jit(fjit.vmap(f, in_axes=(0, None)))(A(x), A(w))
    np.testing.assert_allclose(np.asarray(one), np.asarray(two), rtol=1e-6)
    assert_same(one, np.tanh(x @ w).sum(-1), tol=LOOSE)


def test_vmap_preserves_function_metadata():
    def my_function(x):
        """doc"""
        return x
    mapped = fjit.vmap(my_function)
    assert mapped.__name__ == "my_function" and mapped.__doc__ == "doc"


def test_numpy_and_python_scalar_arguments():
    x = R(NB, 2)
    assert_same(fjit.vmap(jnp.sin)(x), np.sin(x))  # a NumPy array, not an fjit Array
    out = fjit.vmap(lambda a, s: a * s, in_axes=(0, None))(A(x), 2.0)
    assert_same(out, x * 2)
    out = fjit.vmap(lambda a, s: a * s, in_axes=(0, None))(A(x), 2)
    assert_same(out, x * 2)


UNMAPPED_OBJECTS = [
    # (id, function of (a, obj), obj, expected from a = [1, 2, 3]) -- JAX passes in_axes=None
    # arguments through untouched (jax issue #183), so they need not be arrays
    ("function", lambda a, fn: fn(a), lambda a: a + 1, I([2, 3, 4])),
    ("string", lambda a, name: a * len(name), "abc", I([3, 6, 9])),
    ("int-as-shape", lambda a, n: jnp.zeros(n, i32) + a, 2, I([[1, 1], [2, 2], [3, 3]])),
    ("int-as-axis", lambda a, n: jnp.stack([a, a], axis=n).sum(n), 0, I([2, 4, 6])),
]


@pytest.mark.parametrize("fn,obj,expected", [pytest.param(*c[1:], id=c[0])
                                             for c in UNMAPPED_OBJECTS])
def test_unmapped_non_array_arguments_pass_through(fn, obj, expected):
    out = fjit.vmap(fn, in_axes=(0, None))(A(I([1, 2, 3])), obj)
    assert_same(out, expected)


def test_functions_returning_nothing():
    assert fjit.vmap(lambda a: None)(A(R(NB))) is None
    assert fjit.vmap(lambda a: ())(A(R(NB))) == ()
    out = fjit.vmap(lambda a: {"k": [a, None]})(A(R(NB)))
    assert out["k"][1] is None


def test_same_array_mapped_along_two_axes():
    x = R(NB, NB)
    assert_same(fjit.vmap(lambda a, b: a - b, in_axes=(0, 1))(A(x), A(x)), x - x.T)


def test_inner_vmap_returns_outer_batched_value():
    a = R(NB, 2)
    out = fjit.vmap(lambda u: fjit.vmap(lambda v: u)(A(R(4))))(A(a))
    assert_same(out, np.broadcast_to(a[:, None, :], (NB, 4, 2)))


def test_jit_and_checkpoint_closing_over_a_batched_value():
    x = R(NB, 2)
    out = fjit.vmap(lambda a: fjit.jit(lambda y: a * y)(jnp.full(2, 3.0)))(A(x))
    assert_same(out, x * 3)
    out = fjit.vmap(lambda a: fjit.checkpoint(lambda y: jnp.sin(a) * y)(jnp.full(2, 3.0)))(A(x))
    assert_same(out, np.sin(x) * 3)


def test_jit_with_static_argnums_inside_vmap():
    scale = fjit.jit(lambda y, n: jnp.tile(y, n), static_argnums=1)
    x = R(NB, 2)
    assert_same(fjit.vmap(lambda a: scale(a, 2))(A(x)), np.tile(x, (1, 2)))


def test_batch_of_size_zero_and_one():
    out = fjit.vmap(lambda a: jnp.sin(a).sum())(A(np.zeros((0, 3), f32)))
    assert_same(out, np.zeros(0, f32))
    out = fjit.vmap(lambda i: jnp.arange(5.0)[i])(A(np.zeros(0, i32)))
    assert_same(out, np.zeros(0, f32))
    x = R(1, 2, 3)
    assert_same(fjit.vmap(lambda a: a.T, out_axes=-1)(A(x)), x.transpose(2, 1, 0))


def test_iterating_over_a_batched_value():
    x = R(NB, 3, 2)
    assert_same(fjit.vmap(lambda a: sum(row for row in a))(A(x)), x.sum(1))
    def unpacked(a):
        p, q, r = a
        return p * r - q
    assert_same(fjit.vmap(unpacked)(A(x)), x[:, 0] * x[:, 2] - x[:, 1])
    assert_same(fjit.vmap(lambda a: a * len(a))(A(x)), x * 3)


def test_leaked_batch_tracer_raises():
    leaked = []
    fjit.vmap(lambda a: leaked.append(a) or a)(A(R(NB, 2)))
    with pytest.raises(fjit.UnexpectedTracerError):
        leaked[0] + 1


def test_boolean_mask_of_a_batched_value_raises():
    with pytest.raises(fjit.NonConcreteBooleanIndexError):
        fjit.vmap(lambda a: a[a > 0])(A(R(NB, 4)))


# =============================================================================================
# 4. Errors
# =============================================================================================

def test_inconsistent_sizes_name_the_sizes():
    with pytest.raises(ValueError) as info:
        fjit.vmap(lambda a, b: a + b)(A(R(3, 2)), A(R(4, 2)))
    message = str(info.value)
    assert re.search(r"size 3\b", message) and re.search(r"size 4\b", message), message
    with pytest.raises(ValueError, match="inconsistent"):
        fjit.vmap(lambda a, b: a + b, in_axes=(0, 1))(A(R(3, 2)), A(R(3, 2)))


def test_inconsistent_sizes_through_keyword_arguments():
    with pytest.raises(ValueError, match="inconsistent"):
        fjit.vmap(lambda a, b: a + b)(A(R(1)), b=A(R(2)))


def test_axis_size_disagreeing_with_mapped_size():
    with pytest.raises(ValueError, match="axis_size"):
        fjit.vmap(lambda a: a, axis_size=5)(A(R(NB, 2)))


@pytest.mark.parametrize("in_axes", [2, -3, (0, 5)])
def test_in_axes_out_of_range(in_axes):
    with pytest.raises(ValueError, match="out of range"):
        fjit.vmap(lambda a, b: a, in_axes=in_axes)(A(R(NB, 2)), A(R(NB, 2)))


def test_in_axes_on_rank0_argument():
    with pytest.raises(ValueError, match="out of range"):
        fjit.vmap(lambda a: a)(A(np.float32(1)))
    with pytest.raises(ValueError, match="out of range"):
        fjit.vmap(lambda a: a)(1.0)


def test_out_axes_out_of_range():
    with pytest.raises(ValueError):
        fjit.vmap(lambda a: a, out_axes=3)(A(R(NB, 2)))
    with pytest.raises(ValueError):
        fjit.vmap(lambda a: a, out_axes=-4)(A(R(NB, 2)))


def test_no_mapped_argument_and_no_axis_size():
    with pytest.raises(ValueError, match="axis_size"):
        fjit.vmap(lambda a: a, in_axes=None)(A(R(2)))
    with pytest.raises(ValueError, match="axis_size"):
        fjit.vmap(lambda: 1.0)()


def test_in_axes_tuple_of_wrong_length():
    with pytest.raises(ValueError, match="in_axes"):
        fjit.vmap(lambda a, b: a + b, in_axes=(0,))(A(R(NB)), A(R(NB)))
    with pytest.raises(ValueError, match="in_axes"):
        fjit.vmap(lambda a: a, in_axes=(0, 0, None))(A(R(NB)))


def test_in_axes_not_a_prefix():
    with pytest.raises(ValueError, match="prefix"):
        fjit.vmap(lambda t: t, in_axes=({"a": 0, "c": 0},))({"a": A(R(NB)), "b": A(R(NB))})


@pytest.mark.parametrize("bad", [1.0, "0", (0, 1.5), ({"a": "x"},)])
def test_non_int_in_axes(bad):
    args = (A(R(NB)), A(R(NB))) if isinstance(bad, tuple) and len(bad) == 2 else \
        ({"a": A(R(NB))},) if isinstance(bad, tuple) else (A(R(NB)),)
    with pytest.raises(TypeError, match="in_axes"):
        fjit.vmap(lambda *a: a[0], in_axes=bad)(*args)


def test_bool_in_axes_rejected():
    """JAX rejects bools as axes (jax issue #6372); fjit must not read False as axis 0."""
    with pytest.raises(TypeError, match="in_axes"):
        fjit.vmap(lambda a: a, in_axes=False)(A(R(NB)))


def test_out_axes_not_a_prefix_of_the_outputs():
    with pytest.raises(ValueError, match="out_axes"):
        fjit.vmap(lambda a: a, out_axes=(2, 3))(A(R(NB)))
    with pytest.raises(ValueError, match="out_axes"):
        fjit.vmap(lambda a: (a, a), out_axes={"x": 0})(A(R(NB)))


def test_non_int_out_axes():
    with pytest.raises(TypeError, match="out_axes"):
        fjit.vmap(lambda a: a, out_axes=0.5)(A(R(NB)))


def test_control_flow_on_batched_value_raises():
    def f(x):
        if x.sum() > 0:
            return x
        return -x
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.vmap(f)(A(R(NB, 2)))


# =============================================================================================
# 5. The Programs
# =============================================================================================

def _all_eqns(program):
    for eqn in program.eqns:
        yield eqn
        for value in eqn.params.values():
            if isinstance(value, fjit.Program):
                yield from _all_eqns(value)


PROGRAM_FUNS = [
    ("mlp", lambda x, w, b: jnp.tanh(x @ w + b).sum(-1), [R(NB, 2, 3), R(3, 4), R(4)],
     (0, None, None)),
    ("gather-scatter", lambda t, i: t.at[i].add(t[i] * 2.0), [R(5, 4), I([[0, 0], [4, 1],
                                                                         [2, 3]])],
     (None, 0)),
    ("dynamic_slice", lambda x, s: lax.dynamic_slice(x, (s, 0), (2, 4)),
     [R(NB, 5, 4), I([0, 3, 1])], (0, 0)),
    ("pad-cumsum-argmax", lambda x: jnp.argmax(jnp.cumsum(jnp.pad(x, 1, mode="reflect"), 0)),
     [R(4, NB)], (1,)),
    ("iota-reshape", lambda x: (x.reshape(2, 2) + jnp.arange(2.0)).T, [R(NB, 4)], (0,)),
]


@pytest.mark.parametrize("name,f,args,in_axes", [pytest.param(*p, id=p[0])
                                                 for p in PROGRAM_FUNS])
def test_vmapped_programs_typecheck_and_are_meta_ops(name, f, args, in_axes):
    program = fjit.make_program(fjit.vmap(f, in_axes=in_axes))(*[A(a) for a in args])
    fjit.typecheck(program)
    families = {eqn.primitive.family for eqn in program.eqns}
    assert families <= META_FAMILIES, families - META_FAMILIES
    assert program.eqns
    # and the Program computes what the loop does
    (expected,), _ = loop(f, args, in_axes)
    from fjit.core import eval_program
    (got,) = eval_program(program, *[A(a) for a in args])
    assert_same(got, expected)


def test_vmapped_jit_stays_one_call_with_a_batched_program():
    inner = fjit.jit(lambda a, b: jnp.sin(a) @ b)
    program = fjit.make_program(fjit.vmap(inner, in_axes=(0, None)))(A(R(NB, 2, 3)),
                                                                     A(R(3, 4)))
    (eqn,) = program.eqns
    assert eqn.primitive.name == "jit"
    body = eqn.params["program"]
    fjit.typecheck(body)
    assert [v.aval.shape for v in body.invars] == [(NB, 2, 3), (3, 4)]
    assert {e.primitive.family for e in _all_eqns(program)} <= META_FAMILIES | {"call"}


def test_vmapped_gather_is_one_reindex_loading_the_batch_row():
    table, idx = R(5, 4), I([[4, 0], [1, 1], [3, 2]])
    program = fjit.make_program(fjit.vmap(lambda t, i: lax.reindex(
        t, (2, 4), (ix.load(1, (i0,)), i1), index_arrays=(i,)), in_axes=(None, 0)))(
        A(table), A(idx))
    (eqn,) = program.eqns
    assert eqn.primitive.name == "reindex"
    assert eqn.params["shape"] == (NB, 2, 4)
    row, col = eqn.params["index"]
    loads = ix.loads_used(row)
    assert len(loads) == 1
    assert loads[0].operand == 1 and loads[0].positions == (i0, i1)
    assert col == i2
    text = str(program)
    assert "$1[i0, i1]" in text
    assert [v.aval.shape for v in eqn.invars] == [(5, 4), (NB, 2)]
    got = fjit.core.eval_program(program, A(table), A(idx))[0]
    assert_same(got, table[idx])


def test_vmapped_numpy_indexing_is_one_reindex():
    table, idx = R(5, 4), I([4, 0, -1])
    program = fjit.make_program(fjit.vmap(lambda t, i: t[i], in_axes=(None, 0)))(A(table),
                                                                                A(idx))
    names = [e.primitive.name for e in program.eqns]
    assert names == ["reindex"], names
    (row, _) = program.eqns[0].params["index"]
    assert all(load.positions == (i0,) for load in ix.loads_used(row))
    assert re.search(r"\$1\[i0\]", str(program))


def test_vmapped_scatter_is_one_reindex_reduce_loading_the_batch_row():
    x, t = R(NB, 7), _TARGETS
    program = fjit.make_program(fjit.vmap(lambda v, i: lax.reindex_reduce(
        v, "add", (5,), (ix.load(1, (i0,)),), index_arrays=(i,)), in_axes=(1, 0)))(
        A(x.T.copy()), A(t))
    scatters = [e for e in program.eqns if e.primitive.name == "reindex_reduce"]
    assert len(scatters) == 1
    batch, target = scatters[0].params["index"]
    assert batch == i0
    assert [(load.operand, load.positions) for load in ix.loads_used(target)] == [(1, (i0, i1))]
    assert scatters[0].params["shape"] == (NB, 5)
