"""The meta-op primitives of `fjit.lax`, checked against NumPy references written here.

Sections: element-wise ops (one table row per op of `fjit.lax.elementwise.TABLE`), XLA's edge
semantics, dtype/shape errors, structural ops, reductions, reindex / reindex_reduce, index
expressions, the reindex-based views, and staging through `fjit.jit` / `fjit.make_program`.
"""
from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.lax import indexexpr as ix
from fjit.lax.elementwise import PRIMITIVES, TABLE

f16, f32, f64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
i8, i16, i32, i64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
u8, u16, u32 = np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32)
b1 = np.dtype(np.bool_)

FLOATS = (f32, f64, f16)
INTS = (i8, i32, u8, u32)
NUMERIC = FLOATS + INTS
INTBOOL = INTS + (b1,)
ALL = NUMERIC + (b1,)

TOL = {f16: dict(rtol=4e-3, atol=1e-3), f32: dict(rtol=1e-5, atol=1e-6),
       f64: dict(rtol=1e-11, atol=1e-13)}

INT32_MIN, INT32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max
nan, inf = np.nan, np.inf


def A(value, dtype=None):
    """An fjit Array holding `value` (with `dtype`)."""
    return fjit.device_put(np.asarray(value, dtype=dtype))


def is_float(dtype):
    return np.dtype(dtype).kind == "f"


def check(out, expected, dtype, exact=False):
    """`out` is an fjit Array of exactly `dtype`, and matches `expected` (exactly for ints and
    bools or when `exact`, else within the dtype's tolerance)."""
    dtype = np.dtype(dtype)
    assert isinstance(out, fjit.Array), type(out)
    assert out.dtype == dtype, (out.dtype, dtype)
    got = np.asarray(out)
    expected = np.asarray(expected)
    assert got.dtype == dtype
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if exact or not is_float(dtype):
        np.testing.assert_array_equal(got, expected.astype(dtype))
    else:
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   **TOL[dtype])


def needs_x64(request, *dts):
    if any(np.dtype(d).itemsize == 8 for d in dts):
        request.getfixturevalue("x64")


# =============================================================================================
# 1. Element-wise ops: one row per op
# =============================================================================================

FLOAT_DOMAIN = {"any": (-3, 3), "pos": (0.1, 4), "unit": (-0.9, 0.9), "ge1": (1.1, 4),
                "nonzero": (0.5, 3), "lo": (-2, -1), "hi": (1, 2)}


def gen(rng, domain, dtype, shape):
    """Random operand values of `dtype` in `domain`."""
    if domain == "pred" or dtype == b1:
        return rng.random(shape) < 0.5
    if is_float(dtype):
        lo, hi = FLOAT_DOMAIN[domain]
        v = rng.uniform(lo, hi, shape)
        if domain == "nonzero":
            v = v * rng.choice([-1.0, 1.0], shape)
        return v.astype(dtype)
    signed = dtype.kind == "i"
    if domain == "bits":  # the whole range: every bit pattern
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


@dataclass(frozen=True)
class EW:
    name: str                     # the TABLE row it tests
    fn: Callable                  # the public fjit.lax function
    ref: Callable                 # NumPy reference
    dtypes: tuple
    domains: tuple                # one per operand
    out: object = "same"          # "same", "bool" or dtype -> result dtype
    exact: bool = False           # reference runs on the native dtype, compared exactly
    label: str = ""

    @property
    def id(self):
        return self.name + (f"[{self.label}]" if self.label else "")

    def out_dtype(self, dtype):
        if self.out == "same":
            return dtype
        if self.out == "bool":
            return b1
        return np.dtype(self.out(dtype))


def U(name, fn, ref, dtypes=FLOATS, domain="any", **kw):
    return EW(name, fn, ref, dtypes, (domain,), **kw)


def B(name, fn, ref, dtypes=NUMERIC, domains=("any", "any"), **kw):
    return EW(name, fn, ref, dtypes, domains, **kw)


