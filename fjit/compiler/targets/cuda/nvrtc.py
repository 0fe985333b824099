"""NVRTC through cuda-python (`cuda.bindings.nvrtc`): CUDA C++ to a cubin for one GPU
architecture (PTX only as a fallback), with or without a GPU in the machine.

On a GPU the cubin is built for the device's own compute capability: the lent machines'
driver (CUDA 13.0) refuses PTX from a newer NVRTC but loads its cubins (../shared/
TOOLCHAIN.md).  Without one, every source the cuda target generates is still compiled for
`CHECK_ARCHS`, so CUDA that does not compile fails the tests on any machine.  NVRTC reports
errors as return codes, not exceptions; they become a `CudaBuildError` with NVRTC's log.
"""
from __future__ import annotations

import functools
import os

from ... import cache
from ...cache import BuildError

CHECK_ARCHS = ("sm_80", "sm_90")   # A100 and H100: what the checks compile for


class CudaUnavailable(RuntimeError):
    """cuda-python or NVRTC is missing (the message says which, and how to install it)."""


class CudaBuildError(BuildError):
    """NVRTC could not compile a CUDA source; the message holds its log."""


@functools.lru_cache(maxsize=None)
def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        raise CudaUnavailable("the cuda target needs cuda-python and NVRTC: pip install "
                              f"'fjit[cuda]' ({e})") from None
    try:
        _check(nvrtc, nvrtc.nvrtcVersion(), "nvrtcVersion")
    except (RuntimeError, OSError) as e:   # the wheel is there, libnvrtc is not
        raise CudaUnavailable(f"NVRTC cannot be loaded: {e} (pip install "
                              "nvidia-cuda-nvrtc)") from None
    return nvrtc


def available() -> str | None:
    """None when NVRTC can compile here, else why not."""
    try:
        _nvrtc()
    except CudaUnavailable as e:
        return str(e)
    return None


def version() -> tuple[int, int]:
    nvrtc = _nvrtc()
    return tuple(_check(nvrtc, nvrtc.nvrtcVersion(), "nvrtcVersion"))


@functools.lru_cache(maxsize=None)
def include_dirs() -> tuple:
    """Where cuda_fp16.h, cuda_bf16.h and the like are (the nvidia-cuda-runtime wheel)."""
    try:
        import cuda.pathfinder as pathfinder
        found = pathfinder.find_nvidia_header_directory("cudart")
    except (ImportError, RuntimeError, AttributeError):
        found = None
    return (found,) if found else ()


def _check(nvrtc, result, what):
    error, *rest = result
    if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"{what}: {error.name}")
    return rest[0] if len(rest) == 1 else rest


def options(arch: str) -> list[bytes]:
    """The compile options for `arch` (sm_XY for a cubin, compute_XY for PTX)."""
    flags = ["--std=c++17", "-default-device", f"--gpu-architecture={arch}", "-lineinfo"]
    flags += [f"-I{d}" for d in include_dirs()]
    return [f.encode() for f in flags]


def compile(source: str, name: str = "program.cu", arch: str = "sm_90",
            report: list | None = None) -> bytes:
    """`source` compiled for `arch`: a cubin for sm_XY, PTX (NUL-terminated, as
    cuModuleLoadData takes it) for compute_XY.  Raises CudaBuildError with NVRTC's log.
    With a `report` list, ptxas's resource report (its verbose log) is appended to it."""
    nvrtc = _nvrtc()
    program = _check(nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [],
                                                     []), "nvrtcCreateProgram")
    try:
        flags = options(arch) + ([b"--ptxas-options=-v"] if report is not None else [])
        (error,) = nvrtc.nvrtcCompileProgram(program, len(flags), flags)
        if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CudaBuildError(f"NVRTC could not compile {name} for {arch} "
                                 f"({error.name}):\n{_log(nvrtc, program)}")
        if report is not None:
            report.append(_log(nvrtc, program))
        if arch.startswith("sm_"):
            size = _check(nvrtc, nvrtc.nvrtcGetCUBINSize(program), "nvrtcGetCUBINSize")
            out = bytearray(size)   # not b" " * size: a 1-byte bytes is CPython's shared one
            _check(nvrtc, nvrtc.nvrtcGetCUBIN(program, out), "nvrtcGetCUBIN")
        else:
            size = _check(nvrtc, nvrtc.nvrtcGetPTXSize(program), "nvrtcGetPTXSize")
            out = bytearray(size)
            _check(nvrtc, nvrtc.nvrtcGetPTX(program, out), "nvrtcGetPTX")
        return bytes(out)
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def _log(nvrtc, program) -> str:
    size = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
    log = bytearray(size)
    _check(nvrtc, nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
    return bytes(log).rstrip(b"\0 ").decode(errors="replace")


@functools.lru_cache(maxsize=32)
def resources(source: str, arch: str = CHECK_ARCHS[-1]) -> dict:
    """Per kernel of `source` compiled for `arch` (an sm_XY), what ptxas reports it uses:
    {"registers": per thread, "shared": static shared memory bytes, "stack": stack frame
    bytes, "spills": bytes spilled (stores + loads)} -- what decides how many threads a
    multiprocessor keeps resident.  NVRTC reports it without a GPU."""
    report = []
    compile(source, "resources.cu", arch, report)
    usage, current = {}, None
    for line in report[0].splitlines():
        words = line.replace(",", " ").split()
        if "Compiling entry function" in line:
            current = line.split("'")[1]
            usage[current] = {"registers": 0, "shared": 0, "stack": 0, "spills": 0}
        elif current is not None and "Used" in words and "registers" in words:
            usage[current]["registers"] = int(words[words.index("Used") + 1])
            if "smem" in words:
                usage[current]["shared"] = int(words[words.index("smem") - 2])
        elif current is not None and "stack" in words and "spill" in words:
            numbers = [int(w) for w in words if w.isdigit()]
            usage[current]["stack"] = numbers[0]
            usage[current]["spills"] = sum(numbers[1:3])
    return usage


def check(source: str, name: str = "program.cu", archs=CHECK_ARCHS) -> dict:
    """Compile `source` for each of `archs` (raising CudaBuildError on the first failure);
    the cubins' sizes by arch."""
    return {arch: len(compile(source, name, arch)) for arch in archs}


class _NvrtcToolchain:
    """What `cache.build_into_cache` needs to keep cubins for `arch` on disk: a compile step
    and a key naming NVRTC's version, the options and the architecture."""

    def __init__(self, arch: str):
        self.arch = arch
        self.key = "nvrtc %d.%d %s" % (*version(), b" ".join(options(arch)).decode())

    def compile(self, source_paths, output_path, unit_flags=None):
        with open(source_paths[0], encoding="utf-8") as f:
            image = compile(f.read(), os.path.basename(output_path) + ".cu", self.arch)
        with open(output_path, "wb") as f:
            f.write(image)


def cached_image(source: str, arch: str) -> bytes:
    """`source` compiled for `arch` through the disk cache (the C target's guarantees: named
    by content, checked before use, written atomically)."""
    toolchain = _NvrtcToolchain(arch)
    key = cache.entry_key(source, toolchain.key)
    image = cache.verified_payload(key)
    if image is None:
        cache.build_into_cache(key, source, toolchain)
        image = cache.verified_payload(key)
        if image is None:
            raise CudaBuildError(f"fjit cached a {arch} image under {key} but cannot read it")
    return image
