"""FJIT_PROFILE: a compiled Program timed kernel by kernel, reported with each kernel's kind,
shape and the user's line; results unchanged."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp

pytestmark = pytest.mark.c_backend


def test_profiled_calls_report_kernels_with_their_share_and_source(set_option):
    fjit.profile_reset()

    @fjit.jit
    def layer(x, w):
        h = jnp.tanh(x @ w)           # a GEMM, then a loop nest
        return (h * h).sum(axis=1)

    x = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((48, 32)).astype(np.float32)
    want = np.asarray(layer(x, w))
    set_option("profile", True)
    for _ in range(3):
        got = np.asarray(layer(x, w))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    text = fjit.profile_report()
    assert "jit(layer)" in text and "3 calls" in text
    assert "[gemm] 64 x 32 x 48" in text and "[loops]" in text
    assert "test_profile.py:" in text and "by kind:" in text
    set_option("profile", False)
    fjit.profile_reset()
    assert "nothing profiled" in fjit.profile_report()


def test_reset_zeroes_counts_and_later_calls_are_still_recorded(set_option):
    """A warm-up, a reset, then the calls to measure: the pattern a benchmark uses."""
    set_option("profile", True)
    fjit.profile_reset()

    @fjit.jit
    def scale(x):
        return jnp.exp(x) * 2.0

    x = np.arange(1000, dtype=np.float32) / 1000
    for _ in range(2):
        scale(x)
    fjit.profile_reset()
    assert "nothing profiled" in fjit.profile_report()
    for _ in range(5):
        got = np.asarray(scale(x))
    np.testing.assert_allclose(got, np.exp(x) * 2.0, rtol=1e-6)
    assert "jit(scale)" in fjit.profile_report() and "5 calls" in fjit.profile_report()
    set_option("profile", False)
    fjit.profile_reset()
