"""The "c" backend: compile a Program into one C library and run it in one native call.

Compilation: the neutral pipeline (fjit/compiler/pipeline.py) -> render C -> build (or load
from the disk cache).  Execution: a pointer per buffer (inputs, constants, outputs, one
reused workspace for temporaries) and a single call of `fj_program`.
"""
from __future__ import annotations

import functools
import threading
import time
import warnings
import weakref
from collections import OrderedDict

import cffi
import numpy as np

from .... import recompiles
from ....config import config
from ....core import Program
from ....devices import CPU
from ....runtime.backend import note_background_work, register_backend
from ....runtime.dispatch import worker_for
from ....runtime.memory import MIN_POOLED_BYTES, pool
from ....runtime.profile import profile_for
from ....runtime.reference import ReferenceExecutable
from ... import cache, workspace
from ...checked import KernelChecker
from ...pipeline import NotNative, check_fits_in_memory, compile_log, lower_program
from ...schedule import Options
from ...target import Target
from . import C_TARGET, render
from .blas import gemm_pointers
from .toolchain import exiting, toolchain, vector_bytes

_ffi = cffi.FFI()
_ffi.cdef("int fj_program(void **buffers, const int64_t *sizes, const double *constants);"
          "int fj_step(int64_t k, void **buffers, const int64_t *sizes, "
          "const double *constants);"
          "void fj_set_blas(void *sgemm, void *dgemm); const char *fj_key(void);")

ALIGN = 64
# Work (elements x body cost; GEMMs: multiply-adds) from which a call runs on the device's
# worker thread: about 0.1 ms here, well above the hand-off's tens of microseconds.
ASYNC_MIN_WORK = 1 << 18


class Compiled:
    """What compiling a Program produced (kept for introspection: `jit(f).lower(...)`)."""

    def __init__(self, program, flat, plan, scheduled, units, key, sizes, constants):
        self.program, self.flat, self.plan = program, flat, plan
        self.scheduled, self.units, self.key = scheduled, units, key
        self.sizes, self.constants = sizes, constants   # fj_program's N and F

    @property
    def source(self) -> str:
        """The translation units, one after the other."""
        return "\n".join(self.units)

    @property
    def vector_bytes(self) -> int:
        """The SIMD width `omp simd` loops get on this machine (lower().explain())."""
        return vector_bytes(toolchain().cc)


def compile_program(program: Program, options: Options | None = None,
                    target: Target = C_TARGET) -> Compiled:
    tc = toolchain()
    if tc is None:
        raise RuntimeError("no working C compiler was found (set CC or FJIT_CC)")
    start = time.perf_counter()
    flat, plan, scheduled = lower_program(program, target, options)
    lowered = time.perf_counter()
    rendered = render.render_program(program.name or "program", plan, scheduled, tc, target)
    key = cache.entry_key(rendered.source, tc.key)
    compiled = Compiled(program, flat, plan, scheduled, _keyed(rendered.units, key), key,
                        rendered.sizes, rendered.constants)
    compiled.rendered = rendered
    compiled.timings = {"lower": lowered - start, "render": time.perf_counter() - lowered}
    compiled.functions = rendered.functions
    return compiled


def _keyed(units, key) -> list:
    """The units of a library whose `fj_key` answers `key` (checked when it is loaded)."""
    units = list(units)
    units[0] += f'\nconst char *fj_key(void) {{ return "{key}"; }}\n'
    return units


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
_functions_seen: set = set()   # hashes of the kernel functions built or loaded so far
_build_lock = threading.Lock()


def _remember(library):
    _loaded_libraries[library.key] = library
    _loaded_libraries.move_to_end(library.key)
    while len(_loaded_libraries) > config.library_cache_size:
        _loaded_libraries.popitem(last=False)  # unloaded once no executable uses it


def load_library(compiled: Compiled, build: bool = True):
    """The library for `compiled`: from this process, from the disk cache, or built now
    (with `build` False: None rather than built).  Nothing from the disk is loaded before
    `cache.verified_entry` has checked it."""
    return _load(compiled.key, compiled.units, toolchain(), build)


