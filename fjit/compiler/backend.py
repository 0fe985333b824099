"""The "c" backend: compile a Program into one C library and run it in one native call.

Compilation: flatten -> fusion plan -> schedule + loop passes -> render -> build (or load from
the disk cache).  Execution: a pointer per buffer (inputs, constants, outputs, one reused
workspace for temporaries) and a single call of `fj_program`.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections import OrderedDict

import cffi
import numpy as np

from ..config import config
from ..core import Program
from ..errors import FjitMemoryError, source_info_override
from ..limits import MEMORY_LIMIT
from ..runtime.memory import MIN_POOLED_BYTES, pool
from . import cache, codegen
from .flatten import flatten
from . import contractions
from .fusion import plan_program
from .schedule import Options, fuse_rows, schedule_kernel
from .toolchain import toolchain

log = logging.getLogger("fjit.compile")
if "compile" in config.log:  # FJIT_LOG=compile: one line per build
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("fjit: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)

_ffi = cffi.FFI()
_ffi.cdef("int fj_program(void **buffers); void fj_set_blas(void *sgemm, void *dgemm);"
          "const char *fj_key(void);")

ALIGN = 64


class Compiled:
    """What compiling a Program produced (kept for introspection: `jit(f).lower(...)`)."""

    def __init__(self, program, flat, plan, scheduled, source, key):
        self.program, self.flat, self.plan = program, flat, plan
        self.scheduled, self.source, self.key = scheduled, source, key


NATIVE_CONTROL = {"scan", "while", "cond"}  # generated as C loops and switches


def _hosted_primitives(flat):
    names = set()
    for e in flat.eqns:
        if e.primitive.family == "control":
            if e.primitive.name in NATIVE_CONTROL:
                for value in e.params.values():
                    for sub in value if isinstance(value, tuple) else (value,):
                        if isinstance(sub, Program):
                            names |= _hosted_primitives(flatten(sub))
            else:
                names.add(e.primitive.name)
    return names


class NotNative(Exception):
    """The Program holds primitives this backend does not generate code for (yet)."""


def compile_program(program: Program, options: Options | None = None) -> Compiled:
    tc = toolchain()
    if tc is None:
        raise RuntimeError("no working C compiler was found (set CC or FJIT_CC)")
    options = options or Options.from_string(config.passes)
    flat = flatten(program)
    hosted = sorted(_hosted_primitives(flat))
    if hosted:
        raise NotNative(f"{', '.join(hosted)} run as host loops over compiled bodies")
    flat = contractions.canonicalize(flat)
    plan = plan_program(flat, gemm_enabled=True)
    scheduled = []
    counter = itertools.count(1)  # statement names unique in the whole Program
    for k, kernel in enumerate(plan.kernels):
        sk = schedule_kernel(kernel, f"kernel_{k}", plan, options, counter)
        sk.comment = ", ".join(e.primitive.name for e in kernel.eqns)
        sk.members = [k]
        scheduled.append(sk)
    scheduled = fuse_rows(scheduled, options)
    name = program.name or "program"
    source = codegen.render_program(name, plan, scheduled, tc)
    key = cache.entry_key(source, tc.key)
    source = source + f'\nconst char *fj_key(void) {{ return "{key}"; }}\n'
    return Compiled(program, flat, plan, scheduled, source, key)


class Library:
    """A loaded kernel library.  Executables hold it while they live and `_loaded_libraries`
    holds the most recently used; when the last holder lets go it is unloaded (dlclose),
    where the toolchain says that is safe (its OpenMP runtime stays loaded)."""

    __slots__ = ("lib", "key", "fj_program", "__weakref__")

    def __init__(self, lib, key, closable):
        self.lib, self.key, self.fj_program = lib, key, lib.fj_program
        if closable:
            weakref.finalize(self, _close, lib).atexit = False  # at exit, leave it mapped


def _dlopen(path):
    lib = _ffi.dlopen(path)
    _forget(lib)
    return lib


def _forget(lib):
    """cffi keeps every library it opened (and its function table) in two lists for the
    FFI's lifetime; take ours out so that an unloaded library leaves nothing behind."""
    try:
        with _ffi._lock:
            _ffi._libraries[:] = [x for x in _ffi._libraries if x is not lib]
            table = lib.__dict__
            _ffi._function_caches[:] = [x for x in _ffi._function_caches if x is not table]
    except AttributeError:  # another cffi: it keeps them, we lose a little memory
        pass


