"""Kernel data: what the C-dialect targets (C, and CUDA C++) render their kernels from.

This module turns the neutral schedule (fjit/compiler/schedule.py) into plain data (dicts
and lists) for the templates: index expressions as small trees, statements with names and
types, loops with their roles.  The C syntax is in the templates (templates/c/kernel.j2's
statement macros and scalar.h.j2's helpers, shared by both targets), in ops.py (element-wise
ops) and in the type and literal tables here; each target maps the loops' roles (parallel,
simd: what a loop allows) to its own execution (OpenMP threads and vectors in C, grids and
blocks in CUDA) in its own renderer (targets/c/render.py, targets/cuda/render.py).
"""
from __future__ import annotations

import functools
import math
import os
import struct

import jinja2
import numpy as np

from .... import dtypes
from ....lax import indexexpr as ix
from ....lax.reduce import MONOIDS
from ... import ranges, scalar
from ...dynamic import is_dynamic, twin
from ...schedule import (Accumulate, Fill, Let, PackStore, ReduceStmt, Store, SubNest,
                        walk_statements)
from .ops import C_OPS

_STORAGE = {"bool": "uint8_t", "i8": "int8_t", "i16": "int16_t", "i32": "int32_t",
            "i64": "int64_t", "u8": "uint8_t", "u16": "uint16_t", "u32": "uint32_t",
            "u64": "uint64_t", "f16": "_Float16", "bf16": "fj_bf16", "f32": "float",
            "f64": "double"}
_COMPUTE_SHORT = {"f16": "f32", "bf16": "f32"}
_COMPUTE_TYPE = {"bool": "int", "f16": "float", "bf16": "float"}

FLOATS = [("f32", "float", "f"), ("f64", "double", "")]
INTS = [("i8", "int8_t", "uint8_t", 8, True), ("i16", "int16_t", "uint16_t", 16, True),
        ("i32", "int32_t", "uint32_t", 32, True), ("i64", "int64_t", "uint64_t", 64, True),
        ("u8", "uint8_t", "uint8_t", 8, False), ("u16", "uint16_t", "uint16_t", 16, False),
        ("u32", "uint32_t", "uint32_t", 32, False), ("u64", "uint64_t", "uint64_t", 64, False)]
INT_MIN = {"i8": "INT8_MIN", "i16": "INT16_MIN", "i32": "INT32_MIN", "i64": "INT64_MIN",
           "u8": "0", "u16": "0", "u32": "0", "u64": "0"}
INT_MAX = {"i8": "INT8_MAX", "i16": "INT16_MAX", "i32": "INT32_MAX", "i64": "INT64_MAX",
           "u8": "UINT8_MAX", "u16": "UINT16_MAX", "u32": "UINT32_MAX", "u64": "UINT64_MAX"}


def template_dir() -> str:
    """templates/ ships inside the wheel as fjit/templates; in a checkout it is at the top."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))   # fjit/
    for candidate in (os.path.join(here, "templates"),
                      os.path.join(os.path.dirname(here), "templates")):
        if os.path.isdir(os.path.join(candidate, "c")):
            return candidate
    raise FileNotFoundError("fjit's code templates are missing (templates/c)")


@functools.lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir()),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.globals["op"] = _render_op
    return env


@functools.lru_cache(maxsize=None)
def _op_template(name):
    return environment().from_string(C_OPS[name])


def _render_op(name, args, types):
    names = dict(zip("xyz", args))
    return _op_template(name).render(**names, **types)


def short(dtype) -> str:
    return dtypes.short_name(np.dtype(dtype))


def compute_short(dtype) -> str:
    s = short(dtype)
    return _COMPUTE_SHORT.get(s, s)


def compute_type(dtype) -> str:
    s = short(dtype)
    return _COMPUTE_TYPE.get(s, _STORAGE[s])


def kind_of(dtype) -> str:
    return dtypes.kind_name(np.dtype(dtype))


def _literal(expr) -> bool:
    """Is `expr` a constant that may be written as a literal (one that does not vary with the
    sizes of the call)?"""
    return isinstance(expr, ix.Const) and not is_dynamic(expr.value)


def literal(value, dtype) -> dict:
    """A constant for the template's literal macro."""
    dtype = np.dtype(dtype)
    if dtypes.is_float(dtype):
        value = float(value)
        if math.isnan(value):
            return {"kind": "nan"}
        if math.isinf(value):
            return {"kind": "inf" if value > 0 else "-inf"}
        return {"kind": "float", "text": repr(value), "f32": compute_short(dtype) == "f32"}
    value = int(value)
    s = short(dtype)
    if s == "i64" and value == -(1 << 63):
        return {"kind": "int", "text": "INT64_MIN", "ctype": "int64_t"}
    suffix = "ULL" if s.startswith("u") else "LL"
    return {"kind": "int", "text": f"{value}{suffix}", "ctype": compute_type(dtype)}