def load_quick_library(compiled: Compiled):
    """The first tier's library for `compiled` (Toolchain.quick: -O1), found or built; its
    units of kernels whose results depend on vectorisation are compiled with exactly the
    optimised build's flags (render.split_units)."""
    optimised = toolchain()
    tc = optimised.quick()
    unit_flags = [optimised.compile_flags if sensitive else None
                  for sensitive in compiled.rendered.sensitive_units]
    key = cache.entry_key(compiled.rendered.source, f"{tc.key}\nunits {unit_flags}")
    return _load(key, _keyed(compiled.rendered.units, key), tc, True, unit_flags)


def _load(key, units, tc, build, unit_flags=None):
    with _build_lock:
        library = _loaded_libraries.get(key)
        if library is not None:
            _loaded_libraries.move_to_end(key)
            return library, "memory"
        path, how = cache.verified_entry(key), "disk"
        lib = _open_verified(path, key) if path else None
        if lib is None:
            if not build:
                return None, "absent"
            start = time.perf_counter()
            path = cache.build_into_cache(key, units, tc, unit_flags)
            lib = _open_verified(path, key)
            if lib is None:
                raise RuntimeError(f"fjit built {path} but cannot load it")
            how = f"built in {time.perf_counter() - start:.3f}s"
        return _registered(lib, key, tc), how


def _registered(lib, key, tc):
    _set_blas(lib)
    library = Library(lib, key, tc.can_unload)
    _remember(library)
    return library


# Tiered compilation: the optimised (-O3) libraries being built in the background, by key,
# with the executables running the quick tier meanwhile (weak references) that then switch.
_optimizing: dict = {}


def _optimize_later(compiled, executable):
    """Build `compiled`'s -O3 library on a thread at low priority and switch `executable`
    (and any other waiting for the same library) to it once it is loaded."""
    key = compiled.key
    with _build_lock:
        library = _loaded_libraries.get(key)
        if library is not None:   # built meanwhile (by another executable's thread)
            executable.switch_to(library)
            return
        waiting = _optimizing.get(key)
        if waiting is not None:
            waiting.append(weakref.ref(executable))
            return
        waiting = _optimizing[key] = [weakref.ref(executable)]
    units, tc = compiled.units, toolchain()
    name = compiled.program.name or "program"

    def run():
        start = time.perf_counter()
        try:
            path = cache.build_into_cache(key, units, tc.background())
            with _build_lock:
                library = _loaded_libraries.get(key)
                if library is None:
                    lib = _open_verified(path, key)
                    if lib is None:
                        raise RuntimeError(f"fjit built {path} but cannot load it")
                    library = _registered(lib, key, tc)
                switching = [e for e in (ref() for ref in _optimizing.pop(key)) if e]
            for exe in switching:
                exe.switch_to(library)
            compile_log().info("compile %s: optimised library %s built in the background "
                               "in %.3fs; %d executables switched to it", name, key,
                               time.perf_counter() - start, len(switching))
        except Exception as error:  # noqa: BLE001 -- the quick tier keeps running
            with _build_lock:
                _optimizing.pop(key, None)
            if not exiting():   # else the compilers were stopped on purpose
                warnings.warn(f"fjit: the optimised build of {name} failed ({error}); it "
                              "keeps running the quickly built code", RuntimeWarning)

    note_background_work(threading.Thread(target=run, name=f"fjit-O3-{key[:8]}", daemon=True))


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
    sgemm, dgemm = gemm_pointers()
    lib.fj_set_blas(sgemm, dgemm)


class _PageToucher:
    """Writes zeros over a new workspace on a thread, a chunk at a time, so that its pages
    are mapped while the C compiler runs.  `stop()` ends it early: when the library was in
    memory or on disk there is no compiler to hide behind, and the first call's own page
    faults cost less than zeroing it all first (LSGAN at batch 32: 4.8 s of its first call
    went to zeroing a workspace nothing was compiled for)."""

    CHUNK = 1 << 24

    def __init__(self, workspace):
        self._workspace, self._stopping = workspace, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        flat = self._workspace.reshape(-1)
        for start in range(0, flat.size, self.CHUNK):
            if self._stopping.is_set():
                return
            flat[start:start + self.CHUNK] = 0

    def stop(self):
        self._stopping.set()
        self._thread.join()