def _close(lib):
    try:
        _ffi.dlclose(lib)
    except Exception:  # noqa: BLE001 -- never raise from a finalizer
        pass


_loaded_libraries: "OrderedDict[str, Library]" = OrderedDict()  # key -> Library, LRU order
_build_lock = threading.Lock()


def _remember(library):
    _loaded_libraries[library.key] = library
    _loaded_libraries.move_to_end(library.key)
    while len(_loaded_libraries) > config.library_cache_size:
        _loaded_libraries.popitem(last=False)  # unloaded once no executable uses it


def load_library(compiled: Compiled):
    """The library for `compiled`: from this process, from the disk cache, or built now.
    Nothing from the disk is loaded before `cache.verified_entry` has checked it."""
    key = compiled.key
    with _build_lock:
        library = _loaded_libraries.get(key)
        if library is not None:
            _loaded_libraries.move_to_end(key)
            return library, "memory"
        tc = toolchain()
        path, how = cache.verified_entry(key), "disk"
        lib = _open_verified(path, key) if path else None
        if lib is None:
            start = time.perf_counter()
            path = cache.build_into_cache(key, compiled.source, tc)
            lib = _open_verified(path, key)
            if lib is None:
                raise RuntimeError(f"fjit built {path} but cannot load it")
            how = f"built in {time.perf_counter() - start:.3f}s"
        _set_blas(lib)
        library = Library(lib, key, tc.can_unload)
        _remember(library)
        return library, how


def _open_verified(path, key):
    """Load a checked entry; a library that answers with another key is closed again at
    once, so that the rebuilt file at the same path is loaded fresh, not this handle."""
    try:
        lib = _dlopen(path)
    except OSError:
        return None
    try:
        if _ffi.string(lib.fj_key()).decode() == key:
            return lib
    except (AttributeError, cffi.FFIError, UnicodeDecodeError):
        pass
    _close(lib)
    return None


def _set_blas(lib):
    from .blas import gemm_pointers
    sgemm, dgemm = gemm_pointers()
    lib.fj_set_blas(sgemm, dgemm)


def _check_fits_in_memory(compiled):
    """Refuse, before building, a Program whose outputs and temporaries together need more
    than this machine's memory: allocating them would succeed (memory is overcommitted) and
    the kernels would then page for minutes or be killed.  The error names the largest
    buffer and the user's line that made it."""
    allocated = [b for b in compiled.plan.buffers if b.role in ("output", "temp")]
    total = sum(b.size * b.dtype.itemsize for b in allocated)
    if total <= MEMORY_LIMIT:
        return
    largest = max(allocated, key=lambda b: b.size * b.dtype.itemsize)
    where = next((e.source_info for e in compiled.flat.eqns
                  if any(getattr(v, "aval", None) is not None and v.aval.shape == largest.shape
                         and v.aval.dtype == largest.dtype for v in e.outvars)), None)
    with source_info_override(where):
        raise FjitMemoryError(
            f"jit({compiled.program.name or 'program'}): its outputs and temporaries need "
            f"{total} bytes ({total / 2**30:.1f} GiB), more than this machine's memory "
            f"({MEMORY_LIMIT} bytes); the largest is {largest.role} "
            f"{largest.dtype.name}{list(largest.shape)} of "
            f"{largest.size * largest.dtype.itemsize} bytes")