def _exact_product(body, value):
    """A float16/bfloat16 product summed by its reduction (a contraction: einsum, matmul)
    stays in float: like XLA's dots, float32 products accumulated in float32, one rounding
    of the sum."""
    for s in body:
        if s["k"] == "let" and s["name"] == value and s["value"]["k"] == "op" \
                and s["value"]["row"] == "mul":
            s["value"]["exact"] = True


class KernelData:
    """Turns one scheduled kernel into template data.

    Names are local to the kernel: its buffers are `a0, a1, ...` (its arguments, in the
    order of `sk.buffers`) and its values are numbered from 1 within it.  So two kernels that
    compute the same thing on different buffers render alike, and the program defines that
    function once (`render_program`)."""

    def __init__(self, plan):
        self.plan = plan
        self.args = {}    # buffer id -> local name, for the kernel being rendered
        self.names = {}   # the schedule's value name -> local name
        self.ints = []    # its size parameters' values (N[k], named n<k> in the kernel)
        self.simd_axes = set()  # its vectorized loops' axes
        self.literal_depth = 0  # > 0 while rendering what a constant divides
        self.floats = []  # its floating-point constants' values (F[k])
        self.int_names, self.float_names = {}, {}   # value -> its parameter

    def size(self, value, scope=None) -> str:
        """An integer of the kernel's index arithmetic (an extent, a stride, an offset, a
        bound) as a parameter, so that one function serves every call that differs only in
        sizes.  0 and 1 stay literals: they shape the code (a term that vanishes, a
        multiplication that is not there, a loop of one iteration)."""
        if value in (0, 1) and not is_dynamic(value):
            return f"{value}LL"
        return self._int_parameter(value, scope)

    def gemm_size(self, value) -> str:
        """A GEMM's size, stride or count: a parameter of its own even where values are
        equal (a library call gains nothing from knowing it, and a batch size equal to a
        width by chance would change the code)."""
        return self._own_parameter(value)

    def _own_parameter(self, value) -> str:
        if value in (0, 1) and not is_dynamic(value):
            return f"{value}LL"
        self.ints.append(int(value))
        return f"n{len(self.ints) - 1}"

    def _int_parameter(self, value, scope) -> str:
        """One parameter per distinct value within a scope (the buffer an index locates, the
        loop extents, the thread flags): the compiler then sees that two accesses of one
        buffer with the same strides touch the same element (a buffer written and read back
        in one loop nest was not vectorized when each stride was a parameter of its own).
        Which values are equal is part of the kernel's code, so calls share a function
        only where they agree on it; scopes keep that to values of one role (a batch size
        equal to a width by chance changed the code), and loop extents share nothing."""
        key = (scope, int(value), twin(value))   # a size that varies between calls shares
        name = self.int_names.get(key)          # only with one that varies alike
        if name is None:
            self.ints.append(int(value))
            name = self.int_names[key] = f"n{len(self.ints) - 1}"
        return name

    def _extent_parameter(self, value) -> str:
        """A rolled loop's extent: a parameter of its own, not shared with equal extents.
        Sharing them made the code depend on which sizes happen to be equal: a batch of 8,
        16 or 32 equals a CIFAR ResNet's feature-map widths, and 38 of ResNet-18's 104
        functions changed from batch 8 to batch 16."""
        return self._own_parameter(value)

    def flag(self, value: bool) -> str:
        """A yes/no decision taken per call (whether a loop runs on threads) as a parameter."""
        self.ints.append(int(bool(value)))  # a parameter of its own: which loops happen to
        return f"n{len(self.ints) - 1}"     # agree on it is no part of the code

    def constant(self, value, dtype) -> dict:
        """A constant of the computation: a finite float other than 0 and 1 is a parameter
        (a learning rate, a mean's divisor), anything else a literal."""
        dynamic = is_dynamic(value)   # a literal that varies with the sizes: a parameter
        if dynamic and not dtypes.is_float(dtype) and -2**63 <= value < 2**63:
            return {"kind": "param", "text": self._own_parameter(value),
                    "ctype": compute_type(dtype)}
        c = literal(value, dtype)
        if c["kind"] == "float" and (dynamic or float(value) not in (0.0, 1.0)):
            key = struct.pack("<dd", float(value), float(twin(value)))   # by bits: -0.0 is
            # not 0.0
            text = self.float_names.get(key)
            if text is None:
                self.floats.append(float(value))
                text = self.float_names[key] = f"F[{len(self.floats) - 1}]"
            return {"kind": "param", "text": text, "ctype": compute_type(dtype)}
        return c

    def buffer_name(self, buffer_id):
        return self.args[buffer_id]

    def local(self, name):
        """The schedule's (Program-wide) value name `name` as a name local to this kernel,
        keeping its prefix: t705 -> t3, acc706 -> acc4."""
        if not name:
            return name
        renamed = self.names.get(name)
        if renamed is None:
            prefix = name.rstrip("0123456789")
            renamed = self.names[name] = f"{prefix}{len(self.names) + 1}"
        return renamed

    # index expressions -----------------------------------------------------------------------
    def index(self, expr, extents, scope=None):
        """An index expression as template data.  `scope` is the buffer whose element it
        locates (None: a condition, a position): equal constants within one scope are one
        parameter (see `size`)."""
        if isinstance(expr, ix.Idx):
            return {"k": "var", "name": f"i{expr.axis}"}
        if isinstance(expr, ix.Const):
            if self.literal_depth and not is_dynamic(expr.value):
                return {"k": "const", "v": f"{expr.value}LL"}
            return {"k": "const", "v": self.size(expr.value, scope)}
        if isinstance(expr, ix.Where):
            return {"k": "select", "c": self.index(expr.cond, extents, scope),
                    "a": self.index(expr.a, extents, scope),
                    "b": self.index(expr.b, extents, scope)}
        if isinstance(expr, ix.Load):
            buf = self.plan.buffers[expr.operand]
            positions = [p if ranges.within(p, n, extents) else
                         ix.maximum(ix.minimum(p, n - 1), 0)
                         for p, n in zip(expr.positions, buf.shape)]
            at = ix.ZERO
            stride = 1
            for p, n in reversed(list(zip(positions, buf.shape))):
                at = at + p * stride
                stride *= n
            return {"k": "load", "buf": self.buffer_name(expr.operand),
                    "at": self.index(at, extents, expr.operand)}
        op = expr.op
        if op == "mul" and _literal(expr.a) and _mentions(expr.b, self.simd_axes):
            a = {"k": "const", "v": f"{expr.a.value}LL"}   # a vector loop's stride: literal
        elif op in ("floordiv", "mod") and isinstance(expr.b, ix.Const):
            # what is divided keeps its constants (a stride-2 window's offsets): the
            # compiler folds them into the division (LSGAN's transposed-convolution
            # gradients took 1.4x as long with them as parameters)
            self.literal_depth += 1
            a = self.index(expr.a, extents, scope)
            self.literal_depth -= 1
        else:
            a = self.index(expr.a, extents, scope)
        if op in ("floordiv", "mod") and _literal(expr.b):
            # a constant divisor stays a literal: the compiler divides by it with a multiply
            b = {"k": "const", "v": f"{expr.b.value}LL"}
        elif op == "mul" and _literal(expr.b) and _mentions(expr.a, self.simd_axes):
            # so does the stride of a vectorized loop's index: with it known the compiler
            # loads contiguous or strided vectors; unknown, it gathers element by element
            b = {"k": "const", "v": f"{expr.b.value}LL"}
        else:
            b = self.index(expr.b, extents, scope)
        if op in ("floordiv", "mod"):
            nonneg = ranges.bounds(expr.a, extents)[0] >= 0 and isinstance(expr.b, ix.Const) \
                and expr.b.value > 0
            if nonneg:
                return {"k": "bin", "op": "/" if op == "floordiv" else "%", "a": a, "b": b}
            return {"k": "call", "f": "fj_floordiv" if op == "floordiv" else "fj_floormod",
                    "a": a, "b": b}
        if op in ("min", "max"):
            return {"k": "call", "f": "fj_i" + op, "a": a, "b": b}
        symbol = {"add": "+", "sub": "-", "mul": "*", "lt": "<", "le": "<=", "gt": ">",
                  "ge": ">=", "eq": "==", "ne": "!=", "and": "&&", "or": "||"}[op]
        return {"k": "bin", "op": symbol, "a": a, "b": b}

    # statements ------------------------------------------------------------------------------
    def value(self, node, args, extents):
        kind = node.kind
        if kind == "load":
            buf = self.plan.buffers[node.data[0]]
            at = flat_index_of(node.data[1], buf.shape)
            cond = scalar.load_condition(node)
            return {"k": "load", "buf": self.buffer_name(node.data[0]),
                    "at": self.index(at, extents, node.data[0]), "st": short(buf.dtype),
                    "cond": None if cond is None else self.index(cond, extents)}
        if kind == "const":
            return {"k": "const", "c": self.constant(node.data, node.dtype)}
        if kind == "op":
            name, params = node.data
            operand = node.args[0].dtype if node.args else node.dtype
            types = {"t": compute_type(node.dtype), "s": compute_short(operand),
                     "r": compute_short(node.dtype), "sf": short(operand),
                     "st": short(node.dtype), "tf": _STORAGE[short(operand)],
                     "tt": _STORAGE[short(node.dtype)], "kf": kind_of(operand),
                     "p": dict(params)}
            return {"k": "op", "row": name, "args": [self.local(a) for a in args],
                    "types": types, "exact": False}
        if kind == "iota":
            return {"k": "iota", "ctype": compute_type(node.dtype),
                    "at": self.index(node.data, extents)}
        if kind == "guard":
            return {"k": "guard", "cond": self.index(node.data, extents),
                    "args": [self.local(a) for a in args]}
        raise NotImplementedError(kind)

    def statements(self, body, extents):
        out = []
        for stmt in body:
            if isinstance(stmt, Let):
                value = self.value(stmt.node, stmt.args, extents)
                out.append({"k": "let", "name": self.local(stmt.name),
                            "ctype": compute_type(stmt.node.dtype), "value": value})
            elif isinstance(stmt, ReduceStmt):
                out.append(self.reduce(stmt, extents))
            elif isinstance(stmt, Store):
                buf = self.plan.buffers[stmt.buffer]
                out.append({"k": "store", "buf": self.buffer_name(stmt.buffer),
                            "at": self.index(stmt.index, extents, stmt.buffer),
                            "value": self.local(stmt.value), "st": short(buf.dtype)})
            elif isinstance(stmt, PackStore):
                out.append({"k": "pack", "value": self.local(stmt.value)})
            elif isinstance(stmt, SubNest):
                out.append(self.subnest(stmt, extents))
            elif isinstance(stmt, Accumulate):
                buf = self.plan.buffers[stmt.buffer]
                out.append({"k": "accumulate", "buf": self.buffer_name(stmt.buffer),
                            "at": self.index(stmt.index, extents, stmt.buffer),
                            "monoid": stmt.monoid,
                            "s": compute_short(buf.dtype), "value": self.local(stmt.value),
                            "st": short(buf.dtype),
                            "guard": None if stmt.guard is None else
                            self.index(stmt.guard, extents)})
        return out

    def subnest(self, nest, extents):
        inner = dict(extents)
        inner.update({l.axis: l.extent for l in nest.loops})
        return {"k": "sub", "loops": [self.loop(l, None) for l in nest.loops],
                "levels": [self.statements(level, inner) for level in nest.levels]}

    def reduce(self, stmt, extents):
        extents = dict(extents)
        for loop in stmt.loops:
            extents[loop.axis] = loop.extent
        name, position = self.local(stmt.name), self.local(stmt.index)
        body = self.statements(stmt.body, extents)
        value = self.local(stmt.value)
        node = stmt.node
        if node.kind == "reduce" and node.data[0] == "sum":
            _exact_product(body, value)
        if node.kind == "argreduce":
            kind = node.data[0]
            value_dtype = node.args[0].dtype
            init = dtypes.lowest(value_dtype) if kind == "argmax" else dtypes.highest(value_dtype)
            body.append({"k": "argbest", "kind": kind, "value": value, "best": name,
                         "arg": position, "var": f"i{stmt.loops[0].axis}",
                         "float": dtypes.is_float(value_dtype)})
            return {"k": "reduce", "arg": position, "best": name, "rounds": None,
                    "ctype_value": compute_type(value_dtype),
                    "best_init": literal(init, value_dtype),
                    "loops": [self.loop(l, None) for l in stmt.loops], "body": body}
        monoid = node.data[0]
        identity = MONOIDS[monoid].identity(node.dtype)
        s = compute_short(node.dtype)
        body.append({"k": "combine", "acc": name, "monoid": monoid, "s": s, "value": value})
        clause = _reduction_clause(monoid, s, name)
        loops = [self.loop(l, clause if k == len(stmt.loops) - 1 else None)
                 for k, l in enumerate(stmt.loops)]
        # a float16/bfloat16 sum is accumulated in float and rounded once, here: its readers in
        # this kernel see the value a stored float16 result would have
        rounds = short(node.dtype) if short(node.dtype) != s else None
        return {"k": "reduce", "arg": None, "name": name, "ctype": compute_type(node.dtype),
                "rounds": rounds,
                "identity": literal(identity, node.dtype), "loops": loops, "body": body}

    def loop(self, loop, clause):
        # an unrolled loop keeps its extent (the unroll pragma names it), and so does a
        # vectorized one (known, its trip count needs no remainder loops when the vector
        # width divides it, and those cost compile time and speed) and a short one (a 4x4
        # window: the compiler unrolls it and folds its index arithmetic; with a runtime
        # extent LSGAN's transposed-convolution gradients took 1.3x as long)
        literal = (loop.unroll or loop.simd or loop.extent <= SHORT_LOOP) \
            and not is_dynamic(loop.extent)
        extent = f"{loop.extent}LL" if literal else self._extent_parameter(loop.extent)
        var = f"i{loop.axis}"
        start, stop, step = "0", extent, 1
        if loop.block:
            var, step = f"i{loop.axis}b", loop.block
        elif loop.tile:
            start, stop = f"i{loop.axis}b", f"i{loop.axis}b + {loop.tile}"
            if loop.extent % loop.tile or is_dynamic(loop.extent):
                stop = f"({stop} < {extent} ? {stop} : {extent})"
        return {"var": var, "extent": extent, "start": start, "stop": stop, "step": step,
                "parallel": loop.parallel, "simd": loop.simd,
                "threads": self.flag(loop.threads) if loop.parallel else None,
                "reduction": clause if loop.simd else None,
                "unroll": loop.extent if loop.unroll else None}

    def producer(self, nest):
        """A GEMM's B producer: statements before its loops, per row (i0) and per element
        (i1); the template writes the loops over the block the packing asks for."""
        return self.subnest(nest, {})

    def kernel(self, sk):
        buffers = []
        written = set()
        if sk.kind == "gemm":
            written.add(sk.gemm.c)
        for nest in sk.nests:
            for stmt in walk_statements(nest.levels):
                if isinstance(stmt, (Store, Accumulate)):
                    written.add(stmt.buffer)
            for fill in nest.prologue:
                written.add(fill.buffer)
        self.args, self.names, self.ints, self.floats = {}, {}, [], []
        self.int_names, self.float_names = {}, {}
        self.simd_axes = {l.axis for l in _loops(sk) if l.simd or l.unroll}
        for k, b in enumerate(sk.buffers):
            buf = self.plan.buffers[b]
            self.args[b] = f"a{k}"
            buffers.append({"id": b, "name": f"a{k}", "ctype": _STORAGE[short(buf.dtype)],
                            "const": "" if b in written else "const "})
        data = {"name": sk.name, "kind": sk.kind, "buffers": buffers, "comment": sk.comment,
                "work": sk.work, "ints": self.ints, "floats": self.floats,
                "sensitive": _vectorisation_sensitive(sk)}
        if sk.control is not None:
            data.update(_control_data(sk, self.plan))
            data["buffers"] = []
            return data
        if sk.kind == "gemm":
            g = sk.gemm
            size = self.gemm_size
            data.update(batch=size(g.batch), m=size(g.m), n=size(g.n), k=size(g.k),
                        a=self.buffer_name(g.a),
                        b="0" if g.b is None else self.buffer_name(g.b), c=self.buffer_name(g.c),
                        producer=self.producer(sk.nests[0]) if sk.nests else None,
                        ta=int(g.trans_a), tb=int(g.trans_b),
                        lda=size(g.m if g.trans_a else g.k), ldb=size(g.k if g.trans_b else g.n),
                        a_batch=size(g.a_batch), b_batch=size(g.b_batch),
                        c_batch=size(g.m * g.n), suffix=compute_short(g.dtype))
            return data
        nests = []
        for nest in sk.nests:
            fills = [{"buf": self.buffer_name(f.buffer), "size": self.size(f.size, f.buffer),
                      "value": literal(f.value, f.dtype), "st": short(f.dtype)}
                     for f in nest.prologue if isinstance(f, Fill)]
            data_nest = self.subnest(nest, {})
            data_nest["fills"] = fills
            nests.append(data_nest)
        data["nests"] = nests
        return data


