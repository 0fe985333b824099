"""Fuzz programs as data: a small expression tree that can be both evaluated against
fjit.numpy and printed as Python source, so a failing program is reproduced exactly by the
script it prints (nothing is pasted as text and parsed back).

A `FuzzProgram` is a function `f(x0, x1, ...)` whose body is a list of `v_k = <expr>`
statements and which returns a tuple of named values.  Expressions are:

    Ref("x0")                         a named value
    Lit(value)                        a Python literal (int, float, bool, None, tuple, slice)
    DType("float32")                  jnp.float32
    Const(ndarray)                    np.array([...], dtype=...) (index arrays)
    Call("jnp.sum", args, kwargs)     a function of jnp / lax / nn / np
    Method(obj, "reshape", args, kw)  obj.reshape(...)
    BinOp("+", a, b) / UnOp("-", a)   Python operators
    Index(obj, key)                   obj[key]
    At(obj, key, "add", value)        obj.at[key].add(value)
    Tup(items)                        (a, b)
    Lambda(params, stmts, result)     a nested def (control-flow bodies), closing over the
                                      enclosing values
"""
from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Ref:
    name: str


@dataclasses.dataclass(frozen=True)
class Lit:
    value: Any


@dataclasses.dataclass(frozen=True)
class DType:
    name: str


@dataclasses.dataclass(frozen=True, eq=False)
class Const:
    value: np.ndarray


@dataclasses.dataclass(frozen=True)
class Call:
    func: str
    args: tuple = ()
    kwargs: tuple = ()  # ((name, expr), ...)


@dataclasses.dataclass(frozen=True)
class Method:
    obj: Any
    name: str
    args: tuple = ()
    kwargs: tuple = ()


@dataclasses.dataclass(frozen=True)
class BinOp:
    op: str
    a: Any
    b: Any


@dataclasses.dataclass(frozen=True)
class UnOp:
    op: str
    a: Any


@dataclasses.dataclass(frozen=True)
class Index:
    obj: Any
    key: Any  # an expr, or a tuple of exprs / Lit(slice) / Lit(None) / Lit(Ellipsis)


@dataclasses.dataclass(frozen=True)
class At:
    obj: Any
    key: Any
    method: str
    value: Any


@dataclasses.dataclass(frozen=True)
class Tup:
    items: tuple


@dataclasses.dataclass(frozen=True)
class Lambda:
    params: tuple  # names
    stmts: tuple   # ((name, expr), ...)
    result: Any


@dataclasses.dataclass
class FuzzProgram:
    """`def f(*inputs): <stmts>; return outputs`, with concrete input values."""
    inputs: list          # [(name, np.ndarray)]
    stmts: list           # [(name, expr)]
    outputs: list         # [name]
    x64: bool = False
    seed: Any = None      # what generated it, for the record

    def copy(self, **changes):
        fields = dict(inputs=list(self.inputs), stmts=list(self.stmts),
                      outputs=list(self.outputs), x64=self.x64, seed=self.seed)
        fields.update(changes)
        return FuzzProgram(**fields)

    def arg_values(self):
        return [v for _, v in self.inputs]


_BINOPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
           "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
           "==": operator.eq, "!=": operator.ne, "&": operator.and_, "|": operator.or_,
           "^": operator.xor}
_UNOPS = {"-": operator.neg, "~": operator.invert, "+": operator.pos}


def namespaces():
    """What the names in `Call.func` resolve to (the same names the printed script imports)."""
    import fjit
    import fjit.numpy as jnp
    from fjit import lax, nn
    return {"jnp": jnp, "lax": lax, "nn": nn, "np": np, "fjit": fjit}


def _jnp_name(dtype_name):
    return "bool_" if dtype_name == "bool" else dtype_name


