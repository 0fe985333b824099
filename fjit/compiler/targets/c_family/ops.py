"""C for every element-wise op of fjit.lax.elementwise: a Jinja2 expression per op.

An expression sees the operands' C expressions x, y, z; the result's C type t; the compute
type names of the operands and the result, s and r (f32, i32, bool, ...; float16 and
bfloat16 compute in f32); their storage names sf and st and storage C types tf and tt; the
operand kind kf (float/int/bool); and the op's params p.  The fj_* helpers are in
templates/c/prelude.h.j2.  tests/test_compiler.py checks that every op has its C here.
"""
from __future__ import annotations


def _helper(name, arity):
    """A call of the prelude's fj_<name>_<type> helper."""
    args = ", ".join("{{ %s }}" % v for v in "xyz"[:arity])
    return "fj_" + name + "_{{ s }}(" + args + ")"


def _infix(symbol):
    return "({{ x }} " + symbol + " {{ y }})"


def _bitwise(symbol):
    return "(({{ t }})({{ x }} " + symbol + " {{ y }}))"


_CONVERT = (
    "{% if kf == 'float' and st not in ('f16', 'bf16', 'f32', 'f64', 'bool') %}"
    "fj_convert_{{ s }}_{{ st }}({{ x }})"
    "{% elif st == 'bool' %}({{ x }} != 0)"
    "{% elif st == 'f16' %}fj_round_to_f16((float){{ x }})"
    "{% elif st == 'bf16' %}fj_round_to_bf16((float){{ x }})"
    "{% else %}(({{ t }}){{ x }}){% endif %}")

_BITCAST = (
    "({ {{ tt }} _r; {{ tf }} _v = "
    "{% if sf == 'bf16' %}fj_f32_to_bf16({{ x }}){% elif sf == 'f16' %}(_Float16){{ x }}"
    "{% else %}{{ x }}{% endif %}; memcpy(&_r, &_v, sizeof _r); "
    "{% if st == 'bf16' %}fj_bf16_to_f32(_r){% elif st == 'f16' %}(float)_r{% else %}_r"
    "{% endif %}; })")

# ops whose C is a prelude helper of their own name
_UNARY_HELPERS = ("abs", "sign", "exp", "exp2", "log", "log1p", "expm1", "sqrt", "rsqrt",
                  "cbrt", "sin", "cos", "tan", "tanh", "asin", "acos", "atan", "sinh", "cosh",
                  "asinh", "acosh", "atanh", "logistic", "erf", "floor", "ceil")
_BINARY_HELPERS = ("div", "rem", "pow", "max", "min", "atan2")

C_OPS = {
    **{name: _helper(name, 1) for name in _UNARY_HELPERS},
    **{name: _helper(name, 2) for name in _BINARY_HELPERS},
    "neg": "(-{{ x }})",
    "integer_pow": "fj_ipow_{{ s }}({{ x }}, {{ p.y }})",
    "round": "{% if p.rounding_method == 1 %}fj_rint_{{ s }}({{ x }})"
             "{% else %}fj_round_{{ s }}({{ x }}){% endif %}",
    "is_finite": "fj_isfinite_{{ s }}({{ x }})",
    "stop_gradient": "{{ x }}",
    "not": "{% if s == 'bool' %}(!{{ x }}){% else %}(({{ t }})~{{ x }}){% endif %}",
    "add": _infix("+"), "sub": _infix("-"), "mul": _infix("*"),
    "nextafter": "{% if sf in ('f16', 'bf16') %}fj_nextafter_{{ sf }}({{ x }}, {{ y }})"
                 "{% else %}fj_nextafter_{{ s }}({{ x }}, {{ y }}){% endif %}",
    "eq": _infix("=="), "ne": _infix("!="), "lt": _infix("<"), "le": _infix("<="),
    "gt": _infix(">"), "ge": _infix(">="),
    "and": _bitwise("&"), "or": _bitwise("|"), "xor": _bitwise("^"),
    "shift_left": "fj_shl_{{ s }}({{ x }}, {{ y }})",
    "shift_right_logical": "fj_shr_{{ s }}({{ x }}, {{ y }})",
    "shift_right_arithmetic": "fj_sar_{{ s }}({{ x }}, {{ y }})",
    "select": "({{ x }} ? {{ y }} : {{ z }})",
    "clamp": "fj_min_{{ s }}(fj_max_{{ s }}({{ y }}, {{ x }}), {{ z }})",
    "convert_element_type": _CONVERT,
    "bitcast": _BITCAST,
}