def _loops(sk):
    """Every loop of a scheduled kernel: its nests', their reductions' and sub-nests'."""
    for nest in sk.nests:
        yield from nest.loops
        for stmt in walk_statements(nest.levels):
            if isinstance(stmt, (ReduceStmt, SubNest)):
                yield from stmt.loops


def _vectorisation_sensitive(sk) -> bool:
    """Do the kernel's results depend on which of its loops the C compiler vectorises?  A
    libm call does (the vector and scalar variants round differently), and so does an
    `omp simd` reduction (vector lanes add in another order).  Which loops vectorise
    differs between optimisation levels (-O3 unrolls short inner loops first), so the
    quick tier builds such kernels exactly as the optimised one does."""
    for nest in sk.nests:
        for stmt in walk_statements(nest.levels):
            node = getattr(stmt, "node", None)
            if node is not None and scalar.is_libm_call(node):
                return True
            if isinstance(stmt, ReduceStmt) and any(l.simd for l in stmt.loops):
                return True
    return False


def _mentions(expr, axes) -> bool:
    """Does index expression `expr` use the index of one of `axes`?"""
    if isinstance(expr, ix.Idx):
        return expr.axis in axes
    return any(_mentions(child, axes) for child in expr.children())


def _control_data(sk, plan):
    """What the template needs to render a scan, while or cond (see control.py); its calls
    of its body's kernels are filled in by `render_program`."""
    kernel = sk.control
    calls = [[k.name for k in part] for part in sk.parts]

    def nbytes(b):
        buf = plan.buffers[b]
        return f"{buf.size * buf.dtype.itemsize}LL"

    def copy_data(copies):
        out = []
        for (kind, where), source, n in copies:
            dst = f"nxt{where}" if kind == "carry" else f"(char *)B[{where}] + i * {n}LL"
            out.append({"dst": dst, "src": source, "n": f"{n}LL"})
        return out

    if sk.kind == "scan":
        carries = [{"k": k, "view_in": vi, "view_out": vo, "init": init, "first": first,
                    "second": second, "nbytes": nbytes(first)}
                   for k, (vi, vo, init, first, second) in enumerate(kernel.carries)]
        return {"length": kernel.length, "reverse": kernel.reverse, "carries": carries,
                "unroll": kernel.unroll,
                "xs_binds": kernel.xs_binds, "ys_binds": kernel.ys_binds,
                "copies": copy_data(kernel.copies), "calls": calls[0]}
    if sk.kind == "while":
        carries = [{"k": k, "cond_view": cv, "view_in": vi, "view_out": vo, "init": init,
                    "first": first, "second": second, "nbytes": nbytes(first)}
                   for k, (cv, vi, vo, init, first, second) in enumerate(kernel.carries)]
        kind, pred = kernel.pred
        pred = (f"((const uint8_t *)B[{pred}])[0]" if kind == "buffer"
                else ("1" if bool(pred) else "0"))
        return {"carries": carries, "pred": pred, "copies": copy_data(kernel.copies),
                "cond_calls": calls[0], "calls": calls[1]}
    branches = []
    for (kernels, binds, copies), names in zip(kernel.branches, calls):
        branches.append({"binds": binds, "calls": names,
                         "copies": [{"dst": f"B[{dst}]", "src": src, "n": f"{n}LL"}
                                    for dst, src, n in copies]})
    return {"index": kernel.index, "branches": branches}


