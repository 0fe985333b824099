"""The CUDA target's toolchain (issue 16), on machines with or without a GPU: NVRTC compiles
CUDA C++ for sm_80 and sm_90, and the emulator runs the same source on the CPU (values
against NumPy; a deadlock or a bad argument is a Python error, an out-of-bounds read is
caught by the sanitizer build)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fjit.compiler.targets.cuda import driver, emulator, nvrtc

pytestmark = pytest.mark.c_backend

needs_nvrtc = pytest.mark.skipif(nvrtc.available() is not None,
                                 reason=f"NVRTC unavailable: {nvrtc.available()}")

SOURCE = r"""
#include <cuda_fp16.h>
extern "C" __global__ void block_sum(const float *x, float *out, long long n) {
  __shared__ float part[32];
  float s = 0.0f;
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    s += x[i];
  for (int d = 16; d > 0; d /= 2) s += __shfl_down_sync(0xffffffffu, s, d);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    s = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
    for (int d = 16; d > 0; d /= 2) s += __shfl_down_sync(0xffffffffu, s, d);
    if (threadIdx.x == 0) atomicAdd(out, s);
  }
}
extern "C" __global__ void half_tanh(const __half *x, float *y, int n, float scale) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = tanhf(__half2float(x[i])) * scale;
}
extern "C" __global__ void stuck(float *x) {   /* lane 0 at the block barrier, 1..31 in a
                                                  shuffle that needs lane 0: a deadlock */
  if (threadIdx.x == 0) __syncthreads();
  else x[0] = __shfl_sync(0xffffffffu, x[0], 0);
}
"""
KERNELS = ["block_sum", "half_tanh", "stuck"]


@pytest.fixture
def module(tmp_path, set_option):
    set_option("cache_dir", str(tmp_path / "cache"))
    return emulator.build(SOURCE, KERNELS)


@needs_nvrtc
def test_nvrtc_compiles_cubins_for_the_checked_architectures():
    sizes = nvrtc.check(SOURCE, "toolchain.cu")
    assert set(sizes) == {"sm_80", "sm_90"} and all(n > 1000 for n in sizes.values())
    assert nvrtc.compile(SOURCE, arch="sm_80")[:4] == b"\x7fELF"
    ptx = nvrtc.compile(SOURCE, arch="compute_90")
    assert b".target sm_90" in ptx and ptx.endswith(b"\0")


@needs_nvrtc
def test_a_compile_error_is_a_typed_error_with_nvrtcs_log():
    bad = 'extern "C" __global__ void k(float *x) {\n  x[0] = undefined_name;\n}\n'
    with pytest.raises(nvrtc.CudaBuildError) as error:
        nvrtc.compile(bad, "bad.cu", "sm_90")
    text = str(error.value)
    assert "bad.cu(2)" in text and 'identifier "undefined_name" is undefined' in text
    assert "sm_90" in text


def test_the_emulator_runs_cuda_source_with_shuffles_barriers_and_atomics(module):
    x = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    out = np.zeros(1, np.float32)
    module.launch("block_sum", 16, 128, [x, out, np.int64(x.size)])
    np.testing.assert_allclose(out[0], x.astype(np.float64).sum(), rtol=1e-5, atol=1e-3)


def test_the_emulator_passes_scalars_by_type_and_reads_half_precision(module):
    x = np.linspace(-3, 3, 1000).astype(np.float16)
    y = np.zeros(1000, np.float32)
    module.launch("half_tanh", (4, 1, 1), (256, 1, 1), [x, y, np.int32(1000), np.float32(2.5)])
    np.testing.assert_allclose(y, np.tanh(x.astype(np.float32)) * 2.5, rtol=1e-6, atol=1e-6)


def test_a_deadlock_is_an_error_naming_the_kernel_and_the_module_still_works(module):
    with pytest.raises(emulator.EmulationError, match=r"stuck .*deadlock.*block \(0,0,0\)"):
        module.launch("stuck", 1, 64, [np.zeros(1, np.float32)])
    out = np.zeros(1, np.float32)
    module.launch("block_sum", 1, 64, [np.ones(10, np.float32), out, np.int64(10)])
    assert out[0] == 10


def test_bad_launches_are_typed_errors(module):
    with pytest.raises(KeyError, match="no kernel 'nope'"):
        module.launch("nope", 1, 1, [])
    with pytest.raises(TypeError, match="argument 0 must be a NumPy array or a NumPy scalar"):
        module.launch("stuck", 1, 32, ["text"])


def test_emulated_modules_are_cached_on_disk(tmp_path, set_option, monkeypatch):
    set_option("cache_dir", str(tmp_path / "cache"))
    monkeypatch.setattr(emulator, "_modules", {})    # nothing loaded: this builds
    first = emulator.build(SOURCE, KERNELS)
    monkeypatch.setattr(emulator, "_modules", {})    # as a new process would start
    monkeypatch.setattr(emulator._EmulatorToolchain, "compile",
                        lambda *a: pytest.fail("rebuilt a module that is in the cache"))
    again = emulator.build(SOURCE, KERNELS)
    assert again.key == first.key and again is not first


def _asan_runtime():
    try:
        path = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.skipif(_asan_runtime() is None, reason="g++ has no AddressSanitizer runtime")
def test_an_out_of_bounds_read_is_caught_by_the_sanitizer_build(tmp_path):
    script = textwrap.dedent(r'''
        import numpy as np
        from fjit.compiler.targets.cuda import emulator
        src = 'extern "C" __global__ void over(const float *x, float *y, int n) {\n'\
              '  for (int i = 0; i <= n; i++) y[0] += x[i];   /* one past the end */\n}\n'
        m = emulator.build(src, ["over"], sanitize=True)
        m.launch("over", 1, 1, [np.ones(1000, np.float32), np.zeros(1, np.float32),
                                np.int32(1000)])
        print("not caught")
    ''')
    env = dict(os.environ, LD_PRELOAD=_asan_runtime(), ASAN_OPTIONS="detect_leaks=0",
               FJIT_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode != 0 and "not caught" not in done.stdout
    assert "heap-buffer-overflow" in done.stderr and "READ of size 4" in done.stderr


def test_fjit_devices_cuda_lists_gpus_or_says_why_there_are_none(set_option):
    import fjit
    set_option("cuda_emulation", False)
    gpus, why = driver.probe()
    if why is None:   # a GPU machine
        found = fjit.devices("cuda")
        assert [d.device_kind for d in found] == [g.name for g in gpus]
        assert found[0].compute_capability == "%d.%d" % gpus[0].compute_capability
    else:
        with pytest.raises(RuntimeError, match=r"fjit.devices: no cuda devices: ") as error:
            fjit.devices("cuda")
        assert why in str(error.value) and "FJIT_CUDA_EMULATION=1" in str(error.value)
        assert "driver" in why or "cuda-python" in why or "device" in why
        assert [d.platform for d in fjit.devices()] == ["cpu"]
    assert fjit.devices("cpu") == [fjit.devices()[0]]
    set_option("cuda_emulation", True)
    (emulated,) = fjit.devices("cuda")
    assert emulated.device_kind == "fjit CUDA emulator" and emulated in fjit.devices()


class _FakeDriver:
    """The few driver API calls `inspect` makes, answering like one H100 would."""
    class CUresult:
        CUDA_SUCCESS = "ok"

    class CUdevice_attribute:
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = "major"
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = "minor"

    def __init__(self, init="ok", count=1):
        self.init, self.count = init, count

    def cuInit(self, flags):
        if self.init == "raise":
            raise RuntimeError('"cuda" is an NVIDIA driver library')
        return (self.init,)

    def cuDeviceGetCount(self):
        return ("ok", self.count)

    def cuDeviceGet(self, index):
        return ("ok", index)

    def cuDeviceGetName(self, size, device):
        return ("ok", b"NVIDIA H100 80GB HBM3\0\0\0")

    def cuDeviceGetAttribute(self, attribute, device):
        return ("ok", {"major": 9, "minor": 0}[attribute])

    def cuDeviceTotalMem(self, device):
        return ("ok", 85 * 2**30)


def test_the_driver_probe_lists_gpus_and_names_each_reason_for_none():
    gpus, why = driver.inspect(_FakeDriver())
    assert why is None and gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].arch == "sm_90"
    assert gpus[0].memory_bytes == 85 * 2**30
    assert driver.inspect(_FakeDriver(init="raise"))[1].startswith("no NVIDIA driver")
    assert "cuInit returned" in driver.inspect(_FakeDriver(init=_Named("CUDA_ERROR_NO_DEVICE")))[1]
    assert driver.inspect(_FakeDriver(count=0)) == ((), "the NVIDIA driver reports no CUDA device")


class _Named(str):
    @property
    def name(self):
        return str(self)


def test_scalars_must_be_numpy_scalars_and_the_argument_count_is_checked(module):
    x, y = np.ones(8, np.float16), np.zeros(8, np.float32)
    with pytest.raises(TypeError, match="NumPy scalar of the parameter's type"):
        module.launch("half_tanh", 1, 8, [x, y, 8, np.float32(1)])   # a Python int
    with pytest.raises(TypeError, match="it takes 4 arguments, 2 given"):
        module.launch("half_tanh", 1, 8, [x, y])


def test_launches_a_gpu_would_refuse_are_refused(module):
    args = [np.ones(4, np.float32), np.zeros(1, np.float32), np.int64(4)]
    for grid, block, shared, why in [(1, 2048, 0, "more than 1024 threads"),
                                     (0, 32, 0, "a dimension of 0"),
                                     (1, 32, 1 << 20, "bytes of dynamic shared memory")]:
        with pytest.raises(ValueError, match=why):
            module.launch("block_sum", grid, block, args, shared_bytes=shared)


@needs_nvrtc
def test_reading_nvrtcs_output_leaves_pythons_shared_bytes_alone():
    nvrtc.compile(SOURCE, arch="sm_80")
    with pytest.raises(nvrtc.CudaBuildError):
        nvrtc.compile("this is not CUDA", "x.cu", "sm_80")
    assert b" " == bytes([32]) and " ".encode() == b"\x20"


def test_two_modules_launched_from_two_threads_keep_their_own_errors(tmp_path, set_option):
    """cffi releases the GIL: a deadlock in one module must not be reported by, or hide
    behind, launches of another module on another thread."""
    import threading
    set_option("cache_dir", str(tmp_path / "cache"))
    other = emulator.build(SOURCE + "\n/* another module */\n", KERNELS)
    mine = emulator.build(SOURCE, KERNELS)
    errors = {"healthy": 0, "stuck_unreported": 0}

    def healthy():
        for _ in range(200):
            out = np.zeros(1, np.float32)
            try:
                other.launch("block_sum", 2, 64, [np.ones(100, np.float32), out, np.int64(100)])
            except emulator.EmulationError:
                errors["healthy"] += 1

    def stuck():
        for _ in range(200):
            try:
                mine.launch("stuck", 1, 64, [np.zeros(1, np.float32)])
                errors["stuck_unreported"] += 1
            except emulator.EmulationError:
                pass
    threads = [threading.Thread(target=healthy), threading.Thread(target=stuck)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == {"healthy": 0, "stuck_unreported": 0}