def _resolve(func, ns):
    head, *rest = func.split(".")
    obj = ns[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


# --- evaluation -------------------------------------------------------------------------------

def evaluate(e, env, ns):
    """The value of expression `e` with names bound in `env`."""
    t = type(e)
    if t is Ref:
        return env[e.name]
    if t is Lit:
        return e.value
    if t is DType:
        return getattr(ns["jnp"], _jnp_name(e.name))
    if t is Const:
        return e.value
    if t is Call:
        return _resolve(e.func, ns)(*[evaluate(a, env, ns) for a in e.args],
                                    **{k: evaluate(v, env, ns) for k, v in e.kwargs})
    if t is Method:
        return getattr(evaluate(e.obj, env, ns), e.name)(
            *[evaluate(a, env, ns) for a in e.args],
            **{k: evaluate(v, env, ns) for k, v in e.kwargs})
    if t is BinOp:
        return _BINOPS[e.op](evaluate(e.a, env, ns), evaluate(e.b, env, ns))
    if t is UnOp:
        return _UNOPS[e.op](evaluate(e.a, env, ns))
    if t is Index:
        return evaluate(e.obj, env, ns)[_eval_key(e.key, env, ns)]
    if t is At:
        ref = evaluate(e.obj, env, ns).at[_eval_key(e.key, env, ns)]
        return getattr(ref, e.method)(evaluate(e.value, env, ns))
    if t is Tup:
        return tuple(evaluate(i, env, ns) for i in e.items)
    if t is Lambda:
        def body(*args):
            inner = dict(env)
            inner.update(zip(e.params, args))
            for name, stmt in e.stmts:
                inner[name] = evaluate(stmt, inner, ns)
            return evaluate(e.result, inner, ns)
        return body
    raise TypeError(f"not a fuzz expression: {e!r}")


def _eval_key(key, env, ns):
    if isinstance(key, tuple):
        return tuple(evaluate(k, env, ns) for k in key)
    return evaluate(key, env, ns)


def run_stmts(stmts, env, ns):
    for name, e in stmts:
        env[name] = evaluate(e, env, ns)
    return env


def as_function(prog: FuzzProgram):
    """The program as a Python function of its inputs returning a tuple of its outputs."""
    ns = namespaces()
    names = [n for n, _ in prog.inputs]
    stmts, outputs = tuple(prog.stmts), tuple(prog.outputs)

    def f(*args):
        env = run_stmts(stmts, dict(zip(names, args)), ns)
        return tuple(env[o] for o in outputs)
    return f


# --- printing ---------------------------------------------------------------------------------

def _float_repr(v):
    if math.isnan(v):
        return "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def array_source(a: np.ndarray) -> str:
    """`a` as an expression of np and jnp (jnp only for bfloat16) that rebuilds it exactly."""
    dt = a.dtype.name
    dtype = {"bfloat16": "jnp.bfloat16", "bool": "np.bool_"}.get(dt, f"np.{dt}")
    if a.size == 0:
        return f"np.zeros({tuple(a.shape)!r}, dtype={dtype})"
    flat = a.reshape(-1)
    if a.size > 1 and np.array_equal(flat, np.full_like(flat, flat[0]), equal_nan=a.dtype.kind == "f"):
        return f"np.full({tuple(a.shape)!r}, {_scalar_source(flat[0])}, dtype={dtype})"
    if a.dtype.kind == "f" or dt == "bfloat16":
        items = ", ".join(_float_repr(float(v)) for v in flat)
    elif a.dtype.kind == "b":
        items = ", ".join(repr(bool(v)) for v in flat)
    else:
        items = ", ".join(repr(int(v)) for v in flat)
    src = f"np.array([{items}], dtype={dtype})"
    return src if a.ndim == 1 else f"{src}.reshape({tuple(a.shape)!r})"


def _scalar_source(v):
    if v.dtype.kind == "b":
        return repr(bool(v))
    if v.dtype.kind in "iu":
        return repr(int(v))
    return _float_repr(float(v))


def _lit_source(v):
    if isinstance(v, slice):
        parts = ["" if v.start is None else repr(v.start), "" if v.stop is None else repr(v.stop)]
        return ":".join(parts) + ("" if v.step is None else f":{v.step!r}")
    if v is Ellipsis:
        return "..."
    if isinstance(v, float):
        return _float_repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_lit_source(i) for i in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_lit_source(i) for i in v) + "]"
    return repr(v)