class CExecutable:
    """A compiled Program: call it with NumPy arrays (one per invar), get NumPy arrays."""

    def __init__(self, program: Program, target: Target = C_TARGET):
        self.target = target
        compiled = compile_program(program, target=target)
        check_fits_in_memory(compiled.program, compiled.flat, compiled.plan,
                             compiled.scheduled)
        # temporaries share bytes where their lives do not overlap (fjit/compiler/workspace.py)
        self.temp_offsets, offset = workspace.layout(compiled.plan, compiled.scheduled, ALIGN)
        self.workspace = np.empty(max(offset, 1) + ALIGN, np.uint8)
        # its pages are touched while the C compiler runs, not in the first call (ResNet-18's
        # 218 MB took 0.5 s of page faults there); not when the library is found at once
        touching = _PageToucher(self.workspace)
        loading = time.perf_counter()
        # Tiered: a Program large enough to take seconds to build at -O3 first runs on -O1
        # code, the -O3 library replacing it when built in the background.
        tiered = config.tiered_compilation and compiled.rendered.tiered   # render.py
        try:
            self.library, how = load_library(compiled, build=not tiered)  # held while we live
            if self.library is None:
                self.library, how = load_quick_library(compiled)
                how = f"quick tier (-O1) {how}"
        finally:
            touching.stop()
        # where the first call's time went (bench/model_steps.py reads these)
        self.timings = dict(compiled.timings, load=time.perf_counter() - loading)
        new = [f for f in compiled.functions if f not in _functions_seen]
        _functions_seen.update(compiled.functions)
        self.stats = {"kernels": len(compiled.scheduled),
                      "functions": len(compiled.functions), "units": len(compiled.units)}
        name, hit = program.name or "program", how.endswith(("memory", "disk"))
        generic = f"; shape-generic over {compiled.flat.varying}" if compiled.flat.varying \
            else ""
        compile_log().info("compile %s: %d kernels (%d functions, %d new to this process, in "
                           "%d units%s), %s, cache %s (lower %.3fs, render %.3fs, %s %.3fs)",
                           name, len(compiled.scheduled), len(compiled.functions), len(new),
                           len(compiled.units), generic, compiled.key,
                           "hit" if hit else f"miss, {how}", self.timings["lower"],
                           self.timings["render"], "load" if hit else "build and load",
                           self.timings["load"])
        if not hit and config.explain_recompiles:
            recompiles.logger().info(
                "%s: native build of library %s (no library with this code in memory or on "
                "disk): %d of its %d kernel functions are new to this process%s", name,
                compiled.key, len(new), len(compiled.functions),
                f"; its code is shape-generic over the sizes that varied between calls: "
                f"{compiled.flat.varying}" if compiled.flat.varying else "")
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
        self.pointers = _ffi.new("void *[]", max(self.num_buffers, 1))
        base = self.workspace.ctypes.data
        shift = (-base) % ALIGN
        workspace_ptr = _ffi.from_buffer(self.workspace)
        for b, off in self.temp_offsets.items():
            self.fixed[b] = workspace_ptr + shift + off
        for b, value in self.fixed.items():
            self.pointers[b] = value
        # the kernels' parameters: this Program's sizes and constants (the library may be
        # shared with Programs of other sizes)
        self.sizes = np.array(compiled.sizes or [0], np.int64)
        self.constants = np.array(compiled.constants or [0.0], np.float64)
        self.sizes_ptr = _ffi.cast("const int64_t *", self.sizes.ctypes.data)
        self.constants_ptr = _ffi.cast("const double *", self.constants.ctypes.data)
        self.lock = threading.Lock()
        self.program_fn = self.library.fj_program
        self.name = program.name or "program"
        # worth a hand-off to the device's worker thread (fjit/runtime/dispatch.py)?
        self.work = sum(sk.work for sk in compiled.scheduled)
        self.asynchronous = self.work >= ASYNC_MIN_WORK
        self.optimized = self.library.key == compiled.key
        if not self.optimized:
            _optimize_later(compiled, self)

    def switch_to(self, library):
        """Run `library` (the optimised tier of the same source) from the next call on."""
        with self.lock:
            self.library, self.program_fn = library, library.fj_program
            self.optimized = True

    def __call__(self, args):
        """Run now, on this thread.  One loop, not the helpers `submit` uses: this is the
        path of every small call (W7 in bench/), where each Python call costs."""
        keep, arrays = [], {}
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
            self.program_fn(ptrs, self.sizes_ptr, self.constants_ptr)
        results = []   # _results, inlined: a method call here shows in W7
        for kind, value in self.outputs:
            if kind == "literal":
                results.append(np.asarray(value))
            elif value in arrays:
                results.append(arrays[value])
            else:  # an input or a constant passed straight through
                results.append(self._passthrough(value, args, keep))
        return results

    def submit(self, args, after=()):
        """Start the call on the device's worker and return its outputs at once, with the
        `Pending` that says when they are filled.  `args` may be outputs of earlier submitted
        calls that are still being computed (their Pendings in `after`): the worker runs
        calls in order."""
        keep = self._inputs(args)
        arrays = self._outputs()
        pending = worker_for(CPU).submit(lambda: self._run(keep, arrays), self.name, after)
        return self._results(args, keep, arrays), pending

    def _inputs(self, args):
        keep = []
        for value, dtype in zip(args, self.input_dtypes):
            if not (type(value) is np.ndarray and value.dtype == dtype
                    and value.flags.c_contiguous):
                value = np.asarray(value, dtype=dtype, order="C")  # keeps rank 0
            keep.append(value)
        return keep

    def _outputs(self):
        arrays = {}
        for b in self.output_buffers:
            shape, dtype, nbytes = self.out_shapes[b]
            arrays[b] = (np.empty(shape, dtype) if nbytes < MIN_POOLED_BYTES
                         else pool.empty(shape, dtype, nbytes))
        return arrays

    def _run(self, keep, arrays):
        with self.lock:  # one pointer array and one workspace per executable
            self.program_fn(self._bind(keep, arrays), self.sizes_ptr, self.constants_ptr)

    def _bind(self, keep, arrays):
        """The pointer table with this call's inputs and outputs in it (hold self.lock)."""
        ptrs = self.pointers
        for b, value in zip(self.inputs, keep):
            ptrs[b] = _ffi.from_buffer(value, require_writable=False)
        for b, out in arrays.items():
            ptrs[b] = _ffi.from_buffer(out)
        return ptrs

    def _results(self, args, keep, arrays):
        results = []
        for kind, value in self.outputs:
            if kind == "literal":
                results.append(np.asarray(value))
            elif value in arrays:
                results.append(arrays[value])
            else:  # an input or a constant passed straight through
                results.append(self._passthrough(value, args, keep))
        return results

    def checked(self, program):
        """This executable in checked mode (fjit/compiler/checked.py): the same library, its
        kernels run one at a time through `fj_step` against the reference interpreter."""
        return CheckedCExecutable(self, program)

    def profiled(self, program):
        """This executable timing each kernel (fjit/runtime/profile.py): the same library,
        its kernels run one at a time through `fj_step`."""
        return ProfiledCExecutable(self, program)

    def _passthrough(self, buffer_id, args, keep):
        if buffer_id in self.inputs:
            return keep[self.inputs.index(buffer_id)]
        for (b, _), array in zip(self.plan.consts, self.const_arrays):
            if b == buffer_id:
                return array
        raise AssertionError("an output with no buffer")