def _trunc_div(a, b):
    if is_float(a.dtype):
        return a / b
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    return (np.sign(a64) * np.sign(b64) * (np.abs(a64) // np.abs(b64))).astype(a.dtype)


def _c_rem(a, b):
    if is_float(a.dtype):
        return np.fmod(a, b)
    return (a.astype(np.int64) - b.astype(np.int64) * _trunc_div(a, b).astype(np.int64)) \
        .astype(a.dtype)


def _sra_ref(a, b):
    """Arithmetic right shift of the bit pattern (XLA shifts unsigned types this way too)."""
    signed = np.dtype(f"i{a.dtype.itemsize}")
    return np.right_shift(a.view(signed), b.astype(signed)).view(a.dtype)


def _round_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


_erf = np.vectorize(math.erf, otypes=[np.float64])

CONVERT_TARGETS = {"f32": f32, "f16": f16, "i32": i32, "u8": u8, "bool": b1}
BITCAST_TO = {f32: i32, i32: f32, u32: f32, f16: u16, i8: u8, u8: i8, f64: i64}


def _convert_row(label, target, from_float_domain="any"):
    return EW("convert_element_type", lambda x: lax.convert_element_type(x, target),
              lambda x: x.astype(target), ALL, (from_float_domain,), out=lambda d: target,
              label=label)


EW_ROWS = [
    # unary, numeric
    U("neg", lax.neg, np.negative, NUMERIC),
    U("abs", lax.abs, np.abs, NUMERIC),
    U("sign", lax.sign, np.sign, NUMERIC),
    U("integer_pow", lambda x: lax.integer_pow(x, 3), lambda x: x * x * x, NUMERIC, label="3"),
    U("integer_pow", lambda x: lax.integer_pow(x, -2), lambda x: 1 / (x * x), FLOATS, "nonzero",
      label="-2"),
    U("integer_pow", lambda x: lax.integer_pow(x, 0), np.ones_like, NUMERIC, label="0"),
    # unary, floating point
    U("exp", lax.exp, np.exp),
    U("exp2", lax.exp2, np.exp2),
    U("log", lax.log, np.log, domain="pos"),
    U("log1p", lax.log1p, np.log1p, domain="pos"),
    U("expm1", lax.expm1, np.expm1),
    U("sqrt", lax.sqrt, np.sqrt, domain="pos"),
    U("rsqrt", lax.rsqrt, lambda x: 1 / np.sqrt(x), domain="pos"),
    U("cbrt", lax.cbrt, np.cbrt),
    U("sin", lax.sin, np.sin),
    U("cos", lax.cos, np.cos),
    U("tan", lax.tan, np.tan, domain="unit"),
    U("tanh", lax.tanh, np.tanh),
    U("asin", lax.asin, np.arcsin, domain="unit"),
    U("acos", lax.acos, np.arccos, domain="unit"),
    U("atan", lax.atan, np.arctan),
    U("sinh", lax.sinh, np.sinh),
    U("cosh", lax.cosh, np.cosh),
    U("asinh", lax.asinh, np.arcsinh),
    U("acosh", lax.acosh, np.arccosh, domain="ge1"),
    U("atanh", lax.atanh, np.arctanh, domain="unit"),
    U("logistic", lax.logistic, lambda x: 1 / (1 + np.exp(-x))),
    U("erf", lax.erf, _erf),
    U("floor", lax.floor, np.floor),
    U("ceil", lax.ceil, np.ceil),
    U("round", lax.round, _round_away, label="away"),
    U("round", lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), np.round,
      label="even"),
    U("is_finite", lax.is_finite, np.isfinite, out="bool"),
    # unary, bitwise / logical
    U("stop_gradient", lax.stop_gradient, lambda x: x, ALL, exact=True),
    U("not", lax.bitwise_not, np.invert, INTBOOL, "bits"),
    # binary arithmetic
    B("add", lax.add, np.add),
    B("sub", lax.sub, np.subtract),
    B("mul", lax.mul, np.multiply),
    B("div", lax.div, _trunc_div, domains=("any", "nonzero")),
    B("rem", lax.rem, _c_rem, domains=("any", "nonzero")),
    B("pow", lax.pow, np.power, FLOATS, domains=("pos", "any")),
    B("max", lax.max, np.maximum, ALL),
    B("min", lax.min, np.minimum, ALL),
    B("atan2", lax.atan2, np.arctan2, FLOATS),
    B("nextafter", lax.nextafter, np.nextafter, FLOATS, exact=True),
    # comparisons
    B("eq", lax.eq, np.equal, ALL, out="bool"),
    B("ne", lax.ne, np.not_equal, ALL, out="bool"),
    B("lt", lax.lt, np.less, ALL, out="bool"),
    B("le", lax.le, np.less_equal, ALL, out="bool"),
    B("gt", lax.gt, np.greater, ALL, out="bool"),
    B("ge", lax.ge, np.greater_equal, ALL, out="bool"),
    # bitwise / logical
    B("and", lax.bitwise_and, np.bitwise_and, INTBOOL, domains=("bits", "bits")),
    B("or", lax.bitwise_or, np.bitwise_or, INTBOOL, domains=("bits", "bits")),
    B("xor", lax.bitwise_xor, np.bitwise_xor, INTBOOL, domains=("bits", "bits")),
    B("shift_left", lax.shift_left, np.left_shift, INTS, domains=("bits", "shift")),
    B("shift_right_logical", lax.shift_right_logical,
      lambda a, b: (a.astype(np.dtype(f"u{a.dtype.itemsize}")) >> b.astype(
          np.dtype(f"u{a.dtype.itemsize}"))).astype(a.dtype), INTS, domains=("bits", "shift")),
    B("shift_right_arithmetic", lax.shift_right_arithmetic, _sra_ref, INTS,
      domains=("bits", "shift")),
    # ternary
    EW("select", lax.select, np.where, ALL, ("pred", "any", "any")),
    EW("clamp", lax.clamp, lambda lo, x, hi: np.minimum(np.maximum(x, lo), hi), NUMERIC,
       ("lo", "any", "hi")),
    # conversions
    _convert_row("f32", f32),
    _convert_row("f16", f16),
    _convert_row("i32", i32),
    _convert_row("u8", u8, from_float_domain="pos"),
    _convert_row("bool", b1),
    EW("bitcast", lambda x: lax.bitcast_convert_type(x, BITCAST_TO[x.dtype]),
       lambda x: x.view(BITCAST_TO[x.dtype]), tuple(BITCAST_TO), ("any",),
       out=lambda d: BITCAST_TO[d], exact=True),
]


def _shape_cases(nin):
    cases = {"()": [()] * nin, "(0,)": [(0,)] * nin, "(5,)": [(5,)] * nin,
             "(3,4)": [(3, 4)] * nin}
    if nin > 1:
        cases["rank0-first"] = [()] + [(3, 4)] * (nin - 1)
        cases["rank0-last"] = [(3, 4)] * (nin - 1) + [()]
    return cases


def _ew_params():
    params = []
    for row in EW_ROWS:
        for dtype in row.dtypes:
            for label, shapes in _shape_cases(len(row.domains)).items():
                params.append(pytest.param(row, dtype, shapes,
                                           id=f"{row.id}-{dtype.name}-{label}"))
    return params


@pytest.mark.parametrize("row,dtype,shapes", _ew_params())
def test_elementwise(row, dtype, shapes, request):
    needs_x64(request, dtype, row.out_dtype(dtype))
    rng = np.random.default_rng(zlib.crc32(request.node.name.encode()))
    args = [gen(rng, dom, dtype, shape) for dom, shape in zip(row.domains, shapes)]
    out = row.fn(*[A(a) for a in args])
    ref_args = args if row.exact else [a.astype(np.float64) if is_float(a.dtype) else a
                                       for a in args]
    with np.errstate(all="ignore"):
        expected = row.ref(*ref_args)
    expected = np.broadcast_to(expected, np.broadcast_shapes(*shapes))
    check(out, expected, row.out_dtype(dtype), exact=row.exact)
    assert not out.aval.weak_type


# =============================================================================================
# 2. Every TABLE row has tests
# =============================================================================================

def test_every_table_op_has_a_test_row():
    table = {op.name for op in TABLE}
    tested = {row.name for row in EW_ROWS}
    assert table - tested == set(), f"ops without a test row: {sorted(table - tested)}"
    assert tested - table == set(), f"test rows for unknown ops: {sorted(tested - table)}"


def test_every_table_op_is_tested_in_every_dtype_it_accepts():
    """A row's dtypes cover exactly the kinds its dtype rule accepts (of the tested dtypes)."""
    for row in EW_ROWS:
        if row.name in ("convert_element_type", "bitcast", "select") or row.label == "-2":
            continue
        prim = PRIMITIVES[row.name]
        params = {"y": 2} if row.name == "integer_pow" else \
            {"rounding_method": 0} if row.name == "round" else {}
        accepted = set()
        for dtype in ALL:
            avals = [fjit.ShapedArray((2,), dtype)] * len(row.domains)
            try:
                prim.abstract_eval(*avals, **params)
            except TypeError:
                continue
            accepted.add(dtype)
        assert accepted == set(row.dtypes), (row.id, accepted, row.dtypes)


# =============================================================================================
# 1b. XLA's semantics at the edges (values checked against JAX 0.10 by hand)
# =============================================================================================

def _sra(a, b):
    return lax.shift_right_arithmetic(a, b)


EDGES = [
    # id, function, operands, expected
    ("div-int32-by-zero-and-MIN/-1", lax.div,
     [np.int32([7, -7, 5, -7, INT32_MIN, 0, INT32_MIN]), np.int32([0, 2, -2, -2, -1, 0, 1])],
     np.int32([-1, -3, -2, 3, INT32_MIN, -1, INT32_MIN])),
    ("div-int8-MIN/-1", lax.div, [np.int8([-128, -128, 127]), np.int8([-1, 0, -1])],
     np.int8([-128, -1, -127])),
    ("div-uint8-by-zero", lax.div, [np.uint8([7, 200, 0]), np.uint8([0, 3, 0])],
     np.uint8([255, 66, 255])),
    ("rem-int32-by-zero-and-MIN%-1", lax.rem,
     [np.int32([7, -7, 5, INT32_MIN, -7]), np.int32([0, 2, -2, -1, 0])],
     np.int32([7, -1, 1, 0, -7])),
    ("rem-uint8-by-zero", lax.rem, [np.uint8([7, 200]), np.uint8([0, 3])], np.uint8([7, 2])),
    ("rem-float-sign-of-dividend", lax.rem,
     [np.float32([-7.5, 7.5, -7.5, 1.0]), np.float32([2, -2, -2, 0])],
     np.float32([-1.5, 1.5, -1.5, nan])),
    ("div-float-by-zero", lax.div, [np.float32([1, -1, 0]), np.float32([0, 0, 0])],
     np.float32([inf, -inf, nan])),
    ("convert-f32-to-i32-saturates", lambda x: lax.convert_element_type(x, np.int32),
     [np.float32([nan, 1e10, -1e10, 2.7, -2.7, inf, -inf, 2147483648.0])],
     np.int32([0, INT32_MAX, INT32_MIN, 2, -2, INT32_MAX, INT32_MIN, INT32_MAX])),
    ("convert-f32-to-u8-saturates", lambda x: lax.convert_element_type(x, np.uint8),
     [np.float32([nan, 1e10, -1e10, 2.7, -2.7, 255.5, 256, inf, -inf])],
     np.uint8([0, 255, 0, 2, 0, 255, 255, 255, 0])),
    ("convert-f32-to-i8-saturates", lambda x: lax.convert_element_type(x, np.int8),
     [np.float32([nan, 1e10, -1e10, 2.7, -2.7, inf, -inf, 127.9, -128.9])],
     np.int8([0, 127, -128, 2, -2, 127, -128, 127, -128])),
    ("convert-f16-to-i32", lambda x: lax.convert_element_type(x, np.int32),
     [np.float16([nan, inf, -inf, 65504, -3.5])], np.int32([0, INT32_MAX, INT32_MIN, 65504, -3])),
    ("convert-f32-to-bool", lambda x: lax.convert_element_type(x, np.bool_),
     [np.float32([0.0, -0.0, nan, 0.5])], np.array([False, False, True, True])),
    ("convert-i32-to-i8-wraps", lambda x: lax.convert_element_type(x, np.int8),
     [np.int32([300, -129, 127])], np.int8([44, 127, 127])),
    ("convert-bool-to-f32", lambda x: lax.convert_element_type(x, np.float32),
     [np.array([True, False])], np.float32([1, 0])),
    ("shift_left-int8", lax.shift_left, [np.int8([3, 3, 1, 64, 3]), np.int8([8, 100, 7, 2, -1])],
     np.int8([0, 0, -128, 0, 0])),
    ("shift_left-uint32-by-32", lax.shift_left, [np.uint32([1, 1]), np.uint32([32, 31])],
     np.uint32([0, 2 ** 31])),
    ("shift_right_logical-int8", lax.shift_right_logical,
     [np.int8([-100, -100, -100, 64]), np.int8([1, 8, 9, -1])], np.int8([78, 0, 0, 0])),
    ("shift_right_logical-uint32", lax.shift_right_logical,
     [np.uint32([2 ** 31, 2 ** 31, 7]), np.uint32([31, 32, 1])], np.uint32([1, 0, 3])),
    ("shift_right_arithmetic-int8", _sra,
     [np.int8([-100, -100, 100, -100, -1]), np.int8([1, 9, 9, -1, 3])],
     np.int8([-50, -1, 0, -1, -1])),
    ("shift_right_arithmetic-int32", _sra,
     [np.int32([INT32_MIN, INT32_MIN, 1 << 20]), np.int32([31, 32, 3])],
     np.int32([-1, -1, 1 << 17])),
    # XLA shifts unsigned operands arithmetically too (the sign bit is the top bit).
    ("shift_right_arithmetic-uint8", _sra,
     [np.uint8([200, 200, 100, 100]), np.uint8([1, 9, 1, 9])], np.uint8([228, 255, 50, 0])),
    ("shift_right_arithmetic-uint32", _sra,
     [np.uint32([2 ** 31, 2 ** 31, 12]), np.uint32([31, 40, 2])],
     np.uint32([2 ** 32 - 1, 2 ** 32 - 1, 3])),
    ("round-away-from-zero", lax.round,
     [np.float32([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, -1.4, inf, nan])],
     np.float32([1, 2, 3, -1, -3, 0, -1, inf, nan])),
    ("round-to-nearest-even", lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN),
     [np.float32([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, 3.5])],
     np.float32([0, 2, 2, -0.0, -2, 0, 4])),
    ("round-f16", lax.round, [np.float16([0.5, 2.5, -2.5])], np.float16([1, 3, -3])),
    ("max-nan", lax.max, [np.float32([nan, 1, nan]), np.float32([1, nan, nan])],
     np.float32([nan, nan, nan])),
    ("min-nan", lax.min, [np.float32([nan, 1, -inf]), np.float32([1, nan, 0])],
     np.float32([nan, nan, -inf])),
    ("clamp-nan", lax.clamp, [np.float32(1), np.float32([0, nan, 3]), np.float32(2)],
     np.float32([1, nan, 2])),
    ("is_finite", lax.is_finite, [np.float32([inf, -inf, nan, 1, -0.0])],
     np.array([False, False, False, True, True])),
    ("abs-int8-min-wraps", lax.abs, [np.int8([-128, -3])], np.int8([-128, 3])),
    ("neg-uint8-wraps", lax.neg, [np.uint8([1, 0])], np.uint8([255, 0])),
    ("sign-float", lax.sign, [np.float32([-2, 0, 3, nan])], np.float32([-1, 0, 1, nan])),
    ("integer_pow-int8-wraps", lambda x: lax.integer_pow(x, 5), [np.int8([3, -2])],
     np.int8([-13, -32])),
    ("integer_pow-exponent-wider-than-int8", lambda x: lax.integer_pow(x, 200),
     [np.int8([3, 1, 0])], np.int8([-95, 1, 0])),
    ("integer_pow-exponent-wider-than-uint8", lambda x: lax.integer_pow(x, 300),
     [np.uint8([3, 2])], np.uint8([113, 0])),
    ("log-edges", lax.log, [np.float32([0, -1, inf, 1])], np.float32([-inf, nan, inf, 0])),
    ("sqrt-edges", lax.sqrt, [np.float32([-1, 0, inf])], np.float32([nan, 0, inf])),
    ("exp-edges", lax.exp, [np.float32([-inf, inf, nan, 100])], np.float32([0, inf, nan, inf])),
    ("nextafter-f16", lax.nextafter, [np.float16([1, 1, 0]), np.float16([2, 0, 1])],
     np.float16([1.001, 0.9995, 6e-08])),
    ("not-bool-is-logical", lax.bitwise_not, [np.array([True, False])],
     np.array([False, True])),
    ("not-uint8", lax.bitwise_not, [np.uint8([0, 255, 15])], np.uint8([255, 0, 240])),
    ("and-bool-is-logical", lax.bitwise_and, [np.array([True, True, False]),
                                              np.array([True, False, False])],
     np.array([True, False, False])),
    ("select-rank0-pred", lax.select, [np.bool_(False), np.int32([1, 2]), np.int32([3, 4])],
     np.int32([3, 4])),
    ("add-python-scalar-keeps-dtype", lambda x: lax.add(x, 2), [np.uint8([254, 1])],
     np.uint8([0, 3])),
    ("mul-python-float-into-f16", lambda x: lax.mul(x, 0.5), [np.float16([3])],
     np.float16([1.5])),
    ("clamp-python-scalars", lambda x: lax.clamp(0, x, 10), [np.int8([-5, 5, 50])],
     np.int8([0, 5, 10])),
    ("erf-rank0", lax.erf, [np.float32(0.5)], np.float32(math.erf(0.5))),
    ("erf-values", lax.erf, [np.float32([-inf, 0, 0.5, inf])],
     np.float32([-1, 0, math.erf(0.5), 1])),
    ("bitcast-rank0", lambda x: lax.bitcast_convert_type(x, np.int32), [np.float32(1.0)],
     np.int32(0x3F800000)),
    ("bitcast-f32-to-u32", lambda x: lax.bitcast_convert_type(x, np.uint32),
     [np.float32([1.0, -0.0])], np.uint32([0x3F800000, 0x80000000])),
    ("convert-python-scalar", lambda: lax.convert_element_type(2.7, np.int32), [],
     np.int32(2)),
]