def _reduction_clause(monoid, s, acc):
    """The `omp simd reduction` clause: its private copies start at the clause's identity, so
    it must match the combine (bool max/min are or/and; float max/min propagate NaN)."""
    if s == "bool" and monoid in ("max", "min"):
        return ("|" if monoid == "max" else "&", acc)
    if monoid in ("max", "min"):
        name = f"fj{monoid}_{s}" if s in ("f32", "f64") else monoid
        return (name, acc)
    return ({"sum": "+", "prod": "*", "and": "&", "or": "|"}[monoid], acc)


def flat_index_of(positions, shape):
    at, stride = ix.ZERO, 1
    for p, n in reversed(list(zip(positions, shape))):
        if n != 1:
            at = at + p * stride
        stride *= n
    return at


def all_kernels(scheduled):
    """Every scheduled kernel, sub-Programs' kernels before the loops or switches that call
    them (the order C needs)."""
    for sk in scheduled:
        if sk.control is not None:
            yield from all_kernels(sk.body)
        yield sk


def _identity(data) -> str:
    """What a kernel's code depends on: its template data without its name, comment and
    buffer ids (which buffers it gets is the caller's business)."""
    skip = {"name", "comment", "work", "ints", "floats", "sensitive", "weight", "also"}
    return repr(sorted((k, v if k != "buffers" else
                        [{f: x for f, x in b.items() if f != "id"} for b in v])
                       for k, v in data.items() if k not in skip))


