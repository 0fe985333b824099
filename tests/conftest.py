"""Test-wide settings: every Program traced during the tests is typechecked, and every test
runs on each jit backend (the compiled C backend and the NumPy reference interpreter, and
a sample on the cuda backend), so the whole suite checks that they agree.

- FJIT_TEST_BACKENDS=reference (or c, or cuda) runs one.
- The cuda backend runs on the emulated GPU (FJIT_TEST_CUDA=gpu: on the machine's GPU).  The
  emulator builds each Program with g++, about a second each, so in a full run it takes one
  test in FJIT_TEST_CUDA_SAMPLE (default 12, chosen by a hash of the test's id) and the
  first of every module; FJIT_TEST_CUDA_SAMPLE=1 runs them all.
- `pytestmark = pytest.mark.c_backend` runs a module on the C backend only.
"""
import os
import subprocess
import sys
import textwrap
import zlib

import pytest

import fjit

fjit.config.update("check_programs", True)

BACKENDS = [b for b in os.environ.get("FJIT_TEST_BACKENDS", "c,reference,cuda").split(",")
            if b]
CUDA_SAMPLE = max(1, int(os.environ.get("FJIT_TEST_CUDA_SAMPLE", "12")))
ON_GPU = os.environ.get("FJIT_TEST_CUDA") == "gpu"


def pytest_generate_tests(metafunc):
    """Every test once per backend; tests marked `c_backend` are about the compiled code
    and run once, on it."""
    if "backend" in metafunc.fixturenames:
        only_c = metafunc.definition.get_closest_marker("c_backend")
        metafunc.parametrize("backend", ["c"] if only_c else BACKENDS, indirect=True)


def pytest_collection_modifyitems(config, items):
    """Keep the cuda backend's sample: the first test of each module and one in CUDA_SAMPLE
    of the others."""
    if CUDA_SAMPLE == 1:
        return
    kept, dropped, covered = [], [], set()
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is None or spec.params.get("backend") != "cuda":
            kept.append(item)
            continue
        module = item.nodeid.split("::", 1)[0]
        if module not in covered or zlib.crc32(item.nodeid.encode()) % CUDA_SAMPLE == 0:
            covered.add(module)
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _skip_without_the_emulator():
    """Skip, saying why, where the emulated GPU cannot be built (no C++ compiler)."""
    if ON_GPU:
        return
    from fjit.compiler.targets.cuda.emulator import CxxUnavailable, cxx
    try:
        cxx()
    except CxxUnavailable as why:
        pytest.skip(f"the emulated GPU needs a C++ compiler: {why}")


@pytest.fixture(autouse=True)
def backend(request):
    """The jit backend this run of the test uses."""
    if request.node.get_closest_marker("c_backend"):
        from fjit.compiler.targets.c.toolchain import toolchain
        if toolchain() is None:
            pytest.skip("no C compiler")
    previous = fjit.config.backend, fjit.config.cuda_emulation
    if request.param == "cuda":
        _skip_without_the_emulator()
        fjit.config.update("cuda_emulation", not ON_GPU)
    fjit.config.update("backend", request.param)
    yield request.param
    fjit.config.update("backend", previous[0])
    fjit.config.update("cuda_emulation", previous[1])


@pytest.fixture
def cuda_device(set_option):
    """The cuda device a test runs on: the emulated GPU, or with FJIT_TEST_CUDA=gpu the
    machine's first GPU (bench/gpu_check.sh runs the cuda tests so on a lent GPU)."""
    _skip_without_the_emulator()
    set_option("cuda_emulation", not ON_GPU)
    device = fjit.devices("cuda")[0]
    yield device
    from fjit.compiler.targets.cuda.platform import context_of
    context_of(device).gpu.synchronize()


emulator_only = pytest.mark.skipif(ON_GPU, reason="about the emulated GPU's internals")


@pytest.fixture
def x64():
    """Run a test with 64-bit types enabled, restoring the previous setting afterwards."""
    previous = fjit.config.enable_x64
    fjit.config.update("enable_x64", True)
    yield
    fjit.config.update("enable_x64", previous)


@pytest.fixture
def run_fjit():
    """run_fjit(code, cache_dir, **env): `code` in a fresh Python process using this checkout's
    fjit, with the compile cache in `cache_dir` and compile logging on."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(code, cache_dir, **env):
        full_env = dict(os.environ, FJIT_CACHE_DIR=str(cache_dir), FJIT_LOG="compile",
                        PYTHONPATH=root, **env)
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                              capture_output=True, text=True, env=full_env, timeout=120)
    return run


@pytest.fixture
def set_option():
    """set_option(name, value): fjit.config.update for this test only."""
    saved = {}

    def set_(name, value):
        saved.setdefault(name, getattr(fjit.config, name))
        fjit.config.update(name, value)
    yield set_
    for name, value in saved.items():
        fjit.config.update(name, value)