@pytest.mark.parametrize("fn,operands,expected", [pytest.param(*r[1:], id=r[0]) for r in EDGES])
def test_edge_semantics(fn, operands, expected):
    out = fn(*[A(o) for o in operands])
    expected = np.asarray(expected)
    check(out, expected, expected.dtype, exact=True)
    if expected.dtype.kind == "f":  # signs of zeros too
        zeros = expected == 0
        np.testing.assert_array_equal(np.signbit(np.asarray(out))[zeros], np.signbit(expected)[zeros])


def test_logistic_saturates_without_nan():
    out = np.asarray(lax.logistic(A(np.float32([-100, 100, 0, -inf, inf]))))
    np.testing.assert_allclose(out, [0, 1, 0.5, 0, 1], atol=1e-30)


def test_python_scalar_errors():
    with pytest.raises(TypeError, match="2.5"):
        lax.add(A([1, 2], np.int32), 2.5)
    with pytest.raises(OverflowError):
        lax.add(A([1, 2], np.uint8), 300)
    with pytest.raises(OverflowError):
        lax.add(A([1, 2], np.uint8), -1)


def test_integer_pow_rejects_a_non_int_exponent():
    with pytest.raises(TypeError):
        lax.integer_pow(A([1.0], np.float32), 2.0)


def test_weak_types():
    out = lax.add(2, 3)
    assert out.dtype == i32 and out.aval.weak_type and int(out) == 5
    out = lax.add(A([1.0], np.float16), 2.0)
    assert out.dtype == f16 and not out.aval.weak_type


# =============================================================================================
# 3. Dtype and shape errors
# =============================================================================================

def f32a(*shape):
    return A(np.zeros(shape, np.float32))


def i32a(*shape):
    return A(np.zeros(shape, np.int32))


def boola(*shape):
    return A(np.zeros(shape, bool))


ERRORS = [
    # id, thunk, substrings of the message
    ("add-dtypes", lambda: lax.add(f32a(3), i32a(3)), ["add", "f32[3]", "i32[3]"]),
    ("eq-dtypes", lambda: lax.eq(f32a(3), A(np.zeros(3, np.float16))), ["eq", "f32[3]", "f16[3]"]),
    ("mul-shapes", lambda: lax.mul(f32a(3), f32a(4)), ["mul", "f32[3]", "f32[4]"]),
    ("sub-transposed-shapes", lambda: lax.sub(f32a(3, 4), f32a(4, 3)),
     ["sub", "f32[3,4]", "f32[4,3]"]),
    ("max-size1-does-not-broadcast", lambda: lax.max(f32a(1), f32a(3)),
     ["max", "f32[1]", "f32[3]"]),
    ("select-int-pred", lambda: lax.select(i32a(3), f32a(3), f32a(3)), ["select", "i32[3]"]),
    ("select-branch-dtypes", lambda: lax.select(boola(3), f32a(3), i32a(3)),
     ["select", "f32[3]", "i32[3]"]),
    ("select-shapes", lambda: lax.select(boola(2), f32a(3), f32a(3)),
     ["select", "bool[2]", "f32[3]"]),
    ("clamp-dtypes", lambda: lax.clamp(i32a(), f32a(3), f32a()), ["clamp", "i32[]", "f32[3]"]),
    ("clamp-bool", lambda: lax.clamp(boola(), boola(3), boola()), ["clamp", "bool"]),
    ("exp-int32", lambda: lax.exp(i32a(3)), ["exp", "int32", "i32[3]"]),
    ("sin-bool", lambda: lax.sin(boola(3)), ["sin", "bool[3]"]),
    ("round-int32", lambda: lax.round(i32a(3)), ["round", "i32[3]"]),
    ("is_finite-int32", lambda: lax.is_finite(i32a(3)), ["is_finite", "i32[3]"]),
    ("neg-bool", lambda: lax.neg(boola(3)), ["neg", "bool[3]"]),
    ("add-bool", lambda: lax.add(boola(3), boola(3)), ["add", "bool[3]"]),
    ("div-bool", lambda: lax.div(boola(3), boola(3)), ["div", "bool[3]"]),
    ("pow-int32", lambda: lax.pow(i32a(3), i32a(3)), ["pow", "i32[3]"]),
    ("atan2-int32", lambda: lax.atan2(i32a(3), i32a(3)), ["atan2", "i32[3]"]),
    ("and-float32", lambda: lax.bitwise_and(f32a(3), f32a(3)), ["and", "float32", "f32[3]"]),
    ("xor-float32", lambda: lax.bitwise_xor(f32a(3), f32a(3)), ["xor", "f32[3]"]),
    ("not-float32", lambda: lax.bitwise_not(f32a(3)), ["not", "f32[3]"]),
    ("shift_left-float32", lambda: lax.shift_left(f32a(3), f32a(3)), ["shift_left", "f32[3]"]),
    ("shift_left-bool", lambda: lax.shift_left(boola(3), boola(3)), ["shift_left", "bool[3]"]),
    ("bitcast-width", lambda: lax.bitcast_convert_type(f32a(3), np.int8),
     ["bitcast", "float32", "int8", "f32[3]"]),
    ("bitcast-bool", lambda: lax.bitcast_convert_type(A(np.zeros(3, np.uint8)), np.bool_),
     ["bitcast", "u8[3]"]),
    ("traced-add-dtypes", lambda: fjit.make_program(lax.add)(np.zeros(3, np.float32),
                                                             np.zeros(3, np.int32)),
     ["add", "f32[3]", "i32[3]"]),
    ("jit-mul-shapes", lambda: fjit.jit(lax.mul)(np.zeros(2, np.float32),
                                                 np.zeros(3, np.float32)),
     ["mul", "f32[2]", "f32[3]"]),
]


@pytest.mark.parametrize("thunk,words", [pytest.param(*r[1:], id=r[0]) for r in ERRORS])
def test_type_errors(thunk, words):
    with pytest.raises(TypeError) as info:
        thunk()
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


# =============================================================================================
# 4. broadcast_in_dim, reshape, iota, full
# =============================================================================================

BROADCASTS = [
    # operand shape, output shape, broadcast_dimensions
    ((3,), (2, 3), (1,)),
    ((3,), (3, 2), (0,)),
    ((1, 3), (4, 3), (0, 1)),
    ((3, 1), (2, 3, 5), (1, 2)),
    ((1,), (0,), (0,)),
    ((), (2, 3), ()),
    ((), (), ()),
    ((2, 3), (2, 3), (0, 1)),
    ((2, 1, 3), (2, 4, 3, 5), (0, 1, 2)),
]


@pytest.mark.parametrize("dtype", [f32, i8, b1])
@pytest.mark.parametrize("in_shape,shape,dims", BROADCASTS)
def test_broadcast_in_dim(in_shape, shape, dims, dtype):
    x = gen(np.random.default_rng(0), "any", dtype, in_shape)
    expanded = [1] * len(shape)
    for k, d in enumerate(dims):
        expanded[d] = in_shape[k]
    check(lax.broadcast_in_dim(A(x), shape, dims), np.broadcast_to(x.reshape(expanded), shape),
          dtype)


@pytest.mark.parametrize("in_shape,shape,dims", [
    ((3,), (2, 3), ()),           # one dim per operand dim
    ((3,), (3, 3), (0, 1)),
    ((2, 2), (2, 2), (1, 0)),     # strictly increasing
    ((3,), (2, 3), (2,)),         # in range
    ((3,), (2, 4), (1,)),         # sizes match (or operand size 1)
    ((2,), (2, 1), (1,)),
])
def test_broadcast_in_dim_errors(in_shape, shape, dims):
    with pytest.raises(TypeError, match="broadcast_in_dim"):
        lax.broadcast_in_dim(f32a(*in_shape), shape, dims)


def test_broadcast_prepends_dims():
    x = np.arange(3, dtype=np.int32)
    check(lax.broadcast(A(x), (2, 4)), np.broadcast_to(x, (2, 4, 3)), i32)


@pytest.mark.parametrize("in_shape,new_sizes,dimensions", [
    ((2, 6), (3, 4), None),
    ((12,), (2, 3, 2), None),
    ((), (1, 1), None),
    ((1, 1), (), None),
    ((0, 3), (3, 0), None),
    ((2, 3), (3, 2), (1, 0)),
    ((2, 3, 4), (4, 6), (2, 0, 1)),
])
def test_reshape(in_shape, new_sizes, dimensions):
    x = np.arange(int(np.prod(in_shape)), dtype=np.float32).reshape(in_shape)
    expected = (x if dimensions is None else x.transpose(dimensions)).reshape(new_sizes)
    check(lax.reshape(A(x), new_sizes, dimensions), expected, f32)


@pytest.mark.parametrize("in_shape,new_sizes", [((12,), (5,)), ((2, 3), (7,)), ((4,), (-1, 4)),
                                                 ((0,), (1,))])
def test_reshape_errors(in_shape, new_sizes):
    with pytest.raises(TypeError, match="reshape"):
        lax.reshape(f32a(*in_shape), new_sizes)


def test_squeeze_and_expand_dims():
    x = np.arange(6, dtype=np.int32).reshape(1, 6, 1)
    check(lax.squeeze(A(x), (0, 2)), x.reshape(6), i32)
    check(lax.expand_dims(A(x.reshape(6)), (0, 2)), x, i32)
    with pytest.raises(TypeError, match="squeeze"):
        lax.squeeze(A(x), (1,))


@pytest.mark.parametrize("dtype", [i32, f32, u8, f16])
def test_iota(dtype):
    check(lax.iota(dtype, 5), np.arange(5).astype(dtype), dtype)
    check(lax.iota(dtype, 0), np.zeros(0, dtype), dtype)


@pytest.mark.parametrize("shape,dimension", [((2, 3), 0), ((2, 3), 1), ((4,), 0),
                                             ((2, 0, 3), 2), ((2, 3, 4), 1)])
def test_broadcasted_iota(shape, dimension):
    expected = np.indices(shape)[dimension] if shape else np.zeros(())
    check(lax.broadcasted_iota(np.int32, shape, dimension), expected, i32)