class CheckedCExecutable:
    """A CExecutable whose calls run kernel by kernel, each checked against the reference
    interpreter.  The Program is lowered again (deterministically: the same key) for the
    flat Program and kernels that the executable does not keep."""

    asynchronous = False

    def __init__(self, base: CExecutable, program: Program):
        compiled = compile_program(program, target=base.target)
        if compiled.key != base.key:
            raise RuntimeError(f"check_mode: lowering jit({base.name}) again gave library "
                               f"{compiled.key}, not {base.key}: the compiler is not "
                               "deterministic")
        self.base = base
        self.input_dtypes = base.input_dtypes
        self.checker = KernelChecker(base.name, compiled.flat, compiled.plan,
                                     compiled.scheduled)
        shift = (-base.workspace.ctypes.data) % ALIGN
        self.temps = {}   # temporaries as views of the workspace
        for b, off in base.temp_offsets.items():
            buf = base.plan.buffers[b]
            nbytes = buf.size * buf.dtype.itemsize
            start = shift + off
            self.temps[b] = base.workspace[start:start + nbytes].view(buf.dtype).reshape(
                buf.shape)

    def __call__(self, args):
        base = self.base
        keep = base._inputs(args)
        arrays = base._outputs()
        with base.lock:
            ptrs = base._bind(keep, arrays)
            buffers = {**self.temps, **arrays}

            def step(k):
                if base.library.lib.fj_step(k, ptrs, base.sizes_ptr, base.constants_ptr):
                    raise RuntimeError(f"check_mode: jit({base.name}) has no kernel {k}")

            compiled = self.checker.run(keep, buffers, step)
        for b, value in compiled.items():
            arrays[b][...] = value
        return base._results(args, keep, arrays)


