"""User-facing transformations: `jit` and `make_program` (alias `make_jaxpr`)."""
from __future__ import annotations

import functools
import inspect
import weakref
from collections import OrderedDict

import numpy as np

from . import recompiles
from .array import Array, aval_of as abstractify, concrete_operand
from .devices import CPU
from .config import config
from .core import Tracer, current_trace
from .interpreters.partial_eval import DebugInfo, building_a_program, trace_to_program
from .lax.call import jit_p
from .runtime.backend import executable_for
from .runtime.placement import buffer_on, common_device, runs_on_host
from .tree_util import tree_flatten, tree_leaves, tree_unflatten, treedef_tuple


class _Signature:
    """How a function's arguments split into traced (dynamic) and static ones."""

    def __init__(self, fun, static_argnums, static_argnames):
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums or ())
        names = (static_argnames,) if isinstance(static_argnames, str) \
            else tuple(static_argnames or ())
        try:
            params = list(inspect.signature(fun).parameters.values())
        except (TypeError, ValueError):
            params = None
        if params is not None:
            _validate(fun, params, nums, names)
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            nums = tuple(n % len(positional) if n < 0 and positional else n for n in nums)
            names = names + tuple(positional[n].name for n in nums
                                  if n < len(positional)
                                  and positional[n].kind != positional[n].POSITIONAL_ONLY)
            by_name = {p.name: k for k, p in enumerate(positional)}
            nums = nums + tuple(by_name[n] for n in names if n in by_name)
        self.static_argnums = frozenset(nums)
        self.static_argnames = frozenset(names)

    def split(self, fun_name, args, kwargs):
        """(dynamic args, dynamic kwargs, static key) with static values checked hashable."""
        statics = []
        if self.static_argnums:
            dyn_args = []
            for k, a in enumerate(args):
                if k in self.static_argnums:
                    statics.append((k, _hashable(fun_name, f"argument {k}", a)))
                else:
                    dyn_args.append(a)
        else:
            dyn_args = args
        if kwargs and self.static_argnames:
            dyn_kwargs = {}
            for name, v in kwargs.items():
                if name in self.static_argnames:
                    statics.append((name, _hashable(fun_name, f"argument {name!r}", v)))
                else:
                    dyn_kwargs[name] = v
        else:
            dyn_kwargs = kwargs
        return tuple(dyn_args), dyn_kwargs, tuple(statics)

    @staticmethod
    def merge(dyn_args, dyn_kwargs, statics):
        args, kwargs = list(dyn_args), dict(dyn_kwargs)
        for where, value in statics:
            if isinstance(where, int):
                args.insert(where, value)
            else:
                kwargs[where] = value
        return args, kwargs


def _validate(fun, params, nums, names):
    """JAX's checks of static_argnums/static_argnames against the signature: a number past
    the positional parameters or a positional-only name is a ValueError; a name the function
    does not take, a warning."""
    for n in nums:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"jit({_name(fun)}): static_argnums must be ints, got "
                            f"{type(n).__name__} {n!r}")
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"jit({_name(fun)}): static_argnames must be strings, got "
                            f"{type(n).__name__} {n!r}")
    kinds = {p.kind for p in params}
    if inspect.Parameter.VAR_POSITIONAL not in kinds:
        count = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        if nums and (-min(nums) > count or max(nums) >= count):
            raise ValueError(f"jit({_name(fun)}): jitted function has static_argnums="
                             f"{tuple(nums)}, but only accepts {count} positional arguments.")
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return
    positional_only = {p.name for p in params if p.kind is p.POSITIONAL_ONLY}
    keywords = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if positional_only & set(names):
        raise ValueError(f"jit({_name(fun)}): jitted function has invalid argnames "
                         f"{sorted(positional_only & set(names))} in static_argnames. These "
                         "are positional-only")
    if set(names) - keywords:
        import warnings
        warnings.warn(f"jit({_name(fun)}): jitted function has invalid argnames "
                      f"{sorted(set(names) - keywords)} in static_argnames. Function does not "
                      "take these args.", SyntaxWarning, stacklevel=4)


def _name(fun):
    return getattr(fun, "__name__", type(fun).__name__)


def _hashable(fun_name, what, value):
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"jit({fun_name}): static {what} of type {type(value).__name__} is not "
                        "hashable. Static arguments are part of the compilation cache key: "
                        "pass a tuple instead of a list, or make the argument dynamic.") from None
    return value


