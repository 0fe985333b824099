"""CUDA on the CPU: the very CUDA source fjit generates, built by the system C++ compiler
against fjit's emulator header (`emu/cuda_emu.h`: fibers per CUDA thread, counting barriers,
warp shuffles, shared memory, atomics) and launched with the same `void **` argument block
as `cuLaunchKernel`.  So the cuda target is tested on every machine, with or without a GPU
(`FJIT_CUDA_EMULATION=1`).  Libraries go through the compile cache like the C target's:
named by a hash of the source and the compiler, checked before they are loaded.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading

import cffi
import numpy as np

from ... import cache
from ....config import config

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "emu", "cuda_emu.h")
STUBS = os.path.join(HERE, "emu", "include")   # cuda_fp16.h & co., standing for the real ones

_lock = threading.Lock()
_modules: dict = {}   # key -> EmulatedModule, loaded once per process


class EmulationError(RuntimeError):
    """A kernel launch the emulator could not complete (a deadlock at barriers: threads of a
    block waiting at different ones), naming the kernel."""


class CxxUnavailable(RuntimeError):
    """No C++ compiler to build the emulated kernels with."""


def cxx() -> str:
    """The C++ compiler: the `cxx` option ($FJIT_CXX, else $CXX), else g++."""
    if config.cxx:
        if shutil.which(config.cxx):
            return config.cxx
        raise CxxUnavailable(f"the C++ compiler {config.cxx!r} (option cxx, FJIT_CXX or CXX) "
                             "is not on the PATH")
    if shutil.which("g++"):
        return "g++"
    raise CxxUnavailable("the CUDA emulator needs a C++ compiler (g++, or set FJIT_CXX)")


class _EmulatorToolchain:
    """What `cache.build_into_cache` needs to build an emulated module: its compile step and
    a key naming the compiler, the header and the flags (all part of an entry's name)."""

    def __init__(self, compiler: str, sanitize: bool):
        self.cxx = compiler
        # -fno-gnu-unique: each module keeps its own emulator state (the thread-local block,
        # the error text); as STB_GNU_UNIQUE symbols every module loaded shared one copy
        self.flags = ["-std=c++17", "-O1", "-fPIC", "-shared", "-w", "-fno-gnu-unique",
                      "-include", HEADER, "-I", STUBS, "-x", "c++"]
        if sanitize:
            self.flags[1:2] = ["-O1", "-g", "-fsanitize=address,undefined",
                               "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
        headers = [HEADER] + sorted(os.path.join(STUBS, n) for n in os.listdir(STUBS))
        text = "".join(open(h, encoding="utf-8").read() for h in headers)
        version = subprocess.run([self.cxx, "--version"], capture_output=True,
                                 text=True).stdout.splitlines()[:1]
        self.key = cache.entry_key(text + "\0" + " ".join(self.flags), " ".join(version))

        self._header = None   # the precompiled header's path, once made

    def _precompiled_header(self) -> str:
        """The emulator header, precompiled into the cache directory once (it is most of
        every module's compile time: 0.55 s per module without it, 0.22 s with it, measured
        here); gcc uses `<name>.gch` beside the header it is told to include when it matches
        the flags, else reads the copy of the header beside it.  Published atomically, like
        a library; where it cannot be built, the header is used as it is."""
        if self._header is not None:
            return self._header
        directory = os.path.join(cache.cache_dir(), f"emu-{self.key[:16]}")
        header = os.path.join(directory, "cuda_emu.h")
        if not os.path.exists(header + ".gch"):
            os.makedirs(directory, mode=0o700, exist_ok=True)
            with open(HEADER, encoding="utf-8") as f:
                cache.write_atomically(header, f.read().encode())
            flags = [f for f in self.flags if f not in ("-shared", "-include", HEADER)]
            flags[flags.index("-x") + 1] = "c++-header"
            temporary = cache.temp_path(directory, "cuda_emu.h.gch")
            done = subprocess.run([self.cxx, *flags, HEADER, "-o", temporary],
                                  capture_output=True, text=True)
            if done.returncode == 0:
                os.replace(temporary, header + ".gch")
            else:
                if os.path.exists(temporary):
                    os.remove(temporary)
                header = HEADER
        self._header = header
        return header

    def compile(self, source_paths, output_path, unit_flags=None):
        if isinstance(source_paths, str):
            source_paths = [source_paths]
        flags = list(self.flags)
        flags[flags.index(HEADER)] = self._precompiled_header()
        done = subprocess.run([self.cxx, *flags, *source_paths, "-o", output_path],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise cache.BuildError("the C++ compiler failed on emulated CUDA source:\n"
                                   + done.stderr[-4000:])


@functools.lru_cache(maxsize=None)
def _toolchain(compiler: str, sanitize: bool) -> _EmulatorToolchain:
    return _EmulatorToolchain(compiler, sanitize)


def exports(kernels, key: str) -> str:
    """What the emulator build appends to a CUDA source: a C entry per kernel
    (`fj_emu_launch_<name>`), the error text and the key the loaded library answers."""
    lines = [f"FJ_EMU_EXPORT({k})" for k in kernels]
    lines += ["FJ_EMU_ERROR_ENTRY", f'extern "C" const char *fj_key(void) {{ return "{key}"; }}']
    return "\n" + "\n".join(lines) + "\n"


def build(source: str, kernels, sanitize: bool = False) -> "EmulatedModule":
    """The emulated module of CUDA `source` with `__global__` functions `kernels` (their
    `extern "C"` names), built once (memory, then the disk cache, then the compiler)."""
    toolchain = _toolchain(cxx(), sanitize)
    kernels = list(kernels)
    key = cache.entry_key(source + "\0" + "\n".join(kernels), toolchain.key)
    with _lock:
        module = _modules.get(key)
        if module is not None:
            return module
        path = cache.verified_entry(key)
        module = EmulatedModule.open(path, key, kernels) if path else None
        if module is None:
            path = cache.build_into_cache(key, source + exports(kernels, key), toolchain)
            module = EmulatedModule.open(path, key, kernels)
            if module is None:
                raise RuntimeError(f"fjit built {path} but cannot load it")
        _modules[key] = module
        return module


class Pointer:
    """A device address passed to a kernel as a pointer argument (the emulated device's
    memory is host memory, so it is a host address)."""

    __slots__ = ("address",)

    def __init__(self, address: int):
        self.address = int(address)

    def __repr__(self):
        return f"Pointer(0x{self.address:x})"


class EmulatedModule:
    """The kernels of one emulated CUDA source, launched like `cuLaunchKernel`."""

    def __init__(self, ffi, lib, kernels, key):
        self._ffi, self.lib, self.key = ffi, lib, key
        self._functions = {k: getattr(lib, f"fj_emu_launch_{k}") for k in kernels}
        self._arity = {k: getattr(lib, f"fj_emu_arity_{k}")() for k in kernels}

    @classmethod
    def open(cls, path, key, kernels):
        """The module at `path` if it loads and answers `key`, else None."""
        ffi = cffi.FFI()
        ffi.cdef("const char *fj_key(void); const char *fj_emu_error(void);\n" + "\n".join(
            f"int fj_emu_launch_{k}(unsigned, unsigned, unsigned, unsigned, unsigned, "
            f"unsigned, size_t, void **); int fj_emu_arity_{k}(void);" for k in kernels))
        try:
            lib = ffi.dlopen(path)
            if ffi.string(lib.fj_key()).decode() != key:
                return None
            return cls(ffi, lib, kernels, key)
        except (OSError, AttributeError, cffi.FFIError):
            return None

    def launch(self, kernel: str, grid, block, args, shared_bytes: int = 0):
        """Run `kernel` on a `grid` of `block`s (3-tuples or ints); `args` in the kernel's
        parameter order: NumPy arrays or `Pointer`s (passed as device pointers: under
        emulation, host memory) and NumPy scalars (passed by value, with their own type,
        which must be the parameter's: np.float32 for a float, np.int64 for a long long)."""
        function = self._functions.get(kernel)
        if function is None:
            raise KeyError(f"no kernel {kernel!r} in this module: {sorted(self._functions)}")
        if len(args) != self._arity[kernel]:
            raise TypeError(f"launch {kernel}: it takes {self._arity[kernel]} arguments, "
                            f"{len(args)} given")
        grid, block = dim3(grid), dim3(block)
        check_configuration(kernel, grid, block, shared_bytes)
        ffi = self._ffi
        holders, params = [], ffi.new("void *[]", max(len(args), 1))
        for k, a in enumerate(args):
            if isinstance(a, np.ndarray):
                holder = ffi.new("void **", ffi.from_buffer(a))   # a pointer, by value
                holders.append(a)
            elif isinstance(a, Pointer):
                holder = ffi.new("void **", ffi.cast("void *", a.address))
            else:
                if not isinstance(a, np.generic) or a.dtype.kind not in "biuf":
                    raise TypeError(f"launch {kernel}: argument {k} must be a NumPy array or "
                                    f"a NumPy scalar of the parameter's type (np.float32, "
                                    f"np.int64, ...), not {type(a).__name__}")
                scalar = np.asarray(a)
                scalar = scalar.reshape(1).copy()
                holders.append(scalar)
                holder = ffi.from_buffer(scalar)
            holders.append(holder)
            params[k] = ffi.cast("void *", holder)
        if function(*grid, *block, shared_bytes, params):
            raise EmulationError(f"CUDA kernel {kernel} (grid {grid}, block {block}): "
                                 f"{ffi.string(self.lib.fj_emu_error()).decode()}")


# What every CUDA device since compute capability 7.0 accepts (a GPU rejects more).
MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIMS = (1024, 1024, 64)
MAX_GRID_DIMS = (2**31 - 1, 65535, 65535)
MAX_SHARED_BYTES = 48 * 1024   # without opting in to more


def check_configuration(kernel, grid, block, shared_bytes):
    """Refuse what a GPU would refuse, so emulated tests cannot pass launches a device fails."""
    problems = []
    if any(n < 1 for n in grid + block):
        problems.append("a dimension of 0")
    if block[0] * block[1] * block[2] > MAX_THREADS_PER_BLOCK:
        problems.append(f"more than {MAX_THREADS_PER_BLOCK} threads per block")
    if any(n > m for n, m in zip(block, MAX_BLOCK_DIMS)) or \
            any(n > m for n, m in zip(grid, MAX_GRID_DIMS)):
        problems.append("a dimension beyond CUDA's limits")
    if shared_bytes > MAX_SHARED_BYTES:
        problems.append(f"{shared_bytes} bytes of dynamic shared memory (at most "
                        f"{MAX_SHARED_BYTES})")
    if problems:
        raise ValueError(f"launch {kernel}: grid {grid}, block {block}: "
                         + "; ".join(problems))


def dim3(d):
    d = (d,) if isinstance(d, (int, np.integer)) else tuple(d)
    return tuple(int(x) for x in d) + (1,) * (3 - len(d))
