"""Test-wide settings: every Program traced during the tests is typechecked, and every test
runs on each jit backend (the compiled C backend and the NumPy reference interpreter), so
the whole suite checks that they agree.  FJIT_TEST_BACKENDS=reference (or c) runs one."""
import os

import pytest

import fjit

fjit.config.update("check_programs", True)

BACKENDS = [b for b in os.environ.get("FJIT_TEST_BACKENDS", "c,reference").split(",") if b]


@pytest.fixture(params=BACKENDS, autouse=True)
def backend(request):
    """The jit backend this run of the test uses."""
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