def _kernel_description(sk):
    """(name, kind, what it computes, the user's line) of a scheduled kernel, for reports."""
    what = sk.comment
    if sk.kind == "gemm" and sk.gemm is not None:
        g = sk.gemm
        batch = f"{g.batch} x " if g.batch > 1 else ""
        what = f"{batch}{g.m} x {g.n} x {g.k}" + (f"; {what}" if what else "")
    return sk.name, sk.kind, what, str(sk.source) if sk.source is not None else ""


class ProfiledCExecutable:
    """A CExecutable whose calls run kernel by kernel, timing each into the Program's
    profile record.  Like checked mode, it lowers the Program again (deterministically) for
    the kernels' descriptions, which the executable does not keep."""

    asynchronous = False

    def __init__(self, base: CExecutable, program: Program):
        compiled = compile_program(program, target=base.target)
        self.base = base
        self.input_dtypes = base.input_dtypes
        self.record = profile_for(base.name, base.key,
                                  [_kernel_description(sk) for sk in compiled.scheduled])

    def __call__(self, args):
        base = self.base
        keep = base._inputs(args)
        arrays = base._outputs()
        clock = time.perf_counter
        with base.lock:
            ptrs = base._bind(keep, arrays)
            step, sizes, constants = base.library.lib.fj_step, base.sizes_ptr, \
                base.constants_ptr
            times = []
            for k in range(len(self.record.kernels)):
                start = clock()
                step(k, ptrs, sizes, constants)
                times.append(clock() - start)
        self.record.add(times)
        return base._results(args, keep, arrays)


_warned = []


def executable_factory(target: Target = C_TARGET):
    """The backend factory for C `target`: `program -> executable`, compiled, or the
    reference interpreter (with one warning) where this machine has no working C compiler."""
    return functools.partial(_make_executable, target=target)


def _make_executable(program: Program, target: Target):
    if toolchain() is None:
        if not _warned:
            warnings.warn("fjit found no working C compiler (set CC or FJIT_CC); jit runs "
                          "Programs on the NumPy reference backend instead", RuntimeWarning,
                          stacklevel=3)
            _warned.append(True)
        return ReferenceExecutable(program)
    try:
        return CExecutable(program, target)
    except NotNative as why:
        # Control flow: the reference interpreter runs the loop, and each body is a
        # compiled Program of its own (executable_for on this backend).
        compile_log().info("compile %s: not native (%s)", program.name or "program", why)
        return ReferenceExecutable(program, control_backend=target.name)


def register():
    register_backend("c", executable_factory(C_TARGET),
                     lower=functools.partial(compile_program, target=C_TARGET))
