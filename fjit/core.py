"""The core: abstract values, the Program IR, primitives, and traces with their tracers.

Read it like JAX's autodidax, stackless flavour:

* A `Primitive` is bound with `prim.bind(*args, **params)`; `bind` is the only way in.  It
  hands the call to the *current* trace (one per thread, held in `_ctx`).
* A `Trace` is one interpreter: it knows its parent trace and runs its rules under it.  Each
  trace object is also the tag of its tracers: `tracer._trace is trace` says "mine".  A value
  that is not one of the current trace's tracers is a constant to it (an outer tracer or a
  concrete array).
* A `Program` is `invars`, `constvars` (with their values `consts`), `eqns` and `outvars`.
  Evaluating it (`eval_program`) binds every equation again, so whatever trace is current
  re-interprets it.
"""
from __future__ import annotations

import math
import threading
import weakref
from contextlib import contextmanager

import numpy as np

from . import dtypes
from .errors import (ConcretizationTypeError, FjitTypeError, FjitValueError, SourceInfo,
                     TracerArrayConversionError, TracerBoolConversionError,
                     TracerIntegerConversionError, UnexpectedTracerError, current_source_info,
                     source_info_override)


# --- abstract values --------------------------------------------------------------------------

def as_int(d) -> int:
    """`d` as an int, keeping a subclass of int as it is: the compiler tags sizes that vary
    between calls of a function that way (fjit/compiler/dynamic.py)."""
    return d if isinstance(d, int) and not isinstance(d, bool) else int(d)


class ShapedArray:
    """The abstract value of an array: shape, dtype and whether the dtype is weak (from a
    Python scalar, so it does not promote the arrays it meets)."""

    __slots__ = ("shape", "dtype", "weak_type", "_hash")

    def __init__(self, shape, dtype, weak_type=False):
        self.shape = tuple(as_int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)
        self._hash = hash((self.shape, self.dtype, self.weak_type))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)   # of ints: keeps the compiler's tag on a varying size

    def update(self, shape=None, dtype=None, weak_type=None):
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def strip_weak_type(self):
        return self.update(weak_type=False) if self.weak_type else self

    def __eq__(self, other):
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return self._hash

    def str_short(self):
        return f"{dtypes.short_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.str_short()}{weak})"


# --- the Program IR ---------------------------------------------------------------------------

class Var:
    """A value defined once in a Program; identity is the name (the printer picks letters)."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var<{self.aval.str_short()}@{id(self) & 0xffff:x}>"


class Literal:
    """A rank-0 constant written directly into an equation."""

    __slots__ = ("value", "aval", "_array")

    def __init__(self, value, aval: ShapedArray):
        self.value = np.asarray(value, dtype=aval.dtype)[()]
        self.aval = aval
        self._array = None

    def as_array(self):
        """The literal as a concrete array with its abstract value (weak type included), for
        re-binding equations."""
        if self._array is None:
            self._array = array.Array(np.asarray(self.value), self.aval)
        return self._array

    def __repr__(self):
        return f"Literal({self.value!r}:{self.aval.str_short()})"


class Eqn:
    """`outvars = primitive[params] invars`, with the user's source line that made it."""

    __slots__ = ("primitive", "invars", "params", "outvars", "source_info")

    def __init__(self, primitive, invars, params, outvars, source_info=None):
        self.primitive = primitive
        self.invars = list(invars)
        self.params = params
        self.outvars = list(outvars)
        self.source_info = source_info

    def __repr__(self):
        return pretty.format_eqn(self)


class Program:
    """A traced function: the jaxpr analogue.

    `consts` are the values of `constvars` (arrays the function closed over); evaluating the
    Program needs only its `invars`.  Programs compare and hash by identity, so they can be
    params of higher-order primitives; `cache` holds what backends built from them.
    """

    __slots__ = ("invars", "constvars", "consts", "eqns", "outvars", "cache", "name",
                 "_sized_like", "__weakref__")

    def __init__(self, invars, constvars, consts, eqns, outvars, name=None):
        self.invars = list(invars)
        self.constvars = list(constvars)
        self.consts = list(consts)
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self.cache = {}
        self.name = name
        self._sized_like = None
        if len(self.constvars) != len(self.consts):
            raise FjitValueError("Program needs one const value per constvar")

    @property
    def in_avals(self):
        return [v.aval for v in self.invars]

    @property
    def out_avals(self):
        return [v.aval for v in self.outvars]

    def sized_like(self) -> list:
        """Programs jit traced from the same function at other sizes of the same ranks (the
        most recent first, those still alive): the compiler keeps the sizes that differ out
        of its code decisions, so that one build serves every size (compiler/dynamic.py)."""
        alive = (ref() for ref in self._sized_like or ())
        return [p for p in alive if p is not None]

    def set_sized_like(self, others):
        self._sized_like = tuple(weakref.ref(p) for p in others) or None

    def cached(self, key, compute):
        """compute(), remembered on this Program under `key`: transformations of a
        sub-Program (its jvp, split, batched form, ...) are built once, so retracing an
        enclosing function rebuilds nothing and finds the executables built before.  Threads
        computing the same key at once all get the value stored first."""
        value = self.cache.get(key)
        if value is None:
            value = self.cache.setdefault(key, compute())
        return value

    def closure_convert(self) -> tuple["Program", list]:
        """The same Program with its constvars turned into leading invars (and their values)."""
        if not self.constvars:
            return self, []
        return (Program(self.constvars + self.invars, [], [], self.eqns, self.outvars, self.name),
                list(self.consts))

    def __str__(self):
        return pretty.format_program(self)

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle):  # IPython
        printer.text(str(self))