def test_iota_errors():
    with pytest.raises(TypeError, match="iota"):
        lax.iota(np.bool_, 3)
    with pytest.raises(TypeError, match="iota"):
        lax.broadcasted_iota(np.int32, (2, 3), 2)


def test_iota_x64_default_int(x64):
    check(lax.iota(int, 3), np.arange(3, dtype=np.int64), i64)


@pytest.mark.parametrize("shape,value,dtype,expected_dtype", [
    ((2, 3), 1.5, None, f32),
    ((2, 3), 7, None, i32),
    ((4,), True, None, b1),
    ((2,), 7, np.int8, i8),
    ((2,), 2.9, np.int32, i32),
    ((), -1.0, np.float16, f16),
    ((2, 0), 1.0, None, f32),
])
def test_full(shape, value, dtype, expected_dtype):
    expected = np.full(shape, int(value) if np.dtype(expected_dtype).kind == "i" else value,
                       expected_dtype)
    check(lax.full(shape, value, dtype), expected, expected_dtype)


def test_full_weak_type():
    assert lax.full((2,), 1.5).aval.weak_type
    assert not lax.full((2,), 1.5, np.float32).aval.weak_type


# =============================================================================================
# 5. Reductions and argmax/argmin
# =============================================================================================

def _np_and(x, axes):
    return np.all(x, axis=axes) if x.dtype == b1 else np.bitwise_and.reduce(x, axis=axes)


def _np_or(x, axes):
    return np.any(x, axis=axes) if x.dtype == b1 else np.bitwise_or.reduce(x, axis=axes)


REDUCTIONS = {
    # name: (function, NumPy reference, dtypes)
    "sum": (lax.reduce_sum, lambda x, a: np.sum(x, axis=a, dtype=x.dtype), NUMERIC),
    "prod": (lax.reduce_prod, lambda x, a: np.prod(x, axis=a, dtype=x.dtype), NUMERIC),
    "max": (lax.reduce_max, lambda x, a: np.max(x, axis=a), ALL),
    "min": (lax.reduce_min, lambda x, a: np.min(x, axis=a), ALL),
    "and": (lax.reduce_and, _np_and, INTBOOL),
    "or": (lax.reduce_or, _np_or, INTBOOL),
}

AXES = [(), (0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)]


def _reduce_input(name, dtype, shape, rng):
    if name == "prod" and is_float(dtype):
        return rng.uniform(0.6, 1.4, shape).astype(dtype)
    if name in ("and", "or") and dtype != b1:
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)
    if name in ("and",) and dtype == b1:
        return rng.random(shape) < 0.9
    return gen(rng, "any", dtype, shape)


def _reduce_params():
    return [pytest.param(name, dtype, axes, id=f"{name}-{dtype.name}-{axes}")
            for name, (_, _, dts) in REDUCTIONS.items() for dtype in dts for axes in AXES]


@pytest.mark.parametrize("name,dtype,axes", _reduce_params())
def test_reduce(name, dtype, axes, request):
    needs_x64(request, dtype)
    fn, ref, _ = REDUCTIONS[name]
    x = _reduce_input(name, dtype, (2, 3, 4), np.random.default_rng(len(axes)))
    out = fn(A(x), axes)
    xr = x.astype(np.float64) if is_float(dtype) else x
    expected = ref(xr, axes)
    if dtype == f16 and name == "sum":
        np.testing.assert_allclose(np.asarray(out, np.float64), expected, rtol=1e-2, atol=1e-2)
        assert out.dtype == f16
    else:
        check(out, expected, dtype)


IDENTITIES = {
    "sum": {f32: 0, i32: 0, u8: 0, f16: 0},
    "prod": {f32: 1, i8: 1, u32: 1},
    "max": {f32: -inf, f16: -inf, i8: -128, i32: INT32_MIN, u8: 0, u32: 0, b1: False},
    "min": {f32: inf, f16: inf, i8: 127, i32: INT32_MAX, u8: 255, u32: 2 ** 32 - 1, b1: True},
    "and": {i8: -1, i32: -1, u8: 255, u32: 2 ** 32 - 1, b1: True},
    "or": {i8: 0, u32: 0, b1: False},
}


@pytest.mark.parametrize("shape,axes,out_shape", [((0, 3), (0,), (3,)), ((2, 0), (1,), (2,)),
                                                  ((2, 0), (0, 1), ()), ((0,), (0,), ()),
                                                  ((0, 3), (1,), (0,))])
@pytest.mark.parametrize("name,dtype,identity", [
    pytest.param(n, d, v, id=f"{n}-{d.name}") for n, t in IDENTITIES.items()
    for d, v in t.items()])
def test_reduce_empty_gives_identity(name, dtype, identity, shape, axes, out_shape):
    fn = REDUCTIONS[name][0]
    out = fn(A(np.zeros(shape, dtype)), axes)
    check(out, np.full(out_shape, identity, dtype), dtype)


def test_reduce_float64_identities(x64):
    check(lax.reduce_max(A(np.zeros((0,), np.float64)), (0,)), np.float64(-inf), f64)
    check(lax.reduce_min(A(np.zeros((0,), np.float64)), (0,)), np.float64(inf), f64)


@pytest.mark.parametrize("name,expected", [("sum", [nan, 5]), ("prod", [nan, 6]),
                                           ("max", [nan, 3]), ("min", [nan, 1])])
def test_reduce_nan_propagates(name, expected):
    x = np.float32([[1, nan, 3], [2, 3, 1]])
    if name == "prod":
        x[1] = [1, 2, 3]
    if name == "sum":
        x[1] = [1, 2, 2]
    check(REDUCTIONS[name][0](A(x), (1,)), np.float32(expected), f32)


@pytest.mark.parametrize("fn,x,axes", [
    (lax.reduce_sum, np.zeros(3, bool), (0,)),
    (lax.reduce_prod, np.zeros(3, bool), (0,)),
    (lax.reduce_and, np.zeros(3, np.float32), (0,)),
    (lax.reduce_or, np.zeros(3, np.float32), (0,)),
    (lax.reduce_sum, np.zeros(3, np.float32), (1,)),
    (lax.reduce_max, np.zeros((2, 3), np.float32), (1, 1)),
])
def test_reduce_errors(fn, x, axes):
    with pytest.raises(TypeError, match="reduce_"):
        fn(A(x), axes)


ARG = [("argmax", lax.argmax, np.argmax), ("argmin", lax.argmin, np.argmin)]


@pytest.mark.parametrize("name,fn,ref", ARG)
@pytest.mark.parametrize("dtype", [f32, i32, u8, f16, i8])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_argmax_argmin(name, fn, ref, dtype, axis):
    # few distinct values: many ties, the first occurrence wins
    x = np.random.default_rng(axis).integers(0, 3, (3, 4, 5)).astype(dtype)
    check(fn(A(x), axis), ref(x, axis=axis), i32)


@pytest.mark.parametrize("name,fn,ref", ARG)
def test_argmax_argmin_nan_wins(name, fn, ref):
    x = np.float32([[1, nan, 3, nan], [nan, 0, 0, 1], [5, -inf, inf, 5]])
    expected = ref(x, axis=1)
    assert list(expected) == [1, 0, 2 if name == "argmax" else 1]
    check(fn(A(x), 1), expected, i32)


@pytest.mark.parametrize("name,fn,ref", ARG)
def test_argmax_argmin_index_dtype(name, fn, ref):
    x = np.float32([[1, 3, 3], [2, 2, 0]])
    check(fn(A(x), 1, np.int8), ref(x, axis=1), i8)
    check(fn(A(x), 0, np.uint8), ref(x, axis=0), u8)
    check(fn(A(np.zeros((3, 0), np.float32)), 0), np.zeros((0,)), i32)


@pytest.mark.parametrize("name,fn,ref", ARG)
def test_argmax_argmin_x64_default(name, fn, ref, x64):
    x = np.float64([3, 1, 4, 1, 5])
    check(fn(A(x), 0), ref(x), i64)


@pytest.mark.parametrize("name,fn,ref", ARG)
@pytest.mark.parametrize("x,axis,index_dtype", [
    (np.zeros((2, 0), np.float32), 1, None),      # empty axis
    (np.zeros((0,), np.float32), 0, None),
    (np.zeros((2, 3), np.float32), 2, None),      # not a dim
    (np.zeros((), np.float32), 0, None),
    (np.zeros((2, 3), np.float32), 0, np.float32),  # index dtype not integer
])
def test_argmax_argmin_errors(name, fn, ref, x, axis, index_dtype):
    with pytest.raises(TypeError, match=name):
        fn(A(x), axis, index_dtype)


# =============================================================================================
# 6. reindex and reindex_reduce with hand-written index expressions
# =============================================================================================

i0, i1, i2 = ix.idx(0), ix.idx(1), ix.idx(2)


