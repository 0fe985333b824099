"""Global configuration: a handful of named options, each with a default and an env var.

`fjit.config.update("enable_x64", True)` mirrors JAX.  Options are read as attributes
(`fjit.config.enable_x64`).  Every option that changes what tracing produces is part of
`config.trace_state()`, which jit puts into its cache key.
"""
from __future__ import annotations

import os


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


class _Option:
    def __init__(self, name, default, env, parse, doc, affects_tracing):
        self.name, self.default, self.env = name, default, env
        self.parse, self.doc, self.affects_tracing = parse, doc, affects_tracing


_OPTIONS = {
    opt.name: opt
    for opt in [
        _Option("enable_x64", False, "FJIT_ENABLE_X64", bool,
                "Use 64-bit ints and floats by default (JAX's jax_enable_x64).", True),
        _Option("backend", "c", "FJIT_BACKEND", str,
                "Execution engine jit hands Programs to: 'c' (compiled; falls back to "
                "'reference' with a warning when there is no C compiler) or 'reference' "
                "(the NumPy interpreter).", True),
        _Option("cflags", "", "FJIT_CFLAGS", str,
                "Extra flags for the C compiler (appended to fjit's defaults).", False),
        _Option("check_programs", False, "FJIT_CHECK_PROGRAMS", bool,
                "Typecheck every Program right after it is traced (tests turn this on).", False),
    ]
}


class Config:
    """Holds the current value of every option; `update` validates the name."""

    def __init__(self):
        values = {}
        for opt in _OPTIONS.values():
            if opt.parse is bool:
                values[opt.name] = _env_bool(opt.env, opt.default)
            else:
                values[opt.name] = opt.parse(os.environ.get(opt.env, opt.default))
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_trace_state", None)

    def update(self, name: str, value) -> None:
        if name.startswith("jax_"):
            name = name[4:]
        if name not in _OPTIONS:
            raise ValueError(f"fjit.config.update: unknown option {name!r}; "
                             f"known options: {sorted(_OPTIONS)}")
        self._values[name] = _OPTIONS[name].parse(value)
        object.__setattr__(self, "_trace_state", None)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"fjit.config has no option {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError("use fjit.config.update(name, value)")

    def trace_state(self) -> tuple:
        """The options that change what a trace produces, as a hashable tuple."""
        state = self._trace_state
        if state is None:
            state = tuple(self._values[n] for n, o in _OPTIONS.items() if o.affects_tracing)
            object.__setattr__(self, "_trace_state", state)
        return state


config = Config()