class _Entry:
    """One traced specialisation of a function: its Program and what running it needs."""

    __slots__ = ("traced", "program", "consts", "const_values", "out_tree", "out_avals", "name",
                 "cacheable", "executable", "asynchronous", "single_output", "on_host",
                 "_device_consts", "captured")

    def __init__(self, traced, out_tree):
        self.traced = traced
        self.program, consts = traced.closure_convert()
        self.consts = consts
        self.cacheable = not any(isinstance(c, Tracer) for c in consts)
        self.on_host = self.cacheable and runs_on_host(consts) and config.platform == "cpu"
        self.const_values = [c._value for c in consts] if self.on_host else None
        self._device_consts = {}
        self.out_tree = out_tree
        self.out_avals = self.program.out_avals
        self.name = traced.name
        self.executable = None
        self.asynchronous = False   # may its executable run on the device's worker?
        self.single_output = out_tree.node_type is None  # the function returns one array
        self.captured = None   # explain_recompiles: the numbers and arrays the trace captured

    def consts_on(self, device) -> list:
        """The captured constants' buffers on `device`, copied there once."""
        buffers = self._device_consts.get(device)
        if buffers is None:
            buffers = self._device_consts[device] = [buffer_on(device, c) for c in self.consts]
        return list(buffers)


_shared_caches: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=64)
def _flat_treedef(n):
    """The structure of `((a0, ..., an-1), {})`: n array arguments and no keywords."""
    return tree_flatten((tuple(range(n)), {}))[1]


_NO_KEYWORDS = tree_flatten({})[1]


def _no_keywords(args_tree):
    """The structure of `(args, {})` from that of `args`, without flattening it again."""
    return treedef_tuple((args_tree, _NO_KEYWORDS))


def _same_ranks(cache, key, most=4):
    """The `most` recent entries of `cache` traced for arguments like those of `key` in all
    but sizes (same structure, ranks, dtypes, static values and options)."""
    in_tree, avals, rest = key[0], key[1], key[2:]
    found = []
    for other, entry in reversed(list(cache.items())):   # a snapshot: other threads move
        if len(found) == most:                              # and evict entries meanwhile
            break
        if other[0] == in_tree and other[2:] == rest and len(other[1]) == len(avals) and all(
                type(a) is type(b) and a.ndim == b.ndim
                and a.dtype == b.dtype and a.weak_type == b.weak_type
                for a, b in zip(avals, other[1])):
            found.append(entry)
    return found


