"""Test-wide settings: every Program traced during the tests is typechecked."""
import pytest

import fjit

fjit.config.update("check_programs", True)


@pytest.fixture
def x64():
    """Run a test with 64-bit types enabled, restoring the previous setting afterwards."""
    previous = fjit.config.enable_x64
    fjit.config.update("enable_x64", True)
    yield
    fjit.config.update("enable_x64", previous)
