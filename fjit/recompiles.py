"""Why a jitted function traced again, and why a library was built: the `explain_recompiles` option (env
FJIT_EXPLAIN_RECOMPILES=1) logs one line per retrace, naming the function, the caller's line
and what differs from the nearest signature already cached.

A jitted function's cache key is (argument structure, abstract values, static arguments,
jit's own settings, the options that change tracing); `explain` compares a new key with the
cached ones and says which part differs, down to the argument's pytree path.

Closures and globals are not part of the key (as in JAX): a number or array a function reads
from them is a constant of its trace.  Two things about them are explained: a new function
object of code traced before (a lambda or closure made again, as in `jit(lambda ...)` inside
a loop) starts with an empty cache and traces again, and the line names the captured values
that differ from the earlier object's; and a captured value that changed since the trace (a
learning rate in a global) is not seen by the compiled code, which is logged once per
signature traced while the option was on.
"""
from __future__ import annotations

import dis
import functools
import inspect
import logging
import types
import weakref
from collections import OrderedDict

import numpy as np

from .config import config, tracing_option_names
from .errors import current_source_info
from .tree_util import keystr, treedef_paths

_log = logging.getLogger("fjit.recompiles")
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("fjit: %(message)s"))


def logger() -> logging.Logger:
    """The "fjit.recompiles" logger, printing to stderr while `explain_recompiles` is on."""
    if config.explain_recompiles and _handler not in _log.handlers:
        _log.addHandler(_handler)
        _log.setLevel(logging.INFO)
    elif not config.explain_recompiles and _handler in _log.handlers:
        _log.removeHandler(_handler)
        _log.setLevel(logging.NOTSET)
    return _log


def describe_aval(aval) -> str:
    weak = " (weakly typed)" if getattr(aval, "weak_type", False) else ""
    return f"{aval.str_short()}{weak}"