class Printer:
    """Renders expressions; a Lambda becomes a `def` emitted before the statement using it."""

    def __init__(self):
        self.n_defs = 0

    def expr(self, e, pre, indent) -> str:
        t = type(e)
        if t is Ref:
            return e.name
        if t is Lit:
            v = e.value
            if isinstance(v, slice):  # a slice outside of an index: build it
                return f"slice({v.start!r}, {v.stop!r}, {v.step!r})"
            return _lit_source(v)
        if t is DType:
            return f"jnp.{_jnp_name(e.name)}"
        if t is Const:
            return array_source(e.value)
        if t is Call:
            return f"{e.func}({self._args(e.args, e.kwargs, pre, indent)})"
        if t is Method:
            return (f"{self._atom(e.obj, pre, indent)}.{e.name}"
                    f"({self._args(e.args, e.kwargs, pre, indent)})")
        if t is BinOp:
            return f"{self._atom(e.a, pre, indent)} {e.op} {self._atom(e.b, pre, indent)}"
        if t is UnOp:
            return f"{e.op}{self._atom(e.a, pre, indent)}"
        if t is Index:
            return f"{self._atom(e.obj, pre, indent)}[{self._key(e.key, pre, indent)}]"
        if t is At:
            return (f"{self._atom(e.obj, pre, indent)}.at[{self._key(e.key, pre, indent)}]"
                    f".{e.method}({self.expr(e.value, pre, indent)})")
        if t is Tup:
            items = [self.expr(i, pre, indent) for i in e.items]
            return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
        if t is Lambda:
            name = f"fn{self.n_defs}"
            self.n_defs += 1
            body = []
            lines = [f"{indent}def {name}({', '.join(e.params)}):"]
            for stmt_name, stmt in e.stmts:
                inner_pre = []
                src = self.expr(stmt, inner_pre, indent + "    ")
                body += inner_pre + [f"{indent}    {stmt_name} = {src}"]
            inner_pre = []
            res = self.expr(e.result, inner_pre, indent + "    ")
            body += inner_pre + [f"{indent}    return {res}"]
            pre.extend(lines + body)
            return name
        raise TypeError(f"not a fuzz expression: {e!r}")

    def _atom(self, e, pre, indent):
        src = self.expr(e, pre, indent)
        if type(e) in (BinOp, UnOp) or (type(e) is Lit and isinstance(e.value, (int, float))
                                        and e.value < 0):
            return f"({src})"
        return src

    def _args(self, args, kwargs, pre, indent):
        parts = [self.expr(a, pre, indent) for a in args]
        parts += [f"{k}={self.expr(v, pre, indent)}" for k, v in kwargs]
        return ", ".join(parts)

    def _key(self, key, pre, indent):
        if isinstance(key, tuple):
            parts = [self._key_item(k, pre, indent) for k in key]
            return ", ".join(parts) + ("," if len(parts) == 1 else "")
        return self._key_item(key, pre, indent)

    def _key_item(self, k, pre, indent):
        if type(k) is Lit and (isinstance(k.value, slice) or k.value is Ellipsis):
            return _lit_source(k.value)
        return self.expr(k, pre, indent)


def function_source(prog: FuzzProgram, name="f") -> str:
    """The program as a Python `def`."""
    p = Printer()
    lines = [f"def {name}({', '.join(n for n, _ in prog.inputs)}):"]
    for stmt_name, e in prog.stmts:
        pre = []
        src = p.expr(e, pre, "    ")
        lines += pre + [f"    {stmt_name} = {src}"]
    outs = ", ".join(prog.outputs)
    lines.append(f"    return ({outs},)" if len(prog.outputs) == 1 else f"    return ({outs})")
    return "\n".join(lines)


