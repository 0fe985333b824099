"""Why a jitted function traced again, and why a library was built: the `explain_recompiles` option (env
FJIT_EXPLAIN_RECOMPILES=1) logs one line per retrace, naming the function, the caller's line
and what differs from the nearest signature already cached.

A jitted function's cache key is (argument structure, abstract values, static arguments,
jit's own settings, the options that change tracing); `explain` compares a new key with the
cached ones and says which part differs, down to the argument's pytree path.  A changed
closure or global is not part of the key (as in JAX), so it neither retraces nor shows here.
"""
from __future__ import annotations

import inspect
import logging

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