# --- primitives -------------------------------------------------------------------------------

class Primitive:
    """A named operation.  Families (elementwise, reduce, reindex, ...) attach `abstract_eval`
    and `impl` (the NumPy reference) here, and their transformation rules in the rule tables
    of `fjit.interpreters`."""

    def __init__(self, name: str, family: str, multiple_results: bool = False):
        self.name = name
        self.family = family
        self.multiple_results = multiple_results

    def bind(self, *args, **params):
        return (_ctx.trace or _root_trace()).process_primitive(self, args, params)

    def abstract_eval(self, *avals, **params):
        raise NotImplementedError(f"primitive {self.name} has no abstract evaluation rule")

    def impl(self, *values, **params):
        raise NotImplementedError(f"primitive {self.name} has no reference implementation")

    def format_params(self, params: dict) -> dict:
        """The params the printer shows (families drop defaults to keep Programs readable)."""
        return params

    def override_impl(self, impl=None):
        """Use `impl` as this primitive's NumPy reference until called again with None (a
        test harness's disturbance: fjit.testing.noise).  Bumps `impl_version`, so that
        executables holding bound impls (the reference backend's) bind them again."""
        global _impl_version
        if impl is None:
            self.__dict__.pop("impl", None)
        else:
            self.impl = impl
        _impl_version += 1

    def __repr__(self):
        return self.name


_impl_version = 0


def impl_version() -> int:
    """How many times a primitive's impl was overridden or restored so far."""
    return _impl_version


def type_error(opname: str, message: str, *avals, cls=FjitTypeError) -> FjitTypeError:
    """An FjitTypeError (or `cls`, a subclass) that names the operation and the operands'
    types."""
    operands = ", ".join(a.str_short() for a in avals)
    suffix = f" (operands: {operands})" if avals else ""
    return cls(f"{opname}: {message}{suffix}")


# --- traces and tracers -----------------------------------------------------------------------

class Trace:
    """One interpreter.  Subclasses implement `process_primitive`."""

    evaluates_eagerly = False   # True for the eager trace at the bottom of the stack

    def __init__(self, parent: "Trace | None"):
        self.parent = parent
        self.level = 0 if parent is None else parent.level + 1
        self.alive = True

    def process_primitive(self, primitive, args, params):
        raise NotImplementedError

    def is_ancestor_or_self(self, other: "Trace") -> bool:
        """True if `other` is this trace or one of its parents (its tracers are constants here)."""
        trace = self
        while trace is not None and trace.level >= other.level:
            if trace is other:
                return True
            trace = trace.parent
        return False

    def describe(self) -> str:
        return type(self).__name__

    def check_foreign_tracer(self, tracer: "Tracer"):
        """A tracer that is not ours must belong to an enclosing trace, or it escaped."""
        if not tracer._trace.alive or not self.is_ancestor_or_self(tracer._trace):
            raise escaped_tracer_error(tracer)


class ArrayMethods:
    """Shared by concrete arrays and tracers: shape queries here; the NumPy-style operators and
    methods are installed by `fjit.numpy` (they are written with it)."""

    __slots__ = ()
    __array_priority__ = 100

    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def ndim(self):
        return len(self.aval.shape)

    @property
    def size(self):
        return self.aval.size

    @property
    def weak_type(self):
        return self.aval.weak_type

    def __len__(self):
        if not self.aval.shape:
            raise FjitTypeError("len() of unsized object (a rank-0 array)")
        return self.aval.shape[0]