# Loops of at most this many iterations keep their extent in the source (see KernelData.loop).
SHORT_LOOP = 4


def unique_kernels(renderer, scheduled, sizes, constants):
    """(the kernels to define, each once, the call of every scheduled kernel by name, and
    what each defined function computes: its identity, for counting functions not seen
    before).
    A call is the function to run, the buffer ids it is given (in its argument order) and
    where its parameters start in `sizes` and `constants` (appended to here); control
    kernels (scan, while, cond) read the program's buffer table themselves."""
    defined, by_identity, calls = [], {}, {}
    identities = []
    for sk in all_kernels(scheduled):
        data = renderer.kernel(sk)
        if data["kind"] in ("scan", "while", "cond"):
            for key in ("calls", "cond_calls"):
                if key in data:
                    data[key] = [calls[c] for c in data[key]]
            for branch in data.get("branches", ()):
                branch["calls"] = [calls[c] for c in branch["calls"]]
            data["also"], data["weight"] = [], len(_identity(data))
            defined.append(data)
            calls[sk.name] = {"fn": sk.name, "args": None}
            continue
        key = _identity(data)
        first = by_identity.get(key)
        if first is None:
            first = by_identity[key] = data
            data["also"], data["weight"] = [], len(key)   # split_units' measure
            defined.append(data)
            identities.append(key)
        else:
            first["also"].append(sk.name)
        calls[sk.name] = {"fn": first["name"], "args": [b["id"] for b in data["buffers"]],
                          "n": len(sizes) if data["ints"] else None,
                          "f": len(constants) if data["floats"] else None}
        sizes.extend(data["ints"])
        constants.extend(data["floats"])
    return defined, calls, identities


def _types_used(plan, scheduled) -> set:
    used = {compute_short(b.dtype) for b in plan.buffers}
    for sk in all_kernels(scheduled):
        for nest in sk.nests:
            for stmt in walk_statements(nest.levels):
                node = getattr(stmt, "node", None)
                if node is not None:
                    used.add(compute_short(node.dtype))
                    used.update(compute_short(a.dtype) for a in node.args)
    return used
