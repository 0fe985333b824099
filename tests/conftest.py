"""Test-wide settings: every Program traced during the tests is typechecked, and every test
runs on each jit backend (the compiled C backend and the NumPy reference interpreter), so
the whole suite checks that they agree.  FJIT_TEST_BACKENDS=reference (or c) runs one;
`pytestmark = pytest.mark.c_backend` runs a module on the C backend only."""
import os
import subprocess
import sys
import textwrap

import pytest

import fjit

fjit.config.update("check_programs", True)

BACKENDS = [b for b in os.environ.get("FJIT_TEST_BACKENDS", "c,reference").split(",") if b]


def pytest_generate_tests(metafunc):
    """Every test once per backend; tests marked `c_backend` are about the compiled code
    and run once, on it."""
    if "backend" in metafunc.fixturenames:
        only_c = metafunc.definition.get_closest_marker("c_backend")
        metafunc.parametrize("backend", ["c"] if only_c else BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request):
    """The jit backend this run of the test uses."""
    if request.node.get_closest_marker("c_backend"):
        from fjit.compiler.targets.c.toolchain import toolchain
        if toolchain() is None:
            pytest.skip("no C compiler")
    previous = fjit.config.backend
    fjit.config.update("backend", request.param)
    yield request.param
    fjit.config.update("backend", previous)


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