class JitFunction:
    """`fjit.jit(fun)`: traces once per argument signature, then runs the cached Program.

    The cache key is the pytree structure of the arguments, their abstract values (shape,
    dtype, weak type), the values of static arguments and the config options that change
    tracing.  Under another transformation it binds the `jit` primitive, so the whole function
    stays one equation (or, with `inline=True`, is traced straight into the caller).
    """

    def __init__(self, fun, static_argnums=None, static_argnames=None, donate_argnums=None,
                 inline=False):
        if not callable(fun):
            raise TypeError(f"jit expects a callable, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.inline = inline
        self.donate_argnums = donate_argnums  # accepted for JAX compatibility; buffers are
        # never reused in place by the reference backend
        self._signature = _Signature(fun, static_argnums, static_argnames)
        self._name = getattr(fun, "__name__", "fun")
        try:
            self._cache = _shared_caches.setdefault(fun, OrderedDict())
        except TypeError:  # not weak-referenceable
            self._cache = OrderedDict()
        self._config_key = (self._signature.static_argnums, self._signature.static_argnames)
        self._traces = self._hits = self._builds = 0   # for cache_info()

    def __get__(self, obj, objtype=None):  # jit on methods binds like a function
        if obj is None:
            return self
        return functools.partial(self, obj)

    def _lookup(self, args, kwargs):
        if not kwargs and not self._signature.static_argnums \
                and all(type(a) is Array for a in args):  # the common case, kept cheap
            leaves, in_tree, statics = args, _flat_treedef(len(args)), ()
            avals = tuple(a.aval for a in args)
        elif not kwargs and not self._signature.static_argnums:   # pytrees, no keywords
            leaves, args_tree = tree_flatten(args)
            in_tree, statics = _no_keywords(args_tree), ()
            avals = self._avals(leaves)
        else:
            dyn_args, dyn_kwargs, statics = self._signature.split(self._name, args, kwargs)
            leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
            avals = self._avals(leaves)
        key = (in_tree, avals, statics, self._config_key, config.trace_state())
        cache = self._cache
        entry = cache.get(key)
        if entry is None:
            if config.explain_recompiles:
                recompiles.explain(self._name, self.fun, key, list(cache),
                                   self._signature.static_argnums)
            self._traces += 1
            entry = self._trace(in_tree, avals, statics)
            entry.program.set_sized_like([e.program for e in _same_ranks(cache, key)])
            if config.explain_recompiles:
                entry.captured = recompiles.remember_trace(self._name, self.fun)
            if entry.cacheable:
                cache[key] = entry
                while len(cache) > config.jit_cache_size:  # least recently used goes, and
                    try:                                   # with it its executable
                        cache.popitem(last=False)
                    except KeyError:  # another thread emptied it
                        break
        else:
            self._hits += 1
            try:
                cache.move_to_end(key)
            except KeyError:  # another thread evicted it meanwhile
                pass
            if entry.captured and recompiles.check_captured(self._name, self.fun,
                                                            entry.captured):
                entry.captured = None   # said once
        return entry, leaves

    def _avals(self, leaves):
        avals = []
        for k, leaf in enumerate(leaves):
            aval = getattr(leaf, "aval", None)
            if aval is None:
                aval = self._abstractify_arg(leaf, k)
            avals.append(aval)
        return tuple(avals)

    def _abstractify_arg(self, leaf, k):
        try:
            return abstractify(leaf)
        except TypeError:
            raise TypeError(f"jit({self._name}): argument leaf {k} of type "
                            f"{type(leaf).__name__} is not an array. Pass it through "
                            "static_argnums/static_argnames if it is a compile-time "
                            "constant.") from None

    def _trace(self, in_tree, avals, statics):
        def flat_fun(*leaf_tracers):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, leaf_tracers)
            args, kwargs = _Signature.merge(dyn_args, dyn_kwargs, statics)
            return self.fun(*args, **kwargs)

        traced, out_tree = trace_to_program(flat_fun, avals, DebugInfo("jit", self.fun))
        return _Entry(traced, out_tree)

    def __call__(self, *args, **kwargs):
        trace = current_trace()
        eager = trace.evaluates_eagerly
        if self.inline and not eager and building_a_program(trace):
            return self.fun(*args, **kwargs)
        entry, leaves = self._lookup(args, kwargs)
        if eager and entry.cacheable:
            # on the CPU, inline (one Python call less: W7 in bench/ measures this path)
            executable = entry.executable if entry.on_host else None
            if executable is None:
                results = _call_on_device(entry, leaves) if not entry.on_host else \
                    _call_on_host(entry, leaves, self)
            elif entry.asynchronous and config.async_dispatch and runs_on_host(leaves):
                results = _submit(executable, entry, leaves)
            else:
                values = list(entry.const_values)
                for leaf in leaves:
                    if type(leaf) is not Array:
                        leaf = concrete_operand(leaf)
                    if leaf._pending is None:   # computed, on the CPU
                        values.append(leaf._buffer)
                    elif leaf._device is CPU:
                        values.append(leaf._value)
                    else:
                        results = _call_on_device(entry, leaves)
                        break
                else:
                    results = [Array(v, a) for v, a in zip(executable(values), entry.out_avals)]
        else:
            results = jit_p.bind(*entry.consts, *leaves, program=entry.program, name=entry.name)
        if entry.single_output:
            return results[0]
        return tree_unflatten(entry.out_tree, results)

    def trace(self, *args, **kwargs):
        """The Program this function traces to for these arguments (with its constants)."""
        return self._lookup(args, kwargs)[0].traced

    def lower(self, *args, **kwargs):
        """What the compiled backend these arguments would run on makes of this function for
        them -- for arguments on a device (or with FJIT_PLATFORM=cuda), its platform's; on the
        host, the configured backend's (for the reference backend: the C one): the Program, the kernels (with the
        equations each fused) and the generated source."""
        from .compiler.lowered import Lowered
        entry, leaves = self._lookup(args, kwargs)[:2]
        platform = None if config.platform == "cpu" else config.platform
        if not runs_on_host(leaves):
            arrays = [x for x in leaves if type(x) is Array]
            platform = common_device(arrays, f"jit({entry.name}).lower").platform
        return Lowered(entry.program, platform)

    def cache_info(self) -> dict:
        """How this function's cache has done: traces (new signatures), hits (calls that
        reused a trace), builds (native libraries compiled for it rather than found in
        memory or on disk) and the signatures cached now (argument structure and values)."""
        signatures = [f"{in_tree}: {', '.join(recompiles.describe_aval(a) for a in avals)}"
                      + (f"; static {dict(statics)}" if statics else "")
                      for in_tree, avals, statics, _, _ in list(self._cache)]
        return {"traces": self._traces, "hits": self._hits, "builds": self._builds,
                "signatures": signatures}

    def clear_cache(self):
        self._cache.clear()

    def _cache_size(self) -> int:
        return len(self._cache)

    def __repr__(self):
        return f"<fjit.jit of {self._name}>"