def walk(e):
    """Every sub-expression of `e` (Lambda bodies included), `e` first."""
    yield e
    t = type(e)
    if t in (Call, Method):
        if t is Method:
            yield from walk(e.obj)
        for a in e.args:
            yield from walk(a)
        for _, v in e.kwargs:
            yield from walk(v)
    elif t is BinOp:
        yield from walk(e.a)
        yield from walk(e.b)
    elif t is UnOp:
        yield from walk(e.a)
    elif t in (Index, At):
        yield from walk(e.obj)
        for k in (e.key if isinstance(e.key, tuple) else (e.key,)):
            yield from walk(k)
        if t is At:
            yield from walk(e.value)
    elif t is Tup:
        for i in e.items:
            yield from walk(i)
    elif t is Lambda:
        for _, s in e.stmts:
            yield from walk(s)
        yield from walk(e.result)


def substitute(e, mapping):
    """`e` with every Ref whose name is in `mapping` replaced by `mapping[name]` (an expr)."""
    t = type(e)
    if t is Ref:
        return mapping.get(e.name, e)
    if t is Call:
        return Call(e.func, tuple(substitute(a, mapping) for a in e.args),
                    tuple((k, substitute(v, mapping)) for k, v in e.kwargs))
    if t is Method:
        return Method(substitute(e.obj, mapping), e.name,
                      tuple(substitute(a, mapping) for a in e.args),
                      tuple((k, substitute(v, mapping)) for k, v in e.kwargs))
    if t is BinOp:
        return BinOp(e.op, substitute(e.a, mapping), substitute(e.b, mapping))
    if t is UnOp:
        return UnOp(e.op, substitute(e.a, mapping))
    if t is Index:
        return Index(substitute(e.obj, mapping), _sub_key(e.key, mapping))
    if t is At:
        return At(substitute(e.obj, mapping), _sub_key(e.key, mapping), e.method,
                  substitute(e.value, mapping))
    if t is Tup:
        return Tup(tuple(substitute(i, mapping) for i in e.items))
    if t is Lambda:
        inner = {k: v for k, v in mapping.items() if k not in e.params}
        return Lambda(e.params, tuple((n, substitute(s, inner)) for n, s in e.stmts),
                      substitute(e.result, inner))
    return e


def _sub_key(key, mapping):
    if isinstance(key, tuple):
        return tuple(substitute(k, mapping) for k in key)
    return substitute(key, mapping)


def refs(e):
    """Names of the values `e` reads (its Lambda parameters and locals excluded)."""
    out = set()
    t = type(e)
    if t is Ref:
        out.add(e.name)
    elif t is Lambda:
        local = set(e.params) | {n for n, _ in e.stmts}
        for _, s in e.stmts:
            out |= refs(s)
        out |= refs(e.result)
        out -= local
    else:
        for sub in _children(e):
            out |= refs(sub)
    return out


def _children(e):
    t = type(e)
    if t in (Call, Method):
        return ([e.obj] if t is Method else []) + list(e.args) + [v for _, v in e.kwargs]
    if t is BinOp:
        return [e.a, e.b]
    if t is UnOp:
        return [e.a]
    if t in (Index, At):
        keys = list(e.key) if isinstance(e.key, tuple) else [e.key]
        return [e.obj] + keys + ([e.value] if t is At else [])
    if t is Tup:
        return list(e.items)
    return []


def op_names(e):
    """Coverage labels of the operations in `e` (e.g. 'jnp.sum', '.reshape', 'op:+', 'at.add')."""
    names = []
    for sub in walk(e):
        t = type(sub)
        if t is Call:
            names.append(sub.func)
        elif t is Method:
            names.append("." + sub.name)
        elif t is BinOp:
            names.append("op:" + sub.op)
        elif t is UnOp:
            names.append("op:unary" + sub.op)
        elif t is Index:
            names.append("index")
        elif t is At:
            names.append("at." + sub.method)
    return names