class Tracer(ArrayMethods):
    """A value inside a transformation.  Python cannot look at its contents: turning it into a
    bool/int/float/NumPy array raises a ConcretizationTypeError naming where that happened."""

    __slots__ = ("_trace",)

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    def _concretization_error(self, what: str, error_type):
        if not self._trace.alive:
            raise escaped_tracer_error(self)
        info = current_source_info()
        where = f"\n  The problem arose at {info}." if info is not None else ""
        raise error_type(
            f"{what} was called on a traced value {self.aval.str_short()} "
            f"{self._trace.describe()}.{where}\n"
            "  Its value is not known until the program runs. Use fjit.numpy.where / "
            "fjit.lax.cond for data-dependent choices, or pass the argument as static "
            "(static_argnums / static_argnames) if it is a compile-time constant.")

    def __bool__(self):
        self._concretization_error("bool()", TracerBoolConversionError)

    def __int__(self):
        self._concretization_error("int()", TracerIntegerConversionError)

    def __index__(self):
        self._concretization_error("operator.index()", TracerIntegerConversionError)

    def __float__(self):
        self._concretization_error("float()", ConcretizationTypeError)

    def __complex__(self):
        self._concretization_error("complex()", ConcretizationTypeError)

    def __array__(self, dtype=None, copy=None):
        self._concretization_error("numpy.asarray()", TracerArrayConversionError)

    def item(self, *args):
        self._concretization_error(".item()", ConcretizationTypeError)

    def tolist(self):
        self._concretization_error(".tolist()", ConcretizationTypeError)

    def __hash__(self):
        raise FjitTypeError(f"unhashable type: traced array {self.aval.str_short()}")

    def __iter__(self):
        if not self.aval.shape:
            raise FjitTypeError("iteration over a rank-0 array")
        return (self[i] for i in range(self.aval.shape[0]))

    def __repr__(self):
        return f"Traced<{self.aval.str_short()}>({self._trace.describe()})"


def escaped_tracer_error(tracer: Tracer) -> UnexpectedTracerError:
    return UnexpectedTracerError(
        f"Encountered an unexpected tracer {tracer.aval.str_short()} created "
        f"{tracer._trace.describe()}. The transformation that made it has finished (or it "
        "belongs to a transformation that is not active here), so the value has leaked out, "
        "for example through a global variable, a closure or a side effect. Return values from "
        "transformed functions instead of storing them.")


class _TraceContext(threading.local):
    """The current trace of this thread; None until first use, then the eager trace."""

    trace = None


_ctx = _TraceContext()


_root_trace_class = None


def install_root_trace(trace_class):
    """The trace each thread's stack starts from: the runtime's eager evaluation (it is
    above this module, so it installs itself when it loads)."""
    global _root_trace_class
    _root_trace_class = trace_class


def _root_trace() -> Trace:
    """The eager evaluation trace at the bottom of this thread's stack, made on first use."""
    if _root_trace_class is None:
        raise RuntimeError("fjit.core used before fjit.runtime.eager was imported; "
                           "import fjit first")
    _ctx.trace = _root_trace_class()
    return _ctx.trace


def current_trace() -> Trace:
    return _ctx.trace or _root_trace()


@contextmanager
def set_current_trace(trace: Trace):
    saved = current_trace()
    _ctx.trace = trace
    try:
        yield trace
    finally:
        _ctx.trace = saved


# --- evaluating a Program ---------------------------------------------------------------------

def eval_program(program: Program, *args, rules=None):
    """Run a Program by binding each equation again under whatever trace is current.
    `rules` maps a primitive to `rule(params, operands) -> outputs` to evaluate its
    equations differently (fjit.cross_iteration rotates scans this way)."""
    if len(args) != len(program.invars):
        raise FjitTypeError(f"Program takes {len(program.invars)} arguments, got {len(args)}")
    env = {}
    for var, value in zip(program.constvars, program.consts):
        env[var] = value
    for var, value in zip(program.invars, args):
        env[var] = value

    def read(atom):
        return atom.as_array() if type(atom) is Literal else env[atom]

    for eqn in program.eqns:
        rule = rules.get(eqn.primitive) if rules else None
        with source_info_override(eqn.source_info):
            if rule is not None:
                outs = rule(eqn.params, list(map(read, eqn.invars)))
            else:
                outs = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
        if not eqn.primitive.multiple_results:
            outs = (outs,)
        for var, value in zip(eqn.outvars, outs):
            env[var] = value
    return [read(v) for v in program.outvars]


def evaluate_reference(program: Program, *values):
    """Run a Program on NumPy values through each primitive's `impl` (its NumPy reference),
    no trace involved: the reference semantics of calls and control flow."""
    env = dict(zip(program.constvars, (np.asarray(c) for c in program.consts)))
    env.update(zip(program.invars, values))

    def read(atom):
        return np.asarray(atom.value, atom.aval.dtype) if type(atom) is Literal else env[atom]

    for eqn in program.eqns:
        outs = eqn.primitive.impl(*map(read, eqn.invars), **eqn.params)
        if not eqn.primitive.multiple_results:
            outs = (outs,)
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in program.outvars]


# Last: array (Array) and pretty (printing) import this module's classes by name; Literal, Eqn
# and Program use them at call time.
from . import array, pretty  # noqa: E402

__all__ = ["ShapedArray", "Var", "Literal", "Eqn", "Program", "Primitive", "Trace", "Tracer",
           "ArrayMethods", "current_trace", "set_current_trace", "eval_program", "SourceInfo",
           "type_error"]