def _argument_name(path, fun, static_argnums=()) -> str:
    """A leaf's path in `(dynamic args, kwargs)` as the user wrote the call: `x['w'][0]`
    (positions count the arguments that are not static)."""
    if not path:
        return "the arguments"
    (_, which), rest = path[0], path[1:]
    if which == 1 and rest:            # a keyword argument
        (_, name), rest = rest[0], rest[1:]
        return f"{name}{keystr(rest)}"
    if rest:                           # a positional argument
        (_, index), rest = rest[0], rest[1:]
        try:
            names = [p.name for p in inspect.signature(fun).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            static = {k % len(names) if names else k for k in static_argnums or ()}
            names = [n for k, n in enumerate(names) if k not in static]
        except (TypeError, ValueError):
            names = []
        head = names[index] if index < len(names) else f"args[{index}]"
        return f"{head}{keystr(rest)}"
    return keystr(path)


def difference(new, old, fun, static_argnums=()) -> str:
    """What differs between two cache keys of one jitted function, in words."""
    in_tree, avals, statics, jit_key, trace_state = new
    old_tree, old_avals, old_statics, old_jit_key, old_state = old
    if in_tree != old_tree:
        return f"the arguments' structure changed: was {old_tree}, now {in_tree}"
    changes = []
    paths = treedef_paths(in_tree)
    for path, a, b in zip(paths, avals, old_avals):
        if a != b:
            changes.append(f"{_argument_name(path, fun, static_argnums)} was "
                           f"{describe_aval(b)}, now {describe_aval(a)}")
    if statics != old_statics:
        was, now = dict(old_statics), dict(statics)
        for where in sorted(set(was) | set(now), key=str):
            if was.get(where) != now.get(where):
                changes.append(f"static argument {where!r} was {was.get(where)!r}, "
                               f"now {now.get(where)!r}")
    if trace_state != old_state:
        for name, a, b in zip(tracing_option_names(), trace_state, old_state):
            if a != b:
                changes.append(f"option {name} was {b!r}, now {a!r}")
    if jit_key != old_jit_key:
        changes.append("jit's static_argnums/static_argnames changed")
    return "; ".join(changes) or "nothing visible differs (the cached entry was evicted)"


def _nearest(new, keys):
    """The cached key most like `new`: same structure first, then fewest differing leaves."""
    def distance(old):
        if old[0] != new[0]:
            return (1, 0)
        return (0, sum(a != b for a, b in zip(new[1], old[1])) +
                (old[2] != new[2]) + (old[4] != new[4]))
    return min(keys, key=distance)


def explain(name, fun, key, cached_keys, static_argnums=()) -> None:
    """Log why `name` traces again for `key`, against the keys it has cached (nothing when
    this is its first trace)."""
    if not cached_keys:
        return
    where = current_source_info()
    at = f" at {where.filename}:{where.lineno}" if where is not None else ""
    logger().info("jit(%s)%s traces again (%d signatures cached): %s", name, at,
                  len(cached_keys),
                  difference(key, _nearest(key, cached_keys), fun, static_argnums))


# --- closures and globals ---------------------------------------------------------------------

_SCALARS = (bool, int, float, complex, np.generic)
# code object -> (weak reference to the function last traced with it, what it captured)
_last_of_code: "OrderedDict" = OrderedDict()
_CODES_KEPT = 256


def _capturable(value) -> bool:
    """A number or an array: what a trace turns into a constant (modules, functions and
    classes are not values of the computation)."""
    if isinstance(value, _SCALARS):
        return True
    return (not isinstance(value, (type, types.ModuleType))
            and isinstance(getattr(value, "shape", None), tuple)
            and isinstance(getattr(value, "dtype", None), np.dtype))


def captured_values(fun) -> dict:
    """What `fun`'s own code reads from its globals and its closure that a trace makes a
    constant, by description ("global lr", "closure variable scale"): numbers as they are,
    arrays as (id, dtype, shape) -- a fingerprint, so nothing is kept alive."""
    code = getattr(fun, "__code__", None)
    if code is None:
        return {}
    found = {}
    names = getattr(fun, "__globals__", {})
    for name in _globals_read(code):
        if name in names and _capturable(names[name]):
            found[f"global {name}"] = _fingerprint(names[name])
    for name, cell in zip(code.co_freevars, getattr(fun, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:   # not assigned yet
            continue
        if _capturable(value):
            found[f"closure variable {name}"] = _fingerprint(value)
    return found


@functools.lru_cache(maxsize=1024)
def _globals_read(code) -> tuple:
    """The global names `code` loads (not attribute names, which co_names also holds)."""
    return tuple(dict.fromkeys(i.argval for i in dis.get_instructions(code)
                               if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")))


def _fingerprint(value):
    if isinstance(value, _SCALARS):
        return value.item() if isinstance(value, np.generic) else value
    return ("array", id(value), np.dtype(value.dtype).name, tuple(value.shape))


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and a != a and b != b)   # NaN: unchanged


def _show(value) -> str:
    if isinstance(value, tuple):
        _, ident, dtype, shape = value
        return f"a {dtype}[{'x'.join(map(str, shape))}] array (id {ident:#x})"
    return repr(value)


def _changes(old: dict, new: dict) -> list:
    return [f"{name} was {_show(old[name])}, now {_show(value)}"
            for name, value in new.items() if name in old and not _same(old[name], value)]


def remember_trace(name, fun) -> dict:
    """At a trace (with the option on): the values `fun` captured, remembered for its code;
    when an earlier function object of the same code was traced, log that this one starts
    with an empty cache and which captured values differ."""
    captured = captured_values(fun)
    code = getattr(fun, "__code__", None)
    if code is None:
        return captured
    previous = _last_of_code.get(code)
    if previous is not None and previous[0]() is not fun:
        where = current_source_info()
        at = f" at {where.filename}:{where.lineno}" if where is not None else ""
        changes = _changes(previous[1], captured)
        logger().info(
            "jit(%s)%s traces again: a new function object of code traced before (%s:%d), "
            "so its cache starts empty (a lambda or closure made again, as jit(...) inside a "
            "loop does; make it once to reuse its compiled code); %s", name, at,
            code.co_filename, code.co_firstlineno,
            "its captured values differ: " + "; ".join(changes) if changes else
            "its captured values are the same")
    try:
        _last_of_code[code] = (weakref.ref(fun), captured)
    except TypeError:   # not weak-referenceable: compare with nothing next time
        _last_of_code[code] = (lambda: None, captured)
    _last_of_code.move_to_end(code)
    while len(_last_of_code) > _CODES_KEPT:
        _last_of_code.popitem(last=False)
    return captured


def check_captured(name, fun, captured: dict) -> bool:
    """On a cache hit: log (and return True) when a value the trace captured has changed
    since, which the compiled code does not see."""
    changes = _changes(captured, captured_values(fun))
    if changes:
        logger().info("jit(%s): %s since it was traced; the compiled code still uses the "
                      "traced value (captured values are constants, as in JAX): pass it as "
                      "an argument, or call clear_cache()", name, "; ".join(changes))
    return bool(changes)