def _call_on_host(entry, leaves, jitted=None):
    """A jitted call on the configured backend, if every operand is on the CPU.  The first
    call builds the executable; later ones take the same path inlined in `__call__`."""
    executable = entry.executable
    if executable is None and not runs_on_host(leaves):   # build nothing for the host
        return _call_on_device(entry, leaves)
    if executable is None:  # the entry belongs to one backend (it is in the key)
        executable = entry.executable = executable_for(entry.program)
        entry.asynchronous = getattr(executable, "asynchronous", False)
        if jitted is not None and "built" in str(getattr(executable, "cache_state", "")):
            jitted._builds += 1
    if entry.asynchronous and config.async_dispatch and runs_on_host(leaves):
        return _submit(executable, entry, leaves)
    values = list(entry.const_values)
    for leaf in leaves:
        if type(leaf) is not Array:
            leaf = concrete_operand(leaf)
        elif leaf._device is not CPU:
            return _call_on_device(entry, leaves)
        values.append(leaf._value)
    outs = executable(values)
    return [Array(v, a) for v, a in zip(outs, entry.out_avals)]


def _call_on_device(entry, leaves):
    """A jitted call with operands (or captured constants) on a device other than the CPU:
    it runs there, on that device's backend, and its results stay there."""
    arrays = [leaf if type(leaf) is Array else concrete_operand(leaf) for leaf in leaves]
    device = common_device(list(entry.consts) + arrays, f"jit({entry.name})")
    buffers = entry.consts_on(device) + [buffer_on(device, x) for x in arrays]
    outs = executable_for(entry.program, device.backend())(buffers)
    return [Array(v, a, device) for v, a in zip(outs, entry.out_avals)]


def _submit(executable, entry, leaves):
    """Start an asynchronous call (fjit/runtime/dispatch.py) and return its output Arrays at
    once.  Inputs still being computed by earlier calls are passed as their buffers: the
    device's worker runs calls in order, so they are filled by the time this one runs."""
    values = list(entry.const_values)
    after = []
    dtypes_in = executable.input_dtypes[len(values):]
    for leaf, dtype in zip(leaves, dtypes_in):
        if type(leaf) is not Array:
            leaf = concrete_operand(leaf)
        pending, buf = leaf._pending, leaf._buffer
        if pending is not None and type(buf) is np.ndarray and buf.dtype == dtype and \
                buf.flags.c_contiguous:
            after.append(pending)
            values.append(buf)
        else:
            values.append(leaf._value)
    outs, pending = executable.submit(values, after)
    return [Array(v, a, pending=pending) for v, a in zip(outs, entry.out_avals)]


def jit(fun=None, *, static_argnums=None, static_argnames=None, donate_argnums=None,
        inline=False):
    """Compile `fun`: trace it to a Program once per argument signature and run that.

    Usable as `jit(f)`, `@jit` or `@jit(static_argnums=...)` / `functools.partial(jit, ...)`.
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames,
                                 donate_argnums=donate_argnums, inline=inline)
    return JitFunction(fun, static_argnums, static_argnames, donate_argnums, inline)


def block_until_ready(x):
    """Wait until every array in the pytree `x` is computed; returns `x` (JAX's
    `jax.block_until_ready`).  Only calls dispatched asynchronously (the `async_dispatch`
    option) can still be running; everything else returns at once."""
    for leaf in tree_leaves(x):
        wait = getattr(leaf, "block_until_ready", None)
        if wait is not None:
            wait()
    return x


def make_program(fun, static_argnums=None, static_argnames=None):
    """`make_program(f)(*args)` returns the Program `f` traces to (JAX's make_jaxpr)."""
    signature = _Signature(fun, static_argnums, static_argnames)
    name = getattr(fun, "__name__", "fun")

    @functools.wraps(fun)
    def make(*args, **kwargs):
        dyn_args, dyn_kwargs, statics = signature.split(name, args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))

        def flat_fun(*leaf_tracers):
            d_args, d_kwargs = tree_unflatten(in_tree, leaf_tracers)
            full_args, full_kwargs = _Signature.merge(d_args, d_kwargs, statics)
            return fun(*full_args, **full_kwargs)

        program, _ = trace_to_program(flat_fun, [abstractify(x) for x in leaves],
                                      DebugInfo("make_program", fun))
        return program

    return make


make_jaxpr = make_program


class ShapeDtypeStruct:
    """The shape and dtype of an array, without its values (what eval_shape returns)."""

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type=False):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"


def eval_shape(fun, *args, **kwargs):
    """The shapes and dtypes `fun(*args, **kwargs)` would return, found by tracing only.
    Arguments may be arrays or anything with .shape and .dtype (e.g. ShapeDtypeStruct)."""
    leaves, in_tree = tree_flatten((args, kwargs))

    def flat(*tracers):
        a, kw = tree_unflatten(in_tree, tracers)
        return fun(*a, **kw)

    program, out_tree = trace_to_program(flat, [abstractify(x) for x in leaves],
                                         DebugInfo("eval_shape", fun))
    return tree_unflatten(out_tree, [ShapeDtypeStruct(a.shape, a.dtype, a.weak_type)
                                     for a in program.out_avals])
