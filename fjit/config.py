"""Global configuration: a handful of named options, each with a default and an env var.

`fjit.config.update("enable_x64", True)` mirrors JAX.  Options are read as attributes
(`fjit.config.enable_x64`).  Every option that changes what tracing produces, or which
executable runs it (backend, check_mode), is part of `config.trace_state()`, which jit puts
into its cache key.
"""
from __future__ import annotations

import os


def parse_size(value) -> int:
    """Bytes from an int or a string like "1G", "500M", "64k" (0: no bound)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        size = int(value)
    else:
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
        try:
            size = int(float(text[:-1] if scale > 1 else text) * scale)
        except ValueError:
            raise ValueError(f"fjit.config: cannot read {value!r} as a size "
                             "(bytes, or a number with K, M, G or T)") from None
    if size < 0:
        raise ValueError(f"fjit.config: a size cannot be negative, got {value!r}")
    return size


def _count(value) -> int:
    count = int(value)
    if count < 1:
        raise ValueError(f"fjit.config: a cache size must be at least 1, got {value!r}")
    return count


def _cache_dir(value) -> str:
    """An absolute directory; empty means $XDG_CACHE_HOME/fjit (else ~/.cache/fjit)."""
    if value:
        return os.path.abspath(str(value))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.abspath(os.path.join(base, "fjit"))


def _names(value) -> frozenset:
    """A set of names from a comma-separated string (or an iterable of names)."""
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(v.strip() for v in value if v and v.strip())


# the compiler's loop passes, each of which the `passes` option can turn off
PASSES = ("reorder", "tile", "parallelize", "vectorize", "unroll", "fuse_rows")


def parse_passes(value) -> frozenset:
    """The passes to turn off, from '-tile,-unroll' (a bad item raises, naming the passes)."""
    off = set()
    for item in str(value or "").split(","):
        item = item.strip()
        if not item:
            continue
        if not (item.startswith("-") and item[1:] in PASSES):
            raise ValueError(f"fjit.config: cannot read {item!r} in the passes option; write "
                             f"'-pass' to turn a pass off, one of {list(PASSES)}")
        off.add(item[1:])
    return frozenset(off)


def _passes(value) -> str:
    parse_passes(value)
    return str(value or "")


def _platform(value) -> str:
    value = str(value or "cpu").split(",")[0].strip().lower()   # JAX's "cuda,cpu": the first
    if value not in ("cpu", "cuda", "gpu"):
        raise ValueError(f"fjit.config: platform must be 'cpu' or 'cuda', not {value!r}")
    return "cuda" if value == "gpu" else value


def _env_bool(name: str, default: bool) -> bool:
    """Unset: the default; empty, 0, false, no or off: False; anything else: True."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


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
                "'reference' with a warning when there is no C compiler), 'reference' "
                "(the NumPy interpreter) or 'cuda' (host arrays copied to the default GPU and "
                "back for each call).", True),
        _Option("platform", "cpu", "FJIT_PLATFORM", _platform,
                "The default device's platform: 'cpu', or 'cuda' (jit runs on the first GPU "
                "and its results stay there; JAX's jax_platforms).", True),
        _Option("cuda_emulation", False, "FJIT_CUDA_EMULATION", bool,
                "Make the cuda platform one emulated GPU on the CPU (no GPU needed; the same "
                "CUDA source, built by the C++ compiler: fjit/compiler/targets/cuda/"
                "emulated_gpu.py).", True),
        _Option("cuda_graphs", True, "FJIT_CUDA_GRAPHS", bool,
                "Replay a jitted Program's kernel launches as a CUDA graph from its second "
                "call on (one launch per call instead of one per kernel).", False),
        _Option("cflags", "", "FJIT_CFLAGS", str,
                "Extra flags for the C compiler (appended to fjit's defaults).", False),
        _Option("cc", os.environ.get("CC", ""), "FJIT_CC", str,
                "The C compiler the C backend builds with (default: $CC, else the first of "
                "cc, gcc, clang on the PATH).", False),
        _Option("cxx", os.environ.get("CXX", ""), "FJIT_CXX", str,
                "The C++ compiler the CUDA emulator builds kernels with (default: $CXX, else "
                "g++ on the PATH).", False),
        _Option("blas", "", "FJIT_BLAS", str,
                "The BLAS library GEMM kernels may call: a path, 'none', or empty for NumPy's "
                "bundled OpenBLAS.", False),
        _Option("passes", "", "FJIT_PASSES", _passes,
                "Compiler passes to turn off, as '-tile,-unroll' (reorder, tile, parallelize, "
                "vectorize, unroll, fuse_rows: fjit.compiler.schedule.Options).", False),
        _Option("cache_dir", "", "FJIT_CACHE_DIR", _cache_dir,
                "Where compiled libraries are cached (default: $XDG_CACHE_HOME/fjit, else "
                "~/.cache/fjit).", False),
        _Option("keep_source", False, "FJIT_KEEP_SOURCE", bool,
                "Keep each cached library's generated C beside it (<key>.c), to read.", False),
        _Option("log", "", "FJIT_LOG", _names,
                "Log channels, comma-separated: 'compile' logs one line per build.", False),
        _Option("cache_max_size", 1 << 30, "FJIT_CACHE_MAX_SIZE", parse_size,
                "Bound on the disk cache of compiled libraries (bytes, or e.g. '500M', '2G'; "
                "0: no bound); least recently used entries are evicted past it.", False),
        _Option("jit_cache_size", 1024, "FJIT_JIT_CACHE_SIZE", _count,
                "Specialisations (argument shapes, dtypes, static values) each jitted function "
                "keeps; the least recently used is dropped, with its executable.", False),
        _Option("library_cache_size", 256, "FJIT_LIBRARY_CACHE_SIZE", _count,
                "Compiled libraries kept loaded beyond those live executables use; the least "
                "recently used is unloaded once nothing runs it.", False),
        _Option("async_dispatch", False, "FJIT_ASYNC_DISPATCH", bool,
                "Let a large jitted call return before its native code has run, on a worker "
                "thread (reading a value waits; fjit.block_until_ready waits for a pytree). "
                "Off by default until measured where it should pay (spare cores): on 2 cores "
                "it matched the synchronous step (bench/RESULTS.md).", False),
        _Option("tiered_compilation", True, "FJIT_TIERED_COMPILATION", bool,
                "Run a large Program (several translation units) first on code built at -O1, "
                "about twice as fast to build, while the -O3 build runs in the background at "
                "low priority; calls switch to it when it is loaded.  Both compute the same "
                "bits.  fjit.block_until_compiled() waits for the background builds.", False),
        _Option("explain_recompiles", False, "FJIT_EXPLAIN_RECOMPILES", bool,
                "Log one line each time a jitted function traces again, saying what differs "
                "from the nearest cached signature (fjit/recompiles.py).", False),
        _Option("check_mode", False, "FJIT_CHECK_MODE", bool,
                "Run every compiled Program kernel by kernel against the reference "
                "interpreter; the first kernel computing something else raises "
                "KernelMismatchError naming it, its equation and the user's line "
                "(fjit/compiler/checked.py).  Slow: for finding compiler bugs.", True),
        _Option("profile", False, "FJIT_PROFILE", bool,
                "Time every compiled Program kernel by kernel; fjit.profile_report() (and, at "
                "exit, stderr) lists each Program's costliest kernels with their share of its "
                "time and the user's line (fjit/runtime/profile.py).", True),
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
        if name in ("platforms", "platform_name"):   # JAX's names for it
            name = "platform"
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
        """The options that change what a trace produces or which executable runs it, as a
        hashable tuple."""
        state = self._trace_state
        if state is None:
            state = tuple(self._values[n] for n, o in _OPTIONS.items() if o.affects_tracing)
            object.__setattr__(self, "_trace_state", state)
        return state


config = Config()


def tracing_option_names() -> list:
    """The names of the options in `Config.trace_state()`, in its order."""
    return [n for n, o in _OPTIONS.items() if o.affects_tracing]