class CExecutable:
    """A compiled Program: call it with NumPy arrays (one per invar), get NumPy arrays."""

    def __init__(self, program: Program):
        start = time.perf_counter()
        compiled = compile_program(program)
        _check_fits_in_memory(compiled)
        self.library, how = load_library(compiled)  # held: unloaded after us
        log.info("compile %s: %d kernels, %s, cache %s (%.3fs)", program.name or "program",
                 len(compiled.scheduled), compiled.key,
                 "hit" if how in ("memory", "disk") else f"miss, {how}",
                 time.perf_counter() - start)
        self.cache_state = how
        # Only the plan is kept, not `compiled` (its source, or the Program, whose cache holds
        # this executable: a cycle would keep an evicted executable alive until a full GC).
        self.key, self.plan = compiled.key, compiled.plan
        plan = self.plan
        self.num_buffers = len(plan.buffers)
        self.inputs = plan.inputs
        self.input_dtypes = [plan.buffers[b].dtype for b in plan.inputs]
        self.outputs = plan.outputs
        self.output_buffers = sorted({b for kind, b in plan.outputs if kind == "buffer"
                                      and plan.buffers[b].role == "output"})
        self.out_shapes = {b: (plan.buffers[b].shape, plan.buffers[b].dtype,
                               plan.buffers[b].size * plan.buffers[b].dtype.itemsize)
                           for b in self.output_buffers}
        self.const_arrays = []
        self.fixed = {}
        for b, value in plan.consts:
            array = np.asarray(value, dtype=plan.buffers[b].dtype, order="C")  # keeps rank 0
            self.const_arrays.append(array)
            self.fixed[b] = _ffi.from_buffer(array, require_writable=False)
        offset, self.temp_offsets = 0, {}
        for buf in plan.buffers:
            if buf.role == "temp":
                self.temp_offsets[buf.id] = offset
                offset += (buf.size * buf.dtype.itemsize + ALIGN - 1) // ALIGN * ALIGN
        self.workspace = np.empty(max(offset, 1) + ALIGN, np.uint8)
        self.pointers = _ffi.new("void *[]", max(self.num_buffers, 1))
        base = self.workspace.ctypes.data
        shift = (-base) % ALIGN
        workspace_ptr = _ffi.from_buffer(self.workspace)
        for b, off in self.temp_offsets.items():
            self.fixed[b] = workspace_ptr + shift + off
        for b, value in self.fixed.items():
            self.pointers[b] = value
        self.lock = threading.Lock()
        self.program_fn = self.library.fj_program

    def __call__(self, args):
        keep = []
        arrays = {}
        with self.lock:  # one pointer array and one workspace per executable
            ptrs = self.pointers
            for b, value, dtype in zip(self.inputs, args, self.input_dtypes):
                if not (type(value) is np.ndarray and value.dtype == dtype
                        and value.flags.c_contiguous):
                    value = np.asarray(value, dtype=dtype, order="C")  # keeps rank 0
                keep.append(value)
                ptrs[b] = _ffi.from_buffer(value, require_writable=False)
            for b in self.output_buffers:
                shape, dtype, nbytes = self.out_shapes[b]
                out = arrays[b] = (np.empty(shape, dtype) if nbytes < MIN_POOLED_BYTES
                                   else pool.empty(shape, dtype, nbytes))
                ptrs[b] = _ffi.from_buffer(out)
            self.program_fn(ptrs)
        results = []
        for kind, value in self.outputs:
            if kind == "literal":
                results.append(np.asarray(value))
            elif value in arrays:
                results.append(arrays[value])
            else:  # an input or a constant passed straight through
                results.append(self._passthrough(value, args, keep))
        return results

    def _passthrough(self, buffer_id, args, keep):
        if buffer_id in self.inputs:
            return keep[self.inputs.index(buffer_id)]
        for (b, _), array in zip(self.plan.consts, self.const_arrays):
            if b == buffer_id:
                return array
        raise AssertionError("an output with no buffer")


_warned = []


def make_executable(program: Program):
    """The "c" backend's factory: compiled, or the reference interpreter (with one warning)
    where this machine has no working C compiler."""
    if toolchain() is None:
        from ..runtime.reference import ReferenceExecutable
        if not _warned:
            import warnings
            warnings.warn("fjit found no working C compiler (set CC or FJIT_CC); jit runs "
                          "Programs on the NumPy reference backend instead", RuntimeWarning,
                          stacklevel=3)
            _warned.append(True)
        return ReferenceExecutable(program)
    try:
        return CExecutable(program)
    except NotNative as why:
        # Control flow: the reference interpreter runs the loop, and each body is a
        # compiled Program of its own (executable_for on this backend).
        from ..runtime.reference import ReferenceExecutable
        log.info("compile %s: not native (%s)", program.name or "program", why)
        return ReferenceExecutable(program, control_backend="c")


def register():
    from ..runtime.backend import register_backend
    register_backend("c", make_executable)