def test_reindex_transpose_and_broadcast():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    check(lax.reindex(A(x), (4, 3), (i1, i0)), x.T, f32)
    check(lax.reindex(A(x), (2, 3, 4), (i1, i2)), np.broadcast_to(x, (2, 3, 4)), f32)
    check(lax.reindex(A(np.float32(3)), (2, 2), ()), np.full((2, 2), 3, np.float32), f32)
    check(lax.reindex(A(x), (), (1, 2)), x[1, 2], f32)
    check(lax.reindex(A(x), (6,), (i0 // 2, i0 % 2)), x[[0, 0, 1, 1, 2, 2], [0, 1] * 3], f32)


@pytest.mark.parametrize("dtype,fill", [(f32, -1.5), (f32, nan), (i32, -7), (u8, 255), (b1, True),
                                        (f16, inf)])
def test_reindex_out_of_bounds_takes_fill(dtype, fill):
    x = gen(np.random.default_rng(1), "any", dtype, (5,))
    out = lax.reindex(A(x), (9,), (i0 - 2,), fill=fill)
    expected = np.concatenate([np.full(2, fill, dtype), x, np.full(2, fill, dtype)])
    check(out, expected, dtype)
    # reversed, strided and partly out of bounds
    out = lax.reindex(A(x), (4,), (7 - i0 * 2,), fill=fill)
    check(out, np.array([fill, fill, x[3], x[1]], dtype), dtype)


def test_reindex_2d_out_of_bounds():
    x = np.arange(6, dtype=np.int32).reshape(2, 3) + 1
    out = lax.reindex(A(x), (4, 5), (i0 - 1, i1 - 1), fill=0)
    expected = np.zeros((4, 5), np.int32)
    expected[1:3, 1:4] = x
    check(out, expected, i32)


def test_reindex_fill_if():
    x = np.arange(8, dtype=np.float32)
    check(lax.reindex(A(x), (8,), (i0,), fill=-1, fill_if=(ix.eq(i0 % 2, 1),)),
          np.where(np.arange(8) % 2 == 1, -1, x), f32)
    # two conditions: either one fills
    check(lax.reindex(A(x), (8,), (i0,), fill=0, fill_if=(ix.lt(i0, 2), ix.ge(i0, 6))),
          np.where((np.arange(8) < 2) | (np.arange(8) >= 6), 0, x), f32)
    y = np.arange(12, dtype=np.int32).reshape(3, 4)
    check(lax.reindex(A(y), (3, 4), (i0, i1), fill=-1, fill_if=(ix.gt(i1, i0),)),
          np.where(np.triu(np.ones((3, 4), bool), 1), -1, y), i32)


def test_reindex_empty():
    x = np.arange(3, dtype=np.float32)
    check(lax.reindex(A(x), (0, 2), (i1,)), np.zeros((0, 2)), f32)
    check(lax.reindex(A(np.zeros(0, np.float32)), (3,), (i0,), fill=2), np.full(3, 2.0), f32)


@pytest.mark.parametrize("index_dtype", [i32, u8, i8, i16])
def test_reindex_gather_from_index_operand(index_dtype):
    x = np.arange(10, dtype=np.float32) * 10
    idx = np.array([3, 0, 9, 9, 12, 1], index_dtype)
    out = lax.reindex(A(x), (6,), (ix.load(1, (i0,)),), fill=-7, index_arrays=(A(idx),))
    check(out, np.where(idx < 10, x[np.minimum(idx, 9)], -7), f32)


def test_reindex_gather_negative_indices_fill():
    x = np.arange(10, dtype=np.int32)
    idx = np.int32([-1, 2, 10, -20])
    out = lax.reindex(A(x), (4,), (ix.load(1, (i0,)),), fill=-7, index_arrays=(A(idx),))
    check(out, [-7, 2, -7, -7], i32)


def test_reindex_gather_rows_and_points():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = np.int32([2, 0, 3])
    check(lax.reindex(A(x), (3, 3), (ix.load(1, (i0,)), i1), index_arrays=(A(rows),)),
          x[rows], f32)
    points = np.int32([[0, 0], [3, 2], [1, 2], [2, 1], [4, 0]])
    out = lax.reindex(A(x), (5,), (ix.load(1, (i0, 0)), ix.load(1, (i0, 1))), fill=-1,
                      index_arrays=(A(points),))
    check(out, [0, 11, 5, 7, -1], f32)
    # two index operands
    cols = np.int32([1, 1, 0])
    out = lax.reindex(A(x), (3,), (ix.load(1, (i0,)), ix.load(2, (i0,))),
                      index_arrays=(A(rows), A(cols)))
    check(out, x[rows, cols], f32)


def test_reindex_gather_int64_index(x64):
    x = np.arange(5, dtype=np.float64)
    idx = np.int64([4, 0, 2])
    out = lax.reindex(A(x), (3,), (ix.load(1, (i0,)),), index_arrays=(A(idx),))
    check(out, x[idx], f64)


REDUCE_OPS = {
    # op: (NumPy ufunc, identity)
    "add": (np.add, 0),
    "mul": (np.multiply, 1),
    "max": (np.maximum, -inf),
    "min": (np.minimum, inf),
}


@pytest.mark.parametrize("op", list(REDUCE_OPS))
@pytest.mark.parametrize("dtype", [f32, i32])
def test_reindex_reduce_scatter_with_duplicates(op, dtype):
    ufunc, identity = REDUCE_OPS[op]
    if not is_float(dtype):
        identity = {"add": 0, "mul": 1, "max": INT32_MIN, "min": INT32_MAX}[op]
    x = np.array([3, -1, 2, 5, -4, 2, 7], dtype)
    targets = np.int32([0, 2, 2, 3, 0, 0, 2])
    out = lax.reindex_reduce(A(x), op, (5,), (ix.load(1, (i0,)),), index_arrays=(A(targets),))
    expected = np.full(5, identity, dtype)
    ufunc.at(expected, targets, x)
    check(out, expected, dtype)


@pytest.mark.parametrize("op", list(REDUCE_OPS))
def test_reindex_reduce_drops_out_of_bounds_and_drop_if(op):
    ufunc, identity = REDUCE_OPS[op]
    x = np.float32([1, 2, 3, 4, 5, 6, 7, 8])
    targets = np.int32([0, -1, 1, 4, 3, 1, 9, 0])
    keep = (targets >= 0) & (targets < 4) & (np.arange(8) != 7)
    out = lax.reindex_reduce(A(x), op, (4,), (ix.load(1, (i0,)),),
                             drop_if=(ix.eq(i0, 7),), index_arrays=(A(targets),))
    expected = np.full(4, identity, np.float32)
    ufunc.at(expected, targets[keep], x[keep])
    check(out, expected, f32)


@pytest.mark.parametrize("op,fn", [("and", np.logical_and), ("or", np.logical_or)])
def test_reindex_reduce_logical(op, fn):
    x = np.array([True, False, True, True, False, False])
    targets = np.int32([0, 0, 1, 1, 2, 2])
    out = lax.reindex_reduce(A(x), op, (4,), (ix.load(1, (i0,)),), index_arrays=(A(targets),))
    expected = np.array([fn(True, False), True, False, op == "and"])
    check(out, expected, b1)


def test_reindex_reduce_without_loads():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    check(lax.reindex_reduce(A(x), "add", (4,), (i1,)), x.sum(0), f32)
    check(lax.reindex_reduce(A(x), "max", (3,), (i0,)), x.max(1), f32)
    check(lax.reindex_reduce(A(x), "add", (), ()), x.sum(), f32)
    check(lax.reindex_reduce(A(x), "add", (), (), drop_if=(ix.ne(i0, 1),)), x[1].sum(), f32)
    check(lax.reindex_reduce(A(x), "add", (2, 4), (i0 // 2, i1)),
          np.stack([x[:2].sum(0), x[2]]), f32)
    # transpose written as a scatter, with the even columns dropped
    check(lax.reindex_reduce(A(x), "add", (4, 3), (i1, i0), drop_if=(ix.eq(i1 % 2, 0),)),
          np.where(np.arange(4)[:, None] % 2 == 0, 0, x.T), f32)
    # a rank-0 operand scattered into a vector
    check(lax.reindex_reduce(A(np.float32(3)), "add", (3,), (1,)), [0, 3, 0], f32)


def test_reindex_reduce_empty():
    check(lax.reindex_reduce(A(np.zeros((0,), np.float32)), "mul", (3,), (i0,)), np.ones(3), f32)
    check(lax.reindex_reduce(A(np.ones((3,), np.int32)), "min", (0,), (i0,)), np.zeros(0), i32)


def test_reindex_reduce_uint8_identities():
    x = np.zeros((0,), np.uint8)
    check(lax.reindex_reduce(A(x), "max", (2,), (i0,)), [0, 0], u8)
    check(lax.reindex_reduce(A(x), "min", (2,), (i0,)), [255, 255], u8)
    check(lax.reindex_reduce(A(x), "and", (2,), (i0,)), [255, 255], u8)


REINDEX_ERRORS = [
    ("too-few-index-exprs", lambda: lax.reindex(f32a(2, 3), (3,), (i0,)), "reindex"),
    ("too-many-index-exprs", lambda: lax.reindex(f32a(3), (3,), (i0, i0)), "reindex"),
    ("uses-i1-in-rank-1-space", lambda: lax.reindex(f32a(3), (3,), (i1,)), "i1"),
    ("load-of-missing-operand", lambda: lax.reindex(f32a(3), (3,), (ix.load(1, (i0,)),)),
     "$1"),
    ("load-of-operand-0", lambda: lax.reindex(f32a(3), (3,), (ix.load(0, (i0,)),)), "$0"),
    ("load-with-wrong-rank", lambda: lax.reindex(f32a(3), (3,), (ix.load(1, (i0, 0)),),
                                                 index_arrays=(i32a(3),)), "$1"),
    ("float-index-operand", lambda: lax.reindex(f32a(3), (3,), (ix.load(1, (i0,)),),
                                                index_arrays=(f32a(3),)), "f32[3]"),
    ("bool-index-operand", lambda: lax.reindex(f32a(3), (3,), (ix.load(1, (i0,)),),
                                               index_arrays=(boola(3),)), "bool[3]"),
    ("fill-too-big-for-int8", lambda: lax.reindex(A(np.zeros(3, np.int8)), (3,), (i0,),
                                                  fill=1000), "1000"),
    ("negative-fill-for-uint8", lambda: lax.reindex(A(np.zeros(3, np.uint8)), (3,), (i0,),
                                                    fill=-1), "-1"),
    ("fractional-fill-for-int32", lambda: lax.reindex(i32a(3), (4,), (i0,), fill=1.5), "1.5"),
    ("reduce-wrong-count", lambda: lax.reindex_reduce(f32a(3), "add", (3, 2), (i0,)),
     "reindex_reduce"),
    ("reduce-unknown-op", lambda: lax.reindex_reduce(f32a(3), "sub", (3,), (i0,)), "sub"),
    ("reduce-add-bool", lambda: lax.reindex_reduce(boola(3), "add", (3,), (i0,)), "bool"),
    ("reduce-and-float", lambda: lax.reindex_reduce(f32a(3), "and", (3,), (i0,)), "float32"),
    ("reduce-missing-operand", lambda: lax.reindex_reduce(f32a(3), "add", (3,),
                                                          (ix.load(2, (i0,)),),
                                                          index_arrays=(i32a(3),)), "$2"),
    ("reduce-float-index-operand", lambda: lax.reindex_reduce(
        f32a(3), "add", (3,), (ix.load(1, (i0,)),), index_arrays=(f32a(3),)), "f32[3]"),
]


@pytest.mark.parametrize("thunk,word", [pytest.param(*r[1:], id=r[0]) for r in REINDEX_ERRORS])
def test_reindex_errors(thunk, word):
    with pytest.raises(TypeError) as info:
        thunk()
    assert word in str(info.value)
    assert "reindex" in str(info.value)


# =============================================================================================
# 7. Index expressions
# =============================================================================================

@pytest.mark.parametrize("expr,text", [
    (i0 * 2 + 1, "i0*2 + 1"),
    (2 * i0, "i0*2"),
    (1 + i0, "i0 + 1"),
    ((i0 + 1) * 2, "(i0 + 1)*2"),
    (i0 - (i1 - 1), "i0 - (i1 - 1)"),
    (i0 - i1 + i2, "i0 - i1 + i2"),
    (i1 + i0 * -2, "i1 - i0*2"),
    (i0 * -2, "i0*(-2)"),
    (i0 + -3, "i0 - 3"),
    (-i0, "0 - i0"),
    (i0 // 2, "i0//2"),
    (i0 % 3, "i0 % 3"),
    ((i0 - 1) // 2, "(i0 - 1)//2"),
    (ix.minimum(i0, 4), "min(i0, 4)"),
    (ix.maximum(i0 - 1, 0), "max(i0 - 1, 0)"),
    (ix.where(ix.lt(i0, 3), i0, 0), "where(i0 < 3, i0, 0)"),
    (ix.logical_and(ix.ge(i0, 1), ix.ne(i1, 2)), "i0 >= 1 and i1 != 2"),
    (ix.logical_or(ix.le(i0, 1), ix.gt(i1, 2)), "i0 <= 1 or i1 > 2"),
    (ix.eq(i0 % 2, 0), "i0 % 2 == 0"),
    (ix.load(1, (i0, 2)), "$1[i0, 2]"),
    (ix.load(3, ()), "$3[]"),
    (ix.load(1, (i0,)) * 3 + i1, "$1[i0]*3 + i1"),
])
def test_index_expression_printing(expr, text):
    assert str(expr) == text
    assert repr(expr) == f"IndexExpr({text})"


def test_index_expression_equality_and_hashing():
    a, b = ix.idx(0) * 2 + 1, ix.idx(0) * 2 + 1
    assert a is not b and a == b and hash(a) == hash(b)
    assert {a: "x"}[b] == "x"
    assert len({a, b, ix.idx(0) * 2 + 2, ix.idx(1) * 2 + 1}) == 3
    assert a != ix.idx(1) * 2 + 1
    assert ix.load(1, (i0,)) == ix.load(1, (ix.idx(0),))
    assert ix.load(1, (i0,)) != ix.load(2, (i0,))
    assert ix.as_expr(3) == ix.Const(3) and ix.as_expr(3) != ix.idx(3)
    assert ix.where(ix.lt(i0, 1), i0, i1) == ix.where(ix.lt(i0, 1), i0, i1)
    assert (i0 == 0) is False  # not an Expr: never equal
    with pytest.raises(TypeError):
        bool(ix.lt(i0, 1))
    with pytest.raises(TypeError):
        ix.as_expr(1.5)


@pytest.mark.parametrize("built,folded", [
    (i0 * 1 + 0, i0),
    (0 + i0 * 1, i0),
    (i0 * 0, ix.Const(0)),
    (i0 - i0, ix.Const(0)),
    (i0 // 1, i0),
    (i0 % 1, ix.Const(0)),
    ((i0 + 1) + 2, i0 + 3),
    ((i0 + 3) - 5, i0 - 2),
    ((i0 - 3) + 5, i0 + 2),
    ((i0 - 3) - 2, i0 - 5),
    (ix.as_expr(3) + 4, ix.Const(7)),
    (ix.as_expr(6) * 7 - 2, ix.Const(40)),
    (ix.minimum(i1, i1), i1),
    (ix.maximum(3, 5), ix.Const(5)),
    (ix.where(1, i0, i1), i0),
    (ix.where(0, i0, i1), i1),
    (ix.where(ix.lt(i0, 2), i1, i1), i1),
    (ix.logical_and(1, ix.lt(i0, 2)), ix.lt(i0, 2)),
    (ix.logical_and(ix.lt(i0, 2), 0), ix.Const(0)),
    (ix.logical_or(0, ix.lt(i0, 2)), ix.lt(i0, 2)),
    (ix.logical_or(ix.lt(i0, 2), 1), ix.Const(1)),
    (ix.lt(2, 3), ix.Const(1)),
    (ix.eq(2, 3), ix.Const(0)),
])
def test_index_expression_constant_folding(built, folded):
    assert built == folded, (str(built), str(folded))


@pytest.mark.parametrize("a,b", [(-7, 2), (7, -2), (-7, -2), (7, 2), (-6, 3), (0, -5), (-1, 4)])
def test_index_expression_floor_division_of_negatives(a, b):
    assert ix.as_expr(a) // b == ix.Const(a // b)
    assert ix.as_expr(a) % b == ix.Const(a % b)
    # the same rules when evaluated over a grid
    expr_div, expr_mod = (i0 + a) // b, (i0 + a) % b
    grid = np.arange(6) + a
    np.testing.assert_array_equal(ix.evaluate(expr_div, (6,)), [v // b for v in grid])
    np.testing.assert_array_equal(ix.evaluate(expr_mod, (6,)), [v % b for v in grid])


def test_index_expression_divide_by_zero():
    with pytest.raises(ZeroDivisionError):
        ix.as_expr(3) // 0
    with pytest.raises(ZeroDivisionError):
        i0 % 0


def test_index_expression_evaluate():
    n0, n1 = np.indices((3, 4))
    cases = [
        (i0 * 4 + i1, n0 * 4 + n1),
        (ix.as_expr(5), np.full((3, 4), 5)),
        (i1 - 2 * i0, n1 - 2 * n0),
        ((i1 - 5) // 2, (n1 - 5) // 2),
        ((i1 - 5) % 3, (n1 - 5) % 3),
        (ix.minimum(i0, i1), np.minimum(n0, n1)),
        (ix.maximum(i0 - 1, 0), np.maximum(n0 - 1, 0)),
        (ix.lt(i0, i1), (n0 < n1).astype(int)),
        (ix.le(i0, 1), (n0 <= 1).astype(int)),
        (ix.eq(i1 % 2, 0), (n1 % 2 == 0).astype(int)),
        (ix.logical_and(ix.gt(i1, 0), ix.ne(i0, 1)), ((n1 > 0) & (n0 != 1)).astype(int)),
        (ix.logical_or(ix.ge(i1, 3), ix.eq(i0, 0)), ((n1 >= 3) | (n0 == 0)).astype(int)),
        (ix.where(ix.lt(i0, 1), i1, -i1), np.where(n0 < 1, n1, -n1)),
    ]
    for expr, expected in cases:
        got = ix.evaluate(expr, (3, 4))
        assert got.dtype == np.int64 and got.shape == (3, 4), str(expr)
        np.testing.assert_array_equal(got, expected, err_msg=str(expr))


def test_index_expression_evaluate_loads():
    table = np.int32([[5, 6, 7], [8, 9, 10]])
    got = ix.evaluate(ix.load(1, (i0, i1)) * 2, (2, 3), operands=(None, table))
    np.testing.assert_array_equal(got, table * 2)
    # positions outside the operand are clamped into it
    got = ix.evaluate(ix.load(1, (i0 - 1, i1 + 1)), (2, 3), operands=(None, table))
    np.testing.assert_array_equal(got, [[6, 7, 7], [6, 7, 7]])
    got = ix.evaluate(ix.load(2, ()) + i0, (3,), operands=(None, None, np.int8(4)))
    np.testing.assert_array_equal(got, [4, 5, 6])


def test_index_expression_substitute():
    e = i0 * 2 + i1
    assert ix.substitute(e, {0: i1, 1: 3}) == i1 * 2 + 3
    assert ix.substitute(e, {0: 2, 1: 1}) == ix.Const(5)
    assert ix.substitute(e, {1: i0}) == i0 * 2 + i0
    assert ix.substitute(e, {}) is e
    assert ix.substitute(ix.load(1, (i0,)), {0: i2 - 1}) == ix.load(1, (i2 - 1,))
    # substitution composes with evaluation
    sub = ix.substitute(ix.where(ix.lt(i0, 2), i0, i1), {0: i1 + 1, 1: i0})
    n0, n1 = np.indices((3, 4))
    np.testing.assert_array_equal(ix.evaluate(sub, (3, 4)), np.where(n1 + 1 < 2, n1 + 1, n0))


def test_substitution_is_simultaneous_even_when_a_node_folds_away():
    """(i1 + i2) with i1 -> 0 and i2 -> i4 folds to i4, which must not then become i6."""
    i = [ix.idx(k) for k in range(7)]
    assert ix.substitute(i[1] + i[2], {1: 0, 2: i[4], 4: i[6]}) == i[4]
    assert ix.substitute(ix.where(1, i[0], i[1]), {0: i[1], 1: i[0]}) == i[1]
    # a node that folds into a new leaf (not one of its children) is not substituted again
    assert ix.substitute(i[0] - 1, {0: i[0] + 1}) == i[0]
    assert ix.substitute((i[0] + 2) - 2 + i[1], {0: i[1], 1: i[0]}) == i[1] + i[0]


def test_gather_over_a_unit_dim_next_to_a_reduced_one():
    """A convolution with one input channel: the channel index folds to a reduction index
    (regression: the C backend checked the wrong loop index against the channel bound)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    i = [ix.idx(k) for k in range(7)]  # n g c kh kw oh ow

    def conv(x, w):
        p = lax.reindex(x, (2, 1, 1, 3, 3, 6, 6), (i[0], i[1] + i[2], i[5] + i[3] - 1,
                                                  i[6] + i[4] - 1))
        y = jnp.einsum("ngcklhw,gockl->ngohw", p, w.reshape(1, 3, 1, 3, 3))
        return y.reshape(2, 3, 6, 6)

    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((2, 3, 6, 6))
    for a in range(6):
        for b in range(6):
            want[:, :, a, b] = np.einsum("nckl,ockl->no", xp[:, :, a:a + 3, b:b + 3], w)
    np.testing.assert_allclose(fjit.jit(conv)(x, w), want, rtol=1e-5, atol=1e-5)


def test_index_expression_renumber_loads_and_analysis():
    e = ix.load(1, (i0,)) + ix.load(2, ()) * i2
    moved = ix.renumber_loads(e, lambda k: k + 1)
    assert str(moved) == "$2[i0] + $3[]*i2"
    assert [load.operand for load in ix.loads_used(moved)] == [2, 3]
    assert ix.renumber_loads(e, lambda k: k) == e
    assert ix.indices_used(e) == {0, 2}
    assert ix.indices_used(ix.as_expr(3)) == set()
    assert ix.indices_used(ix.where(ix.lt(i1, 1), i0, 2)) == {0, 1}
    assert ix.loads_used(i0 + 1) == []
    nested = ix.load(1, (ix.load(2, (i1,)),))
    assert ix.indices_used(nested) == {1}
    assert [ld.operand for ld in ix.loads_used(nested)] == [1, 2]
    assert ix.transform(i0 + 1, lambda n: ix.idx(5) if n == i0 else n) == ix.idx(5) + 1


# =============================================================================================
# 8. The reindex-based views
# =============================================================================================

X234 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 0, 1), (1, 0, 2), (2, 1, 0), (0, 2, 1)])
def test_transpose(perm):
    check(lax.transpose(A(X234), perm), X234.transpose(perm), f32)


def test_transpose_errors_and_empty():
    check(lax.transpose(A(np.zeros((0, 3), np.int8)), (1, 0)), np.zeros((3, 0)), i8)
    with pytest.raises(TypeError, match="transpose"):
        lax.transpose(A(X234), (0, 0, 1))
    with pytest.raises(TypeError, match="transpose"):
        lax.transpose(A(X234), (0, 1))


@pytest.mark.parametrize("start,limit,strides", [
    ((0, 0, 0), (2, 3, 4), None),
    ((1, 0, 1), (2, 3, 3), None),
    ((0, 1, 0), (2, 3, 4), (1, 1, 2)),
    ((0, 0, 1), (2, 3, 4), (2, 2, 3)),
    ((0, 2, 0), (2, 2, 4), None),
    ((1, 0, 3), (2, 3, 4), (5, 5, 5)),
])
def test_slice(start, limit, strides):
    ref = X234[tuple(slice(a, b, s) for a, b, s in zip(start, limit, strides or (1, 1, 1)))]
    check(lax.slice(A(X234), start, limit, strides), ref, f32)


@pytest.mark.parametrize("start,limit,strides", [
    ((0, 0, 0), (2, 3, 5), None),
    ((0, 2, 0), (2, 1, 4), None),
    ((0, 0, 0), (2, 3, 4), (1, 0, 1)),
    ((0, 0), (2, 3), None),
])
def test_slice_errors(start, limit, strides):
    with pytest.raises(TypeError, match="slice"):
        lax.slice(A(X234), start, limit, strides)


@pytest.mark.parametrize("start,limit,stride,axis", [
    (1, 3, 1, 1), (0, 4, 2, 2), (1, 2, 1, 0), (0, 4, 3, -1), (2, 2, 1, 1)])
def test_slice_in_dim(start, limit, stride, axis):
    idx = [slice(None)] * 3
    idx[axis] = slice(start, limit, stride)
    check(lax.slice_in_dim(A(X234), start, limit, stride, axis), X234[tuple(idx)], f32)


def test_slice_in_dim_negative_indices_like_jax():
    # jax.lax.slice_in_dim wraps negative start/limit indices (x[-3:-1] along the axis)
    x = np.arange(10, dtype=np.int32)
    check(lax.slice_in_dim(A(x), -3, -1), x[-3:-1], i32)
    check(lax.slice_in_dim(A(x), 2, -2, 2), x[2:-2:2], i32)


@pytest.mark.parametrize("dims", [(0,), (1,), (2,), (0, 2), (0, 1, 2), (), (-1,)])
def test_rev(dims):
    check(lax.rev(A(X234), dims), np.flip(X234, dims) if dims else X234, f32)


def np_pad(x, value, config):
    """Reference lax.pad: interior padding, then positive low/high padding, then cropping."""
    out = np.asarray(x)
    for axis, (lo, hi, interior) in enumerate(config):
        n = out.shape[axis]
        shape = list(out.shape)
        shape[axis] = n + max(n - 1, 0) * interior
        spread = np.full(shape, value, out.dtype)
        idx = [slice(None)] * out.ndim
        idx[axis] = slice(None, None, interior + 1)
        spread[tuple(idx)] = out
        before, after = list(shape), list(shape)
        before[axis], after[axis] = max(lo, 0), max(hi, 0)
        grown = np.concatenate([np.full(before, value, out.dtype), spread,
                                np.full(after, value, out.dtype)], axis)
        idx[axis] = slice(max(-lo, 0), grown.shape[axis] - max(-hi, 0))
        out = grown[tuple(idx)]
    return out


PADS = [
    [(1, 2, 0), (0, 0, 0)],
    [(0, 0, 1), (0, 0, 2)],
    [(2, 1, 2), (1, 0, 1)],
    [(-1, -2, 1), (0, 0, 0)],
    [(0, 0, 0), (-2, 0, 0)],
    [(1, -1, 1), (-2, 2, 2)],
    [(0, -1, 0), (-3, -4, 3)],
    [(-3, 0, 2), (3, -5, 0)],
]


@pytest.mark.parametrize("config", PADS, ids=str)
@pytest.mark.parametrize("dtype,value", [(f32, -1.5), (i32, 7), (b1, True), (f32, nan)])
def test_pad(config, dtype, value):
    x = gen(np.random.default_rng(0), "any", dtype, (3, 4))
    check(lax.pad(A(x), value, config), np_pad(x, value, config), dtype)


def test_pad_known_result():
    # jax.lax.pad(jnp.arange(6.).reshape(2, 3), -1., [(1, -1, 1), (-2, 2, 2)])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = np.float32([[-1, -1, -1, -1, -1, -1, -1],
                           [-1, 1, -1, -1, 2, -1, -1],
                           [-1, -1, -1, -1, -1, -1, -1]])
    check(lax.pad(A(x), -1.0, [(1, -1, 1), (-2, 2, 2)]), expected, f32)
    assert np.array_equal(np_pad(x, -1.0, [(1, -1, 1), (-2, 2, 2)]), expected)


def test_pad_empty_and_rank0():
    check(lax.pad(A(np.zeros((0,), np.float32)), 3.0, [(1, 2, 4)]), np.full(3, 3.0), f32)
    x = np.arange(3, dtype=np.float32)
    check(lax.pad(A(x), 0.0, [(0, 0, 0)]), x, f32)
    check(lax.pad(A(np.float32(5)), 0.0, []), np.float32(5), f32)


def test_pad_with_an_array_padding_value():
    x = np.arange(4, dtype=np.int32)
    check(lax.pad(A(x), A(np.int32(-9)), [(1, 1, 1)]), np_pad(x, -9, [(1, 1, 1)]), i32)


@pytest.mark.parametrize("config", PADS[:6], ids=str)
def test_pad_traced_padding_value(config):
    x = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
    f = fjit.jit(lambda x, v: lax.pad(x, v, config))
    for v in (np.float32(9.5), np.float32(-2.0)):
        check(f(A(x), A(v)), np_pad(x, v, config), f32)


def test_pad_errors():
    with pytest.raises(TypeError, match="pad"):
        lax.pad(A(np.zeros(3, np.float32)), 0.0, [(0, 0, -1)])
    with pytest.raises(TypeError, match="pad"):
        lax.pad(A(np.zeros(3, np.float32)), 0.0, [(-2, -2, 0)])
    with pytest.raises(TypeError, match="pad"):
        lax.pad(A(np.zeros((3, 2), np.float32)), 0.0, [(0, 0, 0)])


def test_pad_fractional_value_for_int_array_is_an_error():
    # jax.lax.pad(jnp.arange(3), 1.5, ...) raises TypeError (padding value dtype differs)
    with pytest.raises(TypeError):
        lax.pad(A(np.arange(3, dtype=np.int32)), 1.5, [(1, 1, 0)])


@pytest.mark.parametrize("shapes,dim", [
    ([(2, 3), (4, 3), (1, 3)], 0),
    ([(2, 3), (2, 1), (2, 5)], 1),
    ([(2, 3), (2, 1), (2, 5)], -1),
    ([(2, 3), (0, 3), (1, 3)], 0),
    ([(0, 3), (2, 3), (0, 3)], 0),
    ([(0, 3), (0, 3)], 0),
    ([(3,)], 0),
    ([(1,), (1,), (1,), (1,), (1,)], 0),
    ([(2, 3, 4), (2, 2, 4)], 1),
])
@pytest.mark.parametrize("dtype", [f32, i8, b1])
def test_concatenate(shapes, dim, dtype):
    rng = np.random.default_rng(5)
    pieces = [gen(rng, "any", dtype, s) for s in shapes]
    check(lax.concatenate([A(p) for p in pieces], dim), np.concatenate(pieces, dim), dtype)


def test_concatenate_errors():
    with pytest.raises(TypeError, match="concatenate"):
        lax.concatenate([], 0)
    with pytest.raises(TypeError, match="concatenate"):
        lax.concatenate([f32a(2, 3), f32a(2, 4)], 0)
    with pytest.raises(TypeError, match="concatenate"):
        lax.concatenate([f32a(2, 3), f32a(2)], 0)
    with pytest.raises(TypeError, match="concatenate"):
        lax.concatenate([f32a(2), i32a(2)], 0)
    with pytest.raises(TypeError, match="concatenate"):
        lax.concatenate([f32a(), f32a()], 0)


def jax_start(start, n, size):
    """jax.lax.dynamic_slice's start index: negative counts from the end, then clamped so the
    window fits."""
    if start < 0:
        start += n
    return min(max(start, 0), n - size)


X57 = np.arange(35, dtype=np.float32).reshape(5, 7)
STARTS = [(0, 0), (1, 2), (3, 4), (4, 6), (10, 10), (-1, 0), (-3, -2), (-100, -100), (2, -1)]


def _np_dynamic_slice(x, starts, sizes):
    s = [jax_start(a, n, k) for a, n, k in zip(starts, x.shape, sizes)]
    return x[tuple(slice(a, a + k) for a, k in zip(s, sizes))]


def _np_dynamic_update_slice(x, update, starts):
    s = [jax_start(a, n, k) for a, n, k in zip(starts, x.shape, update.shape)]
    out = x.copy()
    out[tuple(slice(a, a + k) for a, k in zip(s, update.shape))] = update
    return out


@pytest.mark.parametrize("starts", STARTS, ids=str)
def test_dynamic_slice_static_starts(starts):
    check(lax.dynamic_slice(A(X57), starts, (2, 3)), _np_dynamic_slice(X57, starts, (2, 3)), f32)


_jit_dynamic_slice = fjit.jit(lambda x, s0, s1: lax.dynamic_slice(x, (s0, s1), (2, 3)))
_jit_dynamic_slice_mixed = fjit.jit(lambda x, s1: lax.dynamic_slice(x, (1, s1), (4, 1)))


@pytest.mark.parametrize("starts,index_dtype", [
    pytest.param(st, d, id=f"{st}-{d.name}") for st in STARTS for d in (i32, i8, u8)
    if d != u8 or min(st) >= 0])
def test_dynamic_slice_traced_starts(starts, index_dtype):
    s = tuple(np.array(v, index_dtype) for v in starts)
    check(_jit_dynamic_slice(A(X57), A(s[0]), A(s[1])), _np_dynamic_slice(X57, starts, (2, 3)),
          f32)
    check(_jit_dynamic_slice_mixed(A(X57), A(s[1])),
          _np_dynamic_slice(X57, (1, starts[1]), (4, 1)), f32)


def test_dynamic_slice_numpy_scalar_starts():
    # NumPy integer scalars and rank-0 NumPy arrays are valid start indices (as in JAX)
    check(lax.dynamic_slice(A(X57), (np.int64(1), np.int32(2)), (2, 3)), X57[1:3, 2:5], f32)
    check(lax.dynamic_slice(A(X57), (np.array(1), np.array(2, np.int8)), (2, 3)),
          X57[1:3, 2:5], f32)


def test_dynamic_slice_full_and_empty_windows():
    check(lax.dynamic_slice(A(X57), (3, 3), (5, 7)), X57, f32)
    check(lax.dynamic_slice(A(X57), (3, 3), (0, 2)), np.zeros((0, 2)), f32)
    check(lax.dynamic_slice(A(np.float32(2)), (), ()), np.float32(2), f32)
    with pytest.raises(TypeError, match="dynamic_slice"):
        lax.dynamic_slice(A(X57), (0, 0), (6, 1))
    with pytest.raises(TypeError, match="dynamic_slice"):
        lax.dynamic_slice(A(X57), (0,), (1, 1))
    with pytest.raises(TypeError, match="dynamic_slice"):
        lax.dynamic_slice(A(X57), (A(np.float32(1)), 0), (1, 1))


UPDATE = -np.arange(1, 7, dtype=np.float32).reshape(2, 3)


@pytest.mark.parametrize("starts", STARTS, ids=str)
def test_dynamic_update_slice_static_starts(starts):
    check(lax.dynamic_update_slice(A(X57), A(UPDATE), starts),
          _np_dynamic_update_slice(X57, UPDATE, starts), f32)


_jit_dynamic_update_slice = fjit.jit(
    lambda x, u, s0, s1: lax.dynamic_update_slice(x, u, (s0, s1)))


@pytest.mark.parametrize("starts", STARTS, ids=str)
def test_dynamic_update_slice_traced_starts(starts):
    s0, s1 = (np.int32(v) for v in starts)
    check(_jit_dynamic_update_slice(A(X57), A(UPDATE), A(s0), A(s1)),
          _np_dynamic_update_slice(X57, UPDATE, starts), f32)


def test_dynamic_update_slice_edges():
    x = np.arange(10, dtype=np.int32)
    check(lax.dynamic_update_slice(A(x), A(np.int32([-1, -2, -3])), (8,)),
          [0, 1, 2, 3, 4, 5, 6, -1, -2, -3], i32)
    check(lax.dynamic_update_slice(A(x), A(np.zeros(0, np.int32)), (4,)), x, i32)
    check(lax.dynamic_update_slice(A(x), A(-x), (0,)), -x, i32)
    with pytest.raises(TypeError, match="dynamic"):
        lax.dynamic_update_slice(A(x), A(np.zeros(11, np.int32)), (0,))
    with pytest.raises(TypeError):
        lax.dynamic_update_slice(A(x), A(np.zeros(2, np.float32)), (0,))


# =============================================================================================
# 9. Staging: fjit.jit and fjit.make_program
# =============================================================================================

RNG = np.random.default_rng(9)
F34 = RNG.uniform(0.5, 2, (3, 4)).astype(np.float32)
I34 = RNG.integers(-20, 20, (3, 4)).astype(np.int32)
PRED34 = RNG.random((3, 4)) < 0.5
IDX = np.int32([3, 0, 2, 2, 1])

STAGED = [
    # primitive name, function, operands, NumPy reference
    ("exp", lax.exp, [F34], lambda x: np.exp(x)),
    ("add", lambda x: lax.add(x, 2.0), [F34], lambda x: x + 2),
    ("integer_pow", lambda x: lax.integer_pow(x, 3), [F34], lambda x: x ** 3),
    ("round", lambda x: lax.round(x, 1), [F34 * 3], np.round),
    ("select", lax.select, [PRED34, F34, -F34], np.where),
    ("clamp", lambda x: lax.clamp(-5, x, 5), [I34], lambda x: np.clip(x, -5, 5)),
    ("div", lax.div, [I34, np.int32([[0, 1, -1, 3]] * 3)],
     lambda a, b: np.where(b == 0, -1, np.trunc(a / np.where(b == 0, 1, b)))),
    ("convert_element_type", lambda x: lax.convert_element_type(x, np.int32), [F34 * 10],
     lambda x: np.trunc(x)),
    ("bitcast", lambda x: lax.bitcast_convert_type(x, np.int32), [F34],
     lambda x: x.view(np.int32)),
    ("shift_right_arithmetic", lambda x: lax.shift_right_arithmetic(x, 2), [I34],
     lambda x: x >> 2),
    ("erf", lax.erf, [F34], _erf),
    ("reduce_max", lambda x: lax.reduce_max(x, (1,)), [F34], lambda x: x.max(1)),
    ("reduce_sum", lambda x: lax.reduce_sum(x, (0, 1)), [F34], lambda x: x.sum()),
    ("argmax", lambda x: lax.argmax(x, 0), [I34], lambda x: np.argmax(x, 0)),
    ("broadcast_in_dim", lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1, 2)), [F34],
     lambda x: np.broadcast_to(x, (2, 3, 4))),
    ("reshape", lambda x: lax.reshape(x, (4, 3)), [F34], lambda x: x.reshape(4, 3)),
    ("iota", lambda x: lax.add(x, lax.broadcast_in_dim(lax.iota(np.float32, 4), (3, 4), (1,))),
     [F34], lambda x: x + np.arange(4)),
    ("reindex", lambda x, i: lax.reindex(x, (5, 4), (ix.load(1, (i0,)), i1),
                                         index_arrays=(i,)), [F34, IDX],
     lambda x, i: np.where((i < 3)[:, None], x[np.minimum(i, 2)], 0)),
    ("reindex_reduce", lambda x, i: lax.reindex_reduce(x, "add", (4,), (ix.load(1, (i0,)),),
                                                       index_arrays=(i,)),
     [np.float32([1, 2, 3, 4, 5]), IDX], lambda x, i: np.bincount(i, x, 4)),
    ("reindex", lambda x: lax.transpose(x, (1, 0)), [F34], lambda x: x.T),
]


@pytest.mark.parametrize("name,fn,operands,ref",
                         [pytest.param(*r, id=f"{r[0]}-{k}") for k, r in enumerate(STAGED)])
def test_staged_under_jit_and_make_program(name, fn, operands, ref):
    with np.errstate(all="ignore"):
        expected = np.asarray(ref(*operands))
    eager = fn(*[A(o) for o in operands])
    dtype = eager.dtype
    check(eager, expected, dtype)
    jitted = fjit.jit(fn)(*[A(o) for o in operands])
    check(jitted, expected, dtype)
    assert jitted.aval == eager.aval
    program = fjit.make_program(fn)(*operands)
    fjit.typecheck(program)
    text = str(program)
    assert re.search(rf"= {re.escape(name)}[\[ ]", text), text
    assert program.out_avals == [eager.aval.strip_weak_type()] or \
        program.out_avals == [eager.aval]


META_PRIMITIVES = {op.name for op in TABLE} | {"reindex", "reindex_reduce", "broadcast_in_dim",
                                               "iota", "reshape"}


@pytest.mark.parametrize("fn,operands", [
    pytest.param(lambda x: lax.transpose(x, (1, 0)), [F34], id="transpose"),
    pytest.param(lambda x: lax.slice(x, (0, 1), (3, 4), (2, 2)), [F34], id="slice"),
    pytest.param(lambda x: lax.slice_in_dim(x, 1, 3, axis=1), [F34], id="slice_in_dim"),
    pytest.param(lambda x: lax.rev(x, (0,)), [F34], id="rev"),
    pytest.param(lambda x: lax.pad(x, 0.0, [(1, -1, 1), (0, 2, 0)]), [F34], id="pad"),
    pytest.param(lambda x, v: lax.pad(x, v, [(1, 1, 1), (0, 0, 0)]), [F34, np.float32(3)],
                 id="pad-traced-value"),
    pytest.param(lambda x: lax.concatenate([x, x, x], 1), [F34], id="concatenate"),
    pytest.param(lambda x, s: lax.dynamic_slice(x, (s, 1), (2, 2)), [F34, np.int32(1)],
                 id="dynamic_slice"),
    pytest.param(lambda x, u, s: lax.dynamic_update_slice(x, u, (s, 1)),
                 [F34, F34[:2, :2], np.int32(1)], id="dynamic_update_slice"),
])
def test_views_stage_to_meta_ops_only(fn, operands):
    program = fjit.make_program(fn)(*operands)
    names = {eqn.primitive.name for eqn in program.eqns}
    assert "reindex" in names, str(program)
    assert names <= META_PRIMITIVES, names - META_PRIMITIVES
    for forbidden in ("transpose", "slice", "pad", "rev", "concatenate", "dynamic_slice",
                      "dynamic_update_slice", "gather", "scatter"):
        assert forbidden not in names
    # the staged Program computes what eager evaluation does
    eager = fn(*[A(o) for o in operands])
    check(fjit.jit(fn)(*[A(o) for o in operands]), np.asarray(eager), eager.dtype)


def test_transpose_program_text():
    text = str(fjit.make_program(lambda x: lax.transpose(x, (1, 0)))(F34))
    assert "reindex[fill=0.0 index=(i1, i0) shape=(4, 3)]" in text
    text = str(fjit.make_program(lambda x: lax.rev(x, (1,)))(F34))
    assert "index=(i0, 3 - i1)" in text


def _windows_reference(x, window, strides, padding, dilation, fill):
    """Direct loops: y[o, w] = x[o*stride + w*dilation - low] or fill."""
    out_shape = [(n + lo + hi - (d * (w - 1) + 1)) // s + 1
                 for n, w, s, d, (lo, hi) in zip(x.shape, window, strides, dilation, padding)]
    y = np.full(tuple(out_shape) + tuple(window), fill, x.dtype)
    for o in np.ndindex(*out_shape):
        for w in np.ndindex(*window):
            src = [oi * s + wi * d - lo for oi, wi, s, d, (lo, _) in
                   zip(o, w, strides, dilation, padding)]
            if all(0 <= p < n for p, n in zip(src, x.shape)):
                y[o + w] = x[tuple(src)]
    return y


@pytest.mark.parametrize("shape,window,strides,padding,dilation", [
    ((7,), (3,), (1,), ((0, 0),), (1,)),
    ((8,), (3,), (2,), ((1, 1),), (1,)),
    ((9,), (2,), (1,), ((0, 2),), (3,)),
    ((5, 6), (2, 3), (1, 2), ((1, 0), (2, 2)), (2, 1)),
    ((2, 6, 5), (1, 3, 3), (1, 2, 1), ((0, 0), (1, 1), (1, 1)), (1, 1, 2)),
])
def test_windows_are_one_reindex(shape, window, strides, padding, dilation):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1
    got = lax.windows(fjit.device_put(x), window, strides, padding, dilation, fill=-1.0)
    want = _windows_reference(x, window, strides, padding, dilation, -1.0)
    np.testing.assert_array_equal(np.asarray(got), want)
    program = fjit.make_program(lambda v: lax.windows(v, window, strides, padding, dilation))(x)
    assert [e.primitive.name for e in program.eqns] == ["reindex"]


def test_windows_match_numpy_sliding_window_view():
    x = np.random.default_rng(0).standard_normal((6, 7)).astype(np.float32)
    got = lax.windows(fjit.device_put(x), (3, 2))
    np.testing.assert_array_equal(np.asarray(got),
                                  np.lib.stride_tricks.sliding_window_view(x, (3, 2)))
